"""Architecture registry: name -> builder(num_classes, in_channels, activation, **options).

Every builder returns a randomly initialised network (no weights are ever downloaded) whose
activations all come from the given spec.

Maxout (``maxout:k``) is built into the architecture rather than swapped in: every
conv -> norm -> activation becomes a conv with k times the output channels, a norm over
them, and a max over each group of k (``model.activations.Maxout``). ``simple_cnn`` and the
ResNets support it; the MobileNet/EfficientNet blocks do not (see ``_maxout_unsupported``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torchvision.models as tvm
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from model.activations import (
    ActivationSpec,
    Maxout,
    create_activation,
    parse_activation,
    swap_activations,
)


class ArchitectureError(ValueError):
    """Unknown architecture or bad options."""


Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class CamLayers:
    """The modules a class-activation map needs, by their dotted names in the network.

    ``features`` outputs the last convolutional feature map; the network then pools it
    globally (average) and applies ``classifier``, a single ``nn.Linear``. Export checks
    that relation numerically before it relies on it.
    """

    features: str
    classifier: str


@dataclass(frozen=True)
class ArchitectureDef:
    name: str
    build: Builder
    options: dict[str, Any] = field(default_factory=dict)  # option name -> default
    summary: str = ""
    maxout: bool = False  # builds conv -> norm -> Maxout blocks for ``maxout:k`` specs
    # None: the head is not global pooling plus one linear layer (MobileNetV3's head has
    # a hidden layer), so the export carries no class-activation maps.
    cam: CamLayers | None = None


# --- simple_cnn -------------------------------------------------------------------------


class ConvBnAct(nn.Sequential):
    """Conv-BN-Act; for Maxout the conv and BN carry ``pieces`` channels per output unit."""

    def __init__(self, in_ch: int, out_ch: int, activation: ActivationSpec) -> None:
        pieces = activation.pieces
        super().__init__(
            nn.Conv2d(in_ch, out_ch * pieces, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch * pieces),
            create_activation(activation, out_ch),
        )


class SimpleCNN(nn.Module):
    """VGG-style stages of two Conv-BN-Act blocks and a 2x2 max-pool, for 28-128 px inputs.

    ``width`` is the first stage's channel count; each of the ``depth`` stages doubles it.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        activation: ActivationSpec,
        width: int = 32,
        depth: int = 3,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for stage in range(depth):
            out = width * 2**stage
            layers += [ConvBnAct(channels, out, activation), ConvBnAct(out, out, activation)]
            layers.append(nn.MaxPool2d(2))
            channels = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)
        return self.classifier(self.dropout(x))


def _simple_cnn(
    num_classes: int,
    in_channels: int,
    activation: ActivationSpec,
    width: int = 32,
    depth: int = 3,
    dropout: float = 0.2,
) -> nn.Module:
    if not 1 <= depth <= 6:
        raise ArchitectureError(f"simple_cnn depth must be in 1..6, got {depth}")
    if width < 1:
        raise ArchitectureError(f"simple_cnn width must be positive, got {width}")
    return SimpleCNN(num_classes, in_channels, activation, width, depth, dropout)


# --- torchvision ------------------------------------------------------------------------
# torchvision's ResNet blocks call one ``self.relu`` module two or three times, with
# different channel counts in Bottleneck. A per-channel activation (PReLU) needs one module
# per call site, so these blocks give each call its own.


class _BasicBlock(BasicBlock):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        del self.relu
        self.act1 = nn.ReLU(inplace=True)
        self.act2 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return _residual_act(self.act2, out, identity)


class _Bottleneck(Bottleneck):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        del self.relu
        self.act1 = nn.ReLU(inplace=True)
        self.act2 = nn.ReLU(inplace=True)
        self.act3 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return _residual_act(self.act3, out, identity)


