"""The rules of ``SqlStore`` held alike by both backends: the same calls, the same answers, on
SQLite (a file) and on a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chanjing_avatar.sandbox.store import CallbackRecord, FileRecord, TaskRecord
from chanjing_avatar.sandbox.store_sql import GENERATING, QUEUED, SqlStore


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    opened: SqlStore
    if request.param == "sqlite":
        from chanjing_avatar.sandbox.store_sqlite import SqliteStore

        opened = SqliteStore(tmp_path / "sandbox.db")
    else:
        from chanjing_avatar.sandbox.store_postgres import PostgresStore

        opened = PostgresStore(request.getfixturevalue("pg_url"))
    yield opened
    opened.close()


def _task(n: int, app_id: str = "app") -> TaskRecord:
    return TaskRecord(
        id=f"{n:032x}", app_id=app_id, create_time=n, params={"n": n, "text": "你好 ✓"}
    )


def test_apps_and_tokens(store: SqlStore) -> None:
    store.add_app("b", "s1")
    store.add_app("a", "s0")
    store.add_app("b", "s2")  # the secret is replaced
    assert store.app_ids() == ["a", "b"]
    assert (store.app_secret("b"), store.app_secret("nobody")) == ("s2", None)
    store.set_token("a", "tok-1", expire_at=100.0)
    store.set_token("a", "tok-2", expire_at=100.0)
    store.set_token("b", "tok-3", expire_at=100.0)
    assert store.token_app("tok-1", now=50.0) is None  # replaced
    assert store.token_app("tok-2", now=99.9) == "a"
    assert store.token_app("tok-2", now=100.0) is None  # expired at its instant
    assert store.invalidate_tokens("a") == 1
    assert store.token_app("tok-2", now=50.0) is None and store.token_app("tok-3", 50.0) == "b"
    assert store.invalidate_tokens() == 1


def test_files(store: SqlStore) -> None:
    record = FileRecord("f1", "app", "lip_sync_video", "a.mp4", "video/mp4", "k/f1", 10)
    store.add_file(record)
    assert store.get_file("f1") == record and store.get_file("nope") is None
    assert store.files_awaiting_probe() == []
    assert store.claim_upload("f1", 42, now=11.5)
    assert not store.claim_upload("f1", 43, now=12.0)  # the first arrival counts
    waiting = store.files_awaiting_probe()
    assert [(f.id, f.bytes, f.uploaded_at) for f in waiting] == [("f1", 42, 11.5)]
    store.update_file("f1", checked_status=1, msg="ok")
    assert store.files_awaiting_probe() == []
    got = store.get_file("f1")
    assert got is not None and (got.checked_status, got.msg) == (1, "ok")
    with pytest.raises(KeyError):
        store.update_file("f1", id="f2")
    with pytest.raises(KeyError):
        store.update_file("f1", colour="red")


def test_tasks_list_newest_first_per_app(store: SqlStore) -> None:
    for n in range(5):
        store.add_task(_task(n, "app" if n % 2 == 0 else "other"))
    assert store.get_task(_task(4).id) == _task(4)  # the JSON params come back as written
    page, total = store.list_tasks("app", 1, 2)
    assert ([t.create_time for t in page], total) == ([2, 0], 3)
    everyone, total = store.list_tasks(None, 0, 10)
    assert ([t.create_time for t in everyone], total) == ([4, 3, 2, 1, 0], 5)
    store.update_task(_task(1).id, params={"n": 9}, status=20)
    assert [t.create_time for t in store.unfinished_tasks()] == [0, 2, 3, 4]
    changed = store.get_task(_task(1).id)
    assert changed is not None and changed.params == {"n": 9}


def test_one_render_attempt_publishes(store: SqlStore) -> None:
    task_id = _task(1).id
    store.add_task(_task(1))
    assert store.claim_task(task_id) == 1
    assert store.claim_task(task_id) == 2  # the first render was given up for lost
    assert not store.update_attempt(task_id, 1, progress=50)
    assert store.update_attempt(task_id, 2, progress=50)
    assert not store.release_task(task_id, 1, "late")
    assert store.release_task(task_id, 2, "worker stopped")
    released = store.get_task(task_id)
    assert released is not None
    assert (released.status, released.attempt, released.msg) == (QUEUED, 1, "worker stopped")
    assert store.claim_task(task_id) == 2
    got = store.get_task(task_id)
    assert got is not None and (got.status, got.progress) == (GENERATING, 0)
    assert store.update_attempt(task_id, 2, status=20, msg="done")
    assert not store.update_attempt(task_id, 2, status=30)  # terminal: published once
    assert store.claim_task(task_id) is None and store.claim_task("gone") is None
    with pytest.raises(KeyError):
        store.update_attempt(task_id, 2, id="other")


def test_callbacks_and_meta(store: SqlStore) -> None:
    store.save_callback(CallbackRecord("t1", "http://a/", {"code": 0, "msg": "é"}, 1, 20.0))
    store.save_callback(CallbackRecord("t2", "http://b/", {"code": 1}, 1, 10.0))
    store.save_callback(CallbackRecord("t1", "http://a/", {"code": 0, "msg": "é"}, 2, 30.0))
    assert [(c.task_id, c.attempt) for c in store.pending_callbacks()] == [("t2", 1), ("t1", 2)]
    assert store.pending_callbacks()[1].payload == {"code": 0, "msg": "é"}
    store.delete_callback("t2")
    assert [c.task_id for c in store.pending_callbacks()] == ["t1"]
    assert store.get_meta("k") is None
    assert store.set_meta_once("k", "first") == "first"
    assert store.set_meta_once("k", "second") == "first"
    store.set_meta("k", "third")
    assert store.get_meta("k") == "third"
