import pytest
import torch
from torch import nn

from model.activations import ACTIVATION_TYPES, Maxout
from model.architectures import (
    ARCHITECTURES,
    ArchitectureError,
    build_model,
    count_parameters,
    maxout_architectures,
)


def test_torchvision_imports_with_its_compiled_operators() -> None:
    # A torch/torchvision mismatch fails here ("operator torchvision::nms does not exist").
    import torchvision
    from torchvision.ops import nms

    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    assert nms(boxes, torch.tensor([0.9, 0.8]), 0.5).tolist() == [0]
    assert torchvision.__version__


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
@pytest.mark.parametrize("in_channels", [1, 3])
def test_every_architecture_builds_with_the_requested_shape(
    architecture: str, in_channels: int
) -> None:
    model = build_model(architecture, num_classes=5, in_channels=in_channels, activation="elu")
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, in_channels, 32, 32))
    assert out.shape == (2, 5)
    kinds = {type(m) for m in model.modules() if isinstance(m, ACTIVATION_TYPES)}
    assert kinds == {nn.ELU}, f"{architecture} kept activations {kinds}"


@pytest.mark.heavy
@pytest.mark.parametrize("architecture", ["resnet18", "resnet50"])
def test_resnets_get_one_prelu_per_call_site(architecture: str) -> None:
    model = build_model(architecture, num_classes=3, in_channels=3, activation="prelu")
    model.train()
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    prelus = [m for m in model.modules() if isinstance(m, nn.PReLU)]
    assert len({id(m) for m in prelus}) == len(prelus)
    assert all(m.weight.grad is not None for m in prelus)


def test_simple_cnn_width_and_depth_are_configurable() -> None:
    model = build_model("simple_cnn", num_classes=2, in_channels=1, width=4, depth=2)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 4, 8, 8]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"architecture": "vgg99"},
            "unknown architecture 'vgg99'; valid choices: simple_cnn, resnet18",
        ),
        ({"architecture": "resnet18", "width": 8}, "resnet18 does not take option"),
        ({"architecture": "simple_cnn", "depth": 9}, "depth must be in 1..6"),
        ({"architecture": "simple_cnn", "in_channels": 4}, "in_channels must be 1 or 3"),
    ],
)
def test_bad_architecture_requests_fail_clearly(kwargs: dict, message: str) -> None:
    args = {"num_classes": 3, "in_channels": 3, **kwargs}
    with pytest.raises(ArchitectureError, match=message):
        build_model(**args)


@pytest.mark.heavy
@pytest.mark.parametrize("architecture", maxout_architectures())
def test_maxout_widens_every_conv_before_an_activation(architecture: str) -> None:
    model = build_model(architecture, num_classes=4, in_channels=3, activation="maxout:3")
    assert not [m for m in model.modules() if isinstance(m, ACTIVATION_TYPES)]
    maxouts = [m for m in model.modules() if isinstance(m, Maxout)]
    assert maxouts and all(m.pieces == 3 for m in maxouts)
    model.train()
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 4)
    out.sum().backward()
    plain = build_model(architecture, num_classes=4, in_channels=3, activation="relu")
    # Convs feeding a Maxout have 3x the output channels (and so about 3x the weights).
    assert count_parameters(model) > 2 * count_parameters(plain)


def test_simple_cnn_maxout_blocks_are_conv_bn_max_with_k_times_the_channels() -> None:
    model = build_model(
        "simple_cnn", num_classes=2, in_channels=1, activation="maxout:2", width=4, depth=2
    )
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [c.out_channels for c in convs] == [8, 8, 16, 16]
    assert [c.in_channels for c in convs] == [1, 4, 4, 8]  # the max halves them again
    assert [n.num_features for n in norms] == [8, 8, 16, 16]
    plain = build_model("simple_cnn", num_classes=2, in_channels=1, width=4, depth=2)
    # conv weights 2x, BN 2x, the classifier unchanged: a known count, reported per run.
    assert count_parameters(model) == 2 * 9 * (1 * 4 + 4 * 4 + 4 * 8 + 8 * 8) + 2 * 2 * (
        4 + 4 + 8 + 8
    ) + (8 * 2 + 2)
    assert count_parameters(plain) == 9 * (1 * 4 + 4 * 4 + 4 * 8 + 8 * 8) + 2 * (4 + 4 + 8 + 8) + (
        8 * 2 + 2
    )


@pytest.mark.parametrize("architecture", sorted(set(ARCHITECTURES) - set(maxout_architectures())))
def test_maxout_elsewhere_names_the_architectures_that_support_it(architecture: str) -> None:
    with pytest.raises(ArchitectureError) as info:
        build_model(architecture, num_classes=2, in_channels=3, activation="maxout")
    assert f"maxout:2 is not supported by {architecture}" in str(info.value)
    assert "simple_cnn, resnet18, resnet34, resnet50" in str(info.value)
