"""Large step outputs, stored out of line through Prefect result storage.

An output whose JSON is larger than ``ORBIN_MAX_INLINE_OUTPUT_BYTES`` is written to a Prefect
``WritableFileSystem`` block and the step row keeps only a reference::

    {"$ref": {"storage": "local" | "s3://<bucket>/<folder>", "key": "<org>/<run>/<file>",
              "bytes": n, "sha256": "..."}}

The storage is a ``LocalFileSystem`` under ``ORBIN_HOME/results`` by default; with
``ORBIN_RESULTS_S3_BUCKET`` set, a prefect-aws ``S3Bucket`` of the organization's own (its
folder ``<prefix>/<org slug>``). Both are configured by the operator: connections to them are
Orbin's, not the tenant's, so the egress policy does not apply.

A step's own output could be shaped like a reference: reading one only ever resolves keys
under the organization's own id, in the configured storages, so a forged reference reads
nothing another tenant owns.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from prefect.filesystems import LocalFileSystem, WritableFileSystem

from tenancy.config import get_settings
from tenancy.errors import NotFound

log = logging.getLogger("orbin.results")
REF = "$ref"
LOCAL = "local"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


@dataclass(frozen=True)
class OutputRef:
    storage: str
    key: str
    bytes: int
    sha256: str | None = None

    def as_json(self) -> dict[str, Any]:
        inner: dict[str, Any] = {"storage": self.storage, "key": self.key, "bytes": self.bytes}
        if self.sha256:
            inner["sha256"] = self.sha256
        return {REF: inner}


def ref_of(value: Any) -> OutputRef | None:
    """The reference a stored value holds, or None for an inline value."""
    if not isinstance(value, dict) or len(value) != 1 or not isinstance(value.get(REF), dict):
        return None
    inner = value[REF]
    storage, key, size = inner.get("storage"), inner.get("key"), inner.get("bytes")
    if not isinstance(storage, str) or not isinstance(key, str) or not isinstance(size, int):
        return None
    return OutputRef(storage, key, size, inner.get("sha256"))


def dumps(value: Any) -> bytes:
    """The output as JSON bytes, as it is stored (and served back)."""
    try:
        return orjson.dumps(value)
    except TypeError:  # not orjson's (an int past 64 bits, a non-str key): the JSON column's
        return json.dumps(value, default=str).encode()


# --- storages --------------------------------------------------------------------------


def _local() -> LocalFileSystem:
    base = Path(get_settings().home).resolve() / "results"
    base.mkdir(parents=True, exist_ok=True)
    return LocalFileSystem(basepath=str(base))


def s3_folder(organization_slug: str) -> str:
    return f"{get_settings().results_s3_prefix.strip('/')}/{organization_slug}"


def s3_bucket(folder: str) -> WritableFileSystem:
    """A prefect-aws ``S3Bucket`` on the configured bucket, credentials from the usual AWS
    environment (``AWS_ACCESS_KEY_ID``... or the instance's role)."""
    from prefect_aws import AwsCredentials, S3Bucket
    from prefect_aws.client_parameters import AwsClientParameters

    settings = get_settings()
    params = AwsClientParameters(endpoint_url=settings.results_s3_endpoint_url)
    creds = AwsCredentials(region_name=settings.results_s3_region, aws_client_parameters=params)
    assert settings.results_s3_bucket
    return S3Bucket(bucket_name=settings.results_s3_bucket, bucket_folder=folder, credentials=creds)


_registered: set[str] = set()
_registered_lock = threading.Lock()


def block_name(organization_slug: str) -> str:
    return f"orbin-results-{organization_slug}"


def register_s3_block(organization_slug: str) -> None:
    """Save the organization's ``S3Bucket`` as a Prefect block document (once per process), so
    operators see in the Prefect UI where its outputs are. It holds no secret: credentials
    come from the environment. Best effort: storing never depends on it."""
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():  # no server to save to (and never start a temporary one)
        return
    name = block_name(organization_slug)
    with _registered_lock:
        if name in _registered or not get_settings().results_s3_bucket:
            return
        _registered.add(name)
    try:
        s3_bucket(s3_folder(organization_slug)).save(name, overwrite=True, _sync=True)
    except Exception:  # noqa: BLE001 - Prefect unreachable: try again in another process
        log.warning("could not save the Prefect block %s", name, exc_info=True)


def storage_label(organization_slug: str) -> str:
    """Where this organization's new outputs go: ``local`` or ``s3://bucket/folder``."""
    bucket = get_settings().results_s3_bucket
    return f"s3://{bucket}/{s3_folder(organization_slug)}" if bucket else LOCAL


def _storage(label: str) -> WritableFileSystem:
    if label == LOCAL:
        return _local()
    bucket = get_settings().results_s3_bucket
    prefix = f"s3://{bucket}/"
    if bucket and label.startswith(prefix):
        return s3_bucket(label.removeprefix(prefix))
    raise NotFound("the output's storage is not configured here")


# --- write and read --------------------------------------------------------------------


def oversized(encoded: bytes) -> bool:
    return len(encoded) > get_settings().max_inline_output_bytes


def _key(organization_id: str, run_id: str, step_key: str) -> str:
    name = _UNSAFE.sub("_", step_key)[:80] or "output"
    return f"{organization_id}/{run_id}/{name}-{uuid.uuid4().hex[:12]}.json"


def encoded_if_oversized(value: Any) -> bytes | None:
    """The output's JSON when it is too large to keep inline (a reference already is not)."""
    if value is None or ref_of(value) is not None:
        return None
    encoded = dumps(value)
    return encoded if oversized(encoded) else None


def write_output(
    *, organization_id: str, organization_slug: str, run_id: str, step_key: str, encoded: bytes
) -> dict[str, Any]:
    """Store an output's JSON; the reference the step row keeps instead."""
    label = storage_label(organization_slug)
    key = _key(organization_id, run_id, step_key)
    _storage(label).write_path(key, encoded, _sync=True)
    digest = hashlib.sha256(encoded).hexdigest()
    return OutputRef(label, key, len(encoded), digest).as_json()


def store_output(
    *, organization_id: str, organization_slug: str, run_id: str, step_key: str, value: Any
) -> Any:
    """The value to record for an output: itself when small, else a reference to it stored."""
    encoded = encoded_if_oversized(value)
    if encoded is None:
        return value
    return write_output(
        organization_id=organization_id,
        organization_slug=organization_slug,
        run_id=run_id,
        step_key=step_key,
        encoded=encoded,
    )


def _check_owner(ref: OutputRef, organization_id: str) -> None:
    parts = ref.key.split("/")
    if parts[0] != organization_id or any(p in ("", ".", "..") for p in parts):
        raise NotFound("no such stored output")


def load_bytes(*, organization_id: str, ref: OutputRef) -> bytes:
    """A stored output's JSON bytes, exactly as written. NotFound when it is gone."""
    _check_owner(ref, organization_id)
    try:
        return _storage(ref.storage).read_path(ref.key, _sync=True)
    except NotFound:
        raise
    except Exception as exc:  # a missing file or object: the storage's own error type
        raise NotFound(f"the stored output could not be read: {type(exc).__name__}") from exc


def load_value(*, organization_id: str, value: Any) -> Any:
    """The full value behind a recorded output (the value itself when it is inline)."""
    ref = ref_of(value)
    if ref is None:
        return value
    raw = load_bytes(organization_id=organization_id, ref=ref)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:  # written by json.dumps (see dumps)
        return json.loads(raw)


def load_values(*, organization_id: str, outputs: dict[str, Any]) -> dict[str, Any]:
    """Recorded outputs by step, each reference loaded back (a resumed or recovered run)."""
    return {k: load_value(organization_id=organization_id, value=v) for k, v in outputs.items()}


def output_bytes(*, organization_id: str, value: Any) -> bytes:
    """What ``GET .../steps/{id}/output`` answers: the output's JSON, fetched when stored."""
    ref = ref_of(value)
    if ref is None:
        return dumps(value)
    return load_bytes(organization_id=organization_id, ref=ref)
