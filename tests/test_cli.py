"""The `kdwsd` command and the inference API: exact preprocessing, outputs, errors, model-file checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from tiny_models import CLASSES, FRAME, NET, STUDENT_SIZE, write_images, write_student, write_teacher

import kdwsd
from kdwsd.cli import main
from kdwsd.data.prepared import Split
from kdwsd.evaluate import predict_student
from kdwsd.inference import expand_image_args, select_labels
from kdwsd.modelfile import ModelFileError, read_model_file, save_model_file
from kdwsd.models.student import StudentClassifier

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = tmp_path_factory.mktemp("cli")
    return {"student": write_student(d / "student.pt"), "teacher": write_teacher(d / "teacher.pt"),
            "images": write_images(d / "images"), "dir": d}  # fmt: skip


def _split(paths: list[Path]) -> Split:
    sizes = np.array([cv2.imread(str(p)).shape[:2] for p in paths])
    return Split("mine", np.arange(len(paths)), list(paths), sizes, np.zeros((len(paths), len(CLASSES)), np.uint8),
                 CLASSES, [[] for _ in paths])  # fmt: skip


@pytest.mark.parametrize("norm", ["torchvision", "caffe"])
def test_predictor_scores_equal_predict_student(tmp_path: Path, files: dict, norm: str) -> None:
    model = write_student(tmp_path / "s.pt", norm=norm)
    ref = predict_student(model, _split(files["images"]), norm, FRAME, STUDENT_SIZE, device="cpu", batch_size=3)
    got = kdwsd.load_model(model, device="cpu").scores(files["images"], batch_size=2)  # other batching on purpose
    assert got.shape == (len(files["images"]), len(CLASSES))
    np.testing.assert_array_equal(got, ref)
    assert np.ptp(ref) > 1e-3  # the images really give different scores


def test_arrays_and_pil_images_equal_files(files: dict) -> None:
    from PIL import Image

    png = files["images"][0]  # lossless: the decoded array is exactly what was written
    pred = kdwsd.load_model(files["student"], device="cpu")
    bgr = cv2.imread(str(png))
    ref = pred.scores([png])
    np.testing.assert_array_equal(pred.scores([bgr[..., ::-1].copy()]), ref)  # RGB is the default
    np.testing.assert_array_equal(pred.scores([bgr], channels="bgr"), ref)
    np.testing.assert_array_equal(pred.scores([Image.open(png)]), ref)
    one = pred.predict(str(png), threshold=None)  # a single image, not in a list
    assert len(one) == 1 and one[0].source == str(png) and len(one[0].labels) == len(CLASSES)
    with pytest.raises(ValueError, match="uint8"):
        pred.predict([bgr.astype(np.float32)])


def _as_tuples(preds: list) -> list[tuple]:
    return [(p.source, p.labels, None if p.scores is None else p.scores.tobytes(), p.boxes, p.error) for p in preds]


@pytest.mark.parametrize("kind", ["student", "teacher"])
def test_cpu_processes_give_what_one_process_gives(files: dict, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Forked processes (one thread each, whole batches) against this process's thread pool: the same
    predictions bit for bit, in input order, an unreadable file named in its place, in-memory images too."""
    from PIL import Image

    bad = files["dir"] / f"unreadable_{kind}.jpg"
    bad.write_bytes(b"\xff\xd8 half a jpeg")
    rgb = cv2.imread(str(files["images"][1]))[..., ::-1].copy()
    images = [*files["images"][:2], bad, rgb, Image.open(files["images"][2]), *files["images"][2:]]
    one = kdwsd.load_model(files[kind], device="cpu", processes=1)
    two = kdwsd.load_model(files[kind], device="cpu", processes=2)
    assert one.cpu_processes() == 1 and two.cpu_processes() == 2
    ref = one.predict(images, batch_size=2, threshold=0.3, errors="keep")
    got = two.predict(images, batch_size=2, threshold=0.3, errors="keep")  # 4 batches over 2 processes
    assert _as_tuples(got) == _as_tuples(ref)
    assert [p.error is not None for p in got] == [False, False, True, False, False, False, False]
    assert str(bad) in got[2].error
    # One batch only: no process is started (nothing to share), the result is the same.
    import kdwsd.inference as inference

    monkeypatch.setattr(inference.multiprocessing, "get_context", lambda *a: pytest.fail("a process was started"))
    assert _as_tuples(two.predict(images[:2], threshold=0.3)) == _as_tuples(ref[:2])


