"""Nothing silent (issue 9): every hostile input either stops with a PipelineInputError naming the file, the
item and what to do, or is repaired by one documented policy and counted. See docs/robustness.md."""

from __future__ import annotations

import json
import logging
import shutil
import tarfile
import zipfile

import cv2
import numpy as np
import pytest
import torch
from schema_defaults import optim_config
from torch import nn

from kdwsd.data.dataset import MultiLabelImages
from kdwsd.data.download import ArchiveTooLargeError, ensure_archives, extract
from kdwsd.data.images import read_image, validate_split_images
from kdwsd.data.prepared import load_split
from kdwsd.data.synthetic import SyntheticConfig, generate_dataset
from kdwsd.distill.cache import TeacherCache, open_teacher_cache, write_teacher_cache
from kdwsd.errors import PipelineInputError, check_finite, quarantine
from kdwsd.models.teacher import WSDDN
from kdwsd.proposals.store import ProposalStore, sanitize_boxes
from kdwsd.stages.dataset import checked_split, skip_report_path
from kdwsd.train.guard import DivergenceGuard, TrainingDivergedError
from kdwsd.train.loop import caffe_param_groups, fit

TINY = SyntheticConfig(splits=(("train", 6), ("test", 3)), min_side=64, max_side=96, max_radius=24.0)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    generate_dataset(TINY, out, progress=False)
    return out


@pytest.fixture
def dataset(prepared, tmp_path):
    """A private copy (tests damage it)."""
    shutil.copytree(prepared, tmp_path / "d")
    return tmp_path / "d"


# ------------------------------------------------------------------------------------------------- images
def test_truncated_jpeg_is_refused_naming_file_and_image_id(dataset):
    split = load_split(dataset, "train")
    path, image_id = split.paths[2], int(split.image_ids[2])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert cv2.imread(str(path)) is not None  # OpenCV alone decodes it silently: that is the bug
    with pytest.raises(PipelineInputError, match=rf"{path.name}: image id {image_id}: truncated JPEG") as info:
        MultiLabelImages(split, "caffe")[(2, 32, False)]
    assert info.value.path == path and "Re-download" in info.value.hint
    with pytest.raises(PipelineInputError, match=rf"image id {image_id}: truncated JPEG"):
        validate_split_images(split, "error")
    kept, report = validate_split_images(split, "skip")
    assert len(kept) == len(split) - 1 and image_id not in kept.image_ids.tolist()
    assert report["dropped"] == 1 and report["checked"] == len(split)
    assert report["bad"] == [{"image_id": image_id, "path": str(path), "problem": "truncated JPEG (no end-of-image "
                                                                                 "marker FF D9)"}]
    keep = [i for i in range(len(split)) if i != 2]
    assert np.array_equal(kept.labels, split.labels[keep]) and kept.paths == [split.paths[i] for i in keep]
    json.dumps(report)  # written to a report file by the stage



def test_on_bad_image_skip_drops_counts_and_reports_train_images_only(dataset, tmp_path, caplog):
    """The stages' one helper: `error` checks nothing up front (the reader stops on the bad file), `skip` drops
    bad training images, logs them and writes <output>.skipped_images.json; the evaluation split is never
    thinned."""
    data = [str(dataset / "train.json"), str(dataset / "test.json")]
    train, test = load_split(dataset, "train"), load_split(dataset, "test")
    for split in (train, test):
        data_ = split.paths[1].read_bytes()
        split.paths[1].write_bytes(data_[: len(data_) // 2])
    out = tmp_path / "models" / "teacher.pt"
    out.parent.mkdir()
    assert len(checked_split(data, "train", "error", str(out))) == len(train)
    assert not skip_report_path(str(out)).exists()
    with caplog.at_level(logging.INFO, logger="kdwsd"):
        kept = checked_split(data, "train", "skip", str(out))
    assert len(kept) == len(train) - 1 and int(train.image_ids[1]) not in kept.image_ids.tolist()
    assert f"split train: 1 of {len(train)} images skipped" in caplog.text and train.paths[1].name in caplog.text
    report = json.loads(skip_report_path(str(out)).read_text())
    assert skip_report_path(str(out)).name == "teacher.pt.skipped_images.json"
    assert report["dropped"] == 1 and report["bad"][0]["image_id"] == int(train.image_ids[1])
    assert len(checked_split(data, "test", "skip", str(tmp_path / "scores.npy"))) == len(test)  # not thinned
    assert len(checked_split(data, "train", "skip", str(out), rows=[0, 1])) == 1  # one proposal shard's rows
    with pytest.raises(ValueError, match=r"dataset\.on_bad_image"):
        checked_split(data, "train", "drop", str(out))


def test_truncated_png_is_refused(tmp_path):
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), np.full((20, 30, 3), 7, np.uint8))
    assert read_image(path).shape == (20, 30, 3)
    path.write_bytes(path.read_bytes()[:-12])  # the IEND chunk
    with pytest.raises(PipelineInputError, match=r"a\.png: image id 5: truncated PNG"):
        read_image(path, image_id=5)


