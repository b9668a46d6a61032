import pytest
import torch
from torch import nn

from model.activations import (
    ACTIVATIONS,
    ActivationSpecError,
    Maxout,
    create_activation,
    parse_activation,
    swap_activations,
)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_builds_runs_and_backpropagates(name: str) -> None:
    act = create_activation(name, channels=4)
    # A widening activation (Maxout) takes ``pieces`` input channels per output channel.
    pieces = parse_activation(name).pieces
    x = torch.randn(3, 4 * pieces, 5, 5, requires_grad=True)
    act.train()
    y = act(x)
    assert y.shape == (3, 4, 5, 5)
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_maxout_takes_the_max_over_each_group_of_k_channels() -> None:
    # Pieces come in k blocks of C channels: unit c takes channels c, C + c, ...
    x = torch.tensor([1.0, 5.0, -2.0, 3.0, -1.0, -4.0]).view(1, 6, 1, 1)
    assert create_activation("maxout:3")(x).flatten().tolist() == [1.0, 5.0]
    assert create_activation("maxout")(x).flatten().tolist() == [3.0, 5.0, -2.0]
    maxout = create_activation("maxout:2")
    assert isinstance(maxout, Maxout) and maxout.pieces == 2
    assert parse_activation("maxout").pieces == 2 and parse_activation("relu").pieces == 1


def test_swap_refuses_maxout_because_it_must_widen_the_layer_before() -> None:
    with pytest.raises(ActivationSpecError, match="maxout:2 takes the max over 2 pieces"):
        swap_activations(nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU()), "maxout")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("leaky_relu:0.1", (0.1,)),
        ("leaky_relu", (0.01,)),
        ("elu:1.0", (1.0,)),
        ("rrelu:0.125:0.333", (0.125, 0.333)),
        ("rrelu:0.2", (0.2, 1 / 3)),
        ("ReLU", ()),
    ],
)
def test_spec_parameters_parse(spec: str, expected: tuple[float, ...]) -> None:
    assert parse_activation(spec).values == pytest.approx(expected)


def test_spec_parameters_reach_the_module() -> None:
    assert create_activation("leaky_relu:0.2").negative_slope == pytest.approx(0.2)
    rrelu = create_activation("rrelu:0.1:0.2")
    assert (rrelu.lower, rrelu.upper) == pytest.approx((0.1, 0.2))
    assert create_activation("prelu:0.1", channels=7).weight.shape == (7,)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("swish2", "unknown activation 'swish2'; valid forms: relu, relu6, leaky_relu:slope=0.01"),
        ("leaky_relu:abc", "parameter slope must be a number"),
        ("leaky_relu:0.1:0.2", "takes at most 1 parameter"),
        ("leaky_relu:-1", "out of range"),
        ("elu:nan", "out of range"),
        ("rrelu:0.5:0.1", "lower <= upper"),
        ("relu:1", "takes at most 0 parameter"),
        ("maxout:2.5", "k must be a whole number, got 2.5"),
        ("maxout:1", r"k=1 is out of range \[2"),
    ],
)
def test_bad_specs_name_the_problem_and_the_valid_forms(spec: str, message: str) -> None:
    with pytest.raises(ActivationSpecError, match=message.replace("(", r"\(")):
        parse_activation(spec)


def test_unknown_name_lists_every_registered_name() -> None:
    with pytest.raises(ActivationSpecError) as info:
        parse_activation("nope")
    for name in ACTIVATIONS:
        assert name in str(info.value)


class _Shared(nn.Module):
    """One activation module reused at two call sites with different channel counts."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(4, 6, 1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.b(self.act(self.a(x))))


def test_swap_replaces_every_activation_with_fresh_instances() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Sequential(nn.Conv2d(4, 5, 3), nn.GELU()))
    count = swap_activations(net, "leaky_relu:0.2")
    assert count == 2
    acts = [m for m in net.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 2 and acts[0] is not acts[1]
    assert all(a.negative_slope == pytest.approx(0.2) for a in acts)


def test_swap_gives_prelu_the_channel_count_of_its_place() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 9, 3), nn.ReLU())
    swap_activations(net, "prelu", example_input=torch.zeros(1, 3, 8, 8))
    assert [m.weight.numel() for m in net.modules() if isinstance(m, nn.PReLU)] == [4, 9]


def test_swap_to_prelu_needs_an_example_input() -> None:
    with pytest.raises(ActivationSpecError, match="example_input"):
        swap_activations(nn.Sequential(nn.ReLU()), "prelu")


def test_swap_refuses_per_channel_on_a_module_shared_across_channel_counts() -> None:
    with pytest.raises(ActivationSpecError, match=r"'act' is reused with channel counts \[4, 6\]"):
        swap_activations(_Shared(), "prelu", example_input=torch.zeros(1, 3, 4, 4))


def test_swap_leaves_gating_sigmoids_alone() -> None:
    net = nn.Sequential(nn.ReLU(), nn.Sigmoid(), nn.Hardsigmoid())
    assert swap_activations(net, "silu") == 1
    assert isinstance(net[1], nn.Sigmoid) and isinstance(net[2], nn.Hardsigmoid)
