"""WSDDN and student contracts: shapes, the two softmax axes, masking, box mapping and flips."""

import math

import numpy as np
import pytest
import torch

from kdwsd.boxes import flip_boxes, map_boxes_floor, rois_with_batch_index, warp_boxes
from kdwsd.models.student import StudentClassifier
from kdwsd.models.teacher import WSDDN, objectness, wsddn_scores

SMALL = {"backbone": "small", "widths": (8, 8, 8, 8), "hidden": 16, "dropout": 0.0}


def _boxes(b, r, size, seed=0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(b, r, 2, generator=g) * (size / 2)
    wh = torch.rand(b, r, 2, generator=g) * (size / 2) + 4
    return torch.cat([xy, (xy + wh).clamp(max=size - 1)], dim=2)


def test_wsddn_output_shapes_and_masking():
    model = WSDDN(5, **SMALL).eval()
    b, r, size = 2, 6, 64
    mask = torch.ones(b, r, dtype=torch.bool)
    mask[1, 4:] = False
    out = model(torch.randn(b, 3, size, size), _boxes(b, r, size), torch.rand(b, r), mask)
    assert out.cls_logits.shape == (b, r, 5) and out.det_logits.shape == (b, r, 5)
    assert out.fc7.shape == (b, r, 16)
    region, image = wsddn_scores(out.cls_logits, out.det_logits, mask)
    assert region.shape == (b, r, 5) and image.shape == (b, 5)
    assert torch.all(region[1, 4:] == 0)
    assert torch.all((image > 0) & (image < 1))


def test_wsddn_softmax_axes_hand_built():
    # classification stream: softmax over classes (rows sum to 1); detection: softmax over regions.
    cls = torch.tensor([[[0.0, 0.0], [2.0, 0.0], [5.0, 5.0]]])  # [1, R=3, C=2]
    det = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [-100.0, 3.0]]])
    mask = torch.tensor([[True, True, False]])  # third region is padding
    region, image = wsddn_scores(cls, det, mask)
    sc = torch.softmax(cls, dim=2)
    # over the two valid regions only
    sd = torch.softmax(det[:, :2], dim=1)
    expected = (sc[:, :2] * sd).sum(dim=1)
    assert torch.allclose(image, expected)
    assert torch.allclose(torch.softmax(det[:, :2], dim=1).sum(dim=1), torch.ones(1, 2))
    assert region[0, 2].abs().sum() == 0
    # with equal detection logits each class score is the mean class probability over regions
    assert image[0, 1].item() == pytest.approx(0.5 * (0.5 + 1 / (1 + np.exp(2.0))), rel=1e-6)