def test_image_size_must_match_the_annotation(dataset):
    split = load_split(dataset, "train")
    h, w = split.sizes[0]
    _, buf = cv2.imencode(".jpg", np.zeros((1, 1, 3), np.uint8))
    split.paths[0].write_bytes(buf.tobytes())
    with pytest.raises(PipelineInputError, match=rf"image id {split.image_ids[0]}: decoded size 1x1 \(HxW\) differs "
                                                 rf"from the annotation's {h}x{w}"):
        MultiLabelImages(split, "caffe")[(0, 32, False)]
    # An image stored rotated (e.g. by EXIF) says so.
    cv2.imwrite(str(split.paths[0]), np.zeros((w, h, 3), np.uint8))
    with pytest.raises(PipelineInputError, match="EXIF orientation"):
        read_image(split.paths[0], expected_hw=(h, w))


# -------------------------------------------------------------------------------------------- annotations
@pytest.mark.parametrize("key", ["annotations", "images", "categories"])
def test_annotation_json_without_a_required_key(dataset, key):
    path = dataset / "train.json"
    doc = json.loads(path.read_text())
    del doc[key]
    path.write_text(json.dumps(doc))
    with pytest.raises(PipelineInputError, match=rf"train\.json: key '{key}': missing or not a list\. Rerun"):
        load_split(dataset, "train")


def test_split_with_all_labels_zero_is_refused(dataset):
    path = dataset / "test.json"
    doc = json.loads(path.read_text())
    doc["annotations"] = []
    path.write_text(json.dumps(doc))
    with pytest.raises(PipelineInputError, match=r"test\.json: split test: all 3 images have no label"):
        load_split(dataset, "test")
    assert len(load_split(dataset, "train")) == 6  # the other split is fine


# ---------------------------------------------------------------------------------------------- proposals
def test_sanitize_boxes_policy_hand_computed():
    nan, inf = float("nan"), float("inf")
    boxes = np.array([
        [10, 10, 40, 30],     # fine
        [nan, 0, 5, 5],       # non-finite -> dropped
        [50, 40, 20, 10],     # inverted -> [20, 10, 50, 40]
        [0, 0, 0, 0],         # zero area -> dropped
        [-5, 90, 120, 150],   # outside, clipped -> [0, 90, 99, 99]
        [200, 5, 300, 9],     # wholly outside: clipped to a line -> dropped
        [1, 2, inf, 8],       # non-finite -> dropped
    ], np.float32)  # fmt: skip
    scores = np.array([0.9, 0.8, 0.7, 0.6, nan, 0.4, 0.3], np.float32)
    b, s, counts = sanitize_boxes(boxes, scores, width=100, height=100)
    assert counts == {"nonfinite_scores": 1, "nonfinite_boxes": 2, "inverted_fixed": 1, "clipped": 2,
                      "zero_area": 2, "whole_image_added": 0}  # fmt: skip
    np.testing.assert_array_equal(b, [[10, 10, 40, 30], [20, 10, 50, 40], [0, 90, 99, 99]])
    np.testing.assert_array_equal(s, np.array([0.9, 0.7, 0.0], np.float32))  # NaN score -> 0, still sorted
    assert b.dtype == np.float32 and s.dtype == np.float32


