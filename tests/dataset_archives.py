"""Tiny archives in the official layouts of COCO 2014, PASCAL VOC 2007 and NUS-WIDE (shared by the real-dataset
tests and the paper-config rehearsal), served from tests/httpserver.py.

Each ``build_*`` builder takes ``image(w, h) -> JPEG bytes`` for an image whose annotation says ``w × h``; the
default writes a flat-colour JPEG at a tenth of that size (enough for the preparation tests).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from httpserver import FileServer
from PIL import Image

ImageMaker = Callable[[int, int], bytes]


def _tenth(w: int, h: int) -> bytes:
    return jpeg(w // 10, h // 10)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def jpeg(w: int, h: int, color: tuple[int, int, int] = (120, 30, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, format="JPEG")
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def tar_bytes(members: dict[str, bytes], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def unpack(data: bytes, dest: Path) -> None:
    """Unpack an archive's bytes into ``dest`` (to build a user's 'existing copy')."""
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            zf.extractall(dest)
    else:
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            tf.extractall(dest, filter="data")


def serve(server: FileServer, prefix: str, archives: dict[str, tuple[str, bytes]], *,
           published: bool = True, md5: bool = False) -> dict[str, dict[str, Any]]:
    """Put archives on the server; return the config's ``archives`` block."""
    specs = {}
    for key, (filename, data) in archives.items():
        specs[key] = {
            "url": server.add(f"{prefix}/{filename}", data),
            "filename": filename,
            "size": len(data) if published else None,
            "sha256": sha256_hex(data) if published else None,
            "md5": hashlib.md5(data).hexdigest() if md5 else None,
            "mirrors": [],
        }
    return specs


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


def build_coco(*, bad_train_json: bool = False, image: ImageMaker = _tenth) -> dict[str, tuple[str, bytes]]:
    """The three official zips, tiny: key -> (filename, bytes)."""
    zips = {}
    for key, split, spec in (("train2014", "train2014", COCO_TRAIN), ("val2014", "val2014", COCO_VAL)):
        zips[key] = (f"{split}.zip", zip_bytes({
            f"{split}/COCO_{split}_{i:012d}.jpg": image(w, h)
            for i, w, h in spec["images"] if i not in spec["absent"]
        }))
    train_json = b'{"images": [{"id": 9, "file_name": "x.jpg",' if bad_train_json else _coco_json("train2014",
                                                                                                   COCO_TRAIN)
    zips["annotations"] = ("annotations_trainval2014.zip", zip_bytes({
        "annotations/instances_train2014.json": train_json,
        "annotations/instances_val2014.json": _coco_json("val2014", COCO_VAL),
        "annotations/captions_train2014.json": b'{"annotations": []}',
    }))
    return zips


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


def build_voc(*, bad_xml: str | None = None, image: ImageMaker = _tenth) -> dict[str, tuple[str, bytes]]:
    base = "VOCdevkit/VOC2007"
    tars = {}
    for key, filename, listname, spec, absent in (
        ("trainval", "VOCtrainval_06-Nov-2007.tar", "trainval", VOC_TRAINVAL, {"000012"}),
        ("test", "VOCtest_06-Nov-2007.tar", "test", VOC_TEST, set()),
    ):
        members = {}
        for stem, (w, h, objs) in spec.items():
            if stem not in absent:
                members[f"{base}/JPEGImages/{stem}.jpg"] = image(w, h)
            members[f"{base}/Annotations/{stem}.xml"] = (b"<annotation><size>" if stem == bad_xml
                                                         else _voc_xml(stem, w, h, objs))
        members[f"{base}/ImageSets/Main/{listname}.txt"] = "".join(f"{s}\n" for s in spec).encode()
        members[f"{base}/ImageSets/Main/dog_{listname}.txt"] = "".join(f"{s} -1\n" for s in spec).encode()
        tars[key] = (filename, tar_bytes(members))
    return tars


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
        "groundtruth": ("Groundtruth.zip", zip_bytes(gt)),
        "imagelist": ("ImageList.zip", zip_bytes(lists)),
        "concepts": ("ConceptsList.zip", zip_bytes({"ConceptsList/Concepts81.txt":
                                               "".join(f"{c}\n" for c in NUS_CONCEPTS).encode()})),
    }


def build_nus_images(root: Path, *, unreadable: str | None = None, image: ImageMaker | None = None) -> Path:
    """The user's image folder: Flickr/<concept>/<file>.jpg, each image a distinct size."""
    flickr = root / "Flickr"
    for k, (entry, _, on_disk) in enumerate(NUS_TRAIN + NUS_TEST):
        if on_disk:
            p = flickr / entry.replace("\\", "/")
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"not an image" if entry == unreadable else (image or jpeg)(20 + k, 10 + k))
    return flickr
