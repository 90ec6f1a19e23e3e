"""The shared credentials file, in the vendor scripts' format::

    {"app_id": "...", "secret_key": "...", "access_token": "...", "expire_in": 1721289220}

Many threads, tasks and processes may use one file. A new token kills the old one, so refreshes
are serialised: an in-process lock (threads and tasks) and an exclusive file lock (processes).
Writes are atomic (temp file, fsync, rename), the file is 0600 in a 0700 folder, and a reader
without the lock sees either the old or the new file, never half of one.

Like ssh, a file or folder that another user owns or can write is refused (a planted file would
make this process work as someone else's app), and so are symlinks and oversized files. A folder
this module did not create is never chmod-ed. The token cache never writes a secret key: only
``write_credentials`` (``auth set``) stores one.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import stat
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ._exceptions import CredentialsConflictError, CredentialsFileError

log = logging.getLogger("chanjing_avatar")

CREDENTIALS_FILE = "credentials.json"
# A credentials file is a few hundred bytes; anything far bigger is not one.
MAX_FILE_BYTES = 64 * 1024

_registry_lock = threading.Lock()
_locks: dict[str, tuple[threading.Lock, FileLock]] = {}


def _forget_locks() -> None:
    """In a forked child: the parent's lock objects (maybe held by threads that do not exist
    here, and file locks bound to the parent) must not be used; new ones are made on demand."""
    global _registry_lock
    _registry_lock = threading.Lock()
    _locks.clear()


os.register_at_fork(after_in_child=_forget_locks)

# A writer that is not atomic (the vendor's scripts open the file with "w" and dump into it) can
# leave it empty or half-written for a moment: look again a few times before calling it corrupt.
_REREAD_TRIES = 5
_REREAD_PAUSE_S = 0.05


# -- pure decisions ---------------------------------------------------------------------------


def unsafe_owner(st: os.stat_result, *, uid: int, gid: int) -> str | None:
    """Why a credentials file or folder with this ``stat`` must not be trusted, or None.

    Trusted: owned by us or root, writable by nobody else (group-writable only for our own
    primary group, the usual per-user group).
    """
    if st.st_uid not in (uid, 0):
        return f"is owned by another user (uid {st.st_uid})"
    if st.st_mode & stat.S_IWOTH:
        return "can be written by every user"
    if st.st_mode & stat.S_IWGRP and st.st_gid != gid:
        return f"can be written by group {st.st_gid}"
    return None


def token_path(directory: Path, file_app_id: object, app_id: str) -> Path:
    """Where ``app_id``'s token goes: ``credentials.json`` unless that file belongs to another
    app, then ``credentials-<app_id>.json`` beside it."""
    if file_app_id in (None, "", app_id):
        return directory / CREDENTIALS_FILE
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", app_id)[:100]
    return directory / f"credentials-{safe}.json"


# -- reading ----------------------------------------------------------------------------------


def _refuse(path: Path, why: str, fix: str) -> CredentialsFileError:
    return CredentialsFileError(f"refusing {path}: it {why}; {fix}", path=path)


_OWN_FOLDER = ("use a folder of your own (--credentials-dir or "
               "CHANJING_OPENAPI_CREDENTIALS_DIR)")


def check_folder(directory: Path) -> bool:
    """Raise :class:`CredentialsFileError` for a folder another user owns or can write;
    False when it does not exist."""
    try:
        st = directory.stat()
    except FileNotFoundError:
        return False
    except OSError as e:
        raise CredentialsFileError(f"cannot use {directory}: {e.strerror}",
                                   path=directory) from None
    if not stat.S_ISDIR(st.st_mode):
        raise CredentialsFileError(f"{directory} is not a folder", path=directory)
    why = unsafe_owner(st, uid=os.geteuid(), gid=os.getegid())
    if why is not None:
        raise _refuse(directory, why, _OWN_FOLDER)
    return True


def _read_raw(path: Path) -> bytes | None:
    """The file's bytes (None when missing), after the ownership, type and size checks."""
    if not check_folder(path.parent):
        return None
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise _refuse(path, "is a symbolic link",
                          "replace it with the file itself (chanjing-avatar auth set)") from None
        raise CredentialsFileError(f"cannot read {path}: {e.strerror}", path=path) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise CredentialsFileError(f"{path} is a directory, not a credentials file",
                                       path=path)
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(path, "is not a regular file", "delete it")
        why = unsafe_owner(st, uid=os.geteuid(), gid=os.getegid())
        if why is not None:
            raise _refuse(path, why, "delete it and store your keys again (auth set)")
        if st.st_size > MAX_FILE_BYTES:
            raise _refuse(path, f"is {st.st_size} bytes, far too big for a credentials file",
                          "delete it and store your keys again (auth set)")
        with os.fdopen(fd, "rb") as f:
            fd = -1
            return f.read(MAX_FILE_BYTES + 1)
    finally:
        if fd >= 0:
            os.close(fd)


