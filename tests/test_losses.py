"""Each loss against a hand computation (values worked out with math, not with the code under test)."""

import math

import pytest
import torch

from kdwsd.losses import feature_distillation_loss, prediction_distillation_loss, sigmoid_bce, wsddn_bce


def test_wsddn_bce_hand_computed_sum_over_classes_divided_by_batch():
    s = torch.tensor([[0.9, 0.2], [0.5, 0.00001]])
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # image 1: -log 0.9 - log 0.8 ; image 2: -log 0.5 - log(max(1e-5, 1e-4)) (clamped at 1e-4)
    expected = (-math.log(0.9) - math.log(0.8) - math.log(0.5) - math.log(1e-4)) / 2
    assert wsddn_bce(s, y).item() == pytest.approx(expected, rel=1e-5)


def test_wsddn_bce_clamps_both_sides():
    s = torch.tensor([[1.0, 0.0]])
    y = torch.tensor([[0.0, 1.0]])
    assert wsddn_bce(s, y).item() == pytest.approx(-2 * math.log(1e-4), rel=1e-5)


def test_sigmoid_bce_hand_computed():
    z = torch.tensor([[0.0, 2.0, -1.0]])
    y = torch.tensor([[1.0, 0.0, 0.5]])
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    expected = -math.log(0.5) - math.log(1 - sig(2.0)) - (0.5 * math.log(sig(-1.0)) + 0.5 * math.log(1 - sig(-1.0)))
    assert sigmoid_bce(z, y).item() == pytest.approx(expected, rel=1e-6)
    # divided by the batch size, not by the number of classes
    assert sigmoid_bce(z.repeat(4, 1), y.repeat(4, 1)).item() == pytest.approx(expected, rel=1e-6)


def test_prediction_distillation_uses_tau_and_stops_teacher_gradient():
    z = torch.tensor([[2.0, -4.0]], requires_grad=True)
    tau = torch.tensor([0.2, 0.5], requires_grad=True)
    p_t = torch.tensor([[0.7, 0.1]], requires_grad=True)
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    a, b = sig(2.0 * 0.2), sig(-4.0 * 0.5)
    expected = -(0.7 * math.log(a) + 0.3 * math.log(1 - a)) - (0.1 * math.log(b) + 0.9 * math.log(1 - b))
    loss = prediction_distillation_loss(z, tau, p_t)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert p_t.grad is None
    # d/dtau_k = (sigma(z_k tau_k) - p_k) * z_k
    assert tau.grad[0].item() == pytest.approx((a - 0.7) * 2.0, rel=1e-5)
    assert tau.grad[1].item() == pytest.approx((b - 0.1) * -4.0, rel=1e-5)


def test_feature_distillation_is_half_squared_error_over_rois():
    hs = torch.tensor([[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]], requires_grad=True)
    ht = torch.tensor([[0.0, 2.0], [1.0, 1.0], [3.0, 1.0]])
    expected = (1 + 0 + 1 + 1 + 0 + 4) / (2 * 3)
    loss = feature_distillation_loss(hs, ht)
    assert loss.item() == pytest.approx(expected)
    loss.backward()
    assert torch.allclose(hs.grad, (hs - ht).detach() / 3)


def test_feature_distillation_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match=r"student\.hidden must equal teacher\.hidden"):
        feature_distillation_loss(torch.zeros(2, 3), torch.zeros(2, 4))


def test_wsddn_bce_gradient_is_caffes_even_where_clamped():
    # Caffe CrossEntropyLoss backward: dL/ds = -(y / max(s, eps) - (1 - y) / max(1 - s, eps)) / B
    eps, b = 1e-4, 2
    s = torch.tensor([[1e-6, 0.3, 1 - 1e-6], [1e-6, 0.3, 1 - 1e-6]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    loss = wsddn_bce(s, y, eps)
    expected_value = -(math.log(eps) + math.log(0.3) + math.log(eps) + math.log(1 - 1e-6) + math.log(0.7)
                       + math.log(1 - 1e-6)) / b  # fmt: skip
    assert loss.item() == pytest.approx(expected_value, rel=1e-6)
    loss.backward()
    expected = torch.tensor([
        [-1 / eps, -1 / 0.3, 1 / eps],  # y=1 at s<eps: -1/eps (clamped); y=0 at 1-s<eps: +1/eps (clamped)
        [1 / (1 - 1e-6), 1 / 0.7, -1 / (1 - 1e-6)],  # y=0 at s<eps: unclamped 1/(1-s); y=1 near 1: -1/s
    ], dtype=torch.float64) / b  # fmt: skip
    assert torch.allclose(s.grad, expected, rtol=1e-6)
    assert s.grad[0, 0].item() == pytest.approx(-5000.0)  # -1/(1e-4 * 2), not 0 as a plain clamp gives
