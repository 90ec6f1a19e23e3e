"""The batch runner against the sandbox: faults, exactly-once, outputs intact, billing, resume."""

from __future__ import annotations

import asyncio
import hashlib
import random
from pathlib import Path

import pytest

from chanjing_avatar import AsyncClient
from chanjing_avatar.batch.journal import Journal, RowState
from chanjing_avatar.batch.manifest import load_manifest
from chanjing_avatar.batch.report import build_report
from chanjing_avatar.batch.runner import BatchOptions, BatchRunner, run_batch
from chanjing_avatar.sandbox import Sandbox

from .support import client_kwargs, sandbox_config, write_manifest

pytestmark = pytest.mark.timeout(240)


def expected_output(task_id: str, size: int = 64 * 1024) -> str:
    seed = hashlib.sha256(task_id.encode()).digest()
    return hashlib.sha256((seed * (size // len(seed) + 1))[:size]).hexdigest()


def options(outdir: Path, **kw: object) -> BatchOptions:
    base: dict[str, object] = dict(
        outdir=outdir, poll_interval=0.2, settle=2.5, clock_offset=(-1.0, 1.0), guard=3.0,
        create_backoff=0.3,
    )
    base.update(kw)
    return BatchOptions(**base)  # type: ignore[arg-type]


def check_exactly_once(sb: Sandbox, journal_path: Path, outdir: Path) -> Journal:
    """No task created twice, every output whole, every row done or failed with a reason."""
    j = Journal(journal_path)
    rows = j.rows()
    server_tasks = {t["id"] for t in sb.admin.tasks()}
    claimed = j.claimed_task_ids()
    # Every task on the server belongs to exactly one row, and rows own one task per attempt.
    assert server_tasks == claimed, (server_tasks - claimed, claimed - server_tasks)
    owners = [r.task_id for r in rows if r.task_id]
    assert len(owners) == len(set(owners))
    for r in rows:
        assert r.state in (RowState.DONE, RowState.FAILED), (r.id, r.state)
        if r.state == RowState.FAILED:
            assert r.error, r.id
        else:
            path = Path(r.output_path or "")
            assert path.parent == outdir and path.name == f"{r.id}.mp4"
            data = path.read_bytes()
            assert len(data) == r.output_size
            assert hashlib.sha256(data).hexdigest() == r.output_sha256
            assert r.output_sha256 == expected_output(r.task_id or "")
    assert not list(outdir.glob(".*.part")), "half-written files left behind"
    return j


API_FAULTS = ["40001", "50000", "502", "drop", "delay:1.6", "invalidate_token"]
# The object store and the CDN answer no envelopes: gateway pages, cuts and stalls only.
BLOB_FAULTS = ["502", "drop", "delay:1.6"]


def fault_script(n: int, rate: float, seed: int, kinds: list[str] = API_FAULTS) -> list[str | None]:
    rng = random.Random(seed)
    return [rng.choice(kinds) if rng.random() < rate else None for _ in range(n)]


def inject_faults(sb: Sandbox, rate: float, seed: int) -> None:
    for i, endpoint in enumerate(("upload", "download")):
        sb.admin.add_fault(endpoint, sequence=fault_script(500, rate, seed + i, BLOB_FAULTS))
    sb.admin.add_fault("*", sequence=fault_script(3000, rate, seed + 7))


def test_fifty_rows_with_twenty_percent_faults(tmp_path: Path) -> None:
    with Sandbox(sandbox_config(tmp_path / "sb", create_per_s=20)) as sb:
        manifest = write_manifest(tmp_path / "in", 50, videos=3, audio_every=7)
        inject_faults(sb, 0.2, seed=5)
        outdir = tmp_path / "out"

        async def main() -> None:
            async with AsyncClient(**client_kwargs(sb, tmp_path, create_per_s=20,
                                                   read_timeout=1.0)) as c:
                await run_batch(c, load_manifest(manifest), options(outdir, upload_timeout=15))

        asyncio.run(main())
        stats = sb.admin.stats()["responses"]
        faults_seen = sum(
            n for outcomes in stats.values() for k, n in outcomes.items()
            if k in ("40001", "50000", "http_502", "dropped")
        )
        assert faults_seen >= 10, stats
        j = check_exactly_once(sb, outdir / "batch-journal.sqlite", outdir)
        done = sum(1 for r in j.rows() if r.state == RowState.DONE)
        assert done == 50
        # Unknown outcomes were reconciled, and each one's decision is journalled.
        recon = j.events(kind="reconcile")
        assert recon, "expected some creates with unknown outcome"
        assert {e["detail"]["decision"] for e in recon} <= {"adopted", "recreate"}
        # Two distinct clips + one audio were uploaded once each.
        assert sb.admin.count("create_upload_url", 0) >= 4
        report = build_report(j)
        assert report["complete"] and report["counts"] == {"done": 50}


def test_billing_failure_stops_new_creates_and_retry_failed(tmp_path: Path) -> None:
    with Sandbox(sandbox_config(tmp_path / "sb", render_s=0.6, create_per_s=5)) as sb:
        manifest = write_manifest(tmp_path / "in", 8, videos=1)
        # The second create's task fails for lack of balance.
        sb.admin.add_fault("lipsync_create", sequence=[None, "task_failure"])
        outdir = tmp_path / "out"

        async def main(**kw: object) -> None:
            async with AsyncClient(**client_kwargs(sb, tmp_path, create_per_s=2, burst=1)) as c:
                await run_batch(c, load_manifest(manifest), options(outdir, **kw))

        asyncio.run(main())
        j = Journal(outdir / "batch-journal.sqlite")
        counts = j.counts()
        assert j.row("row001").error_kind == "billing"
        # Creating stopped as soon as the failure was seen: not every row got a task.
        assert counts.get(RowState.PENDING, 0) >= 1, counts
        created_before = len(sb.admin.tasks())
        j.close()
        asyncio.run(main(retry_failed=True))
        j = check_exactly_once(sb, outdir / "batch-journal.sqlite", outdir)
        assert all(r.state == RowState.DONE for r in j.rows())
        # Exactly one new task per row that had none or had failed.
        assert len(sb.admin.tasks()) == 8 + 1
        assert created_before < 9


def test_resume_skips_done_rows_and_refetches_lost_output(tmp_path: Path) -> None:
    with Sandbox(sandbox_config(tmp_path / "sb")) as sb:
        manifest = write_manifest(tmp_path / "in", 4, videos=1)
        outdir = tmp_path / "out"

        async def main() -> None:
            async with AsyncClient(**client_kwargs(sb, tmp_path)) as c:
                await run_batch(c, load_manifest(manifest), options(outdir))

        asyncio.run(main())
        (outdir / "row002.mp4").unlink()
        (outdir / "row003.mp4").write_bytes(b"truncated")
        asyncio.run(main())
        check_exactly_once(sb, outdir / "batch-journal.sqlite", outdir)
        assert len(sb.admin.tasks()) == 4
        assert sb.admin.count("lipsync_create") == 4


def test_cancel_stops_creating_and_resume_finishes(tmp_path: Path) -> None:
    with Sandbox(sandbox_config(tmp_path / "sb", create_per_s=4, burst=1)) as sb:
        manifest = write_manifest(tmp_path / "in", 10, videos=1)
        outdir = tmp_path / "out"

        async def first() -> None:
            async with AsyncClient(**client_kwargs(sb, tmp_path, create_per_s=4, burst=1)) as c:
                runner = BatchRunner(c, load_manifest(manifest), options(outdir))
                task = asyncio.ensure_future(runner.run())
                while (runner.progress.creates_this_run < 3):
                    await asyncio.sleep(0.05)
                runner.cancel()
                await task

        asyncio.run(first())
        j = Journal(outdir / "batch-journal.sqlite")
        # Nothing is left half-way: every row is pending, or owns a task.
        assert all(r.state in (RowState.PENDING, RowState.CREATED, RowState.SUCCEEDED,
                               RowState.DONE) for r in j.rows()), [r.state for r in j.rows()]
        assert j.counts().get(RowState.PENDING, 0) >= 3
        j.close()

        async def again() -> None:
            async with AsyncClient(**client_kwargs(sb, tmp_path, create_per_s=4, burst=1)) as c:
                await run_batch(c, load_manifest(manifest), options(outdir))

        asyncio.run(again())
        check_exactly_once(sb, outdir / "batch-journal.sqlite", outdir)
        assert len(sb.admin.tasks()) == 10


def test_web_page_answered_with_200_on_download_is_not_saved_as_video(tmp_path: Path) -> None:
    with Sandbox(sandbox_config(tmp_path / "sb")) as sb:
        manifest = write_manifest(tmp_path / "in", 3, videos=1)
        # A CDN/captive-portal page with status 200, twice, then the real video: the client
        # rejects the HTML body and fetches again; no page ends up as a row's output.
        sb.admin.add_fault("download", sequence=["http:200", "http:200"])
        outdir = tmp_path / "out"

        async def main() -> None:
            async with AsyncClient(**client_kwargs(sb, tmp_path)) as c:
                await run_batch(c, load_manifest(manifest), options(outdir))

        asyncio.run(main())
        assert sb.admin.count("download", "http_200") >= 2  # the pages were really served
        # Every row done, each output the task's own bytes, no .part left behind.
        j = check_exactly_once(sb, outdir / "batch-journal.sqlite", outdir)
        assert [r.state for r in j.rows()] == [RowState.DONE] * 3
        for r in j.rows():
            assert not Path(r.output_path or "").read_bytes().lstrip().startswith(b"<")
        assert not list(outdir.glob("*.part")) and not list(outdir.glob(".*.part"))


def test_rows_dropped_from_the_manifest_are_not_created(tmp_path: Path) -> None:
    with Sandbox(sandbox_config(tmp_path / "sb")) as sb:
        manifest = write_manifest(tmp_path / "in", 4, videos=1)
        outdir = tmp_path / "out"
        full = load_manifest(manifest)
        with Journal(outdir.mkdir() or outdir / "batch-journal.sqlite") as j:
            j.sync_manifest(full)  # all four rows journalled, none sent
        lines = manifest.read_text().splitlines()
        manifest.write_text("\n".join(lines[:3]) + "\n")  # header + two rows

        async def main() -> None:
            async with AsyncClient(**client_kwargs(sb, tmp_path)) as c:
                await run_batch(c, load_manifest(manifest), options(outdir))

        asyncio.run(main())
        assert len(sb.admin.tasks()) == 2


def test_foreign_creates_in_the_window_are_reported_not_guessed(tmp_path: Path) -> None:
    from chanjing_avatar.batch.runner import BatchProgress

    with Sandbox(sandbox_config(tmp_path / "sb")) as sb:
        manifest = write_manifest(tmp_path / "in", 3, videos=1)
        outdir = tmp_path / "out"
        # The second create gets a gateway page: its outcome is unknown.
        sb.admin.add_fault("lipsync_create", sequence=[None, "502"])

        async def main() -> None:
            async with AsyncClient(**client_kwargs(sb, tmp_path)) as c, \
                    AsyncClient(**client_kwargs(sb, tmp_path / "other")) as other:
                foreign: list[asyncio.Task[None]] = []

                async def another_program() -> None:
                    vid = (await other.files.upload(manifest.parent / "clip0.mp4",
                                                    "lip_sync_video")).id
                    for _ in range(2):
                        await other.lipsync.create(video_file_id=vid, text="x", voice_id="a" * 32)

                def on_change(p: BatchProgress) -> None:
                    if "outcome unknown" in p.last_event and not foreign:
                        foreign.append(asyncio.ensure_future(another_program()))

                await run_batch(c, load_manifest(manifest), options(outdir, on_change=on_change))
                await asyncio.gather(*foreign)

        asyncio.run(main())
        with Journal(outdir / "batch-journal.sqlite") as j:
            row = j.row("row001")
            assert row.state == RowState.UNDECIDABLE, row
            (event,) = j.events("row001", "reconcile")
            assert event["detail"]["decision"] == "undecidable"
            assert len(event["detail"]["candidates"]) == 2
            report = build_report(j)
            assert report["counts"]["undecidable"] == 1
            # The user decides: create anew.
            j.resolve("row001", None)

        async def again() -> None:
            async with AsyncClient(**client_kwargs(sb, tmp_path)) as c:
                await run_batch(c, load_manifest(manifest), options(outdir))

        asyncio.run(again())
        with Journal(outdir / "batch-journal.sqlite") as j:
            assert all(r.state == RowState.DONE for r in j.rows())
        assert len(sb.admin.tasks()) == 3 + 2


def test_cancel_during_an_upload_ends_the_run_without_waiting_for_it(tmp_path: Path) -> None:
    with Sandbox(sandbox_config(tmp_path / "sb")) as sb:
        manifest = write_manifest(tmp_path / "in", 2, videos=1)
        key = load_manifest(manifest).rows[0].video.key
        sb.admin.add_fault("upload", sequence=["delay:4"])  # a long upload
        outdir = tmp_path / "out"

        async def main() -> None:
            async with AsyncClient(**client_kwargs(sb, tmp_path, read_timeout=10.0)) as c:
                runner = BatchRunner(c, load_manifest(manifest), options(outdir))
                task = asyncio.ensure_future(runner.run())
                while runner.journal is None or (runner.journal.upload(key) or {}).get(
                        "state") != "intended":
                    await asyncio.sleep(0.02)
                runner.cancel()
                (await task).close()

        asyncio.run(main())
        with Journal(outdir / "batch-journal.sqlite") as j:
            # The run ended while the upload was still on its way: nothing created or uploaded.
            assert (j.upload(key) or {})["state"] == "intended"
            assert [r.state for r in j.rows()] == [RowState.PENDING] * 2
        assert sb.admin.tasks() == []
