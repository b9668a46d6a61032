"""Every multipart request of the hostile corpus, parsed by the service's hand-written parser
and by the python-multipart one it was measured against (docs/decisions.md): both must give
the same images or the same refusal, and the refusal the corpus expects when it comes from
the parser. The server-level answers are checked by test_corpus.py."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from bench.multipart_library import parse_multipart_library
from service.plumbing.errors import APIError
from service.protocols.v1.uploads import images_from_multipart, media_type, parse_multipart
from tests.helpers.multipart import MULTIPART
from tests.hostile.generate import Case, build_corpus
from tests.hostile.strategies import multipart_bodies

# The codes images_from_multipart itself gives; the others come later (decoding, limits).
PARSER_CODES = {"invalid_multipart", "missing_image"}


def multipart_cases() -> list[Case]:
    return [
        case
        for case in build_corpus()
        if media_type(dict(case.headers).get("Content-Type", "")) == "multipart/form-data"
        and case.body  # an empty body is refused before any parser runs
    ]


def outcome(case: Case, parse: object) -> tuple[str, object]:
    content_type = dict(case.headers)["Content-Type"]
    try:
        return "images", images_from_multipart(case.body, content_type, parse)  # type: ignore[arg-type]
    except APIError as exc:
        return "refused", exc.code


CASES = multipart_cases()


def test_the_corpus_has_multipart_cases() -> None:
    assert len(CASES) >= 10


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_both_parsers_agree_on_the_case(case: Case) -> None:
    own = outcome(case, parse_multipart)
    library = outcome(case, parse_multipart_library)
    assert own == library
    if case.expect_code in PARSER_CODES:
        assert own == ("refused", case.expect_code)
    else:  # the parts are handed over; decoding, limits or the DICOM label check refuse
        assert own[0] == "images" or own == ("refused", case.expect_code)


@settings(max_examples=300, deadline=None)
@given(body=multipart_bodies())
def test_what_the_library_accepts_the_service_parser_accepts_alike(body: bytes) -> None:
    case = Case("fuzz", "multipart", "", "POST", "/", [("Content-Type", MULTIPART)], body, 0, None)
    library = outcome(case, parse_multipart_library)
    own = outcome(case, parse_multipart)
    if library[0] == "images":
        assert own == library
    else:  # both refuse with a parser code
        assert library[1] in PARSER_CODES and (own[0] == "images" or own[1] in PARSER_CODES)