def _load(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(object, None), (None, None) when missing, or (None, why) when unusable.

    Unsafe files (see :func:`unsafe_owner`, symlinks, huge files) raise at once."""
    problem: str | None = None
    for attempt in range(_REREAD_TRIES):
        if attempt:
            time.sleep(_REREAD_PAUSE_S)
        raw = _read_raw(path)
        if raw is None:
            return None, None
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

    A corrupt file raises :class:`CredentialsFileError` when ``strict``, and is logged and treated
    as missing otherwise (the token cache). A file or folder that is not safe to trust (another
    user's, writable by others, a symlink, oversized) always raises. Only ``path`` is read: a
    writer's temp file (``.credentials-*.tmp``) is never looked at, and atomic writers replace
    the file in one rename.
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


# -- writing ----------------------------------------------------------------------------------


def _ensure_private_dir(directory: Path) -> None:
    """Create the folder 0700 if missing; an existing one is checked, never chmod-ed."""
    if check_folder(directory):
        return
    try:
        directory.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass  # made meanwhile by someone else: check it like any existing folder
    except OSError as e:
        raise CredentialsFileError(f"cannot create {directory}: {e.strerror}",
                                   path=directory) from None
    else:
        os.chmod(directory, 0o700)  # ours: exactly 0700 whatever the umask
    check_folder(directory)


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


LockPair = tuple[threading.Lock, FileLock]


def _locks_for(path: Path) -> LockPair:
    """The in-process and file locks of one credentials file (shared by every client of this
    process; a forked child gets new ones)."""
    key = str(path.absolute())
    with _registry_lock:
        if key not in _locks:
            file_lock = FileLock(str(path) + ".lock", thread_local=False, mode=0o600)
            _locks[key] = (threading.Lock(), file_lock)
        return _locks[key]


def _acquire_file_lock(path: Path, file_lock: FileLock, timeout: float) -> None:
    try:
        file_lock.acquire(timeout=timeout)
    except Timeout:
        raise
    except OSError as e:
        raise CredentialsFileError(
            f"cannot create the lock file {file_lock.lock_file}: {e.strerror}; "
            f"{_OWN_FOLDER}", path=path,
        ) from None


def _backup(path: Path) -> Path:
    """Copy ``path`` beside itself as ``credentials.json.<UTC time>.bak`` (0600)."""
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.{stamp}.bak")
    raw = _read_raw(path) or b""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(raw)
        f.flush()
        os.fsync(f.fileno())
    return target


@dataclass(frozen=True)
class SavedCredentials:
    path: Path
    backup: Path | None = None  # the other app's file, kept when replaced with ``force``


def write_credentials(
    directory: Path,
    app_id: str,
    secret_key: str,
    *,
    access_token: str | None = None,
    expire_in: float | None = None,
    timeout: float = 120.0,
    force: bool = False,
) -> SavedCredentials:
    """Replace ``directory/credentials.json`` with this app's keys (and token, if given), under
    the lock every client takes for it, atomically, 0600 in a 0700 folder.

    A file of another app is not replaced (:class:`CredentialsConflictError`) unless ``force``;
    then it is copied to a ``.bak`` beside it first."""
    path = directory / CREDENTIALS_FILE
    data: dict[str, Any] = {"app_id": app_id, "secret_key": secret_key}
    if access_token is not None and expire_in is not None:
        data["access_token"] = access_token
        data["expire_in"] = int(expire_in) if float(expire_in).is_integer() else expire_in
    thread_lock, file_lock = _locks_for(path)
    _ensure_private_dir(directory)
    backup: Path | None = None
    with thread_lock:
        _acquire_file_lock(path, file_lock, timeout)
        try:
            current = read_credentials_file(path)
            other = None if current is None else current.get("app_id")
            if other not in (None, "", app_id):
                if not force:
                    raise CredentialsConflictError(
                        f"{path} holds the keys of another app ({other})",
                        path=path, other_app_id=str(other),
                    )
                backup = _backup(path)
            _atomic_write(directory, path, data)
        finally:
            file_lock.release()
    return SavedCredentials(path, backup)


@dataclass(frozen=True, repr=False)
class StoredToken:
    token: str
    expire_in: float  # absolute unix seconds

    def __repr__(self) -> str:
        return f"StoredToken(token=<hidden>, expire_in={self.expire_in})"


class CredentialsStore:
    """Token cache in ``credentials.json`` (or ``credentials-<app_id>.json`` when the main file
    belongs to another app), shared by every client of this app on the machine."""

    def __init__(self, directory: Path, app_id: str, secret_key: str) -> None:
        self.directory = directory
        self.app_id = app_id
        stored = read_credentials_file(directory / CREDENTIALS_FILE)
        self.path = token_path(directory, None if stored is None else stored.get("app_id"),
                               app_id)

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
        """Atomically store a new token, keeping the file's other fields. Call under the lock.

        The file's app is checked again here, under the lock: if ``credentials.json`` now
        belongs to another app (``auth set`` ran meanwhile), this app's token goes to its own
        file instead, never into the other app's. No secret key is ever added.
        """
        data = read_credentials_file(self.path) or {}
        path = self.path
        if path.name == CREDENTIALS_FILE:
            path = token_path(self.directory, data.get("app_id"), self.app_id)
        if path != self.path:
            log.info("%s now belongs to app %s; this app's token goes to %s",
                     self.path, data.get("app_id"), path)
            thread_lock, file_lock = _locks_for(path)
            with thread_lock:
                _acquire_file_lock(path, file_lock, 120.0)
                try:
                    self._write(path, read_credentials_file(path) or {}, token, expire_in)
                finally:
                    file_lock.release()
            self.path = path
            return
        self._write(path, data, token, expire_in)

    def _write(self, path: Path, data: dict[str, Any], token: str, expire_in: float) -> None:
        data["app_id"] = self.app_id
        data["access_token"] = token
        data["expire_in"] = int(expire_in) if float(expire_in).is_integer() else expire_in
        _atomic_write(self.directory, path, data)

    # Locking: in-process first (threads and tasks), then the file (processes).
    def acquire(self, *, blocking: bool, timeout: float = -1) -> LockPair | None:
        """The locks of the file in use now, held; None when not obtained in time. Hand the
        result to :meth:`release`."""
        pair = _locks_for(self.path)
        thread_lock, file_lock = pair
        if not thread_lock.acquire(blocking, timeout if blocking else -1):
            return None
        try:
            _ensure_private_dir(self.directory)
            _acquire_file_lock(self.path, file_lock, timeout if blocking else 0)
        except Timeout:
            thread_lock.release()
            return None
        except BaseException:
            thread_lock.release()
            raise
        return pair

    @staticmethod
    def release(held: LockPair) -> None:
        thread_lock, file_lock = held
        try:
            file_lock.release()
        finally:
            thread_lock.release()
