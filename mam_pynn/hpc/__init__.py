"""Distributed runs of the MAM on NEST, one stage per module.

- :mod:`.memory`: the memory planner (:func:`plan`, :func:`largest_scale`): peak memory per
  rank from the network's counts and costs measured with NEST 3.10, minimum nodes.
- :mod:`.jobscript`: Slurm job scripts that run ``mam simulate`` over ranks and threads.
- :mod:`.distributed`: one run under ``mpirun`` (:func:`run_distributed`) and the merge of
  the ranks' parts into one run directory (:func:`merge_run`).

The names below are the public ones of all three; ``python -m mam_pynn.hpc`` runs
:func:`distributed.main`.
"""
from .distributed import (NEST_MPI_VERSION, check_nest_mpi, merge_run, merge_spike_files,
                          merge_summaries, nest_kernel_info, nest_mpi_prefix, rank_dir,
                          run_distributed)
from .jobscript import JOB_DEFAULTS, LAUNCHERS, SLURM_TEMPLATE, jobscript
from .memory import (MAX_DELAY_SIGMAS, MEMORY_COSTS, USABLE_FRACTION, expected_max_delay_ms,
                     expected_rate_hz, largest_scale, min_nodes, network_counts, plan,
                     plan_text, rank_memory_mb)
from ..mpi import mpi_rank_size

__all__ = [
    'NEST_MPI_VERSION', 'check_nest_mpi', 'merge_run', 'merge_spike_files', 'merge_summaries',
    'nest_kernel_info', 'nest_mpi_prefix', 'rank_dir', 'run_distributed',
    'JOB_DEFAULTS', 'LAUNCHERS', 'SLURM_TEMPLATE', 'jobscript',
    'MAX_DELAY_SIGMAS', 'MEMORY_COSTS', 'USABLE_FRACTION', 'expected_max_delay_ms',
    'expected_rate_hz', 'largest_scale', 'min_nodes', 'network_counts', 'plan', 'plan_text',
    'rank_memory_mb', 'mpi_rank_size',
]
