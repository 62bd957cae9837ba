#!/usr/bin/env bash
# Build nest-simulator from its source release with MPI (and HDF5, for NEST's SONATA
# reader) into a prefix, for the project's Python environment.
#
# Why: the NEST wheel on PyPI has no MPI, so `mpirun -n P` would run P independent
# copies of the network. This builds a PyNEST that really distributes over ranks.
#
# Usage:  hpc/build_nest_mpi.sh            (idempotent: does nothing when already built)
#         MAM_NEST_FORCE=1 hpc/build_nest_mpi.sh   (rebuild)
# Then:   source hpc/env.sh
#
# Environment (all optional):
#   MAM_NEST_PREFIX   install prefix   [$MAM_CACHE_DIR (default ~/.cache/mam_pynn)/nest-3.10.0-mpi]
#   MAM_NEST_VERSION  NEST version     [3.10.0]
#   MAM_NEST_SRC      source tarball or unpacked source dir (else fetched from PyPI's sdist)
#   MAM_PYTHON        Python whose PyNEST is built   [<repo>/.venv/bin/python, else python3]
#   MAM_BUILD_JOBS    make -j                         [number of cores]
#   MAM_NEST_FORCE    1 = rebuild even if built
#   MAM_NEST_DETAILED_TIMERS  ON/OFF: NEST's per-phase timers (update, communicate,
#                     deliver), used by the strong-scaling benchmark   [ON]
#
# MPI: uses mpicc/mpicxx from PATH if present (a cluster's module), otherwise installs the
# `mpich` package from PyPI into the Python environment and uses its compilers.
# System libraries (Debian names): libgsl-dev libboost-dev libltdl-dev libhdf5-dev;
# installed with apt-get when missing and running as root, else the script says what to do.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${MAM_NEST_VERSION:-3.10.0}"
PREFIX="${MAM_NEST_PREFIX:-${MAM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mam_pynn}/nest-${VERSION}-mpi}"   # as mam_pynn.hpc.nest_mpi_prefix
PY="${MAM_PYTHON:-}"
if [[ -z "$PY" ]]; then
  if [[ -x "$REPO/.venv/bin/python" ]]; then PY="$REPO/.venv/bin/python"; else PY="$(command -v python3)"; fi
fi
JOBS="${MAM_BUILD_JOBS:-$(nproc)}"
WORK="${PREFIX}.build"
MARKER="$PREFIX/.mam_build_ok"
T0=$(date +%s)

say() { echo "[build_nest_mpi $(date +%H:%M:%S)] $*" >&2; }
die() { echo "[build_nest_mpi] ERROR: $*" >&2; exit 1; }

# --- already built? --------------------------------------------------------------
if [[ -f "$MARKER" && "${MAM_NEST_FORCE:-0}" != 1 ]]; then
  SITE="$(cat "$MARKER")"
  if PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" "$PY" -c \
       "import nest,sys; b=nest.GetKernelStatus('build_info'); sys.exit(0 if b['have_mpi'] and b['have_hdf5'] else 1)" \
       >/dev/null 2>&1; then
    echo "NEST $VERSION with MPI already built in $PREFIX (site-packages $SITE); nothing to do"
    exit 0
  fi
  say "marker present but the installed NEST does not import with MPI; rebuilding"
fi

