"""The batch as a library: the size a row renders at, and what ``run_batch`` leaves in OUTDIR."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest

from chanjing_avatar import AsyncClient
from chanjing_avatar.batch import BatchOptions, Journal, RowState, load_manifest, run_batch
from chanjing_avatar.sandbox import Sandbox

from .support import VOICE, client_kwargs, make_video, sandbox_config

pytestmark = pytest.mark.timeout(120)


def _run(sb: Sandbox, tmp: Path, manifest: Path, opts: BatchOptions) -> None:
    async def main() -> None:
        async with AsyncClient(**client_kwargs(sb, tmp)) as c:
            (await run_batch(c, load_manifest(manifest), opts)).close()

    asyncio.run(main())


def _sizes(sb: Sandbox, outdir: Path) -> dict[str, tuple[int, int]]:
    """Each done row's screen size, as its task was created."""
    sizes = {}
    with Journal(outdir / "batch-journal.sqlite") as j:
        for row in j.rows():
            record = sb.store.get_task(row.task_id or "")
            assert record is not None and row.state == RowState.DONE, row
            sizes[row.id] = (record.params["screen_width"], record.params["screen_height"])
    return sizes


def test_rows_render_at_the_source_videos_own_size(tmp_path: Path) -> None:
    make_video(tmp_path / "portrait.mp4", width=512, height=600)
    make_video(tmp_path / "small.mp4", width=64, height=64)
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "id,video,text,voice,width,height\n"
        f"own,portrait.mp4,hello,{VOICE},,\n"
        f"asked,portrait.mp4,hello again,{VOICE},720,1280\n"  # a size given is kept
        f"half,small.mp4,hi,{VOICE},128,\n"  # half given: the other half from the clip
    )
    with Sandbox(sandbox_config(tmp_path / "sb")) as sb:
        _run(sb, tmp_path, manifest, BatchOptions(outdir=tmp_path / "out", poll_interval=0.2))
        sizes = _sizes(sb, tmp_path / "out")
    assert sizes == {"own": (512, 600), "asked": (720, 1280), "half": (128, 64)}


def test_options_take_a_string_outdir_and_run_batch_writes_the_report(tmp_path: Path) -> None:
    make_video(tmp_path / "clip.mp4")
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"id,video,text,voice\na,clip.mp4,hello,{VOICE}\n")
    outdir = tmp_path / "out"
    with Sandbox(sandbox_config(tmp_path / "sb")) as sb:
        _run(sb, tmp_path, manifest, BatchOptions(outdir=str(outdir), poll_interval=0.2))
    report_path = outdir / "batch-report.json"
    assert stat.S_IMODE(report_path.stat().st_mode) == 0o600  # as the command writes it
    report = json.loads(report_path.read_text())
    assert report["counts"] == {"done": 1} and report["complete"]
    assert Path(report["rows"][0]["output"]) == outdir / "a.mp4"


def test_a_photo_row_renders_at_the_photos_own_size(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (301, 203), (200, 150, 120)).save(tmp_path / "face.jpg")
    Image.new("RGBA", (120, 160), (0, 0, 0, 0)).save(tmp_path / "face.png")
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "id,video,text,voice\n"
        f"jpg,face.jpg,hello,{VOICE}\n"
        f"png,face.png,hello again,{VOICE}\n"
    )
    with Sandbox(sandbox_config(tmp_path / "sb")) as sb:
        _run(sb, tmp_path, manifest, BatchOptions(outdir=tmp_path / "out", poll_interval=0.2))
        sizes = _sizes(sb, tmp_path / "out")
    # Done at all means each photo went up as a video: the API refuses a .jpg or .png upload.
    assert sizes == {"jpg": (300, 202), "png": (120, 160)}
