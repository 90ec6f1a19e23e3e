"""Blob storage: uploaded media and rendered results, behind a small interface.

``LocalBlobStore`` keeps blobs as files under one folder; an S3 implementation would offer the
same methods (``path`` then materialises a local copy for the renderer).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterable
from pathlib import Path
from typing import Protocol

import anyio

from .ids import new_id

_KEY = re.compile(r"[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*(\.[A-Za-z0-9]+)?")
_FLUSH_BYTES = 1024 * 1024  # write in ~1 MiB slices, off the event loop


class BlobTooLarge(Exception):
    """The stream went past the allowed size; nothing was kept."""


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

    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...


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

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

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
