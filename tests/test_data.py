"""Synthetic generator, prepared layout (labels via pycocotools), dataset items, sampler, collate."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from kdwsd.data.dataset import MultiLabelImages, ScaleBatchSampler, collate, load_image, normalise
from kdwsd.data.prepared import load_split, write_prepared_dataset
from kdwsd.data.synthetic import CLASS_NAMES, SyntheticConfig, generate_dataset, render_image
from kdwsd.errors import PipelineInputError

TINY = SyntheticConfig(splits=(("train", 12), ("test", 6)), min_side=64, max_side=96, max_radius=24.0)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    generate_dataset(TINY, out, progress=False)
    return out


def test_generator_is_deterministic_and_boxes_fit(tiny_dataset, tmp_path):
    generate_dataset(TINY, tmp_path, progress=False)
    for split in ("train", "test"):
        assert (tmp_path / f"{split}.json").read_bytes() == (tiny_dataset / f"{split}.json").read_bytes()
    a = load_split(tiny_dataset, "train")
    for (h, w), boxes in zip(a.sizes, a.gt_boxes, strict=True):
        assert 1 <= len(boxes) <= TINY.max_objects
        for _, (x1, y1, x2, y2) in boxes:
            assert 0 <= x1 <= x2 <= w - 1 and 0 <= y1 <= y2 <= h - 1


def test_labels_come_from_annotations(tiny_dataset):
    split = load_split(tiny_dataset, "train")
    coco = json.loads((tiny_dataset / "train.json").read_text())
    assert split.classes == list(CLASS_NAMES)
    expected = np.zeros_like(split.labels)
    for ann in coco["annotations"]:
        expected[list(split.image_ids).index(ann["image_id"]), ann["category_id"] - 1] = 1
    assert np.array_equal(split.labels, expected)
    assert split.labels.sum(1).min() >= 1


def test_render_image_draws_objects_where_boxes_say():
    rng = np.random.default_rng(3)
    cfg = replace(TINY, max_distractors=0, clutter_lines=0, min_radius=10.0)
    image, objects = render_image(rng, cfg)
    assert image.dtype == np.uint8 and image.shape[2] == 3
    for _, (x1, y1, x2, y2) in objects:
        inside = image[int(y1) : int(y2) + 1, int(x1) : int(x2) + 1].astype(float)
        assert inside.std() > 1.0  # the object is there, not flat background


def test_prepared_writer_rejects_duplicate_categories(tmp_path):
    with pytest.raises(ValueError, match="duplicate category"):
        write_prepared_dataset(tmp_path, "x", [(1, "a"), (1, "b")], {}, {}, {})


def test_missing_dataset_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a prepared dataset"):
        load_split(tmp_path, "train")


def test_bad_image_names_the_file(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(PipelineInputError, match=r"broken\.jpg: image: not a decodable image"):
        load_image(bad)


def test_normalise_modes():
    img = np.zeros((2, 3, 3), np.uint8)
    img[..., 0] = 255  # blue in BGR
    caffe = normalise(img, "caffe")
    assert caffe.shape == (3, 2, 3)
    assert caffe[0, 0, 0] == pytest.approx(255 - 103.52)
    tv = normalise(img, "torchvision")
    assert tv[2, 0, 0] == pytest.approx((1.0 - 0.406) / 0.225)  # blue is the last RGB channel
    with pytest.raises(ValueError):
        normalise(img, "imagenet")


class _Proposals:
    def __init__(self, split):
        self.d = {int(i): (np.array([[0, 0, w - 1, h - 1], [1, 2, 5, 9]], np.float32), np.array([0.9, 0.5], np.float32))
                  for i, (h, w) in zip(split.image_ids, split.sizes, strict=True)}  # fmt: skip

    def __contains__(self, i):
        return int(i) in self.d

    def get(self, i):
        return self.d[int(i)]


def test_items_warp_and_flip_boxes(tiny_dataset):
    split = load_split(tiny_dataset, "train")
    ds = MultiLabelImages(split, "caffe", _Proposals(split), rois=2)
    plain, flipped = ds[(0, 32, False)], ds[(0, 32, True)]
    assert plain["image"].shape == (3, 32, 32)
    assert torch.equal(flipped["image"], plain["image"].flip(-1))
    assert plain["boxes"][0].tolist() == [0, 0, 31, 31]
    assert flipped["boxes"][1, 0].item() == 31 - plain["boxes"][1, 2].item()
    batch = collate([ds[(0, 32, False)], ds[(1, 32, True)]])
    assert batch["boxes"].shape == (2, 2, 4) and batch["mask"].all()


def test_frame_cache_gives_the_same_items_without_reading_the_files_again(tiny_dataset, tmp_path):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(tiny_dataset, folder)
    split = load_split(folder, "train")
    keys = [(0, 32, False), (1, 48, True), (2, 32, True)]
    cached = MultiLabelImages(split, "torchvision", frame_cache_mb=1)
    first = [cached[k]["image"] for k in keys]
    budget = MultiLabelImages(split, "torchvision", frame_cache_mb=(32 * 32 * 3 + 48 * 48 * 3) / 2**20)
    [budget[k] for k in keys]  # fills with the first two frames, then stops growing
    for p in split.paths:
        p.unlink()  # later epochs must not need the files
    for k, image in zip(keys, first, strict=True):
        assert torch.equal(cached[k]["image"], image)
        assert torch.equal(cached[(k[0], k[1], not k[2])]["image"], image.flip(-1))  # one frame serves both flips
    assert torch.equal(budget[keys[1]]["image"], first[1])
    with pytest.raises(PipelineInputError):
        budget[keys[2]]  # over the budget: not kept, read again
    with pytest.raises(PipelineInputError):
        MultiLabelImages(split, "torchvision")[keys[0]]  # no cache by default


def test_training_items_never_read_ground_truth_boxes(tiny_dataset):
    class Forbidden(list):
        def __getitem__(self, i):
            raise AssertionError("training code read a ground-truth box")

        def __iter__(self):
            raise AssertionError("training code read ground-truth boxes")

    split = load_split(tiny_dataset, "train")
    split.gt_boxes = Forbidden()
    ds = MultiLabelImages(split, "torchvision", _Proposals(split), rois=2)
    sampler = ScaleBatchSampler(len(ds), 4, [32, 48], flip=True, seed=0)
    for keys in sampler:
        collate([ds[k] for k in keys])


def test_sampler_one_size_per_batch_deterministic_per_epoch():
    s = ScaleBatchSampler(10, 4, [16, 32, 48], flip=True, seed=1)
    s.set_epoch(3)
    first = list(s)
    s.set_epoch(3)
    assert list(s) == first
    assert len(first) == len(s) == 3
    assert sorted(k[0] for b in first for k in b) == list(range(10))
    assert all(len({k[1] for k in b}) == 1 for b in first)
    s.set_epoch(4)
    assert list(s) != first
