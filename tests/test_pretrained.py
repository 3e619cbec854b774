"""Tests of kdwsd.pretrained.fetch_pretrained against the local HTTP server, with a small state-dict file and a
small, working structured-edge model that EdgeBoxes then uses."""

from __future__ import annotations

import gzip
import hashlib
import io
import json

import cv2
import numpy as np
import pytest
import torch
from httpserver import FileServer
from pretrained_files import tiny_structured_model_yaml

from kdwsd.boxes import iou_inclusive
from kdwsd.data.download import ChecksumError
from kdwsd.pretrained import (
    STRUCTURED_MODEL_URL,
    VGG16_IMAGENET_URL,
    fetch_pretrained,
    torch_hub_checkpoint,
    torchvision_hash_prefix,
)
from kdwsd.proposals.edgeboxes import edge_boxes

FAST = {"backoff": 0.01, "timeout": 5.0}


@pytest.fixture
def server():
    with FileServer() as srv:
        yield srv


def _state_dict_bytes() -> tuple[dict[str, torch.Tensor], bytes]:
    state = {"features.0.weight": torch.arange(24.0).view(2, 3, 2, 2), "features.0.bias": torch.tensor([0.5, -1.0])}
    buf = io.BytesIO()
    torch.save(state, buf)
    return state, buf.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _record(path) -> dict:
    return json.loads(path.read_text())["files"]


def test_real_urls_and_their_hash_prefix():
    from torchvision.models import VGG16_Weights

    assert VGG16_Weights.IMAGENET1K_V1.url == VGG16_IMAGENET_URL
    assert torchvision_hash_prefix(VGG16_IMAGENET_URL) == "397923af"
    assert torchvision_hash_prefix(STRUCTURED_MODEL_URL) is None  # model.yml.gz: nothing in the name


def test_torch_hub_checkpoint_honours_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert torch_hub_checkpoint(VGG16_IMAGENET_URL) == tmp_path / "th" / "hub" / "checkpoints" / "vgg16-397923af.pth"


def test_state_dict_is_fetched_prefix_checked_recorded_then_verified(server, tmp_path):
    state, data = _state_dict_bytes()
    name = f"vggtiny-{_sha(data)[:8]}.pth"  # torchvision's naming: the sha256 prefix in the name
    url = server.add(f"models/{name}", data)
    dest, record = tmp_path / "ckpt" / name, tmp_path / "checksums.json"

    assert fetch_pretrained(url, dest, record, None, progress=False, download_options=FAST) == dest
    loaded = torch.load(dest, map_location="cpu", weights_only=True)
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    entry = _record(record)[name]
    assert entry["sha256"] == _sha(data) and entry["size"] == len(data)
    assert entry["source"] == "recorded at first download" and entry["url"] == url

    # a second call verifies the file on disk without the network
    n_requests = len(server.requests_for(f"models/{name}"))
    fetch_pretrained(url, dest, record, None, progress=False, download_options=FAST)
    assert len(server.requests_for(f"models/{name}")) == n_requests

    # a file changed after its first download is caught by the record and moved aside
    dest.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    with pytest.raises(ChecksumError, match=r"expected (md5|sha256) .*from the checksum record"):
        fetch_pretrained(url, dest, record, None, progress=False, download_options=FAST)
    assert not dest.exists() and (dest.parent / f"{name}.corrupt").exists()


def test_wrong_hash_prefix_is_refused_and_not_recorded(server, tmp_path):
    _, data = _state_dict_bytes()
    assert not _sha(data).startswith("deadbeef")
    url = server.add("models/vggtiny-deadbeef.pth", data)
    dest, record = tmp_path / "vggtiny-deadbeef.pth", tmp_path / "checksums.json"
    with pytest.raises(ChecksumError, match=r"expected sha256 prefix deadbeef .*from the hash in the file name"):
        fetch_pretrained(url, dest, record, None, progress=False, download_options=FAST)
    assert not dest.exists() and (tmp_path / "vggtiny-deadbeef.pth.corrupt").exists()
    assert not record.exists() or "vggtiny-deadbeef.pth" not in _record(record)


def test_published_sha256_wins_and_must_agree_with_the_prefix(server, tmp_path):
    _, data = _state_dict_bytes()
    url = server.add("w.pth", data)
    dest, record = tmp_path / "w.pth", tmp_path / "checksums.json"
    with pytest.raises(ChecksumError, match="expected sha256 " + "0" * 64):
        fetch_pretrained(url, dest, record, "0" * 64, progress=False, download_options=FAST)
    (tmp_path / "w.pth.corrupt").unlink()
    fetch_pretrained(url, dest, record, _sha(data), progress=False, download_options=FAST)
    assert _record(record)["w.pth"]["source"] == "published"
    with pytest.raises(ValueError, match="does not start with the prefix abcdef12"):
        fetch_pretrained(url, dest, record, _sha(data), hash_prefix="abcdef12", progress=False)