def test_batch_size_for_splits_the_batches_evenly_between_processes(files: dict) -> None:
    two = kdwsd.load_model(files["student"], device="cpu", processes=2)
    one = kdwsd.load_model(files["student"], device="cpu", processes=1)
    assert two.default_batch_size == one.default_batch_size == 64  # FRAME <= 256 px
    # 400 images: ceil(400 / 64) = 7 batches, 8 for 2 processes, so ceil(400 / 8) = 50 each.
    assert two.batch_size_for(400) == 50 and one.batch_size_for(400) == 64
    # 1000 images over 2 processes: 16 batches already even -> ceil(1000 / 16) = 63 (the last has 55).
    assert two.batch_size_for(1000) == 63
    assert two.batch_size_for(64) == 64 and two.batch_size_for(None) == 64  # one batch; length unknown
    assert two.batch_size_for(400, batch_size=32) == 32  # given: kept


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prediction processes are forked on Linux only")
def test_kept_processes_start_once_and_equal_one_process(files: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing

    import kdwsd.inference as inference

    images = [*files["images"]] * 3  # 12 images: 6 batches of 2
    ref = kdwsd.load_model(files["student"], device="cpu", processes=1).scores(images, batch_size=2)
    with kdwsd.load_model(files["student"], device="cpu", processes=2) as model:
        assert model.start(batch_size=2, n_images=2) == 0.0  # one batch: nothing to start
        assert model.start(batch_size=2, n_images=len(images)) > 0
        kept = {p.pid for p in multiprocessing.active_children()}
        assert len(kept) == 2
        with monkeypatch.context() as m:  # the calls below fork nothing
            m.setattr(inference.multiprocessing, "get_context", lambda *a: pytest.fail("a process was started"))
            np.testing.assert_array_equal(model.scores(images, batch_size=2), ref)
            np.testing.assert_array_equal(model.scores(images[:2], batch_size=2), ref[:2])  # one batch, kept pool
            assert {p.pid for p in multiprocessing.active_children()} == kept
            # An abandoned call stops the kept processes with what they had queued; the next starts new ones.
            calls = model.iter_predict(images, batch_size=2)
            next(calls)
            calls.close()
            assert model._pool is None and not multiprocessing.active_children()
        np.testing.assert_array_equal(model.scores(images, batch_size=2), ref)
        assert len(multiprocessing.active_children()) == 2  # kept again, until the end of the block
    assert model._pool is None and not multiprocessing.active_children()
    # Outside a with block, processes live for one call only.
    model = kdwsd.load_model(files["student"], device="cpu", processes=2)
    np.testing.assert_array_equal(model.scores(images, batch_size=2), ref)
    assert model._pool is None and not multiprocessing.active_children()
    assert kdwsd.load_model(files["student"], device="cpu", processes=1).start(2, len(images)) == 0.0
    with kdwsd.load_model(files["teacher"], device="cpu", processes=2) as teacher:  # started, not warmed up
        assert teacher.start(2, 4) > 0 and len(multiprocessing.active_children()) == 2
        got = teacher.predict(images[:4], batch_size=2, threshold=None)
    ref = kdwsd.load_model(files["teacher"], device="cpu", processes=1).predict(images[:4], batch_size=2,
                                                                                 threshold=None)  # fmt: skip
    assert _as_tuples(got) == _as_tuples(ref)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prediction processes are forked on Linux only")
def test_cli_reports_the_start_of_its_processes_apart(files: dict, capsys: pytest.CaptureFixture) -> None:
    images = [str(p) for p in files["images"]] * 3
    rc = main(["predict", str(files["student"]), *images, "--device", "cpu", "--processes", "2", "--batch-size", "2",
               "--json"])  # fmt: skip
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert rc == 0 and len(doc["results"]) == 12 and doc["processes"] == 2 and doc["start_seconds"] > 0
    assert "12 images labelled" in err and "after starting 2 processes in" in err
    assert main(["predict", str(files["student"]), *images[:2], "--device", "cpu", "--processes", "2"]) == 0
    assert "after starting" not in capsys.readouterr().err  # one batch: labelled in this process


def test_no_processes_where_fork_is_unsafe_or_impossible(files: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing

    import kdwsd.inference as inference

    pred = kdwsd.load_model(files["student"], device="cpu", processes=4)
    assert pred.cpu_processes() == 4
    monkeypatch.setattr(multiprocessing, "current_process", lambda: type("P", (), {"daemon": True})())
    assert pred.cpu_processes() == 1  # a Pool/DataLoader worker: threads
    monkeypatch.undo()
    monkeypatch.setattr(inference.sys, "platform", "darwin")
    assert pred.cpu_processes() == 1
    monkeypatch.undo()
    assert main(["predict", str(files["student"]), str(files["images"][0]), "--processes", "0"]) == 2


def test_select_labels_top_k_and_threshold() -> None:
    s = np.array([0.2, 0.9, 0.55, 0.7])
    names = ["a", "b", "c", "d"]
    assert select_labels(s, names) == [("b", 0.9), ("d", 0.7), ("c", 0.55)]
    assert select_labels(s, names, top_k=2, threshold=None) == [("b", 0.9), ("d", 0.7)]
    assert select_labels(s, names, top_k=3, threshold=0.6) == [("b", 0.9), ("d", 0.7)]
    assert select_labels(s, names, threshold=0.95) == []


def test_cli_predict_json_folder_and_bad_image(files: dict, capsys: pytest.CaptureFixture) -> None:
    bad = files["dir"] / "broken.jpg"
    bad.write_bytes(b"not an image at all")
    missing = files["dir"] / "nope.png"
    rc = main(["predict", str(files["student"]), str(files["dir"] / "images"), str(bad), str(missing),
               "--json", "--top-k", "2", "--device", "cpu", "--batch-size", "3"])  # fmt: skip
    out, err = capsys.readouterr()
    assert rc == 1
    assert str(bad) in err and str(missing) in err and "2 failed" in err and "images/s" in err
    doc = json.loads(out)
    assert [r["image"] for r in doc["results"]] == [*map(str, files["images"]), str(bad), str(missing)]
    assert doc["failed"] == 2 and "error" in doc["results"][-1] and "error" in doc["results"][-2]
    scores = kdwsd.load_model(files["student"], device="cpu").scores(files["images"])
    for r, s in zip(doc["results"][:-2], scores, strict=True):
        assert [lab["name"] for lab in r["labels"]] == [CLASSES[i] for i in np.argsort(-s)[:2]]
        np.testing.assert_allclose([r["scores"][c] for c in CLASSES], s, atol=1e-6)


def test_cli_predict_folder_lists_other_formats_and_names_what_it_skips(
    files: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from PIL import Image

    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.open(files["images"][0]).save(folder / "a.gif")
    (folder / "b.webp").write_bytes(cv2.imencode(".webp", cv2.imread(str(files["images"][1])))[1].tobytes())
    (folder / "notes.txt").write_text("not an image")
    (folder / "meta.json").write_text("{}")
    (folder / "empty.jpg").write_bytes(b"")
    rc = main(["predict", str(files["student"]), str(folder), "--device", "cpu", "--threshold", "0"])
    out, err = capsys.readouterr()
    labelled = [line.split("\t")[0] for line in out.strip().splitlines()]
    gif_ok = cv2.haveImageReader(str(folder / "a.gif"))
    assert labelled == [str(folder / "a.gif")] * gif_ok + [str(folder / "b.webp")]
    assert "2 files of the folders given not read (not an image extension: .json, .txt)" in err
    assert f"{folder / 'empty.jpg'}: empty file" in err and "dataset.on_bad_image" not in err  # no pipeline hint
    assert rc == 1


def test_image_lists_from_a_file_and_from_standard_input(files: dict, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # fmt: skip
    import io

    names = [str(p) for p in files["images"][:3]]
    listing = tmp_path / "my images.txt"
    listing.write_text("\n".join([names[0], "", names[1]]) + "\n")  # a blank line is ignored
    monkeypatch.setattr(sys, "stdin", io.StringIO(names[2] + "\r\n"))
    assert expand_image_args([f"@{listing}", "-", names[0]]) == [names[0], names[1], names[2], names[0]]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(names)))
    assert main(["predict", str(files["student"]), "-", "--device", "cpu", "--threshold", "0"]) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.strip().splitlines()] == names
    assert main(["predict", str(files["student"]), f"@{tmp_path / 'missing.txt'}", "--device", "cpu"]) == 2
    assert "missing.txt" in capsys.readouterr().err


def test_cli_predict_text_glob_threshold(files: dict, capsys: pytest.CaptureFixture) -> None:
    pattern = str(files["dir"] / "images" / "*.png")
    assert expand_image_args([pattern]) == [str(p) for p in files["images"] if p.suffix == ".png"]
    rc = main(["predict", str(files["student"]), pattern, "--threshold", "0.0", "--device", "cpu"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert rc == 0 and len(lines) == 2
    path, labels = lines[0].split("\t")
    assert path == str(files["images"][0]) and len(labels.split(", ")) == len(CLASSES)  # threshold 0: all labels


def test_teacher_predict_matches_wsddn_and_draws_boxes(files: dict, tmp_path: Path, capsys) -> None:
    from kdwsd.boxes import warp_boxes
    from kdwsd.data.dataset import collate, normalise
    from kdwsd.distill.cache import run_teacher
    from kdwsd.models.io import load_teacher
    from kdwsd.proposals import edge_boxes, read_rgb

    # Reference: the pipeline's own pieces (EdgeBoxes, warp, collate, the cache stage's teacher pass).
    items = []
    for i, p in enumerate(files["images"]):
        boxes, scores = edge_boxes(read_rgb(p), 30)  # the file records max_boxes 30, num_rois 20
        image = cv2.imread(str(p))
        frame = cv2.resize(image, (FRAME, FRAME), interpolation=cv2.INTER_LINEAR)
        items.append({"index": i, "image": torch.from_numpy(normalise(frame, "torchvision")),
                      "labels": torch.zeros(len(CLASSES)),
                      "boxes": torch.from_numpy(warp_boxes(boxes[:20], image.shape[:2], FRAME)),
                      "box_scores": torch.from_numpy(scores[:20])})  # fmt: skip
    ref = run_teacher(load_teacher(files["teacher"]), collate(items), 1.0, "sum", torch.device("cpu"))["scores"]
    pred = kdwsd.load_model(files["teacher"], device="cpu")
    np.testing.assert_allclose(pred.scores(files["images"]), ref.numpy(), rtol=0, atol=1e-6)

    out_dir = tmp_path / "boxes"
    rc = main(["predict", str(files["teacher"]), *map(str, files["images"]), "--top-k", "2", "--json",
               "--draw-boxes", str(out_dir), "--device", "cpu"])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["kind"] == "teacher"
    for r, p in zip(doc["results"], files["images"], strict=True):
        h, w = cv2.imread(str(p)).shape[:2]
        assert set(r["boxes"]) == {lab["name"] for lab in r["labels"]}
        for x1, y1, x2, y2 in r["boxes"].values():
            assert 0 <= x1 <= x2 <= w - 1 and 0 <= y1 <= y2 <= h - 1
        drawn = cv2.imread(str(out_dir / f"{p.stem}.png"))
        assert drawn.shape == (h, w, 3) and not np.array_equal(drawn, cv2.imread(str(p)))


def test_teacher_scores_new_images_with_its_own_proposal_method(files: dict, tmp_path: Path, capsys) -> None:
    from kdwsd.proposals import read_rgb, selective_search

    ss = write_teacher(tmp_path / "ss.pt", proposals={"method": "selective_search", "max_boxes": 30,
                                                      "params": {"mode": "fast", "seed": 3}})  # fmt: skip
    pred = kdwsd.load_model(ss, device="cpu")
    assert pred.proposal_method == "selective_search"
    img = files["images"][1]
    ref, _ = selective_search(read_rgb(img), 30, mode="fast", seed=3)
    np.testing.assert_array_equal(pred.prepare(str(img))["boxes_orig"], ref[:20])  # num_rois 20 of max_boxes 30

    gt = write_teacher(tmp_path / "gt.pt", proposals={"method": "ground_truth", "max_boxes": 30, "params": {}})
    with pytest.raises(ValueError, match=r"ground-truth boxes.*--proposals"):
        kdwsd.load_model(gt, device="cpu")
    assert main(["predict", str(gt), str(img), "--device", "cpu"]) == 2
    assert "--proposals" in capsys.readouterr().err
    assert main(["predict", str(gt), str(img), "--device", "cpu", "--proposals", "random"]) == 0


def test_teacher_finds_its_structured_edge_model_from_a_relative_path(tmp_path: Path, capsys) -> None:
    params = {"edge_method": "structured", "structured_model": "pretrained/model.yml.gz"}
    model = write_teacher(tmp_path / "results" / "run" / "models" / "teacher.pt",
                          proposals={"method": "edgeboxes", "max_boxes": 30, "params": params})  # fmt: skip
    with pytest.raises(FileNotFoundError, match=r"pretrained/model\.yml\.gz.*--structured-model"):
        kdwsd.load_model(model, device="cpu")
    (tmp_path / "pretrained").mkdir()
    (tmp_path / "pretrained" / "model.yml.gz").write_bytes(b"x")
    found = kdwsd.load_model(model, device="cpu").proposal_params["structured_model"]
    assert found == str(tmp_path / "pretrained" / "model.yml.gz")  # the workflow directory above results/
    mine = tmp_path / "elsewhere.yml.gz"
    assert kdwsd.load_model(model, device="cpu", structured_model=mine).proposal_params["structured_model"] == str(mine)


def test_draw_boxes_refused_for_a_student(files: dict, capsys) -> None:
    rc = main(["predict", str(files["student"]), str(files["images"][0]), "--draw-boxes", "x", "--device", "cpu"])
    assert rc == 2 and "teacher" in capsys.readouterr().err


def test_kind_class_and_arch_mismatches_name_both(files: dict, capsys) -> None:
    with pytest.raises(ModelFileError, match=r"holds a teacher.*but a student was expected") as e:
        kdwsd.load_model(files["teacher"], expect_kind="student")
    assert str(files["teacher"]) in str(e.value)
    with pytest.raises(ModelFileError, match=r"has 3 classes .* but 5 were expected"):
        kdwsd.load_model(files["student"], expect_classes=5)
    with pytest.raises(ModelFileError, match=r"classes \['circle', 'square', 'star'\], expected \['a', 'b', 'c'\]"):
        kdwsd.load_model(files["student"], expect_classes=["a", "b", "c"])
    with pytest.raises(ModelFileError, match=r"'backbone' is 'small' in the file but 'vgg16'"):
        read_model_file(files["student"], expect_arch={"backbone": "vgg16"})
    assert main(["export", str(files["teacher"]), "--format", "torchscript", "-o", str(files["dir"] / "t.ts")]) == 2
    assert "holds a teacher" in capsys.readouterr().err
    assert main(["info", str(files["dir"] / "missing.pt")]) == 2
    assert "model file not found" in capsys.readouterr().err


def test_old_format_file_is_filled_from_config(tmp_path: Path, files: dict) -> None:
    model = StudentClassifier(len(CLASSES), **NET)
    old = tmp_path / "old.pt"  # what train/student.py wrote before format 2
    save_model_file(old, model, {"classes": CLASSES, "config": {"size": 24}, "norm": "caffe", "seed": 3,
                                 "experiment": "baseline", "frame_size": 48})  # fmt: skip
    info = read_model_file(old, expect_kind="student")
    assert (info.kind, info.format_version, info.input_size, info.frame_size, info.norm) == ("student", 1, 24, 48,
                                                                                              "caffe")  # fmt: skip
    ref = predict_student(old, _split(files["images"]), "caffe", 48, 24, device="cpu")
    np.testing.assert_array_equal(kdwsd.load_model(old, device="cpu").scores(files["images"]), ref)


def test_info_and_provenance(files: dict, capsys) -> None:
    assert main(["info", str(files["student"]), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["classes"] == CLASSES and doc["frame_size"] == FRAME and doc["input_size"] == STUDENT_SIZE
    assert doc["kind"] == "student" and doc["format_version"] == 2 and doc["config"]["size"] == STUDENT_SIZE
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    assert doc["provenance"]["git_commit"] == head and isinstance(doc["provenance"]["git_dirty"], bool)
    assert doc["provenance"]["packages"]["torch"] == torch.__version__
    assert main(["info", str(files["teacher"])]) == 0
    text = capsys.readouterr().out
    assert "teacher" in text and "circle, square, star" in text and head in text and "max_boxes" in text


def test_module_entry_point_in_a_subprocess(files: dict) -> None:
    res = subprocess.run([sys.executable, "-m", "kdwsd.cli", "predict", str(files["student"]),
                          str(files["images"][0]), "--top-k", "1", "--device", "cpu"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr
    path, label = res.stdout.strip().split("\t")
    assert path == str(files["images"][0]) and label.split()[0] in CLASSES
    res = subprocess.run([sys.executable, "-m", "kdwsd.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and all(c in res.stdout for c in ("predict", "export", "info"))


@pytest.mark.parametrize("mode", ["caffe", "torchvision"])
def test_fast_normalise_is_bit_identical_to_the_formula(mode: str) -> None:
    from kdwsd.data.dataset import CAFFE_MEAN_BGR, TV_MEAN_RGB, TV_STD_RGB, normalise

    levels = np.arange(256, dtype=np.uint8)
    img = np.stack([levels, np.roll(levels, 85), np.roll(levels, 170)], axis=1).reshape(16, 16, 3)  # every level
    x = img.astype(np.float32)
    ref = x - CAFFE_MEAN_BGR if mode == "caffe" else (x[..., ::-1] / 255.0 - TV_MEAN_RGB) / TV_STD_RGB
    np.testing.assert_array_equal(normalise(img, mode), ref.transpose(2, 0, 1))
    np.testing.assert_array_equal(normalise(img[:, ::-1], mode), ref[:, ::-1].transpose(2, 0, 1))  # a mirrored view


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prediction processes are forked on Linux only")
def test_ctrl_c_stops_the_processes_without_a_traceback(files: dict) -> None:
    import signal
    import time

    many = [str(p) for p in files["images"]] * 5000  # seconds of work: it is interrupted long before the end
    proc = subprocess.Popen([sys.executable, "-m", "kdwsd.cli", "predict", str(files["student"]), *many,
                             "--device", "cpu", "--processes", "2", "--batch-size", "8"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    children_file = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    deadline, children = time.monotonic() + 120, []
    while len(children) < 2 and proc.poll() is None and time.monotonic() < deadline:  # forked one after the other
        time.sleep(0.1)
        children = children_file.read_text().split() if children_file.exists() else []
    assert len(children) == 2, "the prediction processes did not start"
    time.sleep(0.5)  # labelling
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    for pid in children:  # no orphan left behind
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