def test_image_without_usable_proposals_gets_the_whole_image():
    b, s, counts = sanitize_boxes(np.zeros((0, 4)), np.zeros(0), width=64, height=48)
    np.testing.assert_array_equal(b, [[0, 0, 63, 47]])
    np.testing.assert_array_equal(s, [0.0])
    assert counts["whole_image_added"] == 1
    b, _, counts = sanitize_boxes(np.full((2, 4), np.nan), np.ones(2), width=64, height=48)
    np.testing.assert_array_equal(b, [[0, 0, 63, 47]])
    assert counts["nonfinite_boxes"] == 2 and counts["whole_image_added"] == 1


def test_proposal_store_sanitises_a_hostile_shard(tmp_path, caplog):
    # written by hand: write_shard itself refuses non-finite boxes
    path = tmp_path / "shard-0-of-1.npz"
    np.savez(path, image_ids=np.array([7, 8], np.int64), offsets=np.array([0, 2, 2], np.int64),
             boxes=np.array([[np.nan, 0, 3, 3], [5, 6, 1, 2]], np.float32),
             scores=np.array([0.5, 0.4], np.float32))  # fmt: skip
    raw = ProposalStore([path])
    assert np.isnan(raw.get(7)[0]).any()  # without sizes nothing changes (store-level API unchanged)
    store = ProposalStore([path], image_sizes={7: (10, 20), 8: (30, 40)})
    with caplog.at_level(logging.WARNING, logger="kdwsd.proposals"):
        boxes7, _ = store.get(7)
        boxes8, _ = store.get(8)
    np.testing.assert_array_equal(boxes7, [[1, 2, 5, 6]])  # NaN box dropped, inverted one fixed
    np.testing.assert_array_equal(boxes8, [[0, 0, 39, 29]])  # no proposals: the whole image
    assert "nonfinite_boxes=1" in caplog.text and "whole_image_added=1" in caplog.text and path.name in caplog.text
    assert store.sanitize_report() == {"nonfinite_scores": 0, "nonfinite_boxes": 1, "inverted_fixed": 1,
                                       "clipped": 0, "zero_area": 0, "whole_image_added": 1}  # fmt: skip


def test_dataset_items_carry_sanitised_proposals(dataset, tmp_path):
    split = load_split(dataset, "train")
    ids = split.image_ids
    boxes = np.full((len(ids), 4), np.nan, np.float32)  # every proposal is NaN
    path = tmp_path / "p.npz"
    np.savez(path, image_ids=ids, offsets=np.arange(len(ids) + 1, dtype=np.int64), boxes=boxes,
             scores=np.ones(len(ids), np.float32))  # fmt: skip
    item = MultiLabelImages(split, "caffe", ProposalStore([path]))[(0, 32, False)]
    assert torch.equal(item["boxes"], torch.tensor([[0.0, 0.0, 31.0, 31.0]]))  # whole image, warped to 32 px


def test_item_box_scores_do_not_alias_the_read_only_store(dataset, tmp_path, recwarn):
    """Found by the paper rehearsal: box_scores were a tensor view of the store's read-only shard array
    (PyTorch's 'non-writable' UserWarning in every job); an in-place op on one item would have changed the
    proposals of every later epoch."""
    split = load_split(dataset, "train")
    ids = split.image_ids
    path = tmp_path / "p.npz"
    np.savez(path, image_ids=ids, offsets=np.arange(len(ids) + 1, dtype=np.int64),
             boxes=np.tile(np.array([[1, 1, 20, 20]], np.float32), (len(ids), 1)),
             scores=np.full(len(ids), 0.5, np.float32))  # fmt: skip
    store = ProposalStore([path])
    item = MultiLabelImages(split, "caffe", store)[(0, 32, False)]
    item["box_scores"].mul_(0)  # e.g. a box-score factor applied in place
    assert store.get(int(ids[0]))[1].tolist() == [0.5]
    assert not [w for w in recwarn if "not writable" in str(w.message)]


