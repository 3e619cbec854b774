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


# --- precision ------------------------------------------------------------------------------------------


def test_precision_defaults_to_fp32_and_reduced_precision_is_cuda_only(caplog):
    import inspect

    from kdwsd.device import autocast, autocast_dtype, grad_scaler
    from kdwsd.distill.cache import run_teacher
    from kdwsd.distill.live import LiveTeacher

    for fn in (fit, run_teacher, write_teacher_cache, LiveTeacher.__init__):
        assert inspect.signature(fn).parameters["precision"].default == "fp32", fn.__qualname__
    cuda, cpu = torch.device("cuda"), torch.device("cpu")  # the decision needs no GPU
    assert autocast_dtype(cuda, "fp32") is None
    assert autocast_dtype(cuda, "bf16") is torch.bfloat16 and autocast_dtype(cuda, "fp16") is torch.float16
    with caplog.at_level(logging.WARNING, logger="kdwsd.device"):
        assert autocast_dtype(cpu, "bf16") is None and autocast_dtype(cpu, "bf16") is None
    assert caplog.text.count("only used on CUDA") <= 1  # warned once (or earlier in this process)
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        autocast_dtype(cpu, "fp8")
    for p in ("fp32", "bf16", "fp16"):
        with autocast(cpu, p):
            assert not torch.is_autocast_enabled("cpu")
        assert not grad_scaler(cpu, p).is_enabled()
    if torch.cuda.is_available():
        for p, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
            with autocast(cuda, p):
                assert torch.is_autocast_enabled("cuda") and torch.get_autocast_dtype("cuda") == dtype
        with autocast(cuda, "fp32"):
            assert not torch.is_autocast_enabled("cuda")
        assert grad_scaler(cuda, "fp16").is_enabled() and not grad_scaler(cuda, "bf16").is_enabled()


def test_fit_runs_reduced_precision_as_fp32_on_cpu(tmp_path):
    seen = []

    def step(model, batch):
        seen.append(torch.is_autocast_enabled("cpu"))
        return _step(model, batch)

    model = Toy()
    cfg = optim_config(epochs=1, lr=0.05)
    fit(model, step, _batches, cfg, caffe_param_groups(model, cfg, ()), tmp_path / "c", tmp_path / "l.csv",
        torch.device("cpu"), fingerprint={}, precision="bf16")  # fmt: skip
    assert seen == [False] * 3


# --- gradient accumulation ------------------------------------------------------------------------------


def _no_bn(model):
    """Swap the small backbone for one conv without batch norm (BN statistics differ per micro-batch)."""
    model.backbone.features = nn.Sequential(nn.Conv2d(3, 8, 16, stride=16), nn.ReLU())
    return model


def _roi_batches(n_batches, b, r, size, dim=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_batches):
        xy = torch.rand(b, r, 2, generator=g) * (size / 2)
        mask = torch.arange(r)[None] < torch.randint(1, r + 1, (b, 1), generator=g)  # 1..r RoIs per image
        batch = {"index": torch.arange(b), "image": torch.randn(b, 3, size, size, generator=g),
                 "boxes": torch.cat([xy, xy + size / 3], 2), "box_scores": torch.rand(b, r, generator=g),
                 "mask": mask, "labels": (torch.rand(b, 3, generator=g) > 0.5).float()}  # fmt: skip
        if dim:
            batch["teacher_fc7"] = torch.randn(b, r, dim, generator=g) * mask[..., None]
        out.append(batch)
    return out


