"""The ``dicom:`` dataset kind: folders and CSV lists of DICOM files, decoded by the
service's decoder with the window the card will record."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.card import Window
from service.inference.decode_upload import decode_into
from tests.helpers.dicom import ct_bytes
from training.datasets import DatasetError, load_dataset

LIMIT = 25_000_000


def test_a_folder_of_suffix_less_dicom_files(data_dir: Path) -> None:
    bundle = load_dataset("dicom:ct", data_dir)
    assert bundle.labels == ("nodule", "normal") and bundle.task == "binary"
    assert bundle.color_mode == "L" and bundle.name == "dicom:ct"
    assert len(bundle.train) + len(bundle.val) + len(bundle.test) == 16
    spec = bundle.preprocessing(32)
    assert spec.dicom.window is None and spec.frame is None  # each file's own window
    image = bundle.train.load(0, spec)
    assert image.mode == "L" and image.size == (40, 40)  # augmentation works on 8 bits


def test_window_and_frame_options_go_into_the_preprocessing(data_dir: Path) -> None:
    spec = load_dataset("dicom:ct;window=-600,1500;frame=0", data_dir).preprocessing(32)
    assert spec.dicom.window == Window(center=-600, width=1500)
    assert spec.frame == 0


def test_a_windowed_ct_slice_preprocesses_identically_in_training_and_serving(
    data_dir: Path,
) -> None:
    bundle = load_dataset("dicom:ct;window=-600,1500", data_dir)
    spec = bundle.preprocessing(32, 36)
    for index in range(len(bundle.test)):
        served = np.empty((1, 32, 32), np.float32)
        decode_into(Path(bundle.test.images[index]).read_bytes(), spec, LIMIT, served)
        np.testing.assert_array_equal(bundle.test.preprocess(index, spec), served)


def test_a_csv_of_path_and_label(tmp_path: Path) -> None:
    (tmp_path / "scans").mkdir()
    rows = ["path,label"]
    for index in range(12):
        name = f"scans/{index}.dcm"
        (tmp_path / name).write_bytes(ct_bytes(size=24, WindowCenter=40 + index))
        rows.append(f"{name},{'a' if index % 2 else 'b'}")
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    bundle = load_dataset("dicom:list.csv", tmp_path)
    assert bundle.labels == ("a", "b") and bundle.name == "dicom:list.csv"
    assert len(bundle.train) + len(bundle.val) + len(bundle.test) == 12
    assert set(bundle.test.targets) == {0, 1}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("dicom:", "dicom needs a folder or a CSV"),
        ("dicom:ct;window=40", "window must be CENTER,WIDTH"),
        ("dicom:ct;window=40,0", "window must be CENTER,WIDTH"),
        ("dicom:ct;level=3", "unknown dicom option 'level=3'"),
        ("dicom:nowhere.csv", "does not exist"),
    ],
)
def test_bad_specs_name_the_problem(data_dir: Path, spec: str, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        load_dataset(spec, data_dir)


def test_a_csv_naming_missing_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "list.csv").write_text("gone.dcm,a\nalso-gone.dcm,b\n")
    with pytest.raises(DatasetError, match="2 listed files do not exist"):
        load_dataset("dicom:list.csv", tmp_path)
