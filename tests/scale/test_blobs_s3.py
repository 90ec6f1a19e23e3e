"""The S3 blob store on a real S3-compatible server (SeaweedFS): presigned PUTs refused on a
wrong Content-Type or after expiry by the object store itself, ranged presigned GETs, multipart
result uploads and streamed local copies."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from chanjing_avatar.sandbox.blobs_s3 import S3BlobStore, S3Location
from chanjing_avatar.sandbox.store import BackendUnavailable

from .services import S3_KEY, S3_SECRET, SeaweedS3


@pytest.fixture
def blobs(s3: SeaweedS3, bucket: str, tmp_path: Path) -> S3BlobStore:
    where = S3Location.parse(
        f"s3://{bucket}/pre/fix",
        endpoint_url=s3.endpoint,
        access_key_id=S3_KEY,
        secret_access_key=S3_SECRET,
    )
    return S3BlobStore(where, tmp_path / "cache")


def test_presigned_put_checks_content_type_and_expiry(blobs: S3BlobStore) -> None:
    signed_at = time.monotonic()
    url = blobs.presign_put("uploads/a.mp4", "video/mp4", 6)
    assert url is not None and "X-Amz-Signature" in url and "content-type" in url
    wrong = httpx.put(url, content=b"abc", headers={"Content-Type": "audio/wav"})
    assert wrong.status_code == 403
    assert blobs.size("uploads/a.mp4") is None
    right = httpx.put(url, content=b"abc", headers={"Content-Type": "video/mp4"})
    assert right.status_code == 200
    assert blobs.size("uploads/a.mp4") == 3
    time.sleep(max(0.0, signed_at + 7.0 - time.monotonic()))
    late = httpx.put(url, content=b"abcd", headers={"Content-Type": "video/mp4"})
    assert late.status_code == 403
    assert blobs.size("uploads/a.mp4") == 3


def test_an_unsigned_put_is_refused(s3: SeaweedS3, bucket: str) -> None:
    assert httpx.put(f"{s3.endpoint}/{bucket}/pre/fix/x", content=b"x").status_code == 403


def test_results_upload_in_parts_and_serve_ranges(blobs: S3BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "out.mp4"
    data = os.urandom(20 * 1024 * 1024 + 123)  # three parts
    source.write_bytes(data)
    assert blobs.put_file("results/t.mp4", source) == len(data)
    assert not source.exists()  # moved
    url = blobs.presign_get("results/t.mp4", 60)
    assert url is not None
    part = httpx.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    with blobs.local_copy("results/t.mp4") as local:
        assert local.read_bytes() == data
        kept = local
    assert not kept.exists()
    with pytest.raises(FileNotFoundError), blobs.local_copy("results/missing.mp4"):
        pass


def test_an_unreachable_store_is_backend_unavailable(tmp_path: Path) -> None:
    where = S3Location.parse(
        "s3://nobucket", endpoint_url="http://127.0.0.1:9", access_key_id="k", secret_access_key="s"
    )
    store = S3BlobStore(where, tmp_path)
    with pytest.raises(BackendUnavailable):
        store.ping()
    with pytest.raises(BackendUnavailable):
        store.size("uploads/x.mp4")


def test_bad_locations_are_refused() -> None:
    with pytest.raises(ValueError, match="s3://BUCKET"):
        S3Location.parse("http://bucket/x")