def _rectangle_photo() -> tuple[np.ndarray, np.ndarray]:
    """uint8 [480, 640, 3] RGB: colour blotches with noise and a filled rectangle; its inclusive box."""
    rng = np.random.default_rng(1)
    image = cv2.resize(rng.uniform(60, 190, (12, 16, 3)).astype(np.float32), (640, 480))
    image = np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
    cv2.rectangle(image, (150, 110), (379, 289), (230, 40, 40), thickness=-1)
    return image, np.array([[150, 110, 379, 289]], np.float32)


def test_fetched_structured_model_drives_edge_boxes(server, tmp_path):
    model_gz = gzip.compress(tiny_structured_model_yaml().encode())
    url = server.add("opencv_extra/testdata/cv/ximgproc/model.yml.gz", model_gz)
    dest, record = tmp_path / "pretrained" / "model.yml.gz", tmp_path / "pretrained" / "checksums.json"
    path = fetch_pretrained(url, dest, record, None, progress=False, download_options=FAST)
    assert _record(record)["model.yml.gz"]["sha256"] == _sha(model_gz)

    image, box = _rectangle_photo()
    edges = cv2.ximgproc.createStructuredEdgeDetection(str(path)).detectEdges(image.astype(np.float32) / 255)
    assert edges.shape == image.shape[:2] and edges.dtype == np.float32 and float(edges.max()) > 0.9
    ring = np.zeros(image.shape[:2], np.uint8)
    cv2.rectangle(ring, (150, 110), (379, 289), 1, thickness=5)
    assert edges[ring > 0].mean() > 10 * edges.mean() * (ring == 0).mean()  # the rectangle's outline stands out

    # the fetched path is exactly what the proposals' structured_model parameter takes
    boxes, scores = edge_boxes(image, 500, structured_model=str(path))
    assert len(boxes) > 0 and np.all(np.diff(scores) <= 0)
    assert iou_inclusive(box, boxes[:50]).max() >= 0.7


# --------------------------------------------------------------------------------------------------
# the local rule fetch_pretrained and the jobs that read its files
# --------------------------------------------------------------------------------------------------
def test_fetch_rule_records_the_sha256_then_verifies_it(server, tmp_path):
    from rulestub import run_script

    model_gz = gzip.compress(tiny_structured_model_yaml().encode())
    url = server.add("opencv/model.yml.gz", model_gz)
    dest = tmp_path / "data" / "pretrained" / "model.yml.gz"

    def fetch() -> None:
        run_script("fetch_pretrained", output={"file": str(dest)}, wildcards={"filename": dest.name},
                   params={"url": url, "sha256": None, "hash_prefix": None}, log=str(tmp_path / "fetch.log"))

    fetch()
    assert _record(dest.parent / "checksums.json")["model.yml.gz"]["sha256"] == _sha(model_gz)
    dest.write_bytes(model_gz + b"x")  # changed after the first download: the record catches it
    with pytest.raises(ChecksumError, match="checksum record"):
        fetch()


def _dry_run_inputs(tmp_path, *configs: str) -> dict[str, set[str]]:
    """{rule: the input files of its jobs} of a dry run with ``configs`` (in config/)."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "-d", str(tmp_path), "-n",
           "--configfile", *(str(repo / "config" / c) for c in configs)]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    inputs: dict[str, set[str]] = {}
    rule = None
    for line in res.stdout.splitlines():
        if line.startswith(("rule ", "localrule ")):
            rule = line.split()[1].rstrip(":")
            inputs.setdefault(rule, set())
        elif rule and line.startswith("    input: "):
            inputs[rule].update(line.removeprefix("    input: ").split(", "))
    return inputs


def test_paper_dag_fetches_before_every_job_that_reads_a_pretrained_file(tmp_path):
    inputs = _dry_run_inputs(tmp_path, "coco2014.yaml")
    vgg, edges = "data/pretrained/vgg16-397923af.pth", "data/pretrained/model.yml.gz"
    assert "fetch_pretrained" in inputs
    for rule in ("teacher", "student_stage1", "student"):
        assert vgg in inputs[rule], rule
    assert edges in inputs["proposals"]
    assert not any(vgg in files or edges in files for rule, files in inputs.items()
                   if rule not in ("teacher", "student_stage1", "student", "proposals", "all"))  # fmt: skip


def test_default_config_downloads_nothing(tmp_path):
    inputs = _dry_run_inputs(tmp_path, "config.yaml")
    assert "fetch_pretrained" not in inputs
    assert not any("pretrained" in f for files in inputs.values() for f in files)
