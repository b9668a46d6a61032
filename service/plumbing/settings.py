"""Service settings: one pydantic-settings class, read from ``RECTIFIER_*`` variables.

Invalid values fail at start-up with a message naming the environment variable and the
values it accepts (``SettingsError``); nothing is validated lazily at request time.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "RECTIFIER_"

# Short names for the execution providers; full onnxruntime names are accepted as well.
PROVIDER_ALIASES: dict[str, str] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "rocm": "ROCMExecutionProvider",
}
DEVICE_CHOICES = (
    "auto, cpu, cuda, tensorrt, or a comma-separated provider list such as tensorrt,cuda,cpu"
)


class SettingsError(ValueError):
    """One or more settings are invalid; the message names each variable."""


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Every knob of the service. Environment: ``RECTIFIER_<FIELD>`` (case-insensitive)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, case_sensitive=False, extra="forbid", frozen=True
    )

    # Model repository: <models_dir>/<name>/<version>/model.onnx
    models_dir: Path = Path("models")
    default_model: str | None = None

    # Execution providers and threads
    device: str = "auto"
    intra_op_threads: int | None = Field(default=None, ge=1, le=1024)
    inter_op_threads: int = Field(default=1, ge=1, le=1024)
    allow_spinning: bool = False
    cuda_device_id: int = Field(default=0, ge=0)
    cuda_mem_limit_bytes: int | None = Field(default=None, gt=0)
    cudnn_conv_algo_search: Literal["EXHAUSTIVE", "HEURISTIC", "DEFAULT"] = "HEURISTIC"
    tensorrt_cache_dir: Path | None = None

    # Dynamic batching
    max_batch_size: int = Field(default=32, ge=1, le=4096)
    max_batch_delay_ms: float = Field(default=0.0, ge=0.0, le=10_000.0)
    max_queue: int = Field(default=256, ge=1)
    # Batches run concurrently per model; None chooses per model (service/app/repository.py:
    # two on the CPU for a model whose batch-1 run is shorter than the GIL switch interval).
    inference_streams: int | None = Field(default=None, ge=1, le=64)
    retry_after_s: int = Field(default=1, ge=1)
    warmup: bool = True

    # Server processes (service/run/workers.py); model reload needs a single one
    workers: int = Field(default=1, ge=1, le=64)

    # Requests. A single upload whose decoded and resized images hold at most
    # inline_decode_max_pixels is decoded on the event loop, larger ones on the decode
    # threads (service/inference/pipeline.py); 0 sends every upload to the threads.
    decode_threads: int | None = Field(default=None, ge=1, le=1024)
    inline_decode_max_pixels: int = Field(default=128 * 128, ge=0, le=1024 * 1024)
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(default=25_000_000, ge=1)
    max_images_per_request: int = Field(default=64, ge=1)
    body_timeout_s: float = Field(default=30.0, gt=0.0)
    default_top_k: int = Field(default=5, ge=1)

    # Security, logging, CORS
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    access_log: bool = True
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Shutdown: readiness turns 503 at SIGTERM; the listener closes after shutdown_delay_s
    # (time for a load balancer to notice); in-flight requests get shutdown_grace_s.
    shutdown_delay_s: float = Field(default=0.0, ge=0.0, le=600.0)
    shutdown_grace_s: float = Field(default=30.0, gt=0.0, le=3600.0)

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("log_level", "cudnn_conv_algo_search", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        parse_device(value)
        return value.strip().lower() if value.strip().lower() == "auto" else value.strip()

    @field_validator("api_keys")
    @classmethod
    def _check_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        if any(len(key.get_secret_value()) < 8 for key in value):
            raise ValueError("every API key needs at least 8 characters")
        return value

    @field_validator("models_dir")
    @classmethod
    def _check_models_dir(cls, value: Path) -> Path:
        if not value.is_dir():
            raise ValueError(
                f"{value} is not a directory; expected a model repository laid out as "
                "<name>/<version>/model.onnx"
            )
        return value

    @property
    def provider_request(self) -> list[str] | None:
        """The explicit provider list, or None for ``auto``."""
        return parse_device(self.device)


def parse_device(value: str) -> list[str] | None:
    """``auto`` -> None; else the list of full onnxruntime provider names, in order."""
    text = value.strip()
    if text.lower() == "auto":
        return None
    names = [item.strip() for item in text.split(",") if item.strip()]
    if not names:
        raise ValueError(f"an empty device; choose {DEVICE_CHOICES}")
    known = set(PROVIDER_ALIASES.values())
    providers: list[str] = []
    for name in names:
        provider = PROVIDER_ALIASES.get(name.lower(), name)
        if provider not in known and not provider.endswith("ExecutionProvider"):
            raise ValueError(f"{name!r} is not a device; choose {DEVICE_CHOICES}")
        if provider not in providers:
            providers.append(provider)
    return providers


def _describe(error: dict[str, Any]) -> str:
    field = str(error["loc"][0]) if error.get("loc") else "settings"
    variable = f"{ENV_PREFIX}{field.upper()}"
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    value = error.get("input")
    if field == "api_keys":  # never echo secrets
        return f"{variable}: {message}"
    shown = f" (got {value!r})" if isinstance(value, str | int | float) else ""
    return f"{variable}: {message}{shown}"


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment, with explicit overrides (CLI flags) on top."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(_describe(dict(error)) for error in exc.errors())
        raise SettingsError(f"invalid settings: {problems}") from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once (tests build their own ``Settings``)."""
    return load_settings()
