"""Shared-sandbox benchmark: a render farm's scaling, detail throughput per API replica, memory.

    .venv/bin/python bench/sandbox_scale.py [--workers 1,2,4,8] [--task-seconds 8]
        [--tasks-per-worker 4] [--seconds 8] [--concurrency 16] [--big-gib 1] [--skip ...]

Needs root, PostgreSQL 15 and SeaweedFS (``scripts/setup --dev``), as tests/scale does; every
component runs as its own process on loopback.

1. Render farm: tasks of fixed wall-clock cost (the pacing sleeps, so 2 cores do not cap it) on
   1, 2, 4, 8 worker processes (``--concurrency 1`` each); finished tasks per minute, and the ratio
   to N x the one-worker rate (goal >= 0.9).
2. Detail requests/s with 1 and 2 API replicas on PostgreSQL, from a load generator in its own
   process, next to the embedded SQLite server in the same run; p50/p99 for each.
3. Peak RSS of an API replica and a worker while a 1 GiB video goes upload -> probe -> render ->
   result (the video is a tiny clip followed by a 1 GiB ``free`` box: valid, and cheap to render,
   so the bytes moved are the 1 GiB and not the renderer's work).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from sandbox_throughput import rss_kib, server, tiny_video  # noqa: E402

from chanjing_avatar import _wire  # noqa: E402
from scale.deploy import DeployedApi, Deployment, audio_body  # noqa: E402
from scale.services import (  # noqa: E402
    Postgres,
    SeaweedS3,
    why_not_postgres,
    why_not_seaweedfs,
)

MIB = 1024 * 1024


def tiny_wav(path: Path) -> Path:
    import wave

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\0\0" * 16000)
    return path


class Farm:
    """PostgreSQL + SeaweedFS for the whole run; a fresh database and bucket per deployment."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pg = Postgres.create()
        self.pg.start()
        self.s3 = SeaweedS3.create()
        self.s3.start()
        self._n = 0

    def deployment(self, **options: Any) -> Deployment:
        import psycopg

        self._n += 1
        name = f"bench{self._n}"
        with psycopg.connect(self.pg.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}".encode())
        bucket = self.s3.make_bucket(f"bench-{self._n}")
        folder = self.folder / name
        folder.mkdir()
        return Deployment(
            store_url=self.pg.url(name),
            blobs_url=f"s3://{bucket}/media",
            s3=self.s3,
            folder=folder,
            **options,
        )

    def close(self) -> None:
        self.s3.destroy()
        self.pg.destroy()


def ready_inputs(api: DeployedApi, folder: Path) -> tuple[str, str]:
    video = api.ready_file("lip_sync_video", tiny_video(folder / "v.mp4"), "v.mp4")
    audio = api.ready_file("lip_sync_audio", tiny_wav(folder / "a.wav"), "a.wav")
    return video, audio