def _residual_act(act: nn.Module, out: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
    if isinstance(act, Maxout):
        # Each piece is (its widened conv-BN branch) + the shared identity, and
        # max_j(a_j + x) == max_j(a_j) + x: the skip term needs no copies.
        return act(out) + identity
    return act(out + identity)


def _resnet(block: type[BasicBlock | Bottleneck], layers: list[int]) -> Builder:
    def build(num_classes: int, in_channels: int, activation: ActivationSpec) -> nn.Module:
        model = ResNet(block, layers, num_classes=num_classes)
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        if activation.pieces > 1:
            return _resnet_maxout(model, activation)
        return _swapped(model, in_channels, activation)

    return build


def _resnet_maxout(model: ResNet, activation: ActivationSpec) -> ResNet:
    """Every conv -> BN -> act of the stem and the blocks becomes a widened conv -> BN -> Maxout."""
    triples: list[tuple[nn.Module, str, str, str]] = [(model, "conv1", "bn1", "relu")]
    for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
        for block in stage:
            count = 3 if isinstance(block, Bottleneck) else 2
            triples += [(block, f"conv{i}", f"bn{i}", f"act{i}") for i in range(1, count + 1)]
    for owner, conv_name, bn_name, act_name in triples:
        conv = getattr(owner, conv_name)
        setattr(owner, conv_name, _widened_conv(conv, activation.pieces))
        setattr(owner, bn_name, nn.BatchNorm2d(conv.out_channels * activation.pieces))
        setattr(owner, act_name, create_activation(activation, conv.out_channels))
    return model


def _widened_conv(conv: nn.Conv2d, pieces: int) -> nn.Conv2d:
    wide = nn.Conv2d(
        conv.in_channels,
        conv.out_channels * pieces,
        conv.kernel_size,  # type: ignore[arg-type]
        stride=conv.stride,  # type: ignore[arg-type]
        padding=conv.padding,  # type: ignore[arg-type]
        dilation=conv.dilation,  # type: ignore[arg-type]
        groups=conv.groups,
        bias=conv.bias is not None,
    )
    # The initialisation torchvision gives the ResNet convs it replaces.
    nn.init.kaiming_normal_(wide.weight, mode="fan_out", nonlinearity="relu")
    return wide


def _mobilenet_v3_small(
    num_classes: int, in_channels: int, activation: ActivationSpec
) -> nn.Module:
    model = tvm.mobilenet_v3_small(weights=None, num_classes=num_classes)
    first = model.features[0][0]
    model.features[0][0] = nn.Conv2d(
        in_channels, first.out_channels, 3, stride=2, padding=1, bias=False
    )
    return _swapped(model, in_channels, activation)


def _efficientnet_b0(num_classes: int, in_channels: int, activation: ActivationSpec) -> nn.Module:
    model = tvm.efficientnet_b0(weights=None, num_classes=num_classes)
    first = model.features[0][0]
    model.features[0][0] = nn.Conv2d(
        in_channels, first.out_channels, 3, stride=2, padding=1, bias=False
    )
    return _swapped(model, in_channels, activation)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters: what Maxout's k x wider convs cost, reported next to accuracy."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _swapped(model: nn.Module, in_channels: int, activation: ActivationSpec) -> nn.Module:
    example = torch.zeros(2, in_channels, 64, 64)
    swap_activations(model, activation, example_input=example)
    return model


_RESNET_CAM = CamLayers("layer4", "fc")

ARCHITECTURES: dict[str, ArchitectureDef] = {
    d.name: d
    for d in (
        ArchitectureDef(
            "simple_cnn",
            _simple_cnn,
            {"width": 32, "depth": 3, "dropout": 0.2},
            "compact VGG-style Conv-BN-Act network for 28-128 px",
            maxout=True,
            cam=CamLayers("features", "classifier"),
        ),
        ArchitectureDef(
            "resnet18",
            _resnet(_BasicBlock, [2, 2, 2, 2]),
            summary="torchvision ResNet-18",
            maxout=True,
            cam=_RESNET_CAM,
        ),
        ArchitectureDef(
            "resnet34",
            _resnet(_BasicBlock, [3, 4, 6, 3]),
            summary="torchvision ResNet-34",
            maxout=True,
            cam=_RESNET_CAM,
        ),
        ArchitectureDef(
            "resnet50",
            _resnet(_Bottleneck, [3, 4, 6, 3]),
            summary="torchvision ResNet-50",
            maxout=True,
            cam=_RESNET_CAM,
        ),
        ArchitectureDef(
            "mobilenet_v3_small", _mobilenet_v3_small, summary="torchvision MobileNetV3-Small"
        ),
        ArchitectureDef(
            "efficientnet_b0",
            _efficientnet_b0,
            summary="torchvision EfficientNet-B0",
            cam=CamLayers("features", "classifier.1"),  # classifier = Dropout, Linear
        ),
    )
}


def build_model(
    architecture: str,
    *,
    num_classes: int,
    in_channels: int,
    activation: str | ActivationSpec = "relu",
    **options: Any,
) -> nn.Module:
    """Build a registered architecture with every activation taken from ``activation``."""
    definition = ARCHITECTURES.get(architecture)
    if definition is None:
        raise ArchitectureError(
            f"unknown architecture {architecture!r}; valid choices: {', '.join(ARCHITECTURES)}"
        )
    unknown = set(options) - set(definition.options)
    if unknown:
        allowed = ", ".join(definition.options) or "none"
        raise ArchitectureError(
            f"{architecture} does not take option(s) {', '.join(sorted(unknown))}; "
            f"it takes: {allowed}"
        )
    if num_classes < 1:
        raise ArchitectureError(f"num_classes must be positive, got {num_classes}")
    if in_channels not in (1, 3):
        raise ArchitectureError(f"in_channels must be 1 or 3, got {in_channels}")
    spec = parse_activation(activation)
    if spec.definition.widens and not definition.maxout:
        raise ArchitectureError(_maxout_unsupported(architecture, spec))
    return definition.build(num_classes, in_channels, spec, **options)


def maxout_architectures() -> list[str]:
    return [name for name, d in ARCHITECTURES.items() if d.maxout]


def _maxout_unsupported(architecture: str, spec: ActivationSpec) -> str:
    # MobileNetV3 and EfficientNet put a depthwise conv (groups == channels) and a
    # squeeze-excitation gate between their activations; widening the conv before an
    # activation would widen the depthwise conv's groups and the gate with it, which is a
    # different network rather than a Maxout version of this one.
    return (
        f"{spec} is not supported by {architecture}: Maxout widens the conv before each "
        "activation, which is well defined only for plain conv -> norm -> activation blocks; "
        f"architectures that support it: {', '.join(maxout_architectures())}"
    )
