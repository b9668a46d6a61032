"""pip-audit on the installed environment, and the policy that reads its result.

The policy (tests/security/audit.py, docs/reliability.md): a known vulnerability fails;
an audit that could not be performed (no vulnerability service reachable) is reported as
not performed, here as a skip with the reason, never as a pass that says "no
vulnerabilities".
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.security.audit import (
    CLEAN,
    NOT_PERFORMED,
    VULNERABLE,
    AuditReport,
    audit_environment,
    format_report,
    parse_report,
)

AUDITED = {"name": "numpy", "version": "2.0.0", "vulns": []}
FOUND = {
    "name": "pillow",
    "version": "9.0.0",
    "vulns": [{"id": "PYSEC-2022-1", "fix_versions": ["9.0.1"], "aliases": ["CVE-2022-22817"]}],
}
SKIPPED = {"name": "torch", "skip_reason": "Dependency not found on PyPI and could not be audited"}


@pytest.mark.parametrize(
    ("dependencies", "verdict"),
    [
        ([AUDITED, SKIPPED], CLEAN),
        ([AUDITED, FOUND, SKIPPED], VULNERABLE),
        ([SKIPPED], NOT_PERFORMED),
        ([], NOT_PERFORMED),
    ],
    ids=["clean", "vulnerable", "all-skipped", "empty"],
)
def test_verdicts(dependencies: list[dict[str, object]], verdict: int) -> None:
    report = parse_report("pypi", {"dependencies": dependencies, "fixes": []})
    assert report.verdict == verdict
    text = format_report(report)
    if verdict == VULNERABLE:
        assert "VULNERABLE pillow 9.0.0: PYSEC-2022-1 (CVE-2022-22817); fixed in 9.0.1" in text
    if verdict == NOT_PERFORMED:
        assert "AUDIT NOT PERFORMED" in text
    if SKIPPED in dependencies and verdict == CLEAN:
        assert "not audited: torch" in text


def test_an_unreachable_service_is_not_a_clean_result() -> None:
    report = AuditReport("osv", error="pip-audit exited 1: Failed to resolve 'api.osv.dev'")
    assert report.verdict == NOT_PERFORMED
    assert "AUDIT NOT PERFORMED: pip-audit exited 1" in format_report(report)


@pytest.mark.slow
def test_installed_environment_has_no_known_vulnerabilities(figures: Callable[[str], None]) -> None:
    report = audit_environment()
    figures(format_report(report))
    assert report.verdict != VULNERABLE, format_report(report)
    if report.verdict == NOT_PERFORMED:
        pytest.skip(f"pip-audit could not be performed here: {format_report(report)}")
