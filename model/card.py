"""The model card: the one contract between training, export and serving.

Every exported ONNX file carries one JSON card under the ``metadata_props`` key
``rectifier.card``. The service needs nothing else to serve a model correctly, so this
module imports neither torch nor onnx: the serving image has neither.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from model.trust import FEATURE_SCORERS, STATS_FILE, TPR, Scorer

if TYPE_CHECKING:
    import onnx

CARD_METADATA_KEY = "rectifier.card"
CARD_SCHEMA_VERSION = 1

Task = Literal["multiclass", "multilabel", "binary"]
ColorMode = Literal["L", "RGB"]
Interpolation = Literal["nearest", "bilinear", "bicubic", "lanczos"]


class CardError(ValueError):
    """A card is missing, unreadable or inconsistent with its model."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Strict):
    """A fixed VOI window in modality units (Hounsfield units for CT): DICOM's linear
    Window Center/Width, mapping ``center - width/2 .. center + width/2`` to black..white."""

    center: float
    width: float = Field(ge=1)


class DicomPolicy(_Strict):
    """How DICOM pixels become display values (docs/medical-imaging.md).

    ``window`` set: that window, whatever the file says (the model was trained with it).
    Unset: the file's VOI LUT, else its first Window Center/Width, else the image's own
    range (padding excluded). The modality LUT, MONOCHROME1 inversion and Pixel Padding
    Value masking always apply.
    """

    window: Window | None = None


# The largest frame index anyone can ask for: DICOM's Number of Frames is at most 2**31 - 1,
# and a bound keeps a request's frame a 64-bit integer wherever it is echoed back.
MAX_FRAME = 2**31 - 2


class Preprocessing(_Strict):
    """Deterministic evaluation preprocessing, applied identically in training and serving.

    The image is converted to ``color_mode`` (alpha composited on white), its shorter side
    resized to ``resize_size`` with ``interpolation``, centre-cropped to ``crop_size`` square,
    scaled to [0, 1] and normalised with ``mean``/``std`` per channel.

    ``frame`` picks one frame of a multi-frame input (TIFF page, GIF/WebP frame, DICOM
    frame, counted from 0); unset, a multi-frame input is refused. ``dicom`` is the DICOM
    display policy the model was trained with.
    """

    color_mode: ColorMode
    resize_size: int = Field(gt=0)
    crop_size: int = Field(gt=0)
    interpolation: Interpolation = "bilinear"
    mean: tuple[float, ...]
    std: tuple[float, ...]
    frame: int | None = Field(default=None, ge=0, le=MAX_FRAME)
    dicom: DicomPolicy = Field(default_factory=DicomPolicy)

    @model_validator(mode="after")
    def _check(self) -> Preprocessing:
        channels = 1 if self.color_mode == "L" else 3
        if len(self.mean) != channels or len(self.std) != channels:
            raise ValueError(
                f"mean and std need {channels} values for color_mode {self.color_mode!r}, "
                f"got {len(self.mean)} and {len(self.std)}"
            )
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std values must be positive, got {self.std}")
        if self.crop_size > self.resize_size:
            raise ValueError(
                f"crop_size ({self.crop_size}) cannot exceed resize_size ({self.resize_size})"
            )
        return self

    @property
    def channels(self) -> int:
        return 1 if self.color_mode == "L" else 3


class ExportInfo(_Strict):
    exported_at: str
    source_checkpoint_sha256: str
    opset: int
    torch_version: str
    onnx_version: str
    parity_max_abs_diff: float
    precision: Literal["fp32", "fp16", "int8"] = "fp32"


class ClassActivationMaps(_Strict):
    """Where a model's class-activation maps come from, for explanations.

    Export adds the graph output ``output_name``: shape (N, classes, height, width), the
    last convolutional feature map weighted by the classifier (a 1x1 convolution with the
    classifier's weights, no bias). For a global-average-pooling head followed by one linear
    layer, each map's spatial mean plus the class bias is that class's logit, so the map is
    CAM (Zhou et al. 2016) and equals Grad-CAM up to scale. ``feature_layer`` names the
    PyTorch module whose output was weighted.
    """

    output_name: str = "class_maps"
    feature_layer: str
    grid: tuple[int, int]  # (height, width) of one map

    @model_validator(mode="after")
    def _check(self) -> ClassActivationMaps:
        if min(self.grid) < 1:
            raise ValueError(f"class-activation map grid must be positive, got {self.grid}")
        return self


class CalibrationFigures(_Strict):
    """Top-label ECE (15 equal-width bins), NLL and Brier score on one set of images."""

    ece: float = Field(ge=0)
    nll: float = Field(ge=0)
    brier: float = Field(ge=0)


class TemperatureScaling(_Strict):
    """One temperature T fitted by NLL on the validation logits (Guo et al. 2017); the
    graph's ``probabilities`` are softmax(logits / T) of the unclipped logits.

    ``separable``: the model ranks every validation image right, or all but a handful
    (fewer than 10), so the NLL keeps falling as T -> 0 and would sharpen every answer; T
    was then kept at 1 or above.
    """

    temperature: float = Field(gt=0)
    fitted_on: str = "validation"
    images: int = Field(ge=1)
    separable: bool = False
    before: CalibrationFigures
    after: CalibrationFigures


