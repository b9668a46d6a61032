"""Bounds of a pull: a study past ``dicomweb_max_instances`` is refused before any
instance is fetched; an instance past ``max_image_pixels`` is skipped with the reason, from
its header, while the rest of the study is classified."""

from __future__ import annotations

import pytest
from pydicom.uid import generate_uid

from tests.helpers.dicom_studies import series
from tests.helpers.dicomweb import MAX_IMAGE_PIXELS, MAX_INSTANCES, upload

pytestmark = pytest.mark.pacs


def test_a_study_past_the_instance_bound_is_refused(client, pacs_http):
    study_uid = generate_uid()
    upload(pacs_http, series(study_uid, MAX_INSTANCES + 1, size=16, seed=31))
    response = client.post(f"/v1/models/ct/dicomweb/studies/{study_uid}")
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "study_too_large"
    assert error["detail"] == {"instances": MAX_INSTANCES + 1, "max_instances": MAX_INSTANCES}


def test_an_instance_past_the_pixel_bound_is_skipped(client, pacs_http):
    study_uid = generate_uid()
    small = series(study_uid, 1, seed=32)
    large = series(study_uid, 1, size=400, seed=33)  # 160000 pixels
    assert MAX_IMAGE_PIXELS < 400 * 400
    upload(pacs_http, small + large)
    response = client.post(f"/v1/dicomweb/studies/{study_uid}", params={"store": "false"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [e["sop_instance_uid"] for e in body["instances"]] == [small[0].sop_uid]
    (skipped,) = body["skipped"]
    assert skipped["sop_instance_uid"] == large[0].sop_uid
    assert skipped["reason"] == "image_too_large"
    assert str(MAX_IMAGE_PIXELS) in skipped["message"]
