from pathlib import Path

from typer.testing import CliRunner

from model.card import read_card
from model.cli import app
from tests.helpers.cli import flat
from tests.helpers.models import make_checkpoint
from training.run_folder import RunFolder

runner = CliRunner()


def test_help_lists_the_subcommands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "export" in result.output


def test_export_writes_a_loadable_model_with_its_card(tmp_path: Path) -> None:
    # A run folder exports its best checkpoint.
    ckpt = make_checkpoint(RunFolder(tmp_path).best, resize_size=32, crop_size=32)
    result = runner.invoke(
        app, ["export", str(tmp_path), "--name", "m", "--out", str(tmp_path / "models")]
    )
    assert result.exit_code == 0, result.output
    assert "max abs diff" in result.output
    card = read_card(tmp_path / "models" / "m" / "1" / "model.onnx")
    assert card.name == "m" and ckpt.exists()


def test_export_of_a_bad_checkpoint_names_the_argument(tmp_path: Path) -> None:
    (tmp_path / "junk.pt").write_bytes(b"junk")
    result = runner.invoke(app, ["export", str(tmp_path / "junk.pt"), "--name", "m"])
    assert result.exit_code == 2
    assert "CHECKPOINT" in flat(result.output)
    assert "not a readable checkpoint" in flat(result.output)


def test_bad_log_level_lists_the_choices() -> None:
    result = runner.invoke(app, ["--log-level", "loud", "export", "--help"])
    assert result.exit_code == 2
    assert "DEBUG, INFO, WARNING or ERROR" in flat(result.output)