# ----------------------------------------------------------------------------------------- teacher cache
def _teacher_batches(n=4, r=5, size=64):
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(n, r, 2, generator=g) * 30
    boxes = torch.cat([xy, xy + 20], 2)
    return [{"index": torch.tensor(idx), "image": torch.randn(len(idx), 3, size, size, generator=g),
             "boxes": boxes[idx], "box_scores": torch.rand(len(idx), r, generator=g),
             "mask": torch.ones(len(idx), r, dtype=torch.bool)}
            for idx in ([0, 1], [2, 3])]  # fmt: skip


def _write_cache(teacher, out, teacher_path=None):
    ids = np.arange(100, 104)
    return write_teacher_cache(teacher, [_teacher_batches(), _teacher_batches()], 4, ids, np.full((4, 2), 128), out,
                               64, 3, 5, 0.5, "sum", 2, torch.device("cpu"), progress=False,
                               teacher_path=teacher_path)  # fmt: skip


def _teacher():
    torch.manual_seed(0)
    return WSDDN(3, backbone="small", widths=(8, 8, 8, 8), hidden=8, dropout=0.0).eval()


def test_cache_writer_refuses_nan_teacher_outputs(tmp_path):
    teacher = _teacher()
    with torch.no_grad():
        teacher.fc8_c.weight.fill_(float("nan"))  # an exploded teacher
    model_file = tmp_path / "models" / "teacher.pt"
    with pytest.raises(PipelineInputError, match=r"teacher\.pt: image id 100: 'soft_targets' is not finite \(2 of "
                                                 r"2 rows.*training curve"):
        _write_cache(teacher, tmp_path / "cache", model_file)
    assert not (tmp_path / "cache").exists()  # nothing half-written is left for later stages


def test_check_finite_catches_float16_overflow_of_features():
    feats = torch.tensor([[1.0, 2.0], [7e4, 0.0]])  # finite in fp32, inf in the fp16 cache
    check_finite({"features": feats}, items=[1, 2], path="t.pt", hint="h")
    with pytest.raises(PipelineInputError, match=r"t\.pt: image id 2: 'features' is not finite"):
        check_finite({"features": feats.half()}, items=[1, 2], path="t.pt", hint="h")


def test_truncated_cache_shard_is_named(tmp_path):
    _write_cache(_teacher(), tmp_path / "cache")
    assert TeacherCache(tmp_path / "cache").get(103)["rois"].shape == (3, 4)
    shard = tmp_path / "cache" / "shard-00001" / "features.npy"
    with open(shard, "r+b") as f:
        f.truncate(shard.stat().st_size - 10)
    with pytest.raises(PipelineInputError, match=r"shard-00001/features\.npy: features: \d+ bytes, expected \d+ "
                                                 r"\(truncated or corrupt\)\. Rerun the teacher_cache step"):
        TeacherCache(tmp_path / "cache")
    shard.write_bytes(b"garbage")
    with pytest.raises(PipelineInputError, match=r"features\.npy: features: unreadable \.npy header"):
        TeacherCache(tmp_path / "cache")
    moved = quarantine(tmp_path / "cache")
    assert moved is not None and moved.name.startswith("cache.corrupt-") and moved.is_dir()
    assert not (tmp_path / "cache").exists() and quarantine(tmp_path / "cache") is None


def test_stages_quarantine_a_corrupt_cache_so_a_rerun_rebuilds_it(tmp_path):
    _write_cache(_teacher(), tmp_path / "cache")
    assert len(open_teacher_cache(tmp_path / "cache").lookup) == 4  # a sound cache opens in place
    shard = tmp_path / "cache" / "shard-00000" / "soft_targets.npy"
    with open(shard, "r+b") as f:
        f.truncate(shard.stat().st_size - 4)
    with pytest.raises(PipelineInputError, match=r"shard-00000/soft_targets\.npy: soft_targets: .*truncated.*"
                                                 r"moved aside to .*cache\.corrupt-.*rerun the same snakemake"):
        open_teacher_cache(tmp_path / "cache")
    assert not (tmp_path / "cache").exists()
    assert [p.name.split("-")[0] for p in tmp_path.iterdir()] == ["cache.corrupt"]


# -------------------------------------------------------------------------------------- training loop
class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(3, 2)

    def forward(self, x):
        return self.body(x)