def bench_farm(
    farm: Farm, workers: list[int], task_s: float, per_worker: int
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for n in workers:
        deployment = farm.deployment(
            worker_args=("--concurrency", "1", "--task-min-duration", str(task_s)),
            api_args=("--no-rate-limits",),
        )
        try:
            deployment.start(apis=1, workers=n)
            api = DeployedApi(deployment)
            api.login()
            inputs = ready_inputs(api, deployment.folder)
            count = per_worker * n
            started = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:  # created in a burst: creation is not measured
                ids = list(pool.map(api.create, [audio_body(*inputs)] * count))
            for task_id in ids:
                assert api.wait_task(task_id, timeout=600)["status"] == 20
            elapsed = time.perf_counter() - started
            api.close()
        finally:
            deployment.stop_all()
        rows.append(
            {"workers": n, "tasks": count, "seconds": elapsed, "per_min": count * 60 / elapsed}
        )
    base = rows[0]["per_min"] / rows[0]["workers"]
    for row in rows:
        row["vs_linear"] = row["per_min"] / (base * row["workers"])
    return rows


def _hammer(
    bases: list[str], token: str, task_id: str, seconds: float, concurrency: int
) -> list[float]:
    """Runs in its own process: ``concurrency`` loops of detail requests, alternating bases."""

    async def run() -> list[float]:
        latencies: list[float] = []
        deadline = time.perf_counter() + seconds
        limits = httpx.Limits(max_connections=concurrency)
        headers = {_wire.TOKEN_HEADER: token}
        clients = [httpx.AsyncClient(base_url=b, headers=headers, limits=limits) for b in bases]

        async def loop(n: int) -> None:
            i = n
            while time.perf_counter() < deadline:
                http = clients[i % len(clients)]
                i += 1
                started = time.perf_counter()
                answer = await http.get(_wire.PATH_LIPSYNC_DETAIL, params={"id": task_id})
                latencies.append(time.perf_counter() - started)
                assert answer.json()["code"] == 0, answer.text

        await asyncio.gather(*(loop(n) for n in range(concurrency)))
        for client in clients:
            await client.aclose()
        return latencies

    return asyncio.run(run())


def load(
    bases: list[str], token: str, task_id: str, seconds: float, concurrency: int
) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        pool.apply(_hammer, (bases, token, task_id, 1.0, concurrency))  # warm up
        latencies = sorted(pool.apply(_hammer, (bases, token, task_id, seconds, concurrency)))
    return {
        "requests_per_s": len(latencies) / seconds,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def bench_detail(farm: Farm, seconds: float, concurrency: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, server(Path(tmp) / "data") as (_proc, info):
        http = httpx.Client(base_url=info["base_url"], timeout=60)
        token = http.post(
            _wire.PATH_ACCESS_TOKEN,
            json={"app_id": info["app_id"], "secret_key": info["secret_key"]},
        ).json()["data"]["access_token"]
        headers = {_wire.TOKEN_HEADER: token}
        info_up = http.get(
            _wire.PATH_CREATE_UPLOAD_URL,
            params={"service": "lip_sync_video", "name": "v.mp4"},
            headers=headers,
        ).json()["data"]
        video = tiny_video(Path(tmp) / "v.mp4").read_bytes()
        httpx.put(info_up["sign_url"], content=video, headers={"Content-Type": "video/mp4"})
        while (
            http.get(
                _wire.PATH_FILE_DETAIL, params={"id": info_up["file_id"]}, headers=headers
            ).json()["data"]["status"]
            == 0
        ):
            time.sleep(0.05)
        wav = tiny_wav(Path(tmp) / "a.wav").read_bytes()
        a_up = http.get(
            _wire.PATH_CREATE_UPLOAD_URL,
            params={"service": "lip_sync_audio", "name": "a.wav"},
            headers=headers,
        ).json()["data"]
        httpx.put(a_up["sign_url"], content=wav, headers={"Content-Type": a_up["mime_type"]})
        while (
            http.get(
                _wire.PATH_FILE_DETAIL, params={"id": a_up["file_id"]}, headers=headers
            ).json()["data"]["status"]
            == 0
        ):
            time.sleep(0.05)
        task_id = http.post(
            _wire.PATH_LIPSYNC_CREATE,
            json=audio_body(info_up["file_id"], a_up["file_id"]),
            headers=headers,
        ).json()["data"]
        out["embedded (SQLite)"] = load([info["base_url"]], token, task_id, seconds, concurrency)
        http.close()
    deployment = farm.deployment(api_args=("--no-rate-limits",))
    try:
        deployment.start(apis=2, workers=1)
        api = DeployedApi(deployment)
        api.login()
        task_id = api.create(audio_body(*ready_inputs(api, deployment.folder)))
        bases = [p.url for p in deployment.apis()]
        out["1 replica (PostgreSQL)"] = load(bases[:1], api.token, task_id, seconds, concurrency)
        out["2 replicas (PostgreSQL)"] = load(bases, api.token, task_id, seconds, concurrency)
        api.close()
    finally:
        deployment.stop_all()
    return out


def big_video(path: Path, gib: float) -> Path:
    """A tiny valid clip followed by a ``free`` box of ``gib`` GiB (streamed to disk)."""
    tiny = tiny_video(path.with_name("tiny.mp4")).read_bytes()
    size = int(gib * 1024 * MIB)
    with path.open("wb") as out:
        out.write(tiny)
        out.write((size + 8).to_bytes(4, "big") if size + 8 < 2**32 else (1).to_bytes(4, "big"))
        out.write(b"free")
        if size + 8 >= 2**32:
            out.write((size + 16).to_bytes(8, "big"))
        block = b"\0" * MIB
        for _ in range(size // MIB):
            out.write(block)
    return path


def bench_memory(farm: Farm, gib: float) -> dict[str, float]:
    deployment = farm.deployment(api_args=("--no-rate-limits",))
    try:
        deployment.start(apis=1, workers=1)
        api_proc, worker_proc = deployment.apis()[0], deployment.workers()[0]
        peaks = {"api": rss_kib(api_proc.popen.pid), "worker": rss_kib(worker_proc.popen.pid)}
        base = dict(peaks)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                for role, proc in (("api", api_proc), ("worker", worker_proc)):
                    peaks[role] = max(peaks[role], rss_kib(proc.popen.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        api = DeployedApi(deployment)
        api.login()
        started = time.perf_counter()
        try:
            video = big_video(deployment.folder / "big.mp4", gib)
            video_id = api.upload("lip_sync_video", video, "big.mp4")
            assert api.wait_file(video_id, timeout=900)["status"] == 1
            audio_id = api.ready_file("lip_sync_audio", tiny_wav(deployment.folder / "a.wav"))
            task_id = api.create(audio_body(video_id, audio_id))
            done_task = api.wait_task(task_id, timeout=900)
            assert done_task["status"] == 20, done_task
            httpx.get(done_task["video_url"]).raise_for_status()
            video.unlink()
        finally:
            done.set()
            sampler.join()
            api.close()
        elapsed = time.perf_counter() - started
        hwm = {
            "api": rss_kib(api_proc.popen.pid, "VmHWM"),
            "worker": rss_kib(worker_proc.popen.pid, "VmHWM"),
        }
    finally:
        deployment.stop_all()
    return {
        "gib": gib,
        "seconds": elapsed,
        "api_rss_before_mib": base["api"] / 1024,
        "api_rss_peak_mib": max(peaks["api"], hwm["api"]) / 1024,
        "worker_rss_before_mib": base["worker"] / 1024,
        "worker_rss_peak_mib": max(peaks["worker"], hwm["worker"]) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--task-seconds", type=float, default=8.0)
    parser.add_argument("--tasks-per-worker", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--big-gib", type=float, default=1.0)
    parser.add_argument("--skip", default="", help="comma list of: farm, detail, memory")
    args = parser.parse_args()
    reason = why_not_postgres() or why_not_seaweedfs()
    if reason:
        sys.exit(f"cannot run: {reason}")
    skip = set(filter(None, args.skip.split(",")))
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        farm = Farm(Path(tmp))
        try:
            if "farm" not in skip:
                workers = [int(n) for n in args.workers.split(",")]
                print("render farm (fixed-cost tasks, one per worker at a time):")
                for row in bench_farm(farm, workers, args.task_seconds, args.tasks_per_worker):
                    print(json.dumps(row))
            if "detail" not in skip:
                print(f"detail requests ({args.concurrency} in flight, {args.seconds:.0f} s):")
                for name, row in bench_detail(farm, args.seconds, args.concurrency).items():
                    print(json.dumps({"server": name, **row}))
            if "memory" not in skip:
                print(f"peak RSS while {args.big_gib} GiB goes upload -> render -> result:")
                print(json.dumps(bench_memory(farm, args.big_gib)))
        finally:
            farm.close()


if __name__ == "__main__":
    main()
