"""``python -m mam_pynn.hpc --config F --out RUN_DIR``: a distributed ``mam simulate``."""
import sys

from .distributed import main

sys.exit(main())