# --- system libraries ------------------------------------------------------------
need_pkgs=()
for p in libgsl-dev libboost-dev libltdl-dev libhdf5-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if (( ${#need_pkgs[@]} )); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "installing ${need_pkgs[*]} with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
  elif command -v dpkg >/dev/null; then
    die "missing system packages: ${need_pkgs[*]} (sudo apt-get install ${need_pkgs[*]})"
  else
    say "not a Debian system: make sure GSL, Boost, ltdl and HDF5 development files are installed"
  fi
fi
command -v cmake >/dev/null || die "cmake not found (apt-get install cmake, or pip install cmake)"

# --- MPI compilers ---------------------------------------------------------------
PYBIN="$(dirname "$PY")"
if command -v mpicxx >/dev/null && [[ "$(command -v mpicxx)" != "$PYBIN/mpicxx" ]]; then
  MPICC="$(command -v mpicc)"; MPICXX="$(command -v mpicxx)"
  say "using the MPI compilers on PATH: $MPICXX"
else
  if [[ ! -x "$PYBIN/mpicxx" ]]; then
    say "installing mpich from PyPI into $("$PY" -c 'import sys; print(sys.prefix)')"
    "$PY" -m pip install -q mpich
  fi
  MPICC="$PYBIN/mpicc"; MPICXX="$PYBIN/mpicxx"
  say "using mpich from PyPI: $MPICXX"
fi
"$PY" -c "import Cython" 2>/dev/null || "$PY" -m pip install -q "cython>=3"

# --- source ----------------------------------------------------------------------
mkdir -p "$WORK"
SRC="${MAM_NEST_SRC:-}"
if [[ -z "$SRC" ]]; then
  SRC="$WORK/nest_simulator-${VERSION}.tar.gz"
  if [[ ! -f "$SRC" ]]; then
    say "downloading the nest-simulator $VERSION source release (sdist) from PyPI"
    "$PY" -m pip download -q --no-deps --no-binary nest-simulator \
      -d "$WORK" "nest-simulator==${VERSION}" || die "could not download the NEST source"
  fi
fi
if [[ -f "$SRC" ]]; then
  SRCDIR="$WORK/src"
  if [[ ! -f "$SRCDIR/CMakeLists.txt" ]]; then
    say "unpacking $SRC"
    rm -rf "$SRCDIR"; mkdir -p "$SRCDIR"
    tar xzf "$SRC" -C "$SRCDIR" --strip-components=1
  fi
else
  SRCDIR="$SRC"
fi
[[ -f "$SRCDIR/CMakeLists.txt" ]] || die "no CMakeLists.txt in $SRCDIR"

# --- configure, build, install ----------------------------------------------------
BUILD="$WORK/build"
mkdir -p "$BUILD"
say "configuring (MPI, OpenMP, HDF5, GSL, Boost, detailed timers ${MAM_NEST_DETAILED_TIMERS:-ON}) -> $PREFIX"
(cd "$BUILD" && CC="$MPICC" CXX="$MPICXX" cmake "$SRCDIR" \
   -DCMAKE_INSTALL_PREFIX="$PREFIX" \
   -Dwith-mpi=ON -Dwith-openmp=ON -Dwith-hdf5=ON -Dwith-gsl=ON -Dwith-boost=ON \
   -Dwith-detailed-timers="${MAM_NEST_DETAILED_TIMERS:-ON}" \
   -Dwith-python=ON -DPython_EXECUTABLE="$PY" -DPYTHON_EXECUTABLE="$PY" \
   -DMPI_C_COMPILER="$MPICC" -DMPI_CXX_COMPILER="$MPICXX" \
   > "$WORK/cmake.log" 2>&1) || { tail -30 "$WORK/cmake.log" >&2; die "cmake failed (log: $WORK/cmake.log)"; }
grep -E "MPI|HDF5|Python" "$WORK/cmake.log" | grep -iE "found|yes|version" | head -8 >&2 || true

say "compiling with make -j$JOBS (about 15 min on 2 cores; log: $WORK/make.log)"
(cd "$BUILD" && make -j"$JOBS" > "$WORK/make.log" 2>&1) &
MAKE_PID=$!
while kill -0 "$MAKE_PID" 2>/dev/null; do
  sleep 30
  pct=$(grep -oE '^\[ *[0-9]+%\]' "$WORK/make.log" | tail -1 | tr -d '[] ' || true)
  say "make: ${pct:-starting} ($(( $(date +%s) - T0 )) s)"
done
wait "$MAKE_PID" || { tail -30 "$WORK/make.log" >&2; die "make failed (log: $WORK/make.log)"; }

say "installing"
(cd "$BUILD" && make install > "$WORK/install.log" 2>&1) || { tail -30 "$WORK/install.log" >&2; die "make install failed"; }

# --- locate PyNEST, check it, record ------------------------------------------------
SITE="$(dirname "$(find "$PREFIX" -path '*site-packages/nest/__init__.py' | head -1)")"
SITE="$(dirname "$SITE")"
[[ -d "$SITE/nest" ]] || die "PyNEST not found under $PREFIX"

# PyNEST loads its kernel with RTLD_GLOBAL, which makes this build's libhdf5 (Debian's)
# global; h5py's wheel, imported afterwards, then binds to it instead of its own bundled
# HDF5 and fails ("Not a datatype"). Importing h5py first keeps each on its own library.
"$PY" - "$SITE/nest/__init__.py" <<'PYEOF'
import ast, sys
path = sys.argv[1]
src = open(path).read()
tag = "# mam_pynn: import h5py before the kernel"
if tag not in src:
    tree = ast.parse(src)
    first = tree.body[0]
    line = first.end_lineno if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) else 0
    lines = src.splitlines(keepends=True)
    patch = f"{tag} (its bundled HDF5 must bind before NEST's libhdf5 goes global)\ntry:\n    import h5py  # noqa: F401\nexcept ImportError:\n    pass\n"
    open(path, "w").write("".join(lines[:line]) + patch + "".join(lines[line:]))
PYEOF
PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" "$PY" -c \
  "import nest,sys; b=nest.GetKernelStatus('build_info'); sys.exit(0 if b['have_mpi'] and b['have_hdf5'] else 1)" \
  || die "the installed NEST imports but reports no MPI"
echo "$SITE" > "$MARKER"
echo "NEST $VERSION with MPI+HDF5 ready after $(( $(date +%s) - T0 )) s: prefix $PREFIX, site-packages $SITE (source hpc/env.sh to use it)"
