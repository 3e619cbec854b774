"""Convolutional backbones that end at stride 16 (VGG16's conv5_3, before pool5)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

__all__ = ["VGG16_FC", "Backbone", "build_backbone", "load_vgg16_state", "vgg16"]


class Backbone(nn.Module):
    """A feature extractor with a known output stride and channel count.

    ``forward(x: float[B, 3, H, W]) -> float[B, out_channels, ceil(H / 16), ceil(W / 16)]`` (approximately;
    the exact size follows the pooling layers).
    """

    def __init__(self, features: nn.Module, out_channels: int, stride: int = 16) -> None:
        super().__init__()
        self.features = features
        self.out_channels = out_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def _conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def small_convnet(widths: tuple[int, ...] = (16, 32, 64, 96)) -> Backbone:
    """A CPU-friendly VGG-shaped net with batch norm, stride 16 like VGG16's conv5_3 (no pool5).

    A stride-2 stem conv, then per width a conv + 2× max-pool (three times), then a last conv. The RoI
    head, ``spatial_scale = 1/16`` and box mapping are therefore the same as with VGG16.
    """
    layers: list[nn.Module] = [
        nn.Conv2d(3, widths[0], 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(True)
    ]
    cin = widths[0]
    for w in widths[1:]:
        layers += [*_conv_bn(cin, w), nn.MaxPool2d(2, ceil_mode=True)]
        cin = w
    layers += _conv_bn(cin, cin)
    return Backbone(nn.Sequential(*layers), out_channels=cin)


def load_vgg16_state(pretrained: str) -> dict[str, torch.Tensor] | None:
    """The torchvision VGG16 state dict named by ``pretrained`` (None for ``"none"``).

    Args:
        pretrained: ``"none"``; ``"imagenet"`` (torchvision's ``VGG16_Weights.IMAGENET1K_V1``, loaded from
            the torch hub cache — offline machines must place the file there first); or a path to a
            state-dict file of ``torchvision.models.vgg16`` (keys ``features.*``, ``classifier.*``).
    """
    if pretrained == "none":
        return None
    if pretrained == "imagenet":
        from torchvision.models import VGG16_Weights

        weights = VGG16_Weights.IMAGENET1K_V1
        hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"
        try:
            return weights.get_state_dict(progress=True, check_hash=True)
        except Exception as exc:  # no network, bad proxy, corrupt file...
            raise RuntimeError(
                f"could not load ImageNet VGG16 weights ({exc}). Download {weights.url} and put it in "
                f"{hub}/ (or set TORCH_HOME), or set 'pretrained' to a local state-dict path, or 'none'."
            ) from exc
    path = Path(pretrained)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights file not found: {path} (set 'pretrained' to a "
                                "torchvision VGG16 state-dict file, 'imagenet' or 'none')")  # fmt: skip
    return torch.load(path, map_location="cpu", weights_only=True)


def vgg16(state: dict[str, torch.Tensor] | None = None) -> Backbone:
    """torchvision VGG16 conv1_1 … conv5_3 + ReLU (pool5 removed), stride 16, 512 channels.

    Args:
        state: a full torchvision VGG16 state dict (see :func:`load_vgg16_state`), or None for random init.
    """
    from torchvision.models import vgg16 as tv_vgg16

    net = tv_vgg16(weights=None)
    if state is not None:
        net.load_state_dict(state)
    features = nn.Sequential(*list(net.features.children())[:-1])  # drop pool5: conv5_3 at stride 16
    return Backbone(features, out_channels=512)


# torchvision VGG16 classifier layers -> the RoI head's fc layers (Caffe's fc6 / fc7 of the same names).
VGG16_FC = {"fc6": "classifier.0", "fc7": "classifier.3"}


def build_backbone(
    name: str, pretrained: str = "none", widths: tuple[int, ...] | None = None
) -> tuple[Backbone, dict[str, torch.Tensor] | None]:
    """Backbone factory: ``vgg16`` (the paper's) or ``small`` (the CPU default).

    Returns:
        the backbone and, for a pretrained ``vgg16``, the pretrained fc6 / fc7 parameters keyed like the
        RoI head's (``fc6.weight`` float[4096, 25088], ``fc6.bias``, ``fc7.weight`` float[4096, 4096],
        ``fc7.bias``; torchvision's ``classifier.0`` / ``classifier.3``), else None. In the authors' Caffe
        nets fc6 / fc7 keep VGG16's names and shapes and so load from the ImageNet model too.
    """
    if name == "vgg16":
        state = load_vgg16_state(pretrained)
        fc = None
        if state is not None:
            fc = {f"{ours}.{p}": state[f"{tv}.{p}"] for ours, tv in VGG16_FC.items() for p in ("weight", "bias")}
        return vgg16(state), fc
    if name == "small":
        if pretrained != "none":
            raise ValueError("backbone 'small' has no pretrained weights: set pretrained: none")
        return small_convnet(tuple(widths) if widths else (16, 32, 64, 96)), None
    raise ValueError(f"unknown backbone '{name}' (expected 'vgg16' or 'small')")
