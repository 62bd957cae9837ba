"""The MPI rank layout from the launcher's environment, without importing MPI: what the
network backends and the distributed run need to know (mpirun, srun, PMIx)."""
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
