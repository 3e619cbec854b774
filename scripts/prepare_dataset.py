"""Rule prepare_dataset: COCO 2014 / NUS-WIDE / VOC 2007 -> the prepared layout (docs/formats.md §1).

``params.dataset``: the config's ``dataset:`` section (``name`` in {coco2014, nuswide, voc2007}; the synthetic
set has its own script). ``params.out_dir`` (optional): the prepared folder, default the folder of
``output[0]``. The archives must be at ``<root>/archives/`` (download rule); they are verified and extracted
once into ``<root>/extracted/``; with ``use_existing`` nothing is downloaded, extracted or copied.
All logic is in ``kdwsd.data.{coco,nuswide,voc}.prepare_from_config``.
"""

from pathlib import Path

from kdwsd.data import coco, nuswide, voc
from kdwsd.workflow import setup_step

PREPARERS = {"coco2014": coco.prepare_from_config, "nuswide": nuswide.prepare_from_config,
             "voc2007": voc.prepare_from_config}  # fmt: skip

snakemake = globals()["snakemake"]
setup_step(snakemake, "prepare_dataset")
cfg = dict(snakemake.params.dataset)
if cfg.get("name") not in PREPARERS:
    raise ValueError(f"dataset.name must be one of {sorted(PREPARERS)} here, got {cfg.get('name')!r}")
out_dir = getattr(snakemake.params, "out_dir", None) or Path(snakemake.output[0]).parent
PREPARERS[cfg["name"]](cfg, out_dir, progress=bool(getattr(snakemake.params, "progress", True)))
