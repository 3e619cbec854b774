"""Real-dataset layer: download -> verify -> extract -> prepare for COCO 2014, NUS-WIDE and VOC 2007.

Tiny archives in the official layouts are built in ``tmp_path`` and served from a local HTTP server on
127.0.0.1; the Snakemake scripts (``scripts/download.py``, ``scripts/prepare_dataset.py``) are run with a
stand-in ``snakemake`` object, so the same code path as the workflow is exercised.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from httpserver import FileServer
from PIL import Image
from rulestub import run_script

from kdwsd.data import coco, nuswide, voc
from kdwsd.data.download import ChecksumError, DownloadError, archive_path, load_checksum_record
from kdwsd.data.prepared import load_split
from kdwsd.errors import PipelineInputError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def server():
    with FileServer() as srv:
        yield srv


# ======================================================================================================
# helpers
# ======================================================================================================
def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _jpeg(w: int, h: int, color: tuple[int, int, int] = (120, 30, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, format="JPEG")
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _tar(members: dict[str, bytes], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _unpack(data: bytes, dest: Path) -> None:
    """Unpack an archive's bytes into ``dest`` (to build a user's 'existing copy')."""
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            zf.extractall(dest)
    else:
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            tf.extractall(dest, filter="data")


def _serve(server: FileServer, prefix: str, archives: dict[str, tuple[str, bytes]], *,
           published: bool = True, md5: bool = False) -> dict[str, dict[str, Any]]:
    """Put archives on the server; return the config's ``archives`` block."""
    specs = {}
    for key, (filename, data) in archives.items():
        specs[key] = {
            "url": server.add(f"{prefix}/{filename}", data),
            "filename": filename,
            "size": len(data) if published else None,
            "sha256": _sha(data) if published else None,
            "md5": hashlib.md5(data).hexdigest() if md5 else None,
            "mirrors": [],
        }
    return specs


def _download_all(cfg: dict[str, Any], tmp_path: Path) -> None:
    """What the workflow's download rule does, once per archive, through scripts/download_archive.py."""
    for key, spec in cfg["archives"].items():
        dest = archive_path(cfg["root"], key, spec)
        params = {k: spec.get(k) for k in ("url", "sha256", "size", "md5")} | {"mirrors": spec.get("mirrors", [])}
        run_script("download_archive", output={"archive": str(dest)}, wildcards={"filename": dest.name},
                   params=params, log=str(tmp_path / "logs" / "download.log"))


def _prepare(cfg: dict[str, Any], tmp_path: Path, out: Path) -> dict[str, Any]:
    run_script("prepare_dataset", output={"files": [str(out / "dataset.json")], "report": str(out / "report.json")},
               params={"dataset": cfg}, log=str(tmp_path / "logs" / "prepare.log"))
    return json.loads((out / "report.json").read_text())


def _expected_hash(lines: list[str]) -> str:
    return hashlib.sha256("".join(line + "\n" for line in sorted(lines)).encode()).hexdigest()


