# Shared by the three paper workflows: where figures go, and the rule that draws one
# figure of a paper with `python -m mam_pynn.figures` (the computations live in the
# package: mam_pynn/figures/). A figure reruns when its module or the data change.
import sys
from pathlib import Path

REPO = Path(workflow.basedir).parent.parent
OUT = config.get("out", "figures_out")
PYTHON = config.get("python", sys.executable)
DATA_DIR = config.get("data_dir") or ""
DATA_ARG = f"MAM_DATA_DIR={DATA_DIR} " if DATA_DIR else ""


def outputs(paper, name):
    return [f"{OUT}/{paper}/{name}.{ext}" for ext in ("png", "pdf", "json")]


def module(paper):
    return str(REPO / "mam_pynn" / "figures" / f"{paper}.py")