class OodStatistics(_Strict):
    """The fitted statistics of the feature scores, in ``file`` beside model.onnx."""

    file: str = Field(default=STATS_FILE, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class OodDetection(_Strict):
    """The out-of-distribution score the service returns, and where it stops trusting.

    An image is in distribution when its score (higher = less like the training data) is at
    or under ``threshold``: the score that ``tpr`` of the validation images stay under.
    ``thresholds`` holds that value for every implemented scorer (``rectifier evaluate-ood``
    compares them); ``scorer`` is the served one (docs/decisions.md says why).
    """

    scorer: Scorer
    threshold: float
    thresholds: dict[str, float] = Field(default_factory=dict)
    tpr: float = Field(default=TPR, gt=0, lt=1)
    react_percentile: float = Field(default=90.0, gt=0, lt=100)
    statistics: OodStatistics | None = None
    train_images: int = Field(ge=1)
    validation_images: int = Field(ge=1)

    @model_validator(mode="after")
    def _check(self) -> OodDetection:
        needs = {self.scorer, *self.thresholds} & FEATURE_SCORERS
        if needs and self.statistics is None:
            raise ValueError(
                f"the OOD threshold of {', '.join(sorted(needs))} needs fitted statistics, "
                "and the card names none (re-export the model)"
            )
        return self


class Trust(_Strict):
    """Calibrated probabilities and the OOD score (docs/trust.md), fitted at export on the
    run's own training (statistics) and validation (T, thresholds) splits of ``dataset``.

    The graph has two more outputs: ``logits_output`` (N, classes), the unclipped logits,
    and ``features_output`` (N, features), the pooled input of the final linear layer.
    """

    dataset: str
    logits_output: str = "logits"
    features_output: str = "features"
    calibration: TemperatureScaling
    ood: OodDetection | None = None


class ModelCard(_Strict):
    schema_version: int = CARD_SCHEMA_VERSION
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    version: int = Field(ge=1)
    task: Task
    labels: tuple[str, ...]
    input_name: str = "image"
    output_name: str = "probabilities"
    # The graph ends in softmax (multiclass, binary) or sigmoid (multilabel): outputs are
    # probabilities. Multilabel predictions report the labels at or above ``threshold``.
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    preprocessing: Preprocessing
    architecture: str
    architecture_options: dict[str, int | float | str | bool] = Field(default_factory=dict)
    activation: str
    dataset: str
    metrics: dict[str, float] = Field(default_factory=dict)
    export: ExportInfo | None = None
    # None: exported without class-activation maps (before they existed, or an architecture
    # whose head is not global pooling plus one linear layer); it cannot be explained.
    class_activation_maps: ClassActivationMaps | None = None
    # None: exported without calibration and OOD score (before they existed, --no-trust,
    # or a multilabel model); it serves raw probabilities and no ood_score.
    trust: Trust | None = None

    @model_validator(mode="after")
    def _check(self) -> ModelCard:
        if self.schema_version != CARD_SCHEMA_VERSION:
            raise ValueError(
                f"card schema_version {self.schema_version} is not supported "
                f"(this build reads version {CARD_SCHEMA_VERSION})"
            )
        minimum = 2 if self.task != "multilabel" else 1
        if len(self.labels) < minimum:
            raise ValueError(f"a {self.task} model needs at least {minimum} labels")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("labels must be unique")
        return self

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one preprocessed image."""
        p = self.preprocessing
        return (p.channels, p.crop_size, p.crop_size)

    def to_json(self) -> str:
        return self.model_dump_json()


def card_digest(card: ModelCard) -> str:
    """The sha256 (hex) of the card's JSON: which exact card a set of predictions came from
    (``rectifier predict`` writes it beside its output)."""
    return hashlib.sha256(card.to_json().encode("utf-8")).hexdigest()


def card_from_json(text: str) -> ModelCard:
    try:
        return ModelCard.model_validate_json(text)
    except ValidationError as exc:
        raise CardError(f"invalid model card: {exc}") from exc


def card_from_metadata(metadata: Mapping[str, str]) -> ModelCard:
    """Read the card from an ONNX ``metadata_props`` mapping (or onnxruntime's
    ``custom_metadata_map``)."""
    text = metadata.get(CARD_METADATA_KEY)
    if text is None:
        raise CardError(
            f"the model has no card: metadata key {CARD_METADATA_KEY!r} is missing "
            "(export it with `rectifier export`)"
        )
    return card_from_json(text)


def read_card(path: str | Path) -> ModelCard:
    """Read the card embedded in an ONNX file, without loading the weights into a runtime.

    Uses ``onnx`` when installed (training side), else onnxruntime's model metadata
    (serving side), so it works in both environments.
    """
    path = Path(path)
    if not path.is_file():
        raise CardError(f"no such model file: {path}")
    try:
        import onnx
    except ImportError:
        return _read_card_with_onnxruntime(path)
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and friends
        raise CardError(f"{path} is not a readable ONNX file: {exc}") from exc
    return card_from_metadata({p.key: p.value for p in proto.metadata_props})


def _read_card_with_onnxruntime(path: Path) -> ModelCard:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise CardError(f"{path} is not a loadable ONNX file: {exc}") from exc
    return card_from_metadata(session.get_modelmeta().custom_metadata_map)


def write_card(proto: onnx.ModelProto, card: ModelCard) -> None:
    """Put ``card`` into an ONNX model's ``metadata_props``, replacing any card there.

    Works on the proto alone (no onnx import), so torch-free tools such as
    ``rectifier pull`` can re-card a model.
    """
    for prop in list(proto.metadata_props):
        if prop.key == CARD_METADATA_KEY:
            proto.metadata_props.remove(prop)
    entry = proto.metadata_props.add()
    entry.key, entry.value = CARD_METADATA_KEY, card.to_json()