@pytest.mark.parametrize("loss", ["wsddn_bce", "feature_kd"])
def test_gradient_accumulation_equals_the_whole_batch(tmp_path, loss):
    from kdwsd.models.student import StudentClassifier
    from kdwsd.train.loop import images_in_batch, valid_rois_in_batch
    from kdwsd.train.student import stage1_step
    from kdwsd.train.teacher import teacher_step

    small = {"backbone": "small", "widths": (8, 8, 8, 8), "hidden": 16, "dropout": 0.0}
    if loss == "wsddn_bce":
        data = _roi_batches(3, 32, 5, 64)
        build, step, norm = lambda: WSDDN(3, **small), teacher_step, images_in_batch
    else:
        data = _roi_batches(3, 32, 5, 64, dim=16)
        build, step, norm = lambda: StudentClassifier(3, **small), stage1_step(32, 64), valid_rois_in_batch
    assert len({int(m.sum()) for b in data for m in b["mask"].chunk(4)}) > 1  # micro-batches differ in N_roi
    cfg = optim_config(epochs=1, lr=0.01, momentum=0.9, weight_decay=5e-4)
    models = []
    for acc in (1, 4):
        torch.manual_seed(0)
        model = _no_bn(build())
        init = [p.detach().clone() for p in model.parameters()]
        fit(model, step, lambda e: data, cfg, caffe_param_groups(model, cfg, ()), tmp_path / f"c{acc}",
            tmp_path / f"l{acc}.csv", torch.device("cpu"), fingerprint={}, accumulate=acc, normaliser=norm)  # fmt: skip
        models.append(model)
    for (name, p), q in zip(models[0].named_parameters(), models[1].parameters(), strict=True):
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-6), name
    assert max(float((p.detach() - i).abs().max()) for p, i in zip(models[1].parameters(), init, strict=True)) > 1e-3
    with open(tmp_path / "l1.csv") as f1, open(tmp_path / "l4.csv") as f4:
        l1, l4 = float(next(csv.DictReader(f1))["loss"]), float(next(csv.DictReader(f4))["loss"])
    assert l4 == pytest.approx(l1, rel=1e-5)  # the logged loss is the whole batch's


def test_accumulation_with_the_wrong_normaliser_differs(tmp_path):
    # Guards the test above: per-image weighting of a per-RoI loss is not the whole batch's gradient.
    from kdwsd.models.student import StudentClassifier
    from kdwsd.train.loop import images_in_batch
    from kdwsd.train.student import stage1_step

    data = _roi_batches(1, 32, 5, 64, dim=16)
    cfg = optim_config(epochs=1, lr=0.01)
    out = []
    for acc in (1, 4):
        torch.manual_seed(0)
        model = _no_bn(StudentClassifier(3, backbone="small", widths=(8, 8, 8, 8), hidden=16, dropout=0.0))
        fit(model, stage1_step(32, 64), lambda e: data, cfg, caffe_param_groups(model, cfg, ()),
            tmp_path / f"c{acc}", tmp_path / "l.csv", torch.device("cpu"), fingerprint={}, accumulate=acc,
            normaliser=images_in_batch)  # fmt: skip
        out.append(model.head.fc7.weight.detach())
    assert not torch.allclose(out[0], out[1], rtol=1e-4, atol=1e-6)


def test_split_batch_keeps_every_image_once():
    from kdwsd.train.loop import split_batch

    batch = {"image": torch.arange(10.0)[:, None], "mask": torch.ones(10, 3, dtype=torch.bool)}
    parts = split_batch(batch, 4)
    assert [len(p["image"]) for p in parts] == [3, 3, 2, 2]
    assert torch.equal(torch.cat([p["image"] for p in parts]), batch["image"])
    assert len(split_batch({"image": torch.zeros(2, 1)}, 4)) == 2  # empty micro-batches dropped


# --- checkpoint on SIGTERM / SIGUSR1 --------------------------------------------------------------------


class ToyDropout(Toy):
    def forward(self, x):
        return self.fc8(nn.functional.dropout(torch.relu(self.body(x)), 0.5, self.training)) * self.tau


def _rng_step(model, batch):
    # consumes the torch (dropout), numpy and python RNGs, so a resume must restore all three
    import random

    loss, terms = _step(model, batch)
    return loss * (1 + 0.01 * float(np.random.rand()) + 0.01 * random.random()), terms


def _train_dropout(tmp_path, step):
    import random

    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    model = ToyDropout()
    cfg = optim_config(epochs=3, lr=0.05, lr_steps=[2])
    fit(model, step, _batches, cfg, caffe_param_groups(model, cfg, ("fc8.",)), tmp_path / "ckpt",
        tmp_path / "log.csv", torch.device("cpu"), fingerprint={"toy": 3}, desc="toy")  # fmt: skip
    return model


