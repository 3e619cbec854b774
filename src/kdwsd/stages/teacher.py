"""Stage of ``workflow/rules/teacher.smk``: train the WSDDN teacher (T-WDet) on image-level labels."""

from __future__ import annotations

from typing import Any

from kdwsd.stages.dataset import checked_split, prepared_dir

__all__ = ["teacher"]


def teacher(
    *, data: list[str], proposals: list[str], model: str, curve: str, network: dict[str, Any], rois: int,
    train_sizes: list[int], flip: bool, seed: int, optim: dict[str, Any], precision: str, norm: str, device: str,
    checkpoints: str, frame: int, proposal_config: dict[str, Any], on_bad_image: str = "error",
    loader_workers: int = 0, frame_cache_mb: float = 0,
) -> None:  # fmt: skip
    """Train T-WDet on the ``train`` split (multi-scale ``train_sizes`` + mirror, the top ``rois`` proposals
    per image) and write ``model``; ``curve`` gets the per-epoch losses. Resumes from ``checkpoints``.

    ``frame`` (the single-scale test frame) and ``proposal_config`` (how proposals were made) are recorded in
    the model file so that ``kdwsd predict`` treats a user's image as the pipeline does."""
    from kdwsd.data.dataset import MultiLabelImages
    from kdwsd.device import GPU_SLOT_DIR, job_device
    from kdwsd.modelfile import teacher_metadata
    from kdwsd.models.teacher import WSDDN, build_teacher
    from kdwsd.proposals.store import ProposalStore
    from kdwsd.train.loop import OptimConfig, file_fingerprint
    from kdwsd.train.recipe import train_and_save
    from kdwsd.train.teacher import teacher_step

    device = str(job_device(device, where="config key device", slot_dir=GPU_SLOT_DIR))
    data_dir = prepared_dir(data)
    split = checked_split(data, "train", on_bad_image, model)
    dataset = MultiLabelImages(split, norm, ProposalStore(proposals), rois=rois, frame_cache_mb=frame_cache_mb)
    recipe = {"network": network, "rois": rois, "train_sizes": train_sizes, "flip": flip, "seed": seed,
              "optim": optim, "precision": precision, "norm": norm}  # fmt: skip
    train_and_save(
        build=lambda: build_teacher(network, len(split.classes)), dataset=dataset, sizes=train_sizes, flip=flip,
        seed=seed, optim=OptimConfig.from_dict(optim), step=teacher_step, head_prefixes=WSDDN.head_prefixes(),
        lr_mults=None, device=device, checkpoint_dir=checkpoints, curve=curve, out_model=model,
        fingerprint={"teacher": recipe, "inputs": file_fingerprint([data_dir, *proposals])},
        metadata=teacher_metadata(classes=split.classes, config=recipe, norm=norm, frame_size=frame, rois=rois,
                                  proposals=proposal_config),
        loader_workers=loader_workers,
        desc="teacher", precision=precision,
    )  # fmt: skip
