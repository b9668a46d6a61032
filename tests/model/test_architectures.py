import pytest
import torch
from torch import nn

from model.activations import ACTIVATION_TYPES
from model.architectures import ARCHITECTURES, ArchitectureError, build_model


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