def test_wsddn_temperature_sharpens_both_softmaxes():
    cls = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    det = torch.tensor([[[2.0, 0.0], [0.0, 0.0]]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    _, t1 = wsddn_scores(cls, det, mask)
    _, t05 = wsddn_scores(cls, det, mask, 0.5, 0.5)
    _, manual = wsddn_scores(cls * 2, det * 2, mask)
    assert torch.allclose(t05, manual)
    assert t05[0, 0] > t1[0, 0]


def test_objectness_modes():
    s = torch.tensor([[[0.1, 0.3], [0.2, 0.0]]])
    assert torch.allclose(objectness(s, "sum"), torch.tensor([[0.4, 0.2]]))
    assert torch.allclose(objectness(s, "max"), torch.tensor([[0.3, 0.2]]))
    with pytest.raises(ValueError):
        objectness(s, "mean")


def test_box_score_factor_scales_pooled_features():
    model = WSDDN(3, **SMALL, box_score_scale=10.0, box_score_bias=1.0).eval()
    fmap = torch.rand(1, 8, 4, 4)
    boxes = torch.tensor([[[0.0, 0.0, 63.0, 63.0]]])
    mask = torch.ones(1, 1, dtype=torch.bool)
    rois, _ = rois_with_batch_index(boxes, mask)
    pooled = model.head.pool(fmap, rois)
    a, _ = model.head(fmap, boxes, torch.tensor([[0.0]]), mask)
    b, _ = model.head(fmap, boxes, torch.tensor([[0.5]]), mask)
    assert torch.allclose(a, model.head.mlp(pooled * 1.0))
    assert torch.allclose(b, model.head.mlp(pooled * 6.0))


def test_student_logits_tau_and_roi_path():
    model = StudentClassifier(4, **SMALL, tau_init=0.2).eval()
    x = torch.randn(3, 3, 32, 32)
    assert model(x).shape == (3, 4)
    assert torch.allclose(model.tau, torch.full((4,), 0.2))
    mask = torch.tensor([[True, False], [True, True], [False, False]])
    fc7, flat = model.roi_features(x, _boxes(3, 2, 32), torch.ones(3, 2), mask)
    assert fc7.shape == (3, 16)
    assert flat.tolist() == [0, 2, 3]


def test_student_image_path_equals_roi_pool_of_whole_image():
    # pool5 == RoI pooling of the box spanning the whole conv map: stage-1 fc6/fc7 carry over to images.
    model = StudentClassifier(4, **SMALL).eval()
    x = torch.randn(1, 3, 112, 112)  # stride 16 -> 7x7 map; cells 0..6 <-> pixels 0..96 after rounding
    full = torch.tensor([[[0.0, 0.0, 96.0, 96.0]]])
    fc7, _ = model.roi_features(x, full, torch.ones(1, 1), torch.ones(1, 1, dtype=torch.bool))
    assert torch.allclose(model.fc8(fc7), model(x), atol=1e-5)


def test_warp_boxes_truncates_like_the_authors_data_layer():
    boxes = np.array([[10.0, 20.0, 99.0, 49.0]])
    out = warp_boxes(boxes, (50, 100), 672)  # H=50, W=100
    assert out.tolist() == [[67.0, 268.0, 665.0, 658.0]]  # int(10*6.72), int(20*13.44), int(99*6.72), int(49*13.44)
    assert warp_boxes(np.array([[0.0, 0.0, 200.0, 200.0]]), (50, 100), 64).max() == 63


def test_flip_boxes_inclusive_convention_and_involution():
    boxes = np.array([[0.0, 5.0, 9.0, 7.0], [3.0, 1.0, 3.0, 2.0]])
    flipped = flip_boxes(boxes, 10)
    assert flipped.tolist() == [[0.0, 5.0, 9.0, 7.0], [6.0, 1.0, 6.0, 2.0]]
    assert np.array_equal(flip_boxes(flipped, 10), boxes)
    t = torch.tensor(boxes)
    assert torch.equal(flip_boxes(t, 10), torch.tensor(flipped))


def test_flipped_box_covers_the_flipped_pixels():
    img = np.zeros((8, 12), bool)
    img[2:5, 1:4] = True  # box x1=1..x2=3, y1=2..y2=4
    flipped = flip_boxes(np.array([[1.0, 2.0, 3.0, 4.0]]), 12)[0].astype(int)
    ys, xs = np.nonzero(img[:, ::-1])
    assert [xs.min(), ys.min(), xs.max(), ys.max()] == flipped.tolist()


def test_map_boxes_floor_672_to_224():
    boxes = torch.tensor([[0.0, 2.0, 671.0, 335.0]])
    assert map_boxes_floor(boxes, 672, 224).tolist() == [[0.0, 0.0, 223.0, 111.0]]


def test_map_then_flip_commutes_up_to_floor():
    # Student boxes of a mirrored teacher frame = mapped mirrored teacher boxes (what the cache stores).
    b = torch.tensor([[30.0, 60.0, 333.0, 400.0]])
    mapped = map_boxes_floor(flip_boxes(b, 672), 672, 224)
    direct = flip_boxes(map_boxes_floor(b, 672, 224), 224)
    assert torch.all((mapped - direct).abs() <= 1)


def test_pretrained_vgg16_loads_fc6_fc7_into_teacher_and_student(tmp_path, caplog):
    # A random torchvision-layout VGG16 state dict stands in for the ImageNet file (same keys and shapes).
    import logging

    from torchvision.models import vgg16

    torch.manual_seed(0)
    state = vgg16(weights=None).state_dict()
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    del state
    state = torch.load(path, weights_only=True)
    conv_keys = [k for k in state if k.startswith("features.")]
    assert len(conv_keys) == 26  # 13 conv layers x (weight, bias)
    with caplog.at_level(logging.INFO, logger="kdwsd.models"):
        nets = [WSDDN(3, backbone="vgg16", pretrained=str(path), dropout=0.0),
                StudentClassifier(3, backbone="vgg16", pretrained=str(path), dropout=0.0)]  # fmt: skip
    assert caplog.text.count("initialised from the pretrained VGG16 classifier") == 2
    for net in nets:
        assert torch.equal(net.head.fc6.weight, state["classifier.0.weight"])
        assert torch.equal(net.head.fc6.bias, state["classifier.0.bias"])
        assert torch.equal(net.head.fc7.weight, state["classifier.3.weight"])
        assert torch.equal(net.head.fc7.bias, state["classifier.3.bias"])
        own = net.backbone.features.state_dict()
        assert len(own) == len(conv_keys)
        for k in conv_keys:
            assert torch.equal(own[k.removeprefix("features.")], state[k])
    del nets
    # hidden != 4096: the classifier does not fit, fc layers stay random (and it is logged)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="kdwsd.models"):
        other = WSDDN(3, backbone="vgg16", pretrained=str(path), hidden=64, dropout=0.0)
    assert "fc6/fc7 stay randomly initialised" in caplog.text and "hidden 64" in caplog.text
    assert other.head.fc6.weight.shape == (64, 512 * 7 * 7)
    assert torch.equal(other.backbone.features[0].weight, state["features.0.weight"])


def test_xavier_linear_is_caffes_fan_in_filler_not_glorot():
    from kdwsd.models.heads import caffe_xavier_bound, xavier_linear

    cin, cout = 4096, 20
    bound = math.sqrt(3 / cin)  # Caffe xavier, variance_norm FAN_IN (default)
    glorot = math.sqrt(6 / (cin + cout))
    assert caffe_xavier_bound(cin) == pytest.approx(bound)
    torch.manual_seed(0)
    layer = xavier_linear(cin, cout)
    w = layer.weight.detach()
    assert w.abs().max().item() <= bound
    assert w.abs().max().item() > 0.999 * bound  # 81920 uniform draws reach the bound
    assert w.abs().max().item() < glorot / 1.4  # Glorot would be ~1.41x wider here
    assert w.var().item() == pytest.approx(1 / cin, rel=0.02)  # U(-a, a) has variance a^2 / 3 = 1 / fan_in
    assert torch.all(layer.bias == 0)
