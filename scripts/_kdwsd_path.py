"""Put this workflow's own ``src/`` first on ``sys.path``, so that a rule's job runs the library next to the
Snakefile whether or not the package is installed (``--sdm conda`` environments hold only the dependencies,
and a copied or checked-out workflow must not run another copy's code). Snakemake's script preamble puts
this folder on the path, which makes ``import _kdwsd_path`` work from every rule script."""

import sys
from pathlib import Path

_SRC = str(Path(__file__).resolve().parents[1] / "src")
# First, even when already on the path further back (Snakemake's preamble appends the parent process's search
# paths, which hold this src/ behind an installed copy's).
while _SRC in sys.path:
    sys.path.remove(_SRC)
sys.path.insert(0, _SRC)
