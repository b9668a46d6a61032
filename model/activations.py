"""Activation registry: spec strings such as ``leaky_relu:0.1`` -> fresh ``nn.Module``s.

Like timm's ``create_act.py``, one table maps names to constructors. A spec is the name
followed by optional ``:``-separated numeric parameters. ``swap_activations`` replaces the
activations inside any module, torchvision models included.

``maxout[:k]`` is the one registered activation that is not element-wise: a Maxout unit is
the maximum over k linear pieces, so the layer before it must produce k times the channels.
Its spec reports ``pieces == k``; architectures widen the conv (and its norm) before it, and
``swap_activations`` refuses it because an in-place replacement cannot widen that layer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

# The activations a model may contain and that ``swap_activations`` replaces. Gating
# non-linearities (Sigmoid, Hardsigmoid in squeeze-excitation blocks) are not activations
# in this sense and are left alone.
ACTIVATION_TYPES: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.RReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Hardswish,
    nn.Softplus,
)


class ActivationSpecError(ValueError):
    """An activation spec names no registered activation or carries bad parameters."""


class Maxout(nn.Module):
    """Channel-wise Maxout (Goodfellow et al., 2013): ``(N, k*C, ...) -> (N, C, ...)``.

    The widened layer before it computes the k pieces as k blocks of C channels: output
    channel ``c`` is the maximum of input channels ``c, C + c, ..., (k-1)*C + c``. Contiguous
    blocks export to ONNX as Split + Max, with no Reshape whose shape depends on the batch
    (onnxruntime's int8 quantisation needs every Reshape shape to be static).
    """

    def __init__(self, pieces: int) -> None:
        super().__init__()
        self.pieces = pieces

    def grouped(self, x: torch.Tensor) -> torch.Tensor:
        """The input as ``(N, C, k, ...)``: its pieces on axis 2."""
        return torch.stack(x.chunk(self.pieces, dim=1), dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return functools.reduce(torch.maximum, x.chunk(self.pieces, dim=1))

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}"


@dataclass(frozen=True)
class Param:
    name: str
    default: float
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class ActivationDef:
    name: str
    build: Callable[[Sequence[float], int | None], nn.Module]
    params: tuple[Param, ...] = ()
    per_channel: bool = False  # needs the channel count of the place it sits in
    widens: bool = False  # takes k pieces per unit: the layer before it needs k x channels
    summary: str = ""

    @property
    def form(self) -> str:
        return ":".join([self.name, *(f"{p.name}={p.default:g}" for p in self.params)])


@dataclass(frozen=True)
class ActivationSpec:
    """A parsed spec: a registered name and its full parameter values."""

    name: str
    values: tuple[float, ...]

    @property
    def definition(self) -> ActivationDef:
        return ACTIVATIONS[self.name]

    @property
    def pieces(self) -> int:
        """How many input channels each output channel takes (k for Maxout, else 1)."""
        return int(self.values[0]) if self.definition.widens else 1

    def __str__(self) -> str:
        return ":".join([self.name, *(f"{v:g}" for v in self.values)])


def _prelu(values: Sequence[float], channels: int | None) -> nn.Module:
    if channels is None:
        raise ActivationSpecError("prelu is per-channel and needs the channel count")
    return nn.PReLU(num_parameters=channels, init=values[0])


def _rrelu(values: Sequence[float], _: int | None) -> nn.Module:
    lower, upper = values
    if lower > upper:
        raise ActivationSpecError(f"rrelu needs lower <= upper, got {lower:g} > {upper:g}")
    return nn.RReLU(lower=lower, upper=upper)


def _maxout(values: Sequence[float], _: int | None) -> nn.Module:
    (pieces,) = values
    if pieces != int(pieces):
        raise ActivationSpecError(f"maxout: parameter k must be a whole number, got {pieces:g}")
    return Maxout(int(pieces))


_NON_NEGATIVE = 0.0
ACTIVATIONS: dict[str, ActivationDef] = {
    d.name: d
    for d in (
        ActivationDef("relu", lambda v, c: nn.ReLU(), summary="max(0, x)"),
        ActivationDef("relu6", lambda v, c: nn.ReLU6(), summary="min(max(0, x), 6)"),
        ActivationDef(
            "leaky_relu",
            lambda v, c: nn.LeakyReLU(negative_slope=v[0]),
            (Param("slope", 0.01, _NON_NEGATIVE, 1.0),),
            summary="x if x > 0 else slope * x",
        ),
        ActivationDef(
            "prelu",
            _prelu,
            (Param("init", 0.25, _NON_NEGATIVE, 1.0),),
            per_channel=True,
            summary="leaky ReLU with a learnable slope per channel",
        ),
        ActivationDef(
            "rrelu",
            _rrelu,
            (Param("lower", 1 / 8, _NON_NEGATIVE, 1.0), Param("upper", 1 / 3, _NON_NEGATIVE, 1.0)),
            summary="random slope in [lower, upper] in training, their mean in eval",
        ),
        ActivationDef(
            "elu",
            lambda v, c: nn.ELU(alpha=v[0]),
            (Param("alpha", 1.0, _NON_NEGATIVE),),
            summary="x if x > 0 else alpha * (exp(x) - 1)",
        ),
        ActivationDef("selu", lambda v, c: nn.SELU(), summary="scaled ELU (self-normalising)"),
        ActivationDef(
            "celu",
            lambda v, c: nn.CELU(alpha=v[0]),
            (Param("alpha", 1.0, 1e-6),),
            summary="continuously differentiable ELU",
        ),
        ActivationDef("gelu", lambda v, c: nn.GELU(), summary="x * Phi(x)"),
        ActivationDef("gelu_tanh", lambda v, c: nn.GELU(approximate="tanh"), summary="tanh GELU"),
        ActivationDef("silu", lambda v, c: nn.SiLU(), summary="x * sigmoid(x) (swish)"),
        ActivationDef("mish", lambda v, c: nn.Mish(), summary="x * tanh(softplus(x))"),
        ActivationDef("hardswish", lambda v, c: nn.Hardswish(), summary="x * relu6(x + 3) / 6"),
        ActivationDef(
            "softplus",
            lambda v, c: nn.Softplus(beta=v[0]),
            (Param("beta", 1.0, 1e-6),),
            summary="log(1 + exp(beta * x)) / beta",
        ),
        ActivationDef(
            "maxout",
            _maxout,
            (Param("k", 2, 2, 16),),
            widens=True,
            summary="max over k linear pieces (the conv before it gets k x channels)",
        ),
    )
}


def valid_forms() -> str:
    return ", ".join(d.form for d in ACTIVATIONS.values())


def parse_activation(spec: str | ActivationSpec) -> ActivationSpec:
    """Parse ``name[:p1[:p2]]``; missing parameters take their defaults."""
    if isinstance(spec, ActivationSpec):
        return spec
    name, *raw = spec.strip().lower().split(":")
    definition = ACTIVATIONS.get(name)
    if definition is None:
        raise ActivationSpecError(f"unknown activation {name!r}; valid forms: {valid_forms()}")
    if len(raw) > len(definition.params):
        raise ActivationSpecError(
            f"{name} takes at most {len(definition.params)} parameter(s): "
            f"expected {definition.form!r}, got {spec!r}"
        )
    values = []
    for param, text in zip(definition.params, raw + [""] * len(definition.params), strict=False):
        if text == "":
            values.append(param.default)
            continue
        try:
            value = float(text)
        except ValueError:
            raise ActivationSpecError(
                f"{name}: parameter {param.name} must be a number, got {text!r} "
                f"(expected form {definition.form!r})"
            ) from None
        if not _in_range(value, param):
            raise ActivationSpecError(
                f"{name}: parameter {param.name}={value:g} is out of range "
                f"[{param.minimum if param.minimum is not None else '-inf'}, "
                f"{param.maximum if param.maximum is not None else 'inf'}]"
            )
        values.append(value)
    parsed = ActivationSpec(name, tuple(values))
    definition.build(parsed.values, 1)  # validate cross-parameter constraints now
    return parsed


def _in_range(value: float, param: Param) -> bool:
    if value != value:  # NaN
        return False
    if param.minimum is not None and value < param.minimum:
        return False
    return param.maximum is None or value <= param.maximum


def create_activation(spec: str | ActivationSpec, channels: int | None = None) -> nn.Module:
    """A fresh activation module; ``channels`` is required for per-channel activations."""
    parsed = parse_activation(spec)
    return parsed.definition.build(parsed.values, channels)


def swap_activations(
    module: nn.Module,
    spec: str | ActivationSpec,
    example_input: torch.Tensor | None = None,
) -> int:
    """Replace every activation inside ``module`` with a fresh one from ``spec``.

    Per-channel activations (``prelu``) get the channel count of the tensor each
    activation sees, measured with one forward pass of ``example_input`` (required for
    them). An activation module reused at call sites with different channel counts cannot
    be given one per-channel parameter vector and raises. Returns the number replaced.
    """
    parsed = parse_activation(spec)
    if parsed.definition.widens:
        raise ActivationSpecError(
            f"{parsed} takes the max over {parsed.pieces} pieces of the layer before it, so it "
            "cannot replace an activation in place; build the model with "
            "model.architectures.build_model on an architecture that supports Maxout"
        )
    targets = [
        (name, child)
        for name, child in module.named_modules()
        if name and isinstance(child, ACTIVATION_TYPES)
    ]
    channels: dict[str, int] = {}
    if parsed.definition.per_channel:
        if example_input is None:
            raise ActivationSpecError(
                f"{parsed.name} is per-channel: swap_activations needs example_input "
                "to measure the channel count at each activation"
            )
        channels = _measure_channels(module, targets, example_input)
    for name, _ in targets:
        parent_name, _, attr = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, attr, create_activation(parsed, channels.get(name)))
    return len(targets)


def _measure_channels(
    module: nn.Module,
    targets: list[tuple[str, nn.Module]],
    example_input: torch.Tensor,
) -> dict[str, int]:
    seen: dict[str, set[int]] = {name: set() for name, _ in targets}
    handles = []
    for name, child in targets:

        def record(_m: nn.Module, args: tuple[torch.Tensor, ...], name: str = name) -> None:
            seen[name].add(args[0].shape[1] if args[0].dim() > 1 else 1)

        handles.append(child.register_forward_pre_hook(record))
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            module(example_input)
    finally:
        module.train(was_training)
        for handle in handles:
            handle.remove()
    result = {}
    for name, counts in seen.items():
        if len(counts) > 1:
            raise ActivationSpecError(
                f"activation {name!r} is reused with channel counts {sorted(counts)}; a "
                "per-channel activation needs one module per call site"
            )
        # An activation the example input never reached keeps one shared parameter.
        result[name] = counts.pop() if counts else 1
    return result
