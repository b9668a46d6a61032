"""The PyTorch side of class-activation maps: the extra graph output that export adds.

``WithClassMaps`` runs the classifier and also returns, for every class, the last feature
map weighted by that class's classifier row (a 1x1 convolution, no bias). For a head that
is global average pooling plus one linear layer, the spatial mean of class ``c``'s map
plus ``c``'s bias is exactly logit ``c``; ``check_global_pool_head`` verifies this on real
numbers, so an architecture declared wrongly in the registry fails export instead of
serving meaningless heatmaps. The service turns the maps into heatmaps with NumPy alone
(``model/cam.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.hooks import RemovableHandle

from model.architectures import CamLayers

CAM_TOLERANCE = 1e-4  # relative to the largest logit


class CamHeadError(ValueError):
    """The declared CAM layers do not form a global-average-pool + linear head."""


class WithClassMaps(nn.Module):
    """The classifier, its output non-linearity, and the per-class activation maps."""

    def __init__(self, model: nn.Module, head: nn.Module, layers: CamLayers) -> None:
        super().__init__()
        self.model = model
        self.head = head
        self.layers = layers
        classifier = model.get_submodule(layers.classifier)
        if not isinstance(classifier, nn.Linear):
            raise CamHeadError(
                f"{layers.classifier} is a {type(classifier).__name__}, not nn.Linear"
            )
        self._classifier = [classifier]  # a list: not registered twice as a submodule

    @property
    def classifier(self) -> nn.Linear:
        return self._classifier[0]

    def logits_and_maps(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        captured: list[torch.Tensor] = []
        layer = self.model.get_submodule(self.layers.features)
        handle: RemovableHandle = layer.register_forward_hook(
            lambda _module, _inputs, output: captured.append(output)
        )
        try:
            logits = self.model(image)
        finally:
            handle.remove()
        if len(captured) != 1 or captured[0].dim() != 4:
            raise CamHeadError(
                f"{self.layers.features} must run once and output (N, C, H, W); it ran "
                f"{len(captured)} times"
            )
        weight = self.classifier.weight
        if captured[0].shape[1] != weight.shape[1]:
            raise CamHeadError(
                f"{self.layers.features} outputs {captured[0].shape[1]} channels; "
                f"{self.layers.classifier} takes {weight.shape[1]} features: the head is not "
                "global average pooling plus one linear layer"
            )
        return logits, F.conv2d(captured[0], weight[:, :, None, None])

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, maps = self.logits_and_maps(image)
        return self.head(logits), maps


def check_global_pool_head(wrapper: WithClassMaps, example: torch.Tensor) -> tuple[int, int]:
    """Check mean(map_c) + bias_c == logit_c on ``example``; return the map's (H, W)."""
    with torch.no_grad():
        logits, maps = wrapper.logits_and_maps(example)
        bias = wrapper.classifier.bias
        pooled = maps.mean(dim=(2, 3)) + (bias if bias is not None else 0.0)
        scale = max(1.0, float(logits.abs().max()))
        error = float((pooled - logits).abs().max()) / scale
    if maps.shape[1] != logits.shape[1] or error > CAM_TOLERANCE:
        raise CamHeadError(
            f"the output of {wrapper.layers.features}, averaged and passed through "
            f"{wrapper.layers.classifier}, does not give the logits (relative error "
            f"{error:.3g}): the head is not global average pooling plus one linear layer"
        )
    return int(maps.shape[2]), int(maps.shape[3])
