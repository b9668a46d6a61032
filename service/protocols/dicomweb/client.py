"""The PACS, reached over DICOMweb with dicomweb-client (QIDO-RS, WADO-RS, STOW-RS).

``Pacs`` wraps one ``DICOMwebClient`` with the settings' address, credentials (basic auth
or a bearer token) and timeout, and fetches a study's instances on a bounded thread pool
so that the fetches overlap. Every failure becomes an ``APIError`` that names the PACS by
its role and the HTTP status it answered, and nothing of its body: a PACS's error page can
quote patient data.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset

from service.plumbing.errors import APIError
from service.plumbing.settings import Settings

log = logging.getLogger(__name__)
# dicomweb-client logs URLs at INFO and request headers (credentials) at DEBUG.
logging.getLogger("dicomweb_client").setLevel(logging.WARNING)

T = TypeVar("T")
# The original transfer syntax: decoding is ours (model/decoding/dicom.py), not the PACS's.
ANY_TRANSFER_SYNTAX = (("application/dicom", "*"),)
NOT_CONFIGURED = "no PACS is configured: set RECTIFIER_DICOMWEB_URL to the PACS's DICOMweb root"


class Pacs:
    """One PACS connection for one request: a session, a client and a fetch pool."""

    @staticmethod
    def check_configured(settings: Settings) -> None:
        if settings.dicomweb_url is None:
            raise APIError("pacs_not_configured", NOT_CONFIGURED)

    def __init__(self, settings: Settings) -> None:
        self.check_configured(settings)
        assert settings.dicomweb_url is not None
        self.settings = settings
        session = requests.Session()
        pool = max(10, settings.dicomweb_fetch_threads)
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=pool))
        session.mount("https://", requests.adapters.HTTPAdapter(pool_maxsize=pool))
        # Pixel data barely compresses, and gzip costs the PACS ~10x the transfer itself
        # (Orthanc, 512x512 CT over loopback: 67 ms an instance gzipped, 7 ms not).
        headers: dict[str, str] = {"Accept-Encoding": "identity"}
        if settings.dicomweb_username is not None:
            password = settings.dicomweb_password
            session.auth = (
                settings.dicomweb_username,
                password.get_secret_value() if password else "",
            )
        if settings.dicomweb_token is not None:
            headers["Authorization"] = f"Bearer {settings.dicomweb_token.get_secret_value()}"
        self._session = session
        self._client = DICOMwebClient(
            settings.dicomweb_url,
            session=session,
            headers=headers,
            timeout=settings.dicomweb_timeout_s,
        )
        # One retry, soon, for 503/504/429 (a busy PACS); longer waits are the caller's.
        self._client.set_http_retry_params(max_attempts=2, wait_exponential_multiplier=250)
        self._pool = ThreadPoolExecutor(
            settings.dicomweb_fetch_threads, thread_name_prefix="dicomweb-fetch"
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._session.close()

    # ---------------------------------------------------------------- QIDO-RS, WADO-RS
    def study_instance_count(self, study_uid: str) -> int:
        """How many instances the PACS holds for the study; ``study_not_found`` for none."""
        found = self._call(
            "the study search (QIDO-RS)",
            lambda: self._client.search_for_studies(
                search_filters={"StudyInstanceUID": study_uid},
                fields=["NumberOfStudyRelatedInstances"],
            ),
        )
        if not found:
            raise APIError(
                "study_not_found",
                f"the PACS has no study {study_uid}",
                {"study_uid": study_uid},
            )
        counted = found[0].get("00201208", {}).get("Value", [None])[0]
        return int(counted) if counted is not None else -1

    def study_metadata(self, study_uid: str) -> list[Dataset]:
        """Every instance's metadata (no bulk data), from WADO-RS."""
        items = self._call(
            "the study metadata request (WADO-RS)",
            lambda: self._client.retrieve_study_metadata(study_uid),
        )
        return [Dataset.from_json(item, bulk_data_uri_handler=_no_bulk_data) for item in items]

    def instance_bytes(self, study_uid: str, series_uid: str, sop_uid: str) -> bytes:
        """One instance as a DICOM Part 10 file, in the transfer syntax the PACS holds."""
        dataset = self._call(
            "an instance request (WADO-RS)",
            lambda: self._client.retrieve_instance(
                study_uid, series_uid, sop_uid, media_types=ANY_TRANSFER_SYNTAX
            ),
        )
        buffer = io.BytesIO()
        pydicom.dcmwrite(buffer, dataset, enforce_file_format=True)
        return buffer.getvalue()

    def submit(self, work: Callable[[], T]) -> Future[T]:
        """Run ``work`` on the fetch pool (the study's fetches overlap, bounded)."""
        return self._pool.submit(work)

    # ---------------------------------------------------------------- STOW-RS
    def store(self, dataset: Dataset) -> None:
        """Store one instance; ``pacs_store_failed`` when the PACS refuses it."""
        answer = self._call(
            "the report upload (STOW-RS)",
            lambda: self._client.store_instances([dataset]),
            code_for_status="pacs_store_failed",
        )
        failed = getattr(answer, "FailedSOPSequence", None)
        if failed:
            reason = getattr(failed[0], "FailureReason", None)
            shown = f" (failure reason 0x{int(reason):04X})" if reason is not None else ""
            raise APIError(
                "pacs_store_failed",
                f"the PACS refused the report{shown}",
                {"pacs_failure_reason": int(reason) if reason is not None else None},
            )

    def _call(self, what: str, call: Callable[[], T], *, code_for_status: str = "pacs_error") -> T:
        with pacs_errors(what, code_for_status):
            return call()


@contextmanager
def pacs_errors(what: str, code_for_status: str = "pacs_error") -> Iterator[None]:
    """Turn what dicomweb-client and requests raise into the API's errors, naming the PACS
    and the request that failed, never echoing what the PACS answered."""
    try:
        yield
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        raise _status_error(what, status, code_for_status) from None
    except requests.Timeout:
        raise APIError(
            "pacs_timeout", f"the PACS did not answer {what} in time", {"pacs_status": None}
        ) from None
    except requests.RequestException:
        raise APIError(
            "pacs_error", f"the PACS could not be reached for {what}", {"pacs_status": None}
        ) from None
    except (ValueError, KeyError, TypeError, pydicom.errors.InvalidDicomError):
        # An answer that is not the DICOMweb it should be (its text is not echoed).
        raise APIError(
            "pacs_error", f"the PACS sent an answer to {what} that is not valid DICOMweb"
        ) from None


def _status_error(what: str, status: int | None, code_for_status: str) -> APIError:
    detail: dict[str, Any] = {"pacs_status": status}
    if status in (401, 403):
        return APIError(
            "pacs_unauthorized",
            f"the PACS refused Rectifier's credentials for {what} (HTTP {status} from the "
            "PACS): check RECTIFIER_DICOMWEB_USERNAME/PASSWORD or RECTIFIER_DICOMWEB_TOKEN",
            detail,
        )
    if status == 404:
        return APIError(
            "study_not_found", f"the PACS answered {what} with HTTP 404 (not there)", detail
        )
    if status == 504:
        return APIError("pacs_timeout", f"the PACS timed out on {what} (HTTP 504)", detail)
    return APIError(code_for_status, f"the PACS answered {what} with HTTP {status}", detail)


def _no_bulk_data(_uri: str) -> bytes:
    """Metadata only: a bulk data reference (Pixel Data) says the element is there."""
    return b""