@pytest.mark.parametrize("signame", ["SIGUSR1", "SIGTERM"])
def test_signal_writes_a_mid_epoch_checkpoint_and_resume_matches(tmp_path, signame, caplog):
    import os
    import signal

    from kdwsd.train.loop import TrainingInterrupted

    reference = _train_dropout(tmp_path / "a", _rng_step)
    sig = getattr(signal, signame)
    before = signal.getsignal(sig)
    calls = {"n": 0}

    def signalling_step(model, batch):
        calls["n"] += 1
        if calls["n"] == 5:  # epoch 2, batch 2 of 3
            os.kill(os.getpid(), sig)
        return _rng_step(model, batch)

    with pytest.raises(TrainingInterrupted, match=f"stopped by {signame} at epoch 2/3, batch 2"):
        _train_dropout(tmp_path / "b", signalling_step)
    assert calls["n"] == 5  # the step in flight completed, no further one started
    assert signal.getsignal(sig) is before  # handlers restored
    state = torch.load(tmp_path / "b" / "ckpt" / "last.pt", weights_only=True)
    assert (state["epoch"], state["batch_in_epoch"], state["iteration"]) == (1, 2, 5)
    assert state["numpy_rng"] is not None and state["python_rng"] is not None and "cuda_rng" in state
    with caplog.at_level(logging.INFO, logger="kdwsd.train"):
        resumed = _train_dropout(tmp_path / "b", _rng_step)
    assert "at epoch 1/3, batch 2" in caplog.text
    for p, q in zip(reference.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)
    with open(tmp_path / "a" / "log.csv") as fa, open(tmp_path / "b" / "log.csv") as fb:
        ra, rb = list(csv.DictReader(fa)), list(csv.DictReader(fb))
    assert [r["loss"] for r in ra] == [r["loss"] for r in rb]  # the interrupted epoch's mean is complete
    history = (tmp_path / "b" / "ckpt" / "progress.log").read_text()
    assert f"stopped by {signame} at epoch 2/3, batch 2" in history and "epoch 2/3 resumed at batch 2" in history


