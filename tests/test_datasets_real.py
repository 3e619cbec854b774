"""Real-dataset layer: download -> verify -> extract -> prepare for COCO 2014, NUS-WIDE and VOC 2007.

Tiny archives in the official layouts are built in ``tmp_path`` and served from a local HTTP server on
127.0.0.1; the Snakemake scripts (``scripts/download.py``, ``scripts/prepare_dataset.py``) are run with a
stand-in ``snakemake`` object, so the same code path as the workflow is exercised.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from dataset_archives import (
    build_coco,
    build_nus_images,
    build_nus_labels,
    build_voc,
    jpeg,
    serve,
    sha256_hex,
    tar_bytes,
    unpack,
)
from httpserver import FileServer
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



def _coco_cfg(tmp_path: Path, archives: dict[str, dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {"name": "coco2014", "root": str(tmp_path / "data" / "coco2014"), "use_existing": None,
            "drop_unlabeled": True, "missing_images": "drop", "archives": archives, **kw}


def test_coco_download_verify_extract_prepare(server, tmp_path):
    zips = build_coco()
    cfg = _coco_cfg(tmp_path, serve(server, "coco", zips))
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
    assert report["archives"]["train2014.zip"]["sha256"] == sha256_hex(train_zip)
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
        unpack(data, root)
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
    cfg = _coco_cfg(tmp_path, serve(server, "coco", build_coco()), use_existing=str(coco_copy))
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
    cfg = _coco_cfg(tmp_path, serve(server, "coco", build_coco(bad_train_json=True)))
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
    cfg = _coco_cfg(tmp_path, serve(server, "coco", zips))
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




def _voc_cfg(tmp_path: Path, archives: dict[str, dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {"name": "voc2007", "root": str(tmp_path / "data" / "voc2007"), "use_existing": None,
            "drop_unlabeled": True, "missing_images": "drop", "archives": archives, **kw}


def test_voc_download_verify_extract_prepare(server, tmp_path):
    cfg = _voc_cfg(tmp_path, serve(server, "voc", build_voc(), md5=True))
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
    cfg = _voc_cfg(tmp_path, serve(server, "voc", tars))
    server.wrong_content["/voc/VOCtest_06-Nov-2007.tar"] = tars["test"][1][::-1]  # same size, other bytes
    with pytest.raises(ChecksumError, match=r"VOCtest_06-Nov-2007\.tar: expected sha256 \w+ \(from the published"):
        _download_all(cfg, tmp_path)
    assert (tmp_path / "data/voc2007/archives/VOCtest_06-Nov-2007.tar.corrupt").is_file()


@pytest.fixture
def voc_copy(tmp_path):
    """Both tars extracted into one folder (the usual merged VOCdevkit)."""
    root = tmp_path / "my_voc"
    for _, data in build_voc().values():
        unpack(data, root)
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
        unpack(data, root)
    with pytest.raises(ValueError, match=r"annotation file \S*000007\.xml is not valid XML"):
        voc.prepare_voc2007(root, tmp_path / "out")


def test_voc_box_conversion_unit():
    assert voc.voc_box_to_coco(1, 1, 1, 1) == [0, 0, 1, 1]
    assert voc.voc_box_to_coco(48, 240, 195, 371) == [47, 239, 148, 132]



def _nus_cfg(tmp_path: Path, archives: dict[str, dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {"name": "nuswide", "source": "official", "root": str(tmp_path / "data" / "nuswide"),
            "use_existing": None, "image_dir": None, "num_classes": 3, "drop_unlabeled": True,
            "missing_images": "drop", "archives": archives, **kw}


def test_nuswide_official_download_verify_extract_prepare(server, tmp_path):
    flickr = build_nus_images(tmp_path / "user_images")
    cfg = _nus_cfg(tmp_path, serve(server, "nus", build_nus_labels(), published=False), image_dir=str(flickr))
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
        unpack(data, labels)
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
        unpack(data, labels)
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
        unpack(data, labels)
    flickr = build_nus_images(tmp_path / "imgs")
    with pytest.raises(ValueError, match=r"Labels_beach_Train\.txt has 4 lines, but its image list has 5"):
        nuswide.prepare_nuswide(labels, flickr, tmp_path / "out", expected_num_classes=3)
    with pytest.raises(ValueError, match=r"Concepts81\.txt has 3 names, expected 81"):
        nuswide.prepare_nuswide(labels, flickr, tmp_path / "out")


def test_nuswide_official_needs_image_dir(tmp_path):
    labels = tmp_path / "labels"
    for _, data in build_nus_labels().values():
        unpack(data, labels)
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
    images = tar_bytes({p: jpeg(30 + k, 15 + k) for k, (p, _, _) in enumerate(ASL_ROWS) if "missing" not in p},
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
    assert report["archives"]["nus_wide.tar.gz"]["sha256"] == sha256_hex(images)
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
