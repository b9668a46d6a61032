from __future__ import annotations

import pytest

from service.plumbing.settings import Settings, SettingsError, load_settings, parse_device


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()


def test_defaults():
    settings = load_settings()
    assert settings.device == "auto"
    assert settings.max_batch_size == 32
    assert settings.max_batch_delay_ms == 0
    assert settings.api_keys == []


def test_environment_is_read_and_flags_override_it(monkeypatch):
    monkeypatch.setenv("RECTIFIER_MAX_BATCH_SIZE", "8")
    monkeypatch.setenv("RECTIFIER_API_KEYS", "first-key-123, second-key-456")
    monkeypatch.setenv("RECTIFIER_CORS_ORIGINS", "https://a.example,https://b.example")
    monkeypatch.setenv("RECTIFIER_LOG_FORMAT", "JSON")
    settings = load_settings(max_batch_size=4, device=None)
    assert settings.max_batch_size == 4
    assert [k.get_secret_value() for k in settings.api_keys] == ["first-key-123", "second-key-456"]
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.log_format == "json"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("RECTIFIER_DEVICE", "gpu", "auto, cpu, cuda, tensorrt"),
        ("RECTIFIER_LOG_FORMAT", "xml", "'text' or 'json'"),
        ("RECTIFIER_LOG_LEVEL", "loud", "DEBUG, INFO, WARNING or ERROR"),
        ("RECTIFIER_MAX_BATCH_SIZE", "0", "greater than or equal to 1"),
        ("RECTIFIER_MAX_BATCH_SIZE", "lots", "valid integer"),
        ("RECTIFIER_MODELS_DIR", "/nonexistent/models", "not a directory"),
        ("RECTIFIER_CUDNN_CONV_ALGO_SEARCH", "fast", "'EXHAUSTIVE', 'HEURISTIC' or 'DEFAULT'"),
        ("RECTIFIER_INFERENCE_STREAMS", "0", "greater than or equal to 1"),
        ("RECTIFIER_INLINE_DECODE_MAX_PIXELS", "-1", "greater than or equal to 0"),
    ],
)
def test_bad_values_name_the_variable_and_valid_values(monkeypatch, variable, value, expected):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert variable in str(info.value)
    assert expected in str(info.value)


def test_short_api_keys_are_refused_without_echoing_them(monkeypatch):
    monkeypatch.setenv("RECTIFIER_API_KEYS", "short")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "RECTIFIER_API_KEYS" in str(info.value)
    assert "short" not in str(info.value).replace("8 characters", "")


def test_parse_device():
    assert parse_device("auto") is None
    assert parse_device("cpu") == ["CPUExecutionProvider"]
    assert parse_device("tensorrt, cuda,cpu") == [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert parse_device("CUDAExecutionProvider") == ["CUDAExecutionProvider"]
    with pytest.raises(ValueError, match="not a device"):
        parse_device("cuda,npu")


def test_settings_are_frozen():
    settings = Settings()
    with pytest.raises(Exception, match="frozen"):
        settings.max_queue = 3  # type: ignore[misc]
