# Source this file (bash/zsh) to run mam_pynn on the NEST built by hpc/build_nest_mpi.sh:
#
#     source hpc/env.sh
#     mpirun -n 2 mam simulate --config my.yaml --out runs/x
#
# It puts that NEST's PyNEST in front of the wheel's (PYTHONPATH), the project's Python
# environment and its MPI launcher on PATH, and tells NEURON which libmpi to load.
# Deliberately NOT on PATH: the NEST prefix's bin/ — pyNN.nest would find nest-config there
# and try to compile its extension module inside the shared environment at import time
# (on every rank at once under mpirun).
#
# On a cluster with its own NEST module, do not source this: `module load nest` (built with
# MPI, Python bindings for the same Python) and make sure `python -c "import nest"` finds it.

_mam_repo="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
_mam_prefix="${MAM_NEST_PREFIX:-${MAM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mam_pynn}/nest-3.10.0-mpi}"   # as mam_pynn.hpc.nest_mpi_prefix
if [ ! -f "$_mam_prefix/.mam_build_ok" ]; then
    echo "hpc/env.sh: no NEST with MPI in $_mam_prefix; run hpc/build_nest_mpi.sh first" >&2
    return 1 2>/dev/null || exit 1
fi
_mam_site="$(cat "$_mam_prefix/.mam_build_ok")"
_mam_venv="${MAM_VENV:-$_mam_repo/.venv}"

export PYTHONPATH="$_mam_site${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$_mam_venv/bin:$PATH"
# NEURON's wheel dlopens libmpi at run time (nrniv -mpi / h.nrnmpi_init()): give it the
# same MPICH the NEST build and mpirun use, otherwise P independent copies run.
if [ -e "$_mam_venv/lib/libmpi.so.12" ]; then
    export MPI_LIB_NRN_PATH="$_mam_venv/lib/libmpi.so.12"
fi
export MAM_NEST_MPI=1
unset _mam_repo _mam_prefix _mam_site _mam_venv
