"""No patient data leaves Rectifier: after every other DICOMweb test (this module's name
sorts last), the server's log (at DEBUG), ``/metrics`` and every response body the tests
received, errors included, hold none of the test files' identifying values. UIDs are not
patient data here; names, IDs and dates are."""

from __future__ import annotations

import pytest

from tests.helpers.dicom_studies import IDENTIFYING

pytestmark = pytest.mark.pacs


def test_no_identifying_value_reaches_a_log_metric_or_body(server, client, bodies):
    metrics = client.get("/metrics").text
    assert len(bodies) > 20, "the other DICOMweb tests did not run first"
    log = server.logs()
    assert "dicomweb pull" in log  # the log did record the pulls
    for value in IDENTIFYING:
        assert value not in log, f"{value!r} in the server log"
        assert value not in metrics, f"{value!r} in /metrics"
        for body in bodies:
            assert value not in body, f"{value!r} in a response: {body[:300]}"
