"""``rectifier serve`` refuses bad settings and unusable providers before opening a port."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import onnxruntime as ort
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", "serve", "--port", "1", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.skipif(
    "CUDAExecutionProvider" in ort.get_available_providers(), reason="CUDA is available here"
)
def test_explicit_cuda_without_cuda_is_a_clear_startup_error(tmp_path):
    result = serve("--models", str(tmp_path), "--device", "cuda")
    assert result.returncode == 2
    assert "CUDAExecutionProvider" in result.stderr
    assert "not available in this onnxruntime build" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_environment_names_the_variable(tmp_path):
    result = serve("--models", str(tmp_path), env={"RECTIFIER_LOG_FORMAT": "yaml"})
    assert result.returncode == 2
    assert "RECTIFIER_LOG_FORMAT" in result.stderr and "'text' or 'json'" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_models_folder_is_refused_naming_where_it_came_from(tmp_path):
    result = serve("--models", str(tmp_path / "absent"))
    assert result.returncode == 2
    assert "--models/--models-dir:" in result.stderr and "not a directory" in result.stderr
    result = serve(env={"RECTIFIER_MODELS_DIR": str(tmp_path / "absent")})
    assert result.returncode == 2
    assert "RECTIFIER_MODELS_DIR:" in result.stderr and "not a directory" in result.stderr


def test_every_setting_but_the_secrets_and_the_root_option_is_a_flag() -> None:
    from service.plumbing.settings import Settings, flags_of
    from service.run.settings_flags import flagged_fields, is_secret, setting_parameters

    parameters = {p.name: p for p in setting_parameters()}
    secrets = {name for name, field in Settings.model_fields.items() if is_secret(field)}
    assert "api_keys" in secrets
    assert set(parameters) == set(flagged_fields())
    assert set(parameters) == set(Settings.model_fields) - secrets - {"log_level"}
    # Today's spellings stay, beside the derived --field-name.
    for field, flag in (
        ("models_dir", "--models"),
        ("intra_op_threads", "--threads"),
        ("inference_streams", "--streams"),
    ):
        derived = "--" + field.replace("_", "-")
        assert flags_of(field) == (flag, derived)
        assert parameters[field].default.param_decls == (flag, derived)


def test_help_shows_the_declared_defaults() -> None:
    from typer.testing import CliRunner

    from model.cli import app

    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "250"})
    text = " ".join(result.output.split())
    assert result.exit_code == 0
    assert "Images per inference batch. Env RECTIFIER_MAX_BATCH_SIZE. [default: (32)]" in text
    assert "--api-keys" not in text  # a secret gets no flag


def test_an_alias_and_the_derived_flag_set_the_same_setting(tmp_path):
    for flag, named in (
        ("--max-queue", "--max-queue:"),
        ("--threads", "--threads/--intra-op-threads:"),
        ("--intra-op-threads", "--threads/--intra-op-threads:"),
    ):
        result = serve("--models", str(tmp_path), flag, "0")
        assert result.returncode == 2
        assert named in result.stderr, result.stderr  # the flag, not the variable


@pytest.mark.parametrize(
    ("args", "env", "level"),
    [
        ((), {}, "INFO"),
        ((), {"RECTIFIER_LOG_LEVEL": "debug"}, "DEBUG"),
        (("--log-level", "WARNING"), {"RECTIFIER_LOG_LEVEL": "DEBUG"}, "WARNING"),
    ],
)
def test_serve_logs_at_the_flag_then_the_variable_then_the_default(args, env, level):
    from typer.testing import CliRunner

    from model.cli import app

    seen: dict[str, str] = {}

    def capture(settings, host, port):
        seen["level"] = settings.log_level
        raise SystemExit(0)

    import service.run.server

    original = service.run.server.build_server
    service.run.server.build_server = capture
    try:
        CliRunner().invoke(app, [*args, "serve", "--models", str(REPO_ROOT / "models")], env=env)
    finally:
        service.run.server.build_server = original
    assert seen["level"] == level


def test_the_settings_table_in_the_docs_lists_every_setting_with_its_flags() -> None:
    import re

    from service.plumbing.settings import Settings, flags_of, variable_of
    from service.run.settings_flags import flagged_fields

    rows = {
        match[1]: match[2]
        for match in re.finditer(
            r"^\| `(RECTIFIER_\w+)`([^|]*)\|", (REPO_ROOT / "docs/service.md").read_text(), re.M
        )
    }
    assert set(rows) == {variable_of(field) for field in Settings.model_fields}
    for field in flagged_fields():
        for flag in flags_of(field):
            assert f"`{flag}" in rows[variable_of(field)], (field, flag)
