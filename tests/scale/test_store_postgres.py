"""The PostgreSQL store on a real server: migrations, and the embedded store's semantics held
across several replicas (each one a separate store with its own pool)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator

import psycopg
import pytest

from chanjing_avatar._wire import RateLimit
from chanjing_avatar.sandbox.store import BackendUnavailable, TaskRecord
from chanjing_avatar.sandbox.store_postgres import PostgresStore, migrate

from .services import Postgres


@pytest.fixture
def replicas(pg_url: str) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    a, b = PostgresStore(pg_url), PostgresStore(pg_url)
    yield a, b
    a.close()
    b.close()


def test_migrations_apply_once_and_the_cli_reports_up_to_date(pg_url: str) -> None:
    first = migrate(pg_url)
    assert first[0] == "0001_initial" and first[-1].startswith("0100_procrastinate")
    assert migrate(pg_url) == []
    out = subprocess.run(
        [sys.executable, "-m", "chanjing_avatar", "sandbox", "migrate", "--store", pg_url],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "the schema is up to date"
    with psycopg.connect(pg_url) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables")}
    assert {"apps", "tokens", "tasks", "rate_hits", "procrastinate_jobs"} <= tables


def test_concurrent_migrations_do_not_collide(pg_url: str) -> None:
    results: list[list[str]] = []
    threads = [threading.Thread(target=lambda: results.append(migrate(pg_url))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(len(r) for r in results)[:3] == [0, 0, 0] and max(len(r) for r in results) > 1


def test_a_new_token_invalidates_the_previous_one_on_every_replica(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = replicas
    a.add_app("app", "secret")
    a.set_token("app", "tok-1", expire_at=2e9)
    assert b.token_app("tok-1", now=1e9) == "app"
    b.set_token("app", "tok-2", expire_at=2e9)
    assert a.token_app("tok-1", now=1e9) is None
    assert a.token_app("tok-2", now=1e9) == "app"
    assert a.token_app("tok-2", now=2e9 + 1) is None  # expired


def test_rate_limits_hold_per_app_across_replicas(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    limit = RateLimit("lipsync_create", 7, 60.0)
    allowed: list[bool] = []
    lock = threading.Lock()

    def hammer(store: PostgresStore) -> None:
        for _ in range(10):
            ok = store.rate_hit("app", limit, 60.0)
            with lock:
                allowed.append(ok)

    threads = [threading.Thread(target=hammer, args=(s,)) for s in (*replicas, *replicas)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == 40 and allowed.count(True) == 7
    assert replicas[0].rate_hit("other-app", limit, 60.0)  # per app_id


def test_the_window_slides(replicas: tuple[PostgresStore, PostgresStore]) -> None:
    import time

    limit = RateLimit("b", 2, 0.5)
    a, b = replicas
    assert a.rate_hit("app", limit, 0.5) and b.rate_hit("app", limit, 0.5)
    assert not a.rate_hit("app", limit, 0.5)
    time.sleep(0.6)
    assert b.rate_hit("app", limit, 0.5)


def _task(n: int) -> TaskRecord:
    return TaskRecord(id=f"{n:032x}", app_id="app", create_time=n, params={"n": n})


def test_list_order_and_paging_stay_stable_under_concurrent_creates(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = replicas
    for n in range(20):
        a.add_task(_task(n))
    stop = threading.Event()

    def create() -> None:
        n = 1000
        while not stop.is_set():
            b.add_task(_task(n))
            n += 1

    writer = threading.Thread(target=create)
    writer.start()
    try:
        for _ in range(30):
            page, total = a.list_tasks("app", 0, 10)
            seqs = [t.create_time for t in page]
            assert seqs == sorted(seqs, reverse=True) and total >= 20
            # Each page agrees with its own count: the count and the rows are one snapshot.
            last, total2 = a.list_tasks("app", total - 1, 10)
            assert (len(last) == 1 and last[0].create_time == 0) or total2 > total
    finally:
        stop.set()
        writer.join()
    everything, total = a.list_tasks("app", 0, 100_000)
    assert len(everything) == total == len({t.id for t in everything})


def test_exactly_one_render_attempt_publishes(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = replicas
    a.add_task(_task(1))
    first = a.claim_task(_task(1).id)
    second = b.claim_task(_task(1).id)  # the first worker was given up for lost
    assert (first, second) == (1, 2)
    assert not a.update_attempt(_task(1).id, 1, status=20, msg="late")
    assert b.update_attempt(_task(1).id, 2, status=20, msg="ok")
    assert not b.update_attempt(_task(1).id, 2, status=30, msg="twice")
    assert b.claim_task(_task(1).id) is None
    done = a.get_task(_task(1).id)
    assert done is not None and (done.status, done.msg, done.attempt) == (20, "ok", 2)


def test_database_outage_raises_backend_unavailable_then_recovers(
    postgres: Postgres, replicas: tuple[PostgresStore, PostgresStore]
) -> None:
    a, _ = replicas
    a.add_app("app", "secret")
    postgres.stop()
    try:
        with pytest.raises(BackendUnavailable) as caught:
            a.app_secret("app")
        assert "postgres@" not in str(caught.value)  # the URL (it may hold a password) stays out
    finally:
        postgres.start()
    assert a.app_secret("app") == "secret"
