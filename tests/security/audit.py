"""Scan the installed environment with pip-audit and say plainly what the scan proved.

``python -m tests.security.audit`` (``make audit``) runs pip-audit on the packages installed
in this environment, first against PyPI's vulnerability data, then OSV's when PyPI's
audited nothing, and prints every package it could not check next to the findings.

Exit status (the policy, also in docs/reliability.md):

- 0: packages were audited and none has a known vulnerability;
- 1: at least one known vulnerability: fix it (upgrade to a fixed version) or remove the
  dependency; there is no ignore list, so nothing is silenced;
- 2: the audit was not performed: no vulnerability service answered for any package (no
  network to PyPI or OSV). That is reported as such, never as "no vulnerabilities".
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SERVICES = ("pypi", "osv")
CLEAN, VULNERABLE, NOT_PERFORMED = 0, 1, 2


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    id: str
    fix_versions: tuple[str, ...]
    aliases: tuple[str, ...] = ()


@dataclass
class AuditReport:
    service: str
    audited: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None

    @property
    def verdict(self) -> int:
        if self.findings:
            return VULNERABLE
        if self.error is not None or not self.audited:
            return NOT_PERFORMED
        return CLEAN


def parse_report(service: str, document: dict[str, Any]) -> AuditReport:
    """pip-audit's JSON (``-f json``) -> what was audited, skipped and found."""
    report = AuditReport(service)
    for dependency in document.get("dependencies", []):
        name = dependency["name"]
        if "skip_reason" in dependency:
            report.skipped.append((name, dependency["skip_reason"]))
            continue
        version = dependency.get("version", "?")
        report.audited.append((name, version))
        for vuln in dependency.get("vulns", []):
            report.findings.append(
                Finding(
                    name,
                    version,
                    vuln["id"],
                    tuple(vuln.get("fix_versions", ())),
                    tuple(vuln.get("aliases", ())),
                )
            )
    return report


def run_pip_audit(service: str, timeout_s: float = 240.0) -> AuditReport:
    """Audit ``sys.executable``'s environment (editable installs, i.e. this project, skipped)."""
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "audit.json"
        command = [
            sys.executable, "-m", "pip_audit", "--progress-spinner", "off", "--skip-editable",
            "--vulnerability-service", service, "--format", "json", "--output", str(output),
        ]  # fmt: skip
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            return AuditReport(service, error=f"pip-audit did not finish within {timeout_s:g}s")
        if not output.exists():  # pip-audit failed before writing (e.g. service unreachable)
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            return AuditReport(service, error=f"pip-audit exited {result.returncode}: {last}")
        return parse_report(service, json.loads(output.read_text()))


def audit_environment() -> AuditReport:
    """The first service that audited anything (or found something); else why none did."""
    failures: list[str] = []
    skipped: list[tuple[str, str]] = []
    for service in SERVICES:
        report = run_pip_audit(service)
        if report.audited or report.findings:
            return report
        why = report.error or (
            f"all {len(report.skipped)} packages skipped, e.g. {report.skipped[0][1]!r}"
            if report.skipped
            else "no packages listed"
        )
        failures.append(f"{service}: {why}")
        skipped = skipped or report.skipped
    return AuditReport(", ".join(SERVICES), skipped=skipped, error="; ".join(failures))


def format_report(report: AuditReport) -> str:
    lines = [
        f"pip-audit ({report.service}): {len(report.audited)} packages audited, "
        f"{len(report.skipped)} not audited, {len(report.findings)} known vulnerabilities"
    ]
    for finding in report.findings:
        fixed = ", ".join(finding.fix_versions) or "no fixed version yet"
        aliases = f" ({', '.join(finding.aliases)})" if finding.aliases else ""
        lines.append(
            f"  VULNERABLE {finding.package} {finding.version}: {finding.id}{aliases}; "
            f"fixed in {fixed}"
        )
    if report.verdict == NOT_PERFORMED:
        reason = report.error or (
            f"every package was skipped, e.g. {report.skipped[0][1]!r}"
            if report.skipped
            else "no packages found"
        )
        lines.append(f"  AUDIT NOT PERFORMED: {reason}")
    elif report.skipped:
        names = ", ".join(name for name, _ in report.skipped[:20])
        more = f" and {len(report.skipped) - 20} more" if len(report.skipped) > 20 else ""
        lines.append(f"  not audited: {names}{more}")
    return "\n".join(lines)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    report = audit_environment()
    log.info("%s", format_report(report))
    return report.verdict


if __name__ == "__main__":
    sys.exit(main())
