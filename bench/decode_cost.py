"""Decode cost of one 512x512 CT slice: uncompressed DICOM against the compressed transfer
syntaxes the installed plugins handle, and against an 8-bit and a 16-bit PNG of the same
picture, through the shared decoder (``model.decoding.decode_image``) and through the
service's decode + preprocess (``service.inference.decode_upload.decode_into``) for a 224 px model.

Rounds alternate over the formats (A B C ... A B C ...), so load from other processes hits
each alike; each round's median is kept, and the table gives the median of rounds, their
spread (min-max) and the ratio to uncompressed DICOM. The files are written with pydicom
(tests/helpers/dicom.py), like the tests' files.

    .venv/bin/python bench/decode_cost.py                     # ~20 s
    .venv/bin/python bench/decode_cost.py --rounds 9 --repeats 50
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repository root, as run.py does

import argparse  # noqa: E402
import io  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from model.card import Preprocessing  # noqa: E402
from model.decoding import decode_image  # noqa: E402
from service.inference.decode_upload import decode_into  # noqa: E402
from tests.helpers.dicom import SYNTAXES, ct_bytes, ct_slice  # noqa: E402

SIZE = 512
MAX_PIXELS = 40_000_000
SPEC = Preprocessing(color_mode="L", resize_size=256, crop_size=224, mean=(0.5,), std=(0.25,))


def inputs() -> dict[str, bytes]:
    """Name -> file bytes, all of the same 512x512 slice."""
    files = {f"DICOM {name}": ct_bytes(size=SIZE, syntax=uid) for name, uid in SYNTAXES.items()}
    stored = ct_slice(SIZE).astype(np.uint16)
    for name, pixels in (("PNG 8-bit", (stored >> 4).astype(np.uint8)), ("PNG 16-bit", stored)):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "PNG")
        files[name] = buffer.getvalue()
    return files


def decode_only(data: bytes) -> None:
    decode_image(data, SPEC, MAX_PIXELS).close()


def decode_and_preprocess(data: bytes) -> None:
    out = np.empty((1, SPEC.crop_size, SPEC.crop_size), np.float32)
    decode_into(data, SPEC, MAX_PIXELS, out)


def measure(
    files: dict[str, bytes], work: Callable[[bytes], None], rounds: int, repeats: int
) -> dict[str, list[float]]:
    """Name -> per-round median ms, the formats alternating within each round."""
    for data in files.values():
        work(data)  # plugin imports and first-call costs stay out of the figures
    results: dict[str, list[float]] = {name: [] for name in files}
    for _ in range(rounds):
        for name, data in files.items():
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                work(data)
                times.append(time.perf_counter() - start)
            results[name].append(statistics.median(times) * 1e3)
    return results


def table(files: dict[str, bytes], rows: dict[str, dict[str, list[float]]]) -> str:
    base = {what: statistics.median(r["DICOM uncompressed"]) for what, r in rows.items()}
    lines = [
        "| input (512x512) | bytes | decode ms (spread) | x uncompressed "
        "| decode + preprocess ms (spread) | x uncompressed |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, data in files.items():
        cells = [name, str(len(data))]
        for what, results in rows.items():
            runs = results[name]
            median = statistics.median(runs)
            cells += [
                f"{median:.2f} ({min(runs):.2f}-{max(runs):.2f})",
                f"{median / base[what]:.2f}",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds [5]")
    parser.add_argument("--repeats", type=int, default=20, help="decodes per round [20]")
    args = parser.parse_args()
    files = inputs()
    rows = {
        "decode": measure(files, decode_only, args.rounds, args.repeats),
        "decode + preprocess": measure(files, decode_and_preprocess, args.rounds, args.repeats),
    }
    print(table(files, rows))


if __name__ == "__main__":
    main()
