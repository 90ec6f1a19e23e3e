"""``BlobStore`` on any S3-compatible object store (boto3).

Clients PUT uploads and GET results by presigned URL, straight to the object store: media bytes
never pass through an API replica. Workers stream a source to a local temp file and upload a
result in parts (boto3's managed transfer), so no process holds a whole media file in memory.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .blobs import BlobTooLarge, check_key
from .store import BackendUnavailable

_PART_BYTES = 8 * 1024 * 1024
_TRANSFER = TransferConfig(
    multipart_threshold=_PART_BYTES, multipart_chunksize=_PART_BYTES, max_concurrency=4
)


@dataclass(frozen=True)
class S3Location:
    """``s3://bucket/prefix`` plus where and how to reach it (None: boto3's usual sources,
    i.e. the AWS_* environment variables and files)."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    # The endpoint clients are given in presigned URLs, when it differs from ours.
    public_endpoint_url: str | None = None

    @classmethod
    def parse(cls, url: str, **options: Any) -> S3Location:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"{url!r}: use s3://BUCKET[/PREFIX]")
        return cls(bucket=parts.netloc, prefix=parts.path.strip("/"), **options)


def _unavailable(err: Exception) -> BackendUnavailable:
    return BackendUnavailable(f"object store: {type(err).__name__}")


def _missing(err: ClientError) -> bool:
    code = str(err.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


class S3BlobStore:
    def __init__(self, where: S3Location, cache_dir: Path, attempts: int = 3) -> None:
        """``attempts``: tries of each call (with backoff) before BackendUnavailable."""
        self._where = where
        config = Config(
            retries={"total_max_attempts": max(1, attempts), "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            signature_version="s3v4",
            s3={"addressing_style": "path"},
        )
        session = boto3.session.Session(
            aws_access_key_id=where.access_key_id,
            aws_secret_access_key=where.secret_access_key,
            region_name=where.region or os.environ.get("AWS_REGION") or "us-east-1",
        )
        self._client = session.client("s3", endpoint_url=where.endpoint_url, config=config)
        public = where.public_endpoint_url or where.endpoint_url
        self._signer = (
            self._client
            if public == where.endpoint_url
            else session.client("s3", endpoint_url=public, config=config)
        )
        self._cache = cache_dir
        self._cache.mkdir(parents=True, exist_ok=True)

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self._where.prefix}/{key}" if self._where.prefix else key

    def _call(self, method: str, **params: Any) -> Any:
        try:
            return getattr(self._client, method)(Bucket=self._where.bucket, **params)
        except ClientError as err:
            status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            if status >= 500:
                raise _unavailable(err) from None
            raise
        except BotoCoreError as err:
            raise _unavailable(err) from None

    def ping(self) -> None:
        try:
            self._call("head_bucket")
        except ClientError as err:
            raise BackendUnavailable(f"object store: bucket {self._where.bucket}: {err}") from None

    def size(self, key: str) -> int | None:
        try:
            head = self._call("head_object", Key=self._key(key))
        except ClientError as err:
            if _missing(err):
                return None
            raise
        return int(head["ContentLength"])

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def delete(self, key: str) -> None:
        self._call("delete_object", Key=self._key(key))

    def presign_put(self, key: str, content_type: str, ttl_s: float) -> str | None:
        # The signature covers Content-Type and the expiry: any other type, or a late PUT, is
        # refused with 403 by the object store itself.
        url: str = self._signer.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self._where.bucket,
                "Key": self._key(key),
                "ContentType": content_type,
            },
            ExpiresIn=max(1, int(ttl_s)),
        )
        return url

    def presign_get(self, key: str, ttl_s: float) -> str | None:
        url: str = self._signer.generate_presigned_url(
            "get_object",
            Params={"Bucket": self._where.bucket, "Key": self._key(key)},
            ExpiresIn=max(1, int(ttl_s)),
        )
        return url

    def _download(self, key: str, target: Path) -> None:
        try:
            self._client.download_file(
                self._where.bucket, self._key(key), str(target), Config=_TRANSFER
            )
        except ClientError as err:
            if _missing(err):
                raise FileNotFoundError(key) from None
            raise _unavailable(err) from None
        except BotoCoreError as err:
            raise _unavailable(err) from None

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        suffix = Path(key).suffix
        fd, name = tempfile.mkstemp(prefix="blob-", suffix=suffix, dir=self._cache)
        os.close(fd)
        target = Path(name)
        try:
            self._download(key, target)
            yield target
        finally:
            target.unlink(missing_ok=True)

    def path(self, key: str) -> Path:
        """A cached local copy (small, rarely changing blobs such as voice auditions)."""
        target = self._cache / "keep" / check_key(key)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
            self._download(key, partial)
            os.replace(partial, target)
        return target

    def put_file(self, key: str, source: Path) -> int:
        size = source.stat().st_size
        try:
            self._client.upload_file(
                str(source), self._where.bucket, self._key(key), Config=_TRANSFER
            )
        except (BotoCoreError, ClientError) as err:
            raise _unavailable(err) from None
        source.unlink(missing_ok=True)
        return size

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes], max_bytes: int) -> int:
        # Spooled to disk, then sent in parts: memory stays bounded whatever the size.
        fd, name = tempfile.mkstemp(prefix="put-", dir=self._cache)
        spool = Path(name)
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise BlobTooLarge(f"larger than {max_bytes} bytes")
                    await anyio.to_thread.run_sync(out.write, chunk)
            await anyio.to_thread.run_sync(self.put_file, key, spool)
            return size
        finally:
            spool.unlink(missing_ok=True)
