"""Dead units on a hand-built network whose dead channels are known in advance."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from model.activations import Maxout
from training.diagnostics import ActivationMonitor, summarize, warn_dead_layers


def known_net() -> nn.Module:
    """1x1 conv to 4 channels, in-place ReLU, then a linear layer and a LeakyReLU.

    Inputs are in [0, 1), so conv channel 0 (x - 10) and 2 (-x - 0.5) are never positive:
    dead. Channel 1 (x) is positive wherever x > 0; channel 3 (x - 0.5) about half the time.
    The linear layer's unit 0 is always negative (dead), unit 1 always positive.
    """
    conv = nn.Conv2d(1, 4, 1)
    linear = nn.Linear(4, 2)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 1.0, -1.0, 1.0]).view(4, 1, 1, 1))
        conv.bias.copy_(torch.tensor([-10.0, 0.0, -0.5, -0.5]))
        linear.weight.zero_()
        linear.bias.copy_(torch.tensor([-1.0, 2.0]))
    return nn.Sequential(
        conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(), linear, nn.LeakyReLU()
    )


def test_dead_fraction_sparsity_and_preactivation_stats() -> None:
    torch.manual_seed(0)
    x = torch.rand(6, 1, 5, 5) * 0.999 + 0.0005  # strictly inside (0, 1)
    model = known_net().eval()
    monitor = ActivationMonitor(model)
    with monitor.attach(), torch.no_grad():
        model(x[:3])
        model(x[3:])  # statistics accumulate over batches
    relu, leaky = monitor.results()
    assert (relu.layer, relu.kind, relu.channels) == ("1", "ReLU", 4)
    assert relu.dead_fraction == 0.5
    half = float((x <= 0.5).float().mean())
    assert relu.sparsity == pytest.approx((1 + 0 + 1 + half) / 4)
    preact = torch.cat([x - 10, x, -x - 0.5, x - 0.5], dim=1)
    assert relu.preact_mean == pytest.approx(float(preact.mean()), rel=1e-5)
    assert relu.preact_std == pytest.approx(float(preact.std(unbiased=False)), rel=1e-4)
    assert (leaky.kind, leaky.channels, leaky.dead_fraction, leaky.sparsity) == (
        "LeakyReLU",
        2,
        0.5,
        0.5,
    )
    assert summarize([relu, leaky])["dead_fraction"] == pytest.approx(0.5)


def test_hooks_are_removed_after_attach() -> None:
    model = known_net()
    monitor = ActivationMonitor(model)
    with monitor.attach():
        pass
    model(torch.rand(1, 1, 2, 2))
    assert monitor.results()[0].channels == 0  # nothing recorded outside attach()


def test_warning_over_threshold(caplog: pytest.LogCaptureFixture) -> None:
    model = known_net().eval()
    monitor = ActivationMonitor(model)
    with monitor.attach(), torch.no_grad():
        model(torch.rand(2, 1, 3, 3))
    stats = monitor.results()
    with caplog.at_level(logging.WARNING):
        assert warn_dead_layers(stats, threshold=0.4) == ["1", "5"]
    assert "50% of 4 channels are dead" in caplog.text
    assert warn_dead_layers(stats, threshold=0.5) == []


def known_maxout_net() -> nn.Module:
    """1x1 conv to 3 Maxout units of 2 pieces each (channels c and 3 + c), inputs in (0, 1).

    Unit 0: (x, x - 10), piece 1 never wins. Unit 1: (x - 0.5, 0.5 - x), both win.
    Unit 2: (-x, -2x), piece 1 never wins and the output -x is never positive.
    """
    conv = nn.Conv2d(1, 6, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 1.0, -1.0, 1.0, -1.0, -2.0]).view(6, 1, 1, 1))
        conv.bias.copy_(torch.tensor([0.0, -0.5, 0.0, -10.0, 0.5, 0.0]))
    return nn.Sequential(conv, Maxout(2))


def test_maxout_counts_pieces_that_never_win(caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(0)
    x = torch.rand(4, 1, 5, 5) * 0.98 + 0.01
    model = known_maxout_net().eval()
    monitor = ActivationMonitor(model)
    with monitor.attach(), torch.no_grad():
        model(x)
    (maxout,) = monitor.results()
    assert (maxout.layer, maxout.kind, maxout.units, maxout.channels) == (
        "1",
        "Maxout",
        "pieces",
        6,
    )
    assert maxout.dead_fraction == pytest.approx(2 / 6)
    assert maxout.sparsity == pytest.approx(1 / 3)
    with caplog.at_level(logging.WARNING):
        assert warn_dead_layers([maxout], threshold=0.3) == ["1"]
    assert "33% of 6 Maxout pieces never win" in caplog.text


def test_kept_values_sample_every_batch_up_to_the_limit() -> None:
    model = nn.Sequential(nn.ReLU())
    monitor = ActivationMonitor(model, keep_values=3000)
    with monitor.attach(), torch.no_grad():
        model(torch.full((4, 1000), -1.0))  # 4000 values: a strided 1000 of them are kept
        model(torch.full((4, 1000), 2.0))
        model(torch.full((4, 1000), 3.0))
        model(torch.full((4, 1000), 4.0))  # the budget is spent by now
    values = monitor.values()["0"]
    assert len(values) == 3000
    assert sorted(set(values.tolist())) == [-1.0, 2.0, 3.0]
    assert ActivationMonitor(model).values()["0"].size == 0


def test_merged_shards_give_the_statistics_of_the_whole_set() -> None:
    """What a distributed evaluation does: each rank monitors its share, then all merge."""
    torch.manual_seed(1)
    x = torch.randn(8, 1, 5, 5)
    model = known_net().eval()
    whole, shards = ActivationMonitor(model), [ActivationMonitor(model) for _ in range(2)]
    with torch.no_grad():
        with whole.attach():
            model(x)
        for rank, shard in enumerate(shards):
            with shard.attach():
                model(x[rank::2])
    merged = ActivationMonitor(model)
    merged.merge([shard.snapshot() for shard in shards])
    for ours, expected in zip(merged.results(), whole.results(), strict=True):
        assert ours.dead_fraction == expected.dead_fraction
        assert ours.sparsity == pytest.approx(expected.sparsity)
        assert ours.preact_mean == pytest.approx(expected.preact_mean, rel=1e-6, abs=1e-9)
        assert ours.preact_std == pytest.approx(expected.preact_std, rel=1e-6)