def test_mid_epoch_resume_skips_batches_without_loading_them():
    from torch.utils.data import DataLoader

    from kdwsd.train.loop import _skip_batches

    loaded = []

    class Items(torch.utils.data.Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            loaded.append(i)
            return torch.tensor([i])

    loader = DataLoader(Items(), batch_sampler=[[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]])
    rest = _skip_batches(loader, 3)
    assert [b.flatten().tolist() for b in rest] == [[6, 7], [8, 9]]
    assert loaded == [6, 7, 8, 9]


# --- the teacher's fc7 at the stage-1 box-score factor; the live teacher ----------------------------------


def _teacher_and_batch(seed=0, b=2, r=4, size=64):
    torch.manual_seed(seed)
    teacher = WSDDN(3, backbone="small", widths=(8, 8, 8, 8), hidden=8, dropout=0.5,
                    box_score_scale=10.0, box_score_bias=1.0).eval()  # fmt: skip
    batch = _roi_batches(1, b, r, size, seed=seed)[0]
    batch["mask"][:, 0] = True
    return teacher, batch


def test_run_teacher_fc7_at_the_stage1_box_score_factor_hand_computed():
    from torchvision.ops import roi_pool

    from kdwsd.distill.cache import run_teacher
    from kdwsd.models.teacher import wsddn_scores

    teacher, batch = _teacher_and_batch()
    cpu = torch.device("cpu")
    own = run_teacher(teacher, batch, 0.5, "sum", cpu)
    s1 = run_teacher(teacher, batch, 0.5, "sum", cpu, box_score=(1.0, 0.0))
    # by hand: roi_pool the conv map, × factor, fc6 -> ReLU -> fc7 -> ReLU (dropout off in eval mode)
    mask = batch["mask"]
    bi, ri = torch.nonzero(mask, as_tuple=True)
    rois = torch.cat([bi[:, None].float(), batch["boxes"][bi, ri]], 1)
    with torch.no_grad():
        pooled = roi_pool(teacher.backbone(batch["image"]), rois, (7, 7), 1 / 16)
        s = batch["box_scores"][bi, ri][:, None, None, None]
        h = teacher.head

        def mlp(x):
            return torch.relu(h.fc7(torch.relu(h.fc6(x.flatten(1)))))

        fc7_own, fc7_s1 = mlp(pooled * (10 * s + 1)), mlp(pooled * s)
    assert torch.allclose(s1["fc7"][mask], fc7_s1, atol=1e-6)
    assert torch.allclose(own["fc7"][mask], fc7_own, atol=1e-6)
    assert not torch.allclose(fc7_s1, fc7_own, atol=1e-3)
    assert torch.all(s1["fc7"][~mask] == 0)
    # the soft targets, scores and objectness keep the teacher's own factor
    for k in ("soft_targets", "scores", "objectness", "region_scores"):
        assert torch.equal(own[k], s1[k]), k
    first = bi == 0
    with torch.no_grad():
        _, soft0 = wsddn_scores(teacher.fc8_c(fc7_own[first])[None], teacher.fc8_d(fc7_own[first])[None],
                                torch.ones(1, int(first.sum()), dtype=torch.bool), 0.5, 0.5)  # fmt: skip
    assert torch.allclose(s1["soft_targets"][0], soft0[0], atol=1e-6)


def test_stage1_loss_is_the_same_from_the_cache_and_from_the_live_teacher(tmp_path):
    from kdwsd.data.dataset import collate
    from kdwsd.distill.live import LiveTeacher, with_live_targets
    from kdwsd.losses import feature_distillation_loss
    from kdwsd.models.student import StudentClassifier
    from kdwsd.train.student import stage1_step

    n, r, frame, size = 4, 6, 64, 32
    teacher, batch = _teacher_and_batch(seed=1, b=n, r=r, size=frame)
    batch["index"] = torch.arange(n)
    ids = np.arange(10, 10 + n)
    write_teacher_cache(teacher, [[batch], [batch]], n, ids, np.full((n, 2), frame), tmp_path / "c", frame, None, r,
                        0.5, "sum", 3, torch.device("cpu"), progress=False, box_score=(1.0, 0.0))  # fmt: skip
    cache = TeacherCache(tmp_path / "c")
    items = []
    for i in range(n):
        e = cache.get(int(ids[i]), orientation=0)
        items.append({"index": i, "image": batch["image"][i], "labels": batch["labels"][i],
                      "boxes": torch.from_numpy(e["rois"]), "box_scores": torch.from_numpy(e["roi_box_scores"]),
                      "teacher_fc7": torch.from_numpy(e["features"])})  # fmt: skip
    cached = collate(items)
    assert int(cached["mask"].sum()) == int(batch["mask"].sum())  # top_k = all: every valid RoI is cached
    torch.manual_seed(0)
    student = StudentClassifier(3, backbone="small", widths=(8, 8, 8, 8), hidden=8, dropout=0.0).eval()
    step = stage1_step(size, frame)
    live = LiveTeacher(teacher, box_score=(1.0, 0.0))
    teacher.train()  # the live teacher must still run in eval mode
    cached_loss, _ = step(student, cached)
    live_loss, terms = with_live_targets(step, live)(student, {k: v for k, v in batch.items() if k != "teacher_fc7"})
    assert terms["rois"] == float(batch["mask"].sum())
    assert live_loss.item() == pytest.approx(cached_loss.item(), rel=2e-3)  # fp16 storage of the cache
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    # a teacher at its own training factor would give other targets: the comparison can fail
    other = with_live_targets(step, LiveTeacher(teacher, box_score=None))(student, batch)[0]
    assert other.item() != pytest.approx(cached_loss.item(), rel=2e-3)
    targets = live(batch["image"], batch["boxes"], batch["box_scores"], batch["mask"])
    assert targets.dtype == torch.float32 and targets.shape == (n, r, 8) and not targets.requires_grad
    assert feature_distillation_loss(targets[batch["mask"]], targets[batch["mask"]]).item() == 0
