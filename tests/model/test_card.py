import pytest

from model.card import (
    CardError,
    ModelCard,
    Preprocessing,
    card_digest,
    card_from_json,
    card_from_metadata,
)

PRE = Preprocessing(color_mode="RGB", resize_size=72, crop_size=64, mean=(0.5,) * 3, std=(0.2,) * 3)


def _card(**overrides: object) -> ModelCard:
    fields: dict[str, object] = {
        "name": "demo",
        "version": 1,
        "task": "multiclass",
        "labels": ("stop", "yield"),
        "preprocessing": PRE,
        "architecture": "simple_cnn",
        "activation": "relu",
        "dataset": "synthetic-signs",
    }
    return ModelCard(**{**fields, **overrides})  # type: ignore[arg-type]


def test_card_round_trips_through_json() -> None:
    card = _card(metrics={"test_accuracy": 0.98})
    assert card_from_json(card.to_json()) == card
    assert card.input_shape == (3, 64, 64)


def test_card_digest_is_the_sha256_of_the_card_json() -> None:
    import hashlib

    card = _card()
    assert card_digest(card) == hashlib.sha256(card.to_json().encode()).hexdigest()
    assert card_digest(card_from_json(card.to_json())) == card_digest(card)
    assert card_digest(_card(version=2)) != card_digest(card)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"labels": ("only",)}, "at least 2 labels"),
        ({"labels": ("a", "a")}, "unique"),
        ({"name": "../etc"}, "string_pattern_mismatch|should match pattern"),
        ({"schema_version": 99}, "schema_version 99 is not supported"),
    ],
)
def test_invalid_cards_are_refused(overrides: dict, message: str) -> None:
    with pytest.raises(CardError, match=message):
        card_from_json(_card().model_copy(update=overrides).model_dump_json())


def test_preprocessing_checks_its_channels_and_sizes() -> None:
    with pytest.raises(ValueError, match="mean and std need 1 values"):
        Preprocessing(color_mode="L", resize_size=32, crop_size=32, mean=(0.5,) * 3, std=(0.2,) * 3)
    with pytest.raises(ValueError, match="cannot exceed resize_size"):
        Preprocessing(color_mode="L", resize_size=32, crop_size=40, mean=(0.5,), std=(0.2,))


def test_a_model_without_a_card_says_how_to_get_one() -> None:
    with pytest.raises(CardError, match="rectifier export"):
        card_from_metadata({})


def test_card_module_imports_without_torch_or_onnx() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'onnx', 'torchvision'):\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import model.card, model.preprocess, model.cli\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