def _batches(epoch):
    g = torch.Generator().manual_seed(epoch)
    return [{"image": torch.randn(4, 3, generator=g), "labels": torch.rand(4, 2, generator=g)} for _ in range(3)]


def _step(model, batch):
    return nn.functional.mse_loss(model(batch["image"]), batch["labels"]), {"mse": 0.0}


def _fit(tmp_path, epochs, step=_step, **kw):
    torch.manual_seed(0)
    model = Toy()
    cfg = optim_config(epochs=epochs, lr=0.05)
    return fit(model, step, _batches, cfg, caffe_param_groups(model, cfg, ()), tmp_path / "ckpt",
               tmp_path / "log.csv", torch.device("cpu"), fingerprint={"toy": 1}, desc="toy", **kw)  # fmt: skip


def test_truncated_checkpoint_is_moved_aside_and_training_starts_over(tmp_path, caplog):
    reference = _fit(tmp_path / "ref", 2)
    ckpt = tmp_path / "run" / "ckpt" / "last.pt"
    _fit(tmp_path / "run", 1)
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="kdwsd.train"):
        model = _fit(tmp_path / "run", 2)
    assert f"checkpoint {ckpt} is unreadable" in caplog.text and "training starts over" in caplog.text
    assert ckpt.with_name("last.pt.corrupt").read_bytes() == data[: len(data) // 2]
    assert "starting from scratch" in (ckpt.parent / "progress.log").read_text().splitlines()[-5]
    for p, q in zip(reference.parameters(), model.parameters(), strict=True):
        assert torch.equal(p, q)  # a fresh start, identical to an uninterrupted run


def test_divergence_guard_names_the_term():
    guard = DivergenceGuard(factor=1e3, window=4, warmup=3)
    guard.check(0.5, "student.pt", 1, 0, {"kd": 0.2, "rois": 4000})
    with pytest.raises(TrainingDivergedError, match=r"student\.pt: epoch 1, step 1: kd is nan"):
        guard.check(float("nan"), "student.pt", 1, 1, {"kd": float("nan"), "rois": 4000})
    guard.check(0.6, "student.pt", 1, 2, {"kd": 0.3, "rois": 4000})
    guard.check(5e3, "student.pt", 1, 3, {"kd": 0.1, "rois": 4000})  # still in warmup (2 of 3 steps seen)
    guard.check(0.4, "student.pt", 1, 4, {"kd": 0.2, "rois": 1})  # a count term is never growth-tested
    # running mean of |loss| over the last 4 steps: (0.5 + 0.6 + 5e3 + 0.4) / 4 = 1250.375; of kd: 0.2
    guard.check(1e6, "student.pt", 2, 5, {"kd": 0.2, "rois": 4000})  # 1e6 < 1e3 x 1250.375
    with pytest.raises(TrainingDivergedError, match=r"epoch 2, step 9: loss is 5e\+30, more than 1000 x its running "
                                                    r"mean 2\.513e\+05 over the last 4 steps; the term that grew most: "
                                                    r"kd \(5e\+30, running mean 0\.2\)"):
        guard.check(5e30, "student.pt", 2, 9, {"kd": 5e30, "rois": 4000})


def test_divergence_guard_without_history_checks_finiteness_only():
    DivergenceGuard(factor=1e3).check(1e6, "m", 1, 0)  # no history: nothing to compare with
    with pytest.raises(TrainingDivergedError, match="m: epoch 1, step 0: loss is inf"):
        DivergenceGuard(factor=1e3).check(float("inf"), "m", 1, 0)
    with pytest.raises(ValueError, match="factor > 1"):
        DivergenceGuard(factor=0.5)


def test_exploding_loss_stops_fit_and_keeps_the_last_good_checkpoint(tmp_path):
    _fit(tmp_path, 1)
    ckpt = tmp_path / "ckpt" / "last.pt"
    good = ckpt.read_bytes()
    calls = {"n": 0}

    def exploding(model, batch):
        calls["n"] += 1
        loss, terms = _step(model, batch)
        return (loss * 5e30 if calls["n"] == 2 else loss), terms  # 2nd step after resuming (1 step of history)

    with pytest.raises(TrainingDivergedError, match=r"toy: epoch 2, step 4: loss is \d\.\d+e\+\d\d, more than 1000 x"):
        _fit(tmp_path, 2, exploding)
    assert ckpt.read_bytes() == good
    with pytest.raises(TrainingDivergedError, match="loss is nan"):
        _fit(tmp_path / "nan", 1, lambda m, b: (_step(m, b)[0] * float("nan"), {}))
    with pytest.raises(FloatingPointError, match="loss is nan"):  # without the guard a NaN still stops training
        _fit(tmp_path / "off", 1, lambda m, b: (_step(m, b)[0] * float("nan"), {}), divergence_factor=None)


# -------------------------------------------------------------------------------------------- archives
BOMB = 200 << 20  # 200 MiB of zeros: ~200 KiB compressed


def test_zip_bomb_is_refused_before_anything_is_written(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf, zf.open("zeros.bin", "w") as f:
        chunk = bytes(1 << 20)
        for _ in range(BOMB >> 20):
            f.write(chunk)
    assert archive.stat().st_size < 2 << 20
    with pytest.raises(ArchiveTooLargeError, match=r"bomb\.zip: members declare 209715200 bytes, more than the "
                                                   r"limit of \d+ bytes"):
        extract(archive, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
    with pytest.raises(ArchiveTooLargeError, match="limit of 1000 bytes"):
        extract(archive, tmp_path / "out", progress=False, max_ratio=None, max_expanded_bytes=1000)


def test_zip_member_lying_about_its_size_is_not_kept(tmp_path):
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.bin", bytes(1 << 20))
    raw = bytearray(archive.read_bytes())
    size = (1 << 20).to_bytes(4, "little")
    for at in (i for i in range(len(raw) - 3) if raw[i : i + 4] == size):  # local and central headers
        raw[at : at + 4] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(raw))
    with pytest.raises((ArchiveTooLargeError, zipfile.BadZipFile)):
        extract(archive, tmp_path / "out", progress=False, max_ratio=None, max_expanded_bytes=1 << 19)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()



def test_dataset_config_bounds_reach_extraction(tmp_path):
    """dataset.max_expanded_bytes / max_archive_ratio (prepare_dataset's config) bound ensure_archives' extract."""
    root = tmp_path / "data"
    (root / "archives").mkdir(parents=True)
    with zipfile.ZipFile(root / "archives" / "a.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.bin", bytes(1 << 16))
    cfg = {"name": "voc2007", "root": str(root), "archives": {"a": {"url": None, "filename": "a.zip"}}}
    with pytest.raises(ArchiveTooLargeError, match=r"a\.zip: .*limit of 1000 bytes"):
        ensure_archives({**cfg, "max_expanded_bytes": 1000, "max_archive_ratio": None}, progress=False)
    with pytest.raises(ArchiveTooLargeError, match=r"a\.zip: .*more than the limit"):
        ensure_archives({**cfg, "max_archive_ratio": 2.0}, progress=False)  # 64 KiB of zeros compress ~100x
    roots, _ = ensure_archives({**cfg, "max_archive_ratio": None}, progress=False)
    assert (roots[0] / "a.bin").stat().st_size == 1 << 16


def test_tar_bomb_is_refused(tmp_path):
    archive = tmp_path / "bomb.tar.gz"

    class Zeros:
        def __init__(self, n):
            self.left = n

        def read(self, k=-1):
            k = self.left if k < 0 else min(k, self.left)
            self.left -= k
            return bytes(k)

    with tarfile.open(archive, "w:gz", compresslevel=1) as tf:
        info = tarfile.TarInfo("zeros.bin")
        info.size = BOMB
        tf.addfile(info, Zeros(BOMB))
    with pytest.raises(ArchiveTooLargeError, match=r"bomb\.tar\.gz: members declare 209715200 bytes"):
        extract(archive, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
    small = tmp_path / "ok.tar"
    with tarfile.open(small, "w") as tf:
        info = tarfile.TarInfo("x.txt")
        info.size = 3
        tf.addfile(info, Zeros(3))
    assert (extract(small, tmp_path / "ok", progress=False) / "x.txt").read_bytes() == bytes(3)
