"""The shared credentials file, in the vendor scripts' format::

    {"app_id": "...", "secret_key": "...", "access_token": "...", "expire_in": 1721289220}

Many threads, tasks and processes may use one file. A new token kills the old one, so refreshes
are serialised: an in-process lock (threads and tasks) and an exclusive file lock (processes).
Writes are atomic (temp file, fsync, rename), the file is 0600 in a 0700 folder, and a reader
without the lock sees either the old or the new file, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ._exceptions import CredentialsFileError

log = logging.getLogger("chanjing_avatar")

CREDENTIALS_FILE = "credentials.json"

_registry_lock = threading.Lock()
_locks: dict[str, tuple[threading.Lock, FileLock]] = {}


# A writer that is not atomic (the vendor's scripts open the file with "w" and dump into it) can
# leave it empty or half-written for a moment: look again a few times before calling it corrupt.
_REREAD_TRIES = 5
_REREAD_PAUSE_S = 0.05


def _load(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(object, None), (None, None) when missing, or (None, why) when unusable."""
    problem: str | None = None
    for attempt in range(_REREAD_TRIES):
        if attempt:
            time.sleep(_REREAD_PAUSE_S)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None, None
        except IsADirectoryError:
            return None, f"{path} is a directory, not a credentials file"
        except OSError as e:
            return None, f"cannot read {path}: {e.strerror}"
        try:
            data = json.loads(raw)
        except ValueError:
            problem = f"{path} is not valid JSON"
            continue
        if isinstance(data, dict):
            return data, None
        problem = f"{path} must hold a JSON object with app_id and secret_key"
    return None, problem


def read_credentials_file(path: Path, *, strict: bool = False) -> dict[str, Any] | None:
    """The file's JSON object, or None when it is missing.

    An unreadable or corrupt file raises :class:`CredentialsFileError` when ``strict``, and is
    logged and treated as missing otherwise (the token cache). Only ``path`` is read: a writer's
    temp file (``.credentials-*.tmp``) is never looked at, and atomic writers replace the file in
    one rename.
    """
    data, problem = _load(path)
    if problem is None:
        return data
    if strict:
        raise CredentialsFileError(
            f"{problem}: fix it or delete it, then store the keys again", path=path
        )
    log.warning("%s; ignoring it", problem)
    return None


def _atomic_write(directory: Path, path: Path, data: Mapping[str, Any]) -> None:
    """temp file in ``directory`` (0600), fsync, rename over ``path``, fsync the folder."""
    _ensure_private_dir(directory)
    fd, tmp = tempfile.mkstemp(prefix=".credentials-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:  # mkstemp: already 0600
            json.dump(dict(data), f, ensure_ascii=False, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _locks_for(path: Path) -> tuple[threading.Lock, FileLock]:
    """The in-process and file locks of one credentials file (shared by every client)."""
    key = str(path.absolute())
    with _registry_lock:
        if key not in _locks:
            file_lock = FileLock(str(path) + ".lock", thread_local=False, mode=0o600)
            _locks[key] = (threading.Lock(), file_lock)
        return _locks[key]


def write_credentials(
    directory: Path,
    app_id: str,
    secret_key: str,
    *,
    access_token: str | None = None,
    expire_in: float | None = None,
    timeout: float = 120.0,
) -> Path:
    """Replace ``directory/credentials.json`` with this app's keys (and token, if given), under
    the lock every client takes for it, atomically, 0600 in a 0700 folder."""
    path = directory / CREDENTIALS_FILE
    data: dict[str, Any] = {"app_id": app_id, "secret_key": secret_key}
    if access_token is not None and expire_in is not None:
        data["access_token"] = access_token
        data["expire_in"] = int(expire_in) if float(expire_in).is_integer() else expire_in
    thread_lock, file_lock = _locks_for(path)
    _ensure_private_dir(directory)
    with thread_lock, file_lock.acquire(timeout=timeout):
        _atomic_write(directory, path, data)
    return path


@dataclass(frozen=True, repr=False)
class StoredToken:
    token: str
    expire_in: float  # absolute unix seconds

    def __repr__(self) -> str:
        return f"StoredToken(token=<hidden>, expire_in={self.expire_in})"


def _ensure_private_dir(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = directory.stat()
    if st.st_mode & 0o077 and st.st_uid == os.getuid():
        os.chmod(directory, 0o700)


class CredentialsStore:
    """Token cache in ``credentials.json`` (or ``credentials-<app_id>.json`` when the main file
    belongs to another app), shared by every client of this app on the machine."""

    def __init__(self, directory: Path, app_id: str, secret_key: str) -> None:
        self.directory = directory
        self.app_id = app_id
        self._secret_key = secret_key
        main = directory / CREDENTIALS_FILE
        stored = read_credentials_file(main)
        if stored is not None and stored.get("app_id") not in (None, "", app_id):
            safe = re.sub(r"[^A-Za-z0-9_.-]", "_", app_id)[:100]
            self.path = directory / f"credentials-{safe}.json"
        else:
            self.path = main
        self._thread_lock, self._file_lock = _locks_for(self.path)

    def __repr__(self) -> str:
        return f"CredentialsStore(path={str(self.path)!r}, app_id={self.app_id!r})"

    def signature(self) -> tuple[int, int, int] | None:
        """Changes whenever the file is replaced; cheap enough to check before every call."""
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def read(self) -> StoredToken | None:
        data = read_credentials_file(self.path)
        if not data or data.get("app_id") not in (None, "", self.app_id):
            return None
        token, expire_in = data.get("access_token"), data.get("expire_in")
        if not isinstance(token, str) or not token:
            return None
        if isinstance(expire_in, bool) or not isinstance(expire_in, int | float):
            return None
        return StoredToken(token, float(expire_in))

    def write(self, token: str, expire_in: float) -> None:
        """Atomically store a new token, keeping the file's other fields. Call under the lock."""
        data = read_credentials_file(self.path) or {}
        data.setdefault("app_id", self.app_id)
        if data.get("app_id") == self.app_id:
            data.setdefault("secret_key", self._secret_key)
        data["access_token"] = token
        data["expire_in"] = int(expire_in) if float(expire_in).is_integer() else expire_in
        _atomic_write(self.directory, self.path, data)

    # Locking: in-process first (threads and tasks), then the file (processes).
    def acquire(self, *, blocking: bool, timeout: float = -1) -> bool:
        if not self._thread_lock.acquire(blocking, timeout if blocking else -1):
            return False
        try:
            _ensure_private_dir(self.directory)
            self._file_lock.acquire(timeout=timeout if blocking else 0)
        except Timeout:
            self._thread_lock.release()
            return False
        except BaseException:
            self._thread_lock.release()
            raise
        return True

    def release(self) -> None:
        try:
            self._file_lock.release()
        finally:
            self._thread_lock.release()
