"""Blob storage: uploaded media and rendered results, behind a small interface.

``LocalBlobStore`` keeps blobs as files under one folder; ``S3BlobStore`` (blobs_s3.py) keeps
them in any S3-compatible object store, where clients upload and download by presigned URL.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

import anyio

from .ids import new_id

_KEY = re.compile(r"[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*(\.[A-Za-z0-9]+)?")
_FLUSH_BYTES = 1024 * 1024  # write in ~1 MiB slices, off the event loop


class BlobTooLarge(Exception):
    """The stream went past the allowed size; nothing was kept."""


def too_large_message(limit: int) -> str:
    """What an object store says of an upload over ``limit`` bytes (its ``EntityTooLarge``)."""
    return f"Your proposed upload exceeds {limit} bytes"


class BlobStore(Protocol):
    async def put_stream(self, key: str, chunks: AsyncIterable[bytes], max_bytes: int) -> int:
        """Store a stream under ``key`` (replacing it atomically); return its size."""
        ...

    def put_file(self, key: str, source: Path) -> int:
        """Move a finished local file into the store; return its size."""
        ...

    def path(self, key: str) -> Path:
        """A local path to read the blob from."""
        ...

    def local_copy(self, key: str) -> AbstractContextManager[Path]:
        """A local file with the blob's bytes for the time of the block."""
        ...

    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int | None:
        """The blob's size, None when absent."""
        ...

    def delete(self, key: str) -> None: ...
    def presign_put(self, key: str, content_type: str, ttl_s: float) -> str | None:
        """A URL that accepts the blob's PUT directly (None: uploads go through the server)."""
        ...

    def presign_get(self, key: str, ttl_s: float) -> str | None:
        """A URL that serves the blob directly (None: the server serves it)."""
        ...

    def ping(self) -> None:
        """Raise BackendUnavailable when the store cannot be reached."""
        ...


def check_key(key: str) -> str:
    """Keys are made by the server, never from user input; refuse anything path-like anyway."""
    if not _KEY.fullmatch(key):
        raise ValueError(f"bad blob key {key!r}")
    return key


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self._root = root
        self._tmp = root / ".partial"
        self._tmp.mkdir(parents=True, exist_ok=True)
        # Partial uploads of a previous run are garbage.
        for leftover in self._tmp.iterdir():
            leftover.unlink(missing_ok=True)

    def path(self, key: str) -> Path:
        return self._root / check_key(key)

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        yield self.path(key)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def size(self, key: str) -> int | None:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            return None

    def presign_put(self, key: str, content_type: str, ttl_s: float) -> str | None:
        return None

    def presign_get(self, key: str, ttl_s: float) -> str | None:
        return None

    def ping(self) -> None:
        self._tmp.stat()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes], max_bytes: int) -> int:
        target = self.path(key)
        partial = self._tmp / new_id()
        size = 0
        pending: list[bytes] = []
        pending_len = 0
        try:
            with partial.open("wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise BlobTooLarge(f"larger than {max_bytes} bytes")
                    pending.append(chunk)
                    pending_len += len(chunk)
                    if pending_len >= _FLUSH_BYTES:
                        data = b"".join(pending)
                        pending, pending_len = [], 0
                        await anyio.to_thread.run_sync(out.write, data)
                if pending:
                    out.write(b"".join(pending))
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(partial, target)
            return size
        finally:
            partial.unlink(missing_ok=True)

    def put_file(self, key: str, source: Path) -> int:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)
        return target.stat().st_size
