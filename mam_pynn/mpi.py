"""The MPI rank layout from the launcher's environment, without importing MPI: what the
network backends and the distributed run need to know (mpirun, srun, PMIx); and the
CPUs this process may use (parallel export and analysis)."""
from __future__ import annotations

import os

RANK_ENV = (('PMI_RANK', 'PMI_SIZE'), ('OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE'),
            ('PMIX_RANK', None), ('SLURM_PROCID', 'SLURM_NTASKS'))


def mpi_rank_size() -> tuple[int, int]:
    """(rank, number of ranks) from the launcher's environment, without importing MPI."""
    for rank_var, size_var in RANK_ENV:
        if rank_var in os.environ and size_var and size_var in os.environ:
            return int(os.environ[rank_var]), int(os.environ[size_var])
    return 0, 1


def available_cpus() -> int:
    """The CPUs this process may use (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1)


def available_memory_bytes() -> int | None:
    """Memory the OS could give now without swapping (Linux's MemAvailable); None elsewhere."""
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
