"""A client used in a parent and then in processes forked from it (multiprocessing with fork,
prefork servers) works in each child as in a fresh process: own connections, own locks, own
rate-limiter state, own jitter. Real forks against the embedded sandbox over loopback HTTP."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chanjing_avatar import ChanjingError, Client, RateLimit, RateLimits
from media_maker import make_video

from .fakes import copy_renderer

sandbox = pytest.importorskip("chanjing_avatar.sandbox")
VOICE = "a" * 32
fork = multiprocessing.get_context("fork")

# The client the pool's children inherit (set before the pool forks).
_CLIENT: Client | None = None


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    cfg = sandbox.SandboxConfig(data_dir=tmp_path_factory.mktemp("sandbox"), admin=True,
                                renderer=copy_renderer(), rate_limit_scale=100,
                                file_sync_delay_s=0.05)
    with sandbox.Sandbox(cfg) as server:
        yield server


@pytest.fixture(scope="module")
def task_ids(sb: Any, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    video = make_video(tmp_path_factory.mktemp("media") / "face.mp4", 240, 320, fps=10)
    with Client(sb.app_id, sb.secret_key, base_url=sb.base_url,
                credentials_dir=tmp_path_factory.mktemp("cred")) as c:
        file_id = c.files.upload(video, "lip_sync_video").id
        return [c.lipsync.create(video_file_id=file_id, text=f"t{i}", voice_id=VOICE)
                for i in range(8)]


def _detail(task_id: str) -> tuple[str, str]:
    """(asked, answered): the id of the task detail the child got back, or the error."""
    assert _CLIENT is not None
    try:
        return task_id, _CLIENT.lipsync.get(task_id).id
    except ChanjingError as e:
        return task_id, f"error {type(e).__name__}: {e}"


def test_fork_pool_of_8_gets_its_own_answers_while_tokens_rotate(
    sb: Any, task_ids: list[str], tmp_path: Path
) -> None:
    global _CLIENT
    sb.admin.clear_faults()
    with Client(sb.app_id, sb.secret_key, base_url=sb.base_url,
                credentials_dir=tmp_path / "cred", rate_limits=False) as c:
        _CLIENT = c
        # The parent holds a keep-alive connection, a token and the credential locks' objects.
        assert c.lipsync.get(task_ids[0]).id == task_ids[0]
        c.auth.token()
        # Tokens rotate: about one detail call in 15 invalidates the caller's token, so the
        # children re-read the shared file and refresh under its lock.
        sb.admin.add_fault("lipsync_detail", "invalidate_token", probability=0.07)
        try:
            with fork.Pool(8) as pool:
                results = pool.map(_detail, task_ids * 40, chunksize=4)
        finally:
            sb.admin.clear_faults()
            _CLIENT = None
        # The parent still works after its children used "its" client.
        assert c.lipsync.get(task_ids[1]).id == task_ids[1]
    errors = [r for _, r in results if r.startswith("error")]
    wrong = [(asked, got) for asked, got in results if not got.startswith("error") and asked != got]
    assert len(results) == 320
    assert (wrong, errors[:3], len(errors)) == ([], [], 0)
    assert sb.admin.count("access_token") >= 2  # tokens did rotate


def _record(sleeps: list[float]) -> Any:
    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)
    return sleep


def _child_detail(c: Client, task_id: str, sleeps: list[float], out: Any) -> None:
    sleeps.clear()  # only what this child waits for
    try:
        got = c.lipsync.get(task_id).id
    except ChanjingError as e:
        got = f"error {e}"
    out.put((got, sum(sleeps)))


def test_child_forked_while_parent_threads_wait_on_the_limiter_waits_for_nothing(
    sb: Any, task_ids: list[str], tmp_path: Path
) -> None:
    sb.admin.clear_faults()
    sleeps: list[float] = []
    limits = RateLimits({"lipsync_query": RateLimit("lipsync_query", 1, 1.0)})
    # A clock of its own: the in-process limiter (the one shared through a file is the same for
    # parent and child by design, see test_shared_rate_limits.py).
    with Client(sb.app_id, sb.secret_key, base_url=sb.base_url, credentials_dir=tmp_path,
                rate_limits=limits, sleep=_record(sleeps), clock=time.monotonic) as c:
        c.lipsync.get(task_ids[0])
        threads = [threading.Thread(target=c.lipsync.get, args=(t,)) for t in task_ids[:4]]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while len(sleeps) < 3 and time.monotonic() < deadline:  # three threads booked, asleep
            time.sleep(0.01)
        assert len(sleeps) >= 3
        out = fork.Queue()
        child = fork.Process(target=_child_detail, args=(c, task_ids[5], sleeps, out))
        child.start()
        got, waited = out.get(timeout=60)
        child.join(30)
        for t in threads:
            t.join()
    assert got == task_ids[5]
    # A fresh process's first detail call waits for nothing; the parent's booked slots are not
    # the child's (they used to cost it seconds per call).
    assert waited == 0


def _child_rng(c: Client, out: Any) -> None:
    c.auth.token()  # any call
    out.put(c._ctx.rng.random())  # what the retry jitter draws next


def test_children_do_not_share_the_parents_jitter(sb: Any, tmp_path: Path) -> None:
    with Client(sb.app_id, sb.secret_key, base_url=sb.base_url, credentials_dir=tmp_path) as c:
        c.auth.token()
        out = fork.Queue()
        children = [fork.Process(target=_child_rng, args=(c, out)) for _ in range(3)]
        for p in children:
            p.start()
        draws = [out.get(timeout=60) for _ in children]
        for p in children:
            p.join(30)
    # Identical draws would make every child of a prefork server retry at the same moment.
    assert len(set(draws)) == 3


def _child_token(c: Client, out: Any) -> None:
    try:
        out.put(bool(c.auth.token()))
    except ChanjingError as e:
        out.put(f"error {e}")


def test_child_forked_while_a_parent_thread_refreshes_the_token_gets_one(
    sb: Any, tmp_path: Path
) -> None:
    import queue

    with Client(sb.app_id, sb.secret_key, base_url=sb.base_url, credentials_dir=tmp_path) as c:
        held = c._store.acquire(blocking=True, timeout=5)  # as a refresh in a parent thread
        assert held is not None
        out = fork.Queue()
        child = fork.Process(target=_child_token, args=(c, out))
        try:
            child.start()
            time.sleep(0.5)
        finally:
            c._store.release(held)  # the parent's refresh ends; the child may go on
        try:
            got = out.get(timeout=60)
        except queue.Empty:
            got = "the child is stuck on the lock its parent's thread held at the fork"
        finally:
            child.kill()
            child.join(10)
    assert got is True
