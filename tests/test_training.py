"""The training loop: Caffe multipliers, resume after an interruption, stale checkpoints, the cache."""

import csv
import logging

import numpy as np
import pytest
import torch
from schema_defaults import optim_config
from torch import nn

from kdwsd.distill.cache import TeacherCache, write_teacher_cache
from kdwsd.models.teacher import WSDDN
from kdwsd.train.loop import caffe_param_groups, clear_checkpoint, fit


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(3, 4)
        self.fc8 = nn.Linear(4, 2)
        self.tau = nn.Parameter(torch.ones(2))

    def forward(self, x):
        return self.fc8(torch.relu(self.body(x))) * self.tau


def _batches(epoch):
    g = torch.Generator().manual_seed(epoch)
    return [{"image": torch.randn(4, 3, generator=g), "labels": torch.rand(4, 2, generator=g)} for _ in range(3)]


def _step(model, batch):
    return nn.functional.mse_loss(model(batch["image"]), batch["labels"]), {}


def test_caffe_param_groups_multipliers():
    cfg = optim_config(lr=0.1, weight_decay=0.01)
    groups = caffe_param_groups(Toy(), cfg, ("fc8.",), {"tau": (10.0, 0.0)})
    by_mult = {(g["lr_mult"], g["weight_decay"]): len(g["params"]) for g in groups}
    assert by_mult == {(1.0, 0.01): 1, (2.0, 0.0): 1, (10.0, 0.1): 1, (20.0, 0.0): 1, (10.0, 0.0): 1}


def _train(tmp_path, epochs, step=_step):
    torch.manual_seed(0)
    model = Toy()
    cfg = optim_config(epochs=epochs, lr=0.05, lr_steps=[3])
    groups = caffe_param_groups(model, cfg, ("fc8.",))
    fit(model, step, _batches, cfg, groups, tmp_path / "ckpt", tmp_path / "log.csv", torch.device("cpu"),
        fingerprint={"toy": 1}, desc="toy")  # fmt: skip
    return model


def test_interrupted_training_resumes_and_matches_uninterrupted(tmp_path, caplog):
    reference = _train(tmp_path / "a", 4)
    calls = {"n": 0}

    def crashing_step(model, batch):
        calls["n"] += 1
        if calls["n"] == 8:  # during epoch 3
            raise KeyboardInterrupt("killed by the scheduler")
        return _step(model, batch)

    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "b", 4, crashing_step)
    assert (tmp_path / "b" / "ckpt" / "last.pt").is_file()
    with caplog.at_level(logging.INFO, logger="kdwsd.train"):
        resumed = _train(tmp_path / "b", 4)
    assert "resuming from checkpoint" in caplog.text and "at epoch 2/4" in caplog.text
    for p, q in zip(reference.parameters(), resumed.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6)
    with open(tmp_path / "b" / "log.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1, 2, 3, 4]
    history = (tmp_path / "b" / "ckpt" / "progress.log").read_text()
    assert "starting from scratch" in history and "resumed from checkpoint epoch 2" in history
    assert "epoch 3/4 started" in history and "epoch 4/4 done" in history
    clear_checkpoint(tmp_path / "b" / "ckpt")
    assert not (tmp_path / "b" / "ckpt" / "last.pt").exists()


def test_checkpoint_of_another_configuration_is_not_resumed(tmp_path, caplog):
    _train(tmp_path, 1)
    model = Toy()
    cfg = optim_config(epochs=1, lr=0.05)
    with caplog.at_level(logging.INFO, logger="kdwsd.train"):
        fit(model, _step, _batches, cfg, caffe_param_groups(model, cfg, ()), tmp_path / "ckpt", tmp_path / "log.csv",
            torch.device("cpu"), fingerprint={"toy": 2})  # fmt: skip
    assert "from another configuration" in caplog.text
    assert (tmp_path / "ckpt" / "last.pt.stale").is_file()


def test_non_finite_loss_stops_with_a_clear_error(tmp_path):
    def nan_step(model, batch):
        return model(batch["image"]).sum() * float("nan"), {}

    with pytest.raises(FloatingPointError, match="loss is nan"):
        _train(tmp_path, 1, nan_step)


def test_teacher_cache_round_trip(tmp_path):
    teacher = WSDDN(3, backbone="small", widths=(8, 8, 8, 8), hidden=8, dropout=0.0).eval()
    n, r, size = 5, 6, 64
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(n, r, 2, generator=g) * 30
    boxes = torch.cat([xy, xy + 20], 2)

    def batches(flip):
        out = []
        for s in range(0, n, 2):
            idx = list(range(s, min(s + 2, n)))
            mask = torch.ones(len(idx), r, dtype=torch.bool)
            mask[0, 4:] = False  # first image of each batch has 4 RoIs
            out.append({"index": torch.tensor(idx), "image": torch.randn(len(idx), 3, size, size, generator=g),
                        "boxes": boxes[idx], "box_scores": torch.rand(len(idx), r, generator=g), "mask": mask,
                        "labels": torch.zeros(len(idx), 3)})  # fmt: skip
        return out

    ids = np.arange(100, 100 + n)
    write_teacher_cache(teacher, [batches(False), batches(True)], n, ids, np.full((n, 2), 128), tmp_path / "c",
                        size, 3, r, 0.5, "sum", 2, torch.device("cpu"), progress=False)  # fmt: skip
    cache = TeacherCache(tmp_path / "c")
    assert len(cache.shards) == 3 and cache.rois == 3 and cache.feature_dim == 8
    e = cache.get(100, orientation=1)
    assert e["rois"].shape == (3, 4) and e["features"].dtype == np.float16
    assert np.all(np.diff(e["objectness"]) <= 0)  # sorted by objectness
    assert e["soft_targets"].min() > 0 and e["soft_targets"].max() < 1
    assert cache.get(101, top=2)["rois"].shape == (2, 4)
    assert cache.class_boxes(ids).shape == (n, 3, 4)
    with pytest.raises(KeyError, match="not in the teacher cache"):
        cache.get(7)
