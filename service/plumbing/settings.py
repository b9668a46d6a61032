"""Service settings: one pydantic-settings class, read from ``RECTIFIER_*`` variables.

Invalid values fail at start-up with a message naming the environment variable and the
values it accepts (``SettingsError``); nothing is validated lazily at request time.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    JsonValue,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from model.layout import DEFAULT_ROOT
from model.log_setup import DEFAULT_LOG_LEVEL, LOG_LEVELS, check_log_level

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


def setting(default: Any, help: str, *, flag: str | None = None, **constraints: Any) -> Any:
    """A Settings field with its help text and, where it differs from ``--field-name``, the
    flag ``rectifier serve`` has always spelled it with (kept as an alias). The flags are
    derived from these declarations (``service/run/settings_flags.py``)."""
    extra: dict[str, JsonValue] | None = {"flag": flag} if flag else None
    if isinstance(default, list):
        return Field(default_factory=list, description=help, json_schema_extra=extra, **constraints)
    return Field(default=default, description=help, json_schema_extra=extra, **constraints)


class Settings(BaseSettings):
    """Every knob of the service. Environment: ``RECTIFIER_<FIELD>`` (case-insensitive);
    ``rectifier serve`` takes each as ``--field-name`` too, except the API keys (secrets
    stay out of process listings and shell history) and the log level (the root option
    ``rectifier --log-level``)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, case_sensitive=False, extra="forbid", frozen=True
    )

    # Model repository: <models_dir>/<name>/<version>/model.onnx
    models_dir: Path = setting(
        DEFAULT_ROOT, "Model repository folder, laid out NAME/VERSION/model.onnx.", flag="--models"
    )
    default_model: str | None = setting(None, "Model of /v1/predict; unset: the only model.")

    # Execution providers and threads
    device: str = setting("auto", f"Execution providers: {DEVICE_CHOICES}.")
    intra_op_threads: int | None = setting(
        None,
        "onnxruntime intra-op threads; unset: the cores available.",
        flag="--threads",
        ge=1,
        le=1024,
    )
    inter_op_threads: int = setting(1, "onnxruntime inter-op threads.", ge=1, le=1024)
    allow_spinning: bool = setting(False, "Let onnxruntime's idle threads spin.")
    cuda_device_id: int = setting(0, "CUDA device of the CUDA and TensorRT providers.", ge=0)
    cuda_mem_limit_bytes: int | None = setting(
        None, "CUDA memory arena limit in bytes; unset: no limit.", gt=0
    )
    cudnn_conv_algo_search: Literal["EXHAUSTIVE", "HEURISTIC", "DEFAULT"] = setting(
        "HEURISTIC", "cuDNN convolution algorithm search."
    )
    tensorrt_cache_dir: Path | None = setting(
        None, "Folder for TensorRT's engine cache; unset: no cache."
    )

    # Dynamic batching
    max_batch_size: int = setting(32, "Images per inference batch.", ge=1, le=4096)
    max_batch_delay_ms: float = setting(
        0.0, "Longest wait for a batch to fill; 0: run what is queued.", ge=0.0, le=10_000.0
    )
    max_queue: int = setting(256, "Queued requests per model before 503 queue_full.", ge=1)
    inference_streams: int | None = setting(
        None,
        "Batches run concurrently per model; unset: 2 on the CPU for a model whose batch-1 "
        "run is shorter than the GIL switch interval, else 1.",
        flag="--streams",
        ge=1,
        le=64,
    )
    retry_after_s: int = setting(1, "Retry-After of a 503, in seconds.", ge=1)
    warmup: bool = setting(True, "Run each model once at start-up, before readiness.")

    # Server processes (service/run/workers.py); model reload needs a single one
    workers: int = setting(
        1, "Server processes sharing the port, each with a share of the cores.", ge=1, le=64
    )

    # Requests (the inline decode bound: service/inference/pipeline.py)
    decode_threads: int | None = setting(
        None, "Image decoding threads; unset: the cores available.", ge=1, le=1024
    )
    inline_decode_max_pixels: int = setting(
        128 * 128,
        "A single upload of at most this many decoded and resized pixels decodes on the "
        "event loop, larger ones on the decode threads; 0: always the threads.",
        ge=0,
        le=1024 * 1024,
    )
    max_upload_bytes: int = setting(20 * 1024 * 1024, "Largest request body.", ge=1024)
    max_image_pixels: int = setting(25_000_000, "Largest image, in pixels.", ge=1)
    max_images_per_request: int = setting(64, "Most images in one request.", ge=1)
    body_timeout_s: float = setting(30.0, "Longest time to receive a request body.", gt=0.0)
    default_top_k: int = setting(5, "Labels in an answer when top_k is not given.", ge=1)

    # Security, logging, CORS
    api_keys: Annotated[list[SecretStr], NoDecode] = setting(
        [], "Comma-separated API keys; unset: no key needed."
    )
    log_level: str = setting(DEFAULT_LOG_LEVEL, f"{', '.join(LOG_LEVELS)}.")
    log_format: Literal["text", "json"] = setting("text", "Log lines as text or json.")
    access_log: bool = setting(True, "Log one line per request.")
    cors_origins: Annotated[list[str], NoDecode] = setting(
        [], "Comma-separated origins allowed by CORS; unset: none."
    )

    # Shutdown: readiness turns 503 at SIGTERM; the listener closes after shutdown_delay_s
    # (time for a load balancer to notice); in-flight requests get shutdown_grace_s.
    shutdown_delay_s: float = setting(
        0.0, "Seconds between SIGTERM and closing the listener.", ge=0.0, le=600.0
    )
    shutdown_grace_s: float = setting(
        30.0, "Seconds in-flight requests get to finish at shutdown.", gt=0.0, le=3600.0
    )

    # DICOMweb: the PACS studies are pulled from and reports stored to
    # (service/protocols/dicomweb/); its address comes from here only, never from a request.
    dicomweb_url: str | None = setting(
        None, "The PACS's DICOMweb root (WADO/QIDO/STOW-RS); unset: no PACS."
    )
    dicomweb_username: str | None = setting(None, "Basic-auth user name at the PACS.")
    dicomweb_password: SecretStr | None = setting(None, "Basic-auth password at the PACS.")
    dicomweb_token: SecretStr | None = setting(None, "Bearer token for the PACS.")
    dicomweb_timeout_s: float = setting(
        30.0, "Longest wait for one answer from the PACS.", gt=0.0, le=3600.0
    )
    dicomweb_fetch_threads: int = setting(
        8, "Instances of a study fetched from the PACS at once.", ge=1, le=64
    )
    dicomweb_max_instances: int = setting(
        2000, "Most instances in one study pulled or one STOW-RS request.", ge=1
    )

    @field_validator("dicomweb_url")
    @classmethod
    def _check_dicomweb_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("the DICOMweb root must be an http:// or https:// URL")
        return value.strip().rstrip("/")

    @model_validator(mode="after")
    def _check_dicomweb_auth(self) -> Settings:
        if self.dicomweb_password is not None and self.dicomweb_username is None:
            raise ValueError("RECTIFIER_DICOMWEB_PASSWORD needs RECTIFIER_DICOMWEB_USERNAME")
        if self.dicomweb_token is not None and self.dicomweb_username is not None:
            raise ValueError("choose basic auth or a bearer token for the PACS, not both")
        return self

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("cudnn_conv_algo_search", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _check_log_level(cls, value: Any) -> Any:
        return check_log_level(value) if isinstance(value, str) else value

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

    def with_core_share(self, cores: int) -> Settings:
        """These settings for one of several processes on a machine, given ``cores`` of it:
        the thread counts left to default take that share (``--workers``, Ray replicas)."""
        share = max(1, cores)
        return self.model_copy(
            update={
                "intra_op_threads": self.intra_op_threads or share,
                "decode_threads": self.decode_threads or share,
            }
        )


def variable_of(field: str) -> str:
    """The environment variable of a settings field."""
    return f"{ENV_PREFIX}{field.upper()}"


def flags_of(field: str) -> tuple[str, ...]:
    """The ``rectifier serve`` flags of a settings field: the one its declaration names,
    where it has one, then ``--field-name``."""
    extra = Settings.model_fields[field].json_schema_extra
    declared = extra.get("flag") if isinstance(extra, dict) else None
    derived = "--" + field.replace("_", "-")
    return (str(declared), derived) if declared else (derived,)


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


def _describe(error: dict[str, Any], given: set[str]) -> str:
    """One problem, named by where the value came from: the flag or the variable."""
    field = str(error["loc"][0]) if error.get("loc") else "settings"
    variable = "/".join(flags_of(field)) if field in given else variable_of(field)
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    value = error.get("input")
    if field in ("api_keys", "dicomweb_password", "dicomweb_token"):  # never echo secrets
        return f"{variable}: {message}"
    shown = f" (got {value!r})" if isinstance(value, str | int | float) else ""
    return f"{variable}: {message}{shown}"


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment, with explicit overrides (CLI flags) on top; a
    problem names the flag where an override gave the value, else the variable."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(_describe(dict(error), set(given)) for error in exc.errors())
        raise SettingsError(f"invalid settings: {problems}") from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once (tests build their own ``Settings``)."""
    return load_settings()
