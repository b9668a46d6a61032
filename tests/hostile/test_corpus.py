"""Send every generated hostile case to the real server and check the exact answer.

For each case: the status and error code are the ones the corpus expects, every error has
the JSON error shape of its API (``{"error": {"code", "message", "detail"}}`` for V1,
``{"error": "..."}`` for V2), nothing is a 500, nothing hangs (each request has a hard
deadline), and a normal request right after it is answered correctly. Valid-but-odd images
must get a prediction, equal to their lossless reference where the corpus names one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.dicom import PHI_STRINGS
from tests.helpers.images import encode, scene
from tests.helpers.rawhttp import NoResponse, RawResponse, send_raw
from tests.helpers.server import RunningServer, running_server
from tests.hostile.generate import Case, Target, build_corpus

pytestmark = pytest.mark.e2e

TARGET = Target()
BODY_TIMEOUT_S = 2.0
CASE_TIMEOUT_S = 15.0
PROBABILITY_TOLERANCE = 1e-4

SERVER_ENV = {
    "RECTIFIER_MAX_UPLOAD_BYTES": str(TARGET.max_upload_bytes),
    "RECTIFIER_MAX_IMAGES_PER_REQUEST": str(TARGET.max_images_per_request),
    "RECTIFIER_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
    "RECTIFIER_DEFAULT_MODEL": TARGET.model,
}


@pytest.fixture(scope="module")
def server(model_repo_dir: Path) -> Iterator[RunningServer]:
    with running_server(model_repo_dir, env=SERVER_ENV) as running:
        yield running


def address(server: RunningServer) -> tuple[str, int]:
    host, _, port = server.url.removeprefix("http://").partition(":")
    return host, int(port)


def probabilities(body: dict[str, Any]) -> list[dict[str, float]]:
    """label -> probability, per image of a V1 prediction."""
    return [
        {entry["label"]: entry["probability"] for entry in prediction["top_k"]}
        for prediction in body["predictions"]
    ]


def close(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(abs(a[k] - b[k]) <= PROBABILITY_TOLERANCE for k in a)


def send(server: RunningServer, case: Case) -> RawResponse:
    slow = case.transfer in ("slow", "slow_head")
    timeout = BODY_TIMEOUT_S + 5 if slow else CASE_TIMEOUT_S
    return send_raw(
        *address(server),
        case.method,
        case.target,
        case.headers,
        case.body,
        transfer=case.transfer,
        timeout_s=timeout,
    )


def check_shape(case: Case, response: RawResponse) -> list[str]:
    """What is wrong with the response to ``case`` (empty when it is as expected)."""
    problems = []
    if response.status != case.expect_status:
        problems.append(f"status {response.status}, expected {case.expect_status}")
    if response.status >= 500:
        problems.append("a 5xx answer")
    content_type = response.header("content-type") or ""
    if not content_type.startswith("application/json"):
        return [*problems, f"content type {content_type!r}, body {response.body[:200]!r}"]
    try:
        body = response.json()
    except ValueError:
        return [*problems, f"body is not JSON: {response.body[:200]!r}"]
    if case.expect_status == 200:
        if case.target.endswith("/reload"):
            if not body.get("versions"):
                problems.append(f"no versions in the reload answer {body}")
        elif case.protocol == "v1" and not body.get("predictions"):
            problems.append(f"no predictions in {body}")
        if case.protocol == "v2" and not body.get("outputs"):
            problems.append(f"no outputs in {body}")
    elif case.protocol == "v2":
        if not (
            isinstance(body, dict) and set(body) == {"error"} and isinstance(body["error"], str)
        ):
            problems.append(f"not the V2 error shape: {body}")
    else:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict) or not {"code", "message", "detail"} <= set(error):
            problems.append(f"not the error shape: {body}")
        elif error["code"] != case.expect_code:
            problems.append(
                f"code {error['code']!r}, expected {case.expect_code!r}: {error['message']}"
            )
        elif not isinstance(error["message"], str) or not error["message"]:
            problems.append("an empty error message")
    for header in case.expect_headers:
        if response.header(header) is None:
            problems.append(f"no {header} header")
    problems += [f"patient data {value!r} in the answer" for value in leaked(response.body)]
    return problems


def leaked(text: bytes | str) -> list[str]:
    """The patient identifiers of the DICOM test files that appear in ``text``."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return [value for value in PHI_STRINGS if value in text]


def test_hostile_corpus(server: RunningServer, figures: Callable[[str], None]) -> None:
    cases = build_corpus(TARGET)
    normal = encode(scene(64, 48, seed=42), "PNG")
    predict = f"/v1/models/{TARGET.model}/predict"

    def normal_request() -> dict[str, float]:
        response = send_raw(
            *address(server),
            "POST",
            predict,
            [("Content-Type", "image/png")],
            normal,
            timeout_s=CASE_TIMEOUT_S,
        )
        assert response.status == 200, response.body[:300]
        return probabilities(response.json())[0]

    baseline = normal_request()
    predictions: dict[str, list[dict[str, float]]] = {}
    failures: dict[str, list[str]] = {}
    for case in cases:
        try:
            response = send(server, case)
        except NoResponse as exc:
            failures[case.id] = [f"no response: {exc}"]
        else:
            problems = check_shape(case, response)
            is_prediction = case.protocol == "v1" and "/predict" in case.target
            if not problems and case.expect_status == 200 and is_prediction:
                predictions[case.id] = probabilities(response.json())
                if case.reference is not None:
                    reference = predictions.get(case.reference)
                    if reference is None or not close(predictions[case.id][0], reference[0]):
                        problems.append(
                            f"prediction {predictions[case.id][0]} differs from the reference "
                            f"{case.reference}: {reference}"
                        )
            if problems:
                failures[case.id] = problems
        if server.process.poll() is not None:
            failures[case.id] = [*failures.get(case.id, []), "the server died"]
            break
        after = normal_request()
        if not close(after, baseline):
            failures.setdefault(case.id, []).append(f"the next normal request got {after}")

    answered = len(cases) - len(failures)
    figures(f"{len(cases)} cases tried, {answered} answered as expected")
    report = "\n".join(
        f"  {case_id}: {'; '.join(problems)}" for case_id, problems in failures.items()
    )
    assert not failures, f"{len(failures)} of {len(cases)} cases answered wrongly:\n{report}"
    assert "Traceback" not in server.logs(), server.logs()[-4000:]
    assert not leaked(server.logs()), "patient data in the server's log"