def _no_images_copied(out: Path) -> None:
    assert not [p for p in out.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")]


# ======================================================================================================
# COCO 2014
# ======================================================================================================
COCO_CATS = [  # deliberately not in id order: classes.tsv must come out sorted by id
    {"supercategory": "animal", "id": 18, "name": "dog"},
    {"supercategory": "person", "id": 1, "name": "person"},
    {"supercategory": "vehicle", "id": 3, "name": "car"},
]


def _coco_image(split: str, image_id: int, w: int, h: int) -> dict[str, Any]:
    return {"license": 1, "file_name": f"COCO_{split}_{image_id:012d}.jpg",
            "coco_url": f"http://images.cocodataset.org/{split}/COCO_{split}_{image_id:012d}.jpg",
            "height": h, "width": w, "date_captured": "2013-11-14 16:28:13",
            "flickr_url": "http://farm1.staticflickr.com/x.jpg", "id": image_id}


def _coco_ann(ann_id: int, image_id: int, cat: int, bbox: list[float], crowd: int = 0) -> dict[str, Any]:
    x, y, w, h = bbox
    seg: Any = ({"counts": [0, 10, 20], "size": [100, 100]} if crowd
                else [[x, y, x + w, y, x + w, y + h, x, y + h]])
    return {"segmentation": seg, "area": w * h, "iscrowd": crowd, "image_id": image_id, "bbox": bbox,
            "category_id": cat, "id": ann_id}


# train: 9 person+dog, 25 car, 30 unlabeled, 34 crowd person only, 36 dog but missing from the zip
COCO_TRAIN = {"images": [(9, 640, 480), (25, 426, 640), (30, 640, 428), (34, 640, 425), (36, 500, 375)],
              "anns": [(1, 9, 1, [10.5, 20.0, 100.0, 200.0], 0), (2, 9, 18, [300.0, 100.0, 50.0, 60.0], 0),
                       (3, 25, 3, [0.0, 0.0, 30.0, 40.0], 0), (4, 34, 1, [5.0, 5.0, 400.0, 300.0], 1),
                       (5, 36, 18, [1.0, 2.0, 3.0, 4.0], 0)],
              "absent": {36}}
# val: 42 dog, 73 car+person, 74 unlabeled
COCO_VAL = {"images": [(42, 640, 480), (73, 612, 612), (74, 500, 333)],
            "anns": [(11, 42, 18, [1.0, 1.0, 10.0, 10.0], 0), (12, 73, 3, [2.0, 2.0, 20.0, 20.0], 0),
                     (13, 73, 1, [3.0, 3.0, 30.0, 30.0], 0)],
            "absent": set()}


def _coco_json(split: str, spec: dict[str, Any]) -> bytes:
    doc = {
        "info": {"description": "COCO 2014 Dataset", "version": "1.0", "year": 2014},
        "licenses": [{"url": "http://creativecommons.org/licenses/by-nc-sa/2.0/", "id": 1, "name": "BY-NC-SA"}],
        "images": [_coco_image(split, i, w, h) for i, w, h in spec["images"]],
        "annotations": [_coco_ann(*a) for a in spec["anns"]],
        "categories": COCO_CATS,
    }
    return json.dumps(doc).encode()


def build_coco(*, bad_train_json: bool = False) -> dict[str, tuple[str, bytes]]:
    """The three official zips, tiny: key -> (filename, bytes)."""
    zips = {}
    for key, split, spec in (("train2014", "train2014", COCO_TRAIN), ("val2014", "val2014", COCO_VAL)):
        zips[key] = (f"{split}.zip", _zip({
            f"{split}/COCO_{split}_{i:012d}.jpg": _jpeg(w // 10, h // 10)
            for i, w, h in spec["images"] if i not in spec["absent"]
        }))
    train_json = b'{"images": [{"id": 9, "file_name": "x.jpg",' if bad_train_json else _coco_json("train2014",
                                                                                                   COCO_TRAIN)
    zips["annotations"] = ("annotations_trainval2014.zip", _zip({
        "annotations/instances_train2014.json": train_json,
        "annotations/instances_val2014.json": _coco_json("val2014", COCO_VAL),
        "annotations/captions_train2014.json": b'{"annotations": []}',
    }))
    return zips


def _coco_cfg(tmp_path: Path, archives: dict[str, dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {"name": "coco2014", "root": str(tmp_path / "data" / "coco2014"), "use_existing": None,
            "drop_unlabeled": True, "missing_images": "drop", "archives": archives, **kw}


def test_coco_download_verify_extract_prepare(server, tmp_path):
    zips = build_coco()
    cfg = _coco_cfg(tmp_path, _serve(server, "coco", zips))
    train_zip = zips["train2014"][1]
    server.drop_after["/coco/train2014.zip"] = len(train_zip) // 2
    out = tmp_path / "results" / "data"
    _download_all(cfg, tmp_path)
    report = _prepare(cfg, tmp_path, out)

    # the dropped connection was resumed, not restarted
    reqs = server.requests_for("coco/train2014.zip")
    assert [r.range for r in reqs] == [None, f"bytes={len(train_zip) // 2}-"]
    assert server.bytes_sent("coco/train2014.zip") < 2 * len(train_zip)

    # class order by category id
    assert (out / "classes.tsv").read_text() == "index\tcategory_id\tname\n0\t1\tperson\n1\t3\tcar\n2\t18\tdog\n"
    # counts: unlabeled and missing images dropped and counted
    tr, te = report["splits"]["train"], report["splits"]["test"]
    assert (tr["listed"], tr["unlabeled"], tr["unlabeled_dropped"], tr["missing"], tr["kept"]) == (5, 1, 1, 1, 3)
    assert tr["missing_examples"] == ["COCO_train2014_000000000036.jpg"]
    assert (te["listed"], te["unlabeled"], te["missing"], te["kept"]) == (3, 1, 0, 2)
    assert tr["literature_kept"] == 82_081 and te["literature_kept"] == 40_137
    assert tr["class_image_counts"] == {"person": 2, "car": 1, "dog": 1}
    # the archive checksums are in the report
    assert report["archives"]["train2014.zip"]["sha256"] == _sha(train_zip)
    assert report["archives"]["train2014.zip"]["source"] == "published"

    # labels through pycocotools match the annotations; paths point into the extracted archive
    train = load_split(out, "train")
    assert train.image_ids.tolist() == [9, 25, 34]
    assert train.labels.tolist() == [[1, 0, 1], [0, 1, 0], [1, 0, 0]]
    assert train.sizes.tolist() == [[480, 640], [640, 426], [425, 640]]
    extracted = (tmp_path / "data/coco2014/extracted/train2014/train2014").resolve()
    assert all(p.parent == extracted and p.is_file() for p in train.paths)
    test = load_split(out, "test")
    assert test.image_ids.tolist() == [42, 73] and test.labels.tolist() == [[0, 0, 1], [1, 1, 0]]

    meta = json.loads((out / "dataset.json").read_text())
    assert meta["splits"] == {"train": 3, "test": 2} and meta["num_classes"] == 3
    assert all(Path(p).is_absolute() for p in meta["image_roots"].values())
    doc = json.loads((out / "train.json").read_text())
    assert [c["id"] for c in doc["categories"]] == [1, 3, 18]
    assert all("segmentation" not in a for a in doc["annotations"])
    assert {a["id"] for a in doc["annotations"]} == {1, 2, 3, 4}
    assert (out / "train.txt").read_text().splitlines()[0] == "9\tCOCO_train2014_000000000009.jpg"
    assert report["split_list_sha256"] == _expected_hash(
        [f"train\tCOCO_train2014_{i:012d}.jpg" for i in (9, 25, 34)]
        + [f"test\tCOCO_val2014_{i:012d}.jpg" for i in (42, 73)])
    _no_images_copied(out)

    # a second run needs no network and gives the same data
    n = len(server.requests)
    _download_all(cfg, tmp_path)
    again = _prepare(cfg, tmp_path, tmp_path / "again")
    assert len(server.requests) == n
    assert again["split_list_sha256"] == report["split_list_sha256"]
    assert again["labels_sha256"] == report["labels_sha256"]


@pytest.fixture
def coco_copy(tmp_path):
    """A user's existing copy in the official layout (train2014/, val2014/, annotations/)."""
    root = tmp_path / "my_coco"
    for _, data in build_coco().values():
        _unpack(data, root)
    return root


def test_coco_keep_unlabeled(coco_copy, tmp_path):
    report = coco.prepare_coco2014(coco_copy, tmp_path / "out", drop_unlabeled=False)
    tr = report["splits"]["train"]
    assert (tr["unlabeled"], tr["unlabeled_dropped"], tr["kept"]) == (1, 0, 4)
    train = load_split(tmp_path / "out", "train")
    assert train.image_ids.tolist() == [9, 25, 30, 34]
    assert train.labels[2].tolist() == [0, 0, 0]


def test_coco_missing_image_fails_when_asked(coco_copy, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"1 of 4 listed images are missing.*000000000036\.jpg"):
        coco.prepare_coco2014(coco_copy, tmp_path / "out", missing_images="fail")
    with pytest.raises(ValueError, match="missing_images must be one of"):
        coco.prepare_coco2014(coco_copy, tmp_path / "out", missing_images="ignore")


def test_coco_use_existing_copies_nothing(server, coco_copy, tmp_path):
    cfg = _coco_cfg(tmp_path, _serve(server, "coco", build_coco()), use_existing=str(coco_copy))
    out = tmp_path / "out"
    report = _prepare(cfg, tmp_path, out)
    assert server.requests == []
    assert not (tmp_path / "data").exists()
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["image_roots"] == {"train": str((coco_copy / "train2014").resolve()),
                                   "test": str((coco_copy / "val2014").resolve())}
    assert report["splits"]["train"]["kept"] == 3
    _no_images_copied(out)


def test_coco_annotation_not_json(server, tmp_path):
    cfg = _coco_cfg(tmp_path, _serve(server, "coco", build_coco(bad_train_json=True)))
    _download_all(cfg, tmp_path)
    with pytest.raises(ValueError, match=r"annotation file \S*instances_train2014\.json is not valid JSON"):
        _prepare(cfg, tmp_path, tmp_path / "out")


def test_coco_annotation_without_annotations_key(coco_copy, tmp_path):
    ann = coco_copy / "annotations" / "instances_val2014.json"
    doc = json.loads(ann.read_text())
    del doc["annotations"]
    ann.write_text(json.dumps(doc))
    with pytest.raises(PipelineInputError, match=r"instances_val2014\.json: key 'annotations': no 'annotations' list"):
        coco.prepare_coco2014(coco_copy, tmp_path / "out")


def test_coco_checksum_mismatch_in_pipeline(server, tmp_path):
    zips = build_coco()
    cfg = _coco_cfg(tmp_path, _serve(server, "coco", zips))
    server.wrong_content["/coco/val2014.zip"] = zips["train2014"][1]
    with pytest.raises(ChecksumError) as info:
        _download_all(cfg, tmp_path)
    corrupt = tmp_path / "data/coco2014/archives/val2014.zip.corrupt"
    assert corrupt.is_file() and str(corrupt) in str(info.value)
    assert cfg["archives"]["val2014"]["url"] in str(info.value)
    assert not (tmp_path / "data/coco2014/archives/val2014.zip").exists()


def test_coco_layout_not_found(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"instances_train2014\.json"):
        coco.prepare_coco2014(tmp_path / "empty", tmp_path / "out")


# ======================================================================================================
# PASCAL VOC 2007
# ======================================================================================================
def _voc_xml(stem: str, w: int, h: int, objects: list[tuple[str, int, int, int, int, int]]) -> bytes:
    objs = "".join(
        f"<object><name>{n}</name><pose>Unspecified</pose><truncated>0</truncated>"
        f"<difficult>{d}</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax>"
        f"<ymax>{y2}</ymax></bndbox></object>"
        for n, x1, y1, x2, y2, d in objects
    )
    return (f"<annotation><folder>VOC2007</folder><filename>{stem}.jpg</filename>"
            f"<source><database>The VOC2007 Database</database></source>"
            f"<size><width>{w}</width><height>{h}</height><depth>3</depth></size>"
            f"<segmented>0</segmented>{objs}</annotation>").encode()


VOC_TRAINVAL = {  # stem -> (w, h, objects); 000012 is listed but its JPEG is absent
    "000005": (500, 375, [("chair", 263, 211, 324, 339, 0), ("chair", 165, 264, 253, 372, 1)]),
    "000007": (500, 333, [("car", 141, 50, 500, 330, 0)]),
    "000009": (500, 375, [("horse", 69, 172, 270, 330, 0), ("person", 150, 141, 229, 284, 1)]),
    "000012": (500, 333, [("car", 156, 97, 351, 270, 0)]),
}
VOC_TEST = {
    "000001": (353, 500, [("dog", 48, 240, 195, 371, 0), ("person", 8, 12, 352, 498, 0)]),
    "000002": (335, 500, [("train", 139, 200, 207, 301, 0)]),
}


def build_voc(*, bad_xml: str | None = None) -> dict[str, tuple[str, bytes]]:
    base = "VOCdevkit/VOC2007"
    tars = {}
    for key, filename, listname, spec, absent in (
        ("trainval", "VOCtrainval_06-Nov-2007.tar", "trainval", VOC_TRAINVAL, {"000012"}),
        ("test", "VOCtest_06-Nov-2007.tar", "test", VOC_TEST, set()),
    ):
        members = {}
        for stem, (w, h, objs) in spec.items():
            if stem not in absent:
                members[f"{base}/JPEGImages/{stem}.jpg"] = _jpeg(w // 10, h // 10)
            members[f"{base}/Annotations/{stem}.xml"] = (b"<annotation><size>" if stem == bad_xml
                                                         else _voc_xml(stem, w, h, objs))
        members[f"{base}/ImageSets/Main/{listname}.txt"] = "".join(f"{s}\n" for s in spec).encode()
        members[f"{base}/ImageSets/Main/dog_{listname}.txt"] = "".join(f"{s} -1\n" for s in spec).encode()
        tars[key] = (filename, _tar(members))
    return tars


def _voc_cfg(tmp_path: Path, archives: dict[str, dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {"name": "voc2007", "root": str(tmp_path / "data" / "voc2007"), "use_existing": None,
            "drop_unlabeled": True, "missing_images": "drop", "archives": archives, **kw}


def test_voc_download_verify_extract_prepare(server, tmp_path):
    cfg = _voc_cfg(tmp_path, _serve(server, "voc", build_voc(), md5=True))
    out = tmp_path / "out"
    _download_all(cfg, tmp_path)
    report = _prepare(cfg, tmp_path, out)

    classes = (out / "classes.tsv").read_text().splitlines()
    assert len(classes) == 21 and classes[1] == "0\t1\taeroplane" and classes[20] == "19\t20\ttvmonitor"
    tr, te = report["splits"]["train"], report["splits"]["test"]
    assert (tr["listed"], tr["missing"], tr["kept"], tr["unlabeled"]) == (4, 1, 3, 0)
    assert tr["missing_examples"] == ["000012.jpg"]
    assert (tr["difficult_objects"], tr["difficult_only_labels"]) == (2, 1)
    assert (te["listed"], te["kept"]) == (2, 2)
    assert report["archives"]["VOCtest_06-Nov-2007.tar"]["md5"] == cfg["archives"]["test"]["md5"]

    # VOC 1-based corners -> 0-based inclusive -> COCO [x, y, w, h], w = x2 - x1 + 1
    doc = json.loads((out / "train.json").read_text())
    chair = [a for a in doc["annotations"] if a["image_id"] == 5]
    assert chair[0]["bbox"] == [262, 210, 62, 129] and chair[0]["area"] == 62 * 129
    assert [a["difficult"] for a in chair] == [0, 1]
    assert {im["id"]: (im["width"], im["height"]) for im in doc["images"]} == {5: (500, 375), 7: (500, 333),
                                                                              9: (500, 375)}
    train = load_split(out, "train")
    i5 = train.image_ids.tolist().index(5)
    k, box = train.gt_boxes[i5][0]
    assert k == 8 and box.tolist() == [262, 210, 323, 338]  # chair = column 8; xmax - 1 = 323
    assert train.labels[train.image_ids.tolist().index(9)].nonzero()[0].tolist() == [12, 14]  # horse, person
    test = load_split(out, "test")
    assert test.image_ids.tolist() == [1, 2]
    assert test.gt_boxes[0][0][1].tolist() == [47, 239, 194, 370]
    assert report["split_list_sha256"] == _expected_hash(
        ["train\t000005.jpg", "train\t000007.jpg", "train\t000009.jpg", "test\t000001.jpg", "test\t000002.jpg"])
    _no_images_copied(out)


def test_voc_checksum_mismatch(server, tmp_path):
    tars = build_voc()
    cfg = _voc_cfg(tmp_path, _serve(server, "voc", tars))
    server.wrong_content["/voc/VOCtest_06-Nov-2007.tar"] = tars["test"][1][::-1]  # same size, other bytes
    with pytest.raises(ChecksumError, match=r"VOCtest_06-Nov-2007\.tar: expected sha256 \w+ \(from the published"):
        _download_all(cfg, tmp_path)
    assert (tmp_path / "data/voc2007/archives/VOCtest_06-Nov-2007.tar.corrupt").is_file()


@pytest.fixture
def voc_copy(tmp_path):
    """Both tars extracted into one folder (the usual merged VOCdevkit)."""
    root = tmp_path / "my_voc"
    for _, data in build_voc().values():
        _unpack(data, root)
    return root


def test_voc_use_existing_merged_folder(voc_copy, tmp_path):
    cfg = _voc_cfg(tmp_path, {}, use_existing=str(voc_copy))
    report = voc.prepare_from_config(cfg, tmp_path / "out", progress=False)
    roots = json.loads((tmp_path / "out" / "dataset.json").read_text())["image_roots"]
    jpeg = str((voc_copy / "VOCdevkit/VOC2007/JPEGImages").resolve())
    assert roots == {"train": jpeg, "test": jpeg}
    assert report["splits"]["train"]["kept"] == 3 and not (tmp_path / "data").exists()


def test_voc_missing_image_fails_when_asked(voc_copy, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"000012\.jpg"):
        voc.prepare_voc2007(voc_copy, tmp_path / "out", missing_images="fail")


def test_voc_invalid_xml_names_the_file(tmp_path):
    root = tmp_path / "bad_voc"
    for _, data in build_voc(bad_xml="000007").values():
        _unpack(data, root)
    with pytest.raises(ValueError, match=r"annotation file \S*000007\.xml is not valid XML"):
        voc.prepare_voc2007(root, tmp_path / "out")


def test_voc_box_conversion_unit():
    assert voc.voc_box_to_coco(1, 1, 1, 1) == [0, 0, 1, 1]
    assert voc.voc_box_to_coco(48, 240, 195, 371) == [47, 239, 148, 132]


# ======================================================================================================
# NUS-WIDE, official label files + user image folder
# ======================================================================================================
NUS_CONCEPTS = ["animal", "beach", "sky"]
NUS_TRAIN = [  # (list entry, concepts, on disk?)
    ("animal\\0001_1001.jpg", ["animal"], True),
    ("beach\\0002_1002.jpg", ["beach", "sky"], True),
    ("sky\\0003_1003.jpg", [], True),             # none of the concepts
    ("sky\\0004_1004.jpg", ["sky"], False),       # listed, image missing
    ("animal\\0005_1005.jpg", ["animal", "sky"], True),
]
NUS_TEST = [
    ("beach\\0006_1006.jpg", ["beach"], True),
    ("sky\\0007_1007.jpg", [], True),
]


def build_nus_labels(*, short_label_file: bool = False) -> dict[str, tuple[str, bytes]]:
    gt = {}
    for suffix, rows in (("Train", NUS_TRAIN), ("Test", NUS_TEST)):
        for c in NUS_CONCEPTS:
            lines = [("1" if c in cats else "0") for _, cats, _ in rows]
            if short_label_file and c == "beach" and suffix == "Train":
                lines = lines[:-1]
            gt[f"Groundtruth/TrainTestLabels/Labels_{c}_{suffix}.txt"] = "".join(f"{v}\r\n" for v in lines).encode()
    lists = {
        "ImageList/Imagelist.txt": "".join(f"{e}\r\n" for e, _, _ in NUS_TRAIN + NUS_TEST).encode(),
        "ImageList/TrainImagelist.txt": "".join(f"{e}\r\n" for e, _, _ in NUS_TRAIN).encode(),
        "ImageList/TestImagelist.txt": "".join(f"{e}\r\n" for e, _, _ in NUS_TEST).encode(),
    }
    return {
        "groundtruth": ("Groundtruth.zip", _zip(gt)),
        "imagelist": ("ImageList.zip", _zip(lists)),
        "concepts": ("ConceptsList.zip", _zip({"ConceptsList/Concepts81.txt":
                                               "".join(f"{c}\n" for c in NUS_CONCEPTS).encode()})),
    }


def build_nus_images(root: Path, *, unreadable: str | None = None) -> Path:
    """The user's image folder: Flickr/<concept>/<file>.jpg, each image a distinct size."""
    flickr = root / "Flickr"
    for k, (entry, _, on_disk) in enumerate(NUS_TRAIN + NUS_TEST):
        if on_disk:
            p = flickr / entry.replace("\\", "/")
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"not an image" if entry == unreadable else _jpeg(20 + k, 10 + k))
    return flickr


def _nus_cfg(tmp_path: Path, archives: dict[str, dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {"name": "nuswide", "source": "official", "root": str(tmp_path / "data" / "nuswide"),
            "use_existing": None, "image_dir": None, "num_classes": 3, "drop_unlabeled": True,
            "missing_images": "drop", "archives": archives, **kw}


def test_nuswide_official_download_verify_extract_prepare(server, tmp_path):
    flickr = build_nus_images(tmp_path / "user_images")
    cfg = _nus_cfg(tmp_path, _serve(server, "nus", build_nus_labels(), published=False), image_dir=str(flickr))
    out = tmp_path / "out"
    _download_all(cfg, tmp_path)
    # no published checksums: recorded at the first download
    record = load_checksum_record(tmp_path / "data/nuswide/checksums.json")
    assert sorted(record) == ["ConceptsList.zip", "Groundtruth.zip", "ImageList.zip"]
    assert all(e["source"] == "recorded at first download" and len(e["sha256"]) == 64 for e in record.values())
    report = _prepare(cfg, tmp_path, out)

    assert (out / "classes.tsv").read_text().splitlines()[1:] == ["0\t1\tanimal", "1\t2\tbeach", "2\t3\tsky"]
    tr, te = report["splits"]["train"], report["splits"]["test"]
    assert (tr["listed"], tr["unlabeled"], tr["unlabeled_dropped"], tr["missing"], tr["kept"]) == (5, 1, 1, 1, 3)
    assert tr["missing_examples"] == ["sky/0004_1004.jpg"]
    assert (te["listed"], te["unlabeled"], te["missing"], te["kept"]) == (2, 1, 0, 1)
    assert report["archives"]["Groundtruth.zip"]["sha256"] == record["Groundtruth.zip"]["sha256"]
    expected_files = ["train\tanimal/0001_1001.jpg", "train\tbeach/0002_1002.jpg", "train\tanimal/0005_1005.jpg",
                      "test\tbeach/0006_1006.jpg"]
    assert report["split_list_sha256"] == _expected_hash(expected_files)

    train = load_split(out, "train")
    assert train.image_ids.tolist() == [1, 2, 5]  # positions in the official list
    assert train.labels.tolist() == [[1, 0, 0], [0, 1, 1], [1, 0, 1]]
    assert train.sizes.tolist() == [[10, 20], [11, 21], [14, 24]]  # (h, w) read from the image headers
    assert all(p.is_file() and p.is_relative_to(flickr.resolve()) for p in train.paths)
    assert not train.has_boxes
    test = load_split(out, "test")
    assert test.image_ids.tolist() == [6] and test.labels.tolist() == [[0, 1, 0]]
    assert all("bbox" not in a for a in json.loads((out / "train.json").read_text())["annotations"])
    _no_images_copied(out)

    # a later use verifies the archives against the recorded checksums
    gt = tmp_path / "data/nuswide/archives/Groundtruth.zip"
    gt.write_bytes(gt.read_bytes() + b"tampered")
    with pytest.raises(ChecksumError, match="checksum record"):
        _prepare(cfg, tmp_path, tmp_path / "out2")


def test_nuswide_hash_tells_datasets_apart(tmp_path):
    labels = tmp_path / "labels"
    for _, data in build_nus_labels().values():
        _unpack(data, labels)
    flickr = build_nus_images(tmp_path / "a")
    r1 = nuswide.prepare_nuswide(labels, flickr, tmp_path / "o1", expected_num_classes=3)
    r2 = nuswide.prepare_nuswide(labels, flickr, tmp_path / "o2", expected_num_classes=3)
    assert (r1["split_list_sha256"], r1["labels_sha256"]) == (r2["split_list_sha256"], r2["labels_sha256"])
    (flickr / "beach/0006_1006.jpg").unlink()  # user B lacks one image
    with pytest.raises(ValueError, match="no images left"):  # test split had only that labeled image
        nuswide.prepare_nuswide(labels, flickr, tmp_path / "o3", expected_num_classes=3)
    r4 = nuswide.prepare_nuswide(labels, flickr, tmp_path / "o4", expected_num_classes=3, drop_unlabeled=False)
    assert r4["split_list_sha256"] != r1["split_list_sha256"]
    assert r4["splits"]["test"]["kept"] == 1 and r4["splits"]["test"]["unlabeled_dropped"] == 0


def test_nuswide_missing_fail_and_unreadable(tmp_path):
    labels = tmp_path / "labels"
    for _, data in build_nus_labels().values():
        _unpack(data, labels)
    flickr = build_nus_images(tmp_path / "imgs", unreadable="animal\\0005_1005.jpg")
    with pytest.raises(FileNotFoundError, match=r"1 of 4 listed images are missing.*0004_1004\.jpg"):
        nuswide.prepare_nuswide(labels, flickr, tmp_path / "out", missing_images="fail", expected_num_classes=3)
    report = nuswide.prepare_nuswide(labels, flickr, tmp_path / "out", expected_num_classes=3)
    tr = report["splits"]["train"]
    assert (tr["missing"], tr["unreadable"], tr["kept"]) == (1, 1, 2)
    assert tr["unreadable_examples"] == ["animal/0005_1005.jpg"]


def test_nuswide_bad_label_files(tmp_path):
    labels = tmp_path / "labels"
    for _, data in build_nus_labels(short_label_file=True).values():
        _unpack(data, labels)
    flickr = build_nus_images(tmp_path / "imgs")
    with pytest.raises(ValueError, match=r"Labels_beach_Train\.txt has 4 lines, but its image list has 5"):
        nuswide.prepare_nuswide(labels, flickr, tmp_path / "out", expected_num_classes=3)
    with pytest.raises(ValueError, match=r"Concepts81\.txt has 3 names, expected 81"):
        nuswide.prepare_nuswide(labels, flickr, tmp_path / "out")


def test_nuswide_official_needs_image_dir(tmp_path):
    labels = tmp_path / "labels"
    for _, data in build_nus_labels().values():
        _unpack(data, labels)
    cfg = _nus_cfg(tmp_path, {}, use_existing=str(labels))
    with pytest.raises(ValueError, match=r"dataset\.image_dir is required"):
        nuswide.prepare_from_config(cfg, tmp_path / "out", progress=False)


# ======================================================================================================
# NUS-WIDE, ASL re-crawl (image archive fetched by hand + split CSV)
# ======================================================================================================
ASL_ROWS = [  # path, labels, split
    ("images/0001_a.jpg", "['sky', 'beach']", "train"),
    ("images/0002_b.jpg", "['animal']", "train"),
    ("images/0003_c.jpg", "[]", "train"),
    ("images/0004_d.jpg", "['sky']", "val"),
    ("images/0005_missing.jpg", "['beach']", "val"),
]


def test_nuswide_asl_manual_archive_and_csv(server, tmp_path):
    images = _tar({p: _jpeg(30 + k, 15 + k) for k, (p, _, _) in enumerate(ASL_ROWS) if "missing" not in p},
                  mode="w:gz")
    csv_text = "filepath,label,split\n" + "".join(f'{p},"{lab}",{s}\n' for p, lab, s in ASL_ROWS)
    archives = {
        "images": {"url": None, "filename": "nus_wide.tar.gz", "size": None, "sha256": None, "md5": None,
                   "mirrors": []},
        "split_csv": {"url": server.add("asl/nus_wid_data.csv", csv_text.encode()), "filename": "nus_wid_data.csv",
                      "size": None, "sha256": None, "md5": None, "mirrors": []},
    }
    cfg = _nus_cfg(tmp_path, archives, source="asl")
    # not placed yet: a clear error telling the user what to do
    with pytest.raises(DownloadError, match=r"place it at \S*nus_wide\.tar\.gz"):
        _download_all(cfg, tmp_path)
    # the user fetched it by hand
    manual = tmp_path / "data/nuswide/archives/nus_wide.tar.gz"
    manual.write_bytes(images)
    _download_all(cfg, tmp_path)
    out = tmp_path / "out"
    report = _prepare(cfg, tmp_path, out)
    assert report["archives"]["nus_wide.tar.gz"]["sha256"] == _sha(images)
    assert report["source"]["class_order"] == "sorted label names from the split CSV"
    assert (out / "classes.tsv").read_text().splitlines()[1:] == ["0\t1\tanimal", "1\t2\tbeach", "2\t3\tsky"]
    tr, te = report["splits"]["train"], report["splits"]["test"]
    assert (tr["listed"], tr["unlabeled"], tr["kept"]) == (3, 1, 2)
    assert (te["source_split"], te["listed"], te["missing"], te["kept"]) == ("val", 2, 1, 1)
    train = load_split(out, "train")
    assert train.labels.tolist() == [[0, 1, 1], [1, 0, 0]]
    assert np.array_equal(train.sizes, [[15, 30], [16, 31]])
    root = (tmp_path / "data/nuswide/extracted/nus_wide").resolve()
    assert json.loads((out / "dataset.json").read_text())["image_roots"]["test"] == str(root)


# ======================================================================================================
# scripts, configs and the registry
# ======================================================================================================
def test_prepare_script_rejects_unknown_dataset(tmp_path):
    with pytest.raises(ValueError, match=r"dataset\.name must be one of"):
        run_script("prepare_dataset", output={"files": [str(tmp_path / "x")], "report": str(tmp_path / "r.json")},
                   params={"dataset": {"name": "imagenet"}}, log=str(tmp_path / "logs" / "prepare.log"))


@pytest.mark.parametrize("name", ["coco2014", "voc2007", "nuswide"])
def test_config_archives_are_well_formed(name):
    """The configs are the one source of the official URLs and checksums (with their provenance in comments)."""
    cfg = yaml.safe_load((REPO / "config" / f"{name}.yaml").read_text())["dataset"]
    assert cfg["name"] == name and cfg["root"] == f"data/{name}" and cfg["use_existing"] is None
    for key, spec in cfg["archives"].items():
        assert spec["filename"] == spec["url"].rsplit("/", 1)[-1], key
        assert spec["sha256"] is None or (len(spec["sha256"]) == 64 and int(spec["sha256"], 16) >= 0), key
        assert spec["md5"] is None or len(spec["md5"]) == 32, key
    if name == "nuswide":  # nothing published: recorded at first download
        assert all(s["sha256"] is None for s in cfg["archives"].values())
    else:
        assert all(s["sha256"] and s["size"] for s in cfg["archives"].values())
