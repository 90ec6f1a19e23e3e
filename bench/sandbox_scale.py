"""Shared-sandbox benchmark: a render farm's scaling, detail throughput per API replica, memory.

    .venv/bin/python bench/sandbox_scale.py [--workers 1,2,4,8] [--task-seconds 8]
        [--tasks-per-worker 4] [--seconds 8] [--concurrency 16] [--generator auto]
        [--big-gib 1] [--skip farm,detail,memory]

Needs root, PostgreSQL 15 and SeaweedFS (``scripts/setup --dev``), as tests/scale does; every
component runs as its own process on loopback. Run it on an idle machine: the figures are rates.

1. Render farm: tasks of fixed wall-clock cost (the pacing sleeps, so 2 cores do not cap it) on
   1, 2, 4, 8 worker processes (``--concurrency 1`` each); finished tasks per minute, and the ratio
   to N x the one-worker rate (goal >= 0.9).
2. Detail requests/s with 1 and 2 API replicas on PostgreSQL, next to the embedded SQLite server
   in the same run, p50/p99 for each. The load comes from Debian's ``wrk`` in its own process
   (installed with apt-get when root and missing; its Lua script sends the token and spreads its
   threads over the replicas, and counts every answer that is not code 0). Without wrk, a Python
   generator in its own process, saying why.
3. Peak RSS of an API replica and a worker while a 1 GiB video goes upload -> probe -> render ->
   result. The video is real: 720p H.264 at ~220 Mbit/s (noise frames, which x264 cannot
   compress), ~40 s, made once into ~/.cache/chanjing-avatar/bench (a few tens of seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from sandbox_throughput import rss_kib, server, tiny_video  # noqa: E402

from chanjing_avatar import _wire  # noqa: E402
from sandbox.api import Api  # noqa: E402
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


def ready_inputs(api: Api, folder: Path) -> tuple[str, str]:
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


def load_python(
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


def find_wrk() -> tuple[str | None, str]:
    """wrk's path, or None and why not. Debian's package is installed when root and missing."""
    found = shutil.which("wrk")
    if found:
        return found, ""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, "wrk is not installed (apt-get install wrk, as root)"
    print("installing Debian's wrk (apt-get install -y wrk)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"]
    done = subprocess.run(install, env=env, capture_output=True, text=True)
    if done.returncode != 0:  # perhaps a stale package list
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
    found = shutil.which("wrk")
    if found:
        return found, ""
    return None, f"apt-get install wrk failed: {done.stderr.strip()[-300:]}"


# Every thread sends detail requests with the token to one replica (threads spread evenly over
# the replicas); answers other than HTTP 200 with code 0 are counted; one RESULT line at the end.
_WRK_SCRIPT = """
local ports = {%(ports)s}
local threads = {}
function setup(thread)
  thread.addr = wrk.lookup("%(host)s", tostring(ports[(#threads %% #ports) + 1]))[1]
  table.insert(threads, thread)
end
wrk.method = "GET"
wrk.path = "%(path)s"
wrk.headers["%(header)s"] = "%(token)s"
function init(args) bad = 0 end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"code":0,', 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do bad = bad + thread:get("bad") end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "bad": %%d, '
    .. '"socket_errors": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), bad,
    e.connect + e.read + e.write + e.timeout))
end
"""


def load_wrk(
    wrk: str, bases: list[str], token: str, task_id: str, seconds: float, concurrency: int
) -> dict[str, float]:
    urls = [httpx.URL(base) for base in bases]
    assert len({u.host for u in urls}) == 1, "one host, one port per replica"
    threads = -(-2 // len(urls)) * len(urls)  # 2 on one server; as many on every replica
    script = _WRK_SCRIPT % {
        "ports": ", ".join(str(u.port) for u in urls),
        "host": urls[0].host,
        "path": f"{_wire.PATH_LIPSYNC_DETAIL}?id={task_id}",
        "header": _wire.TOKEN_HEADER,
        "token": token,  # in a private folder, not on wrk's command line (ps shows that)
    }
    with tempfile.TemporaryDirectory() as tmp:
        lua = Path(tmp) / "detail.lua"
        lua.write_text(script)

        def run(duration: float) -> dict[str, float]:
            command = [
                wrk, "--threads", str(threads), "--connections", str(max(concurrency, threads)),
                "--duration", f"{max(1, round(duration))}s", "--timeout", "10s", "--latency",
                "--script", str(lua), bases[0],
            ]  # fmt: skip
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            line = next(x for x in out.splitlines() if x.startswith("RESULT "))
            result: dict[str, float] = json.loads(line.removeprefix("RESULT "))
            return result

        run(1.0)  # warm up
        raw = run(seconds)
    return {
        "requests_per_s": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "not_code_0": raw["bad"],
        "socket_errors": raw["socket_errors"],
    }


def bench_detail(
    farm: Farm, seconds: float, concurrency: int, generator: str
) -> dict[str, dict[str, float]]:
    wrk, why_not = find_wrk() if generator != "python" else (None, "--generator python")
    if wrk is None:
        if generator == "wrk":
            sys.exit(f"cannot run wrk: {why_not}")
        print(f"load generator: Python (httpx, asyncio) in its own process: {why_not}")
    else:
        print(f"load generator: {wrk} in its own process")

    def load(bases: list[str], token: str, task_id: str) -> dict[str, float]:
        if wrk is not None:
            return load_wrk(wrk, bases, token, task_id, seconds, concurrency)
        return load_python(bases, token, task_id, seconds, concurrency)

    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, server(Path(tmp) / "data") as (_proc, info):
        api = Api(cast(Any, SimpleNamespace(**info)))
        api.login()
        task_id = api.create(audio_body(*ready_inputs(api, Path(tmp))))
        out["embedded (SQLite)"] = load([info["base_url"]], api.token, task_id)
        api.close()
    # As the embedded server: no admin API. With it, each request also reads the shared fault
    # rules (one more query): measured apart.
    for admin in (False, True):
        deployment = farm.deployment(
            api_args=("--no-rate-limits", *(() if admin else ("--no-admin",)))
        )
        try:
            deployment.start(apis=2, workers=1)
            api = DeployedApi(deployment)
            api.login()
            task_id = api.create(audio_body(*ready_inputs(api, deployment.folder)))
            bases = [p.url for p in deployment.apis()]
            if admin:
                out["2 replicas (PostgreSQL), --admin"] = load(bases, api.token, task_id)
            else:
                out["1 replica (PostgreSQL)"] = load(bases[:1], api.token, task_id)
                out["2 replicas (PostgreSQL)"] = load(bases, api.token, task_id)
            api.close()
        finally:
            deployment.stop_all()
    return out


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "chanjing-avatar" / "bench"


def big_video(gib: float) -> Path:
    """A real video of about ``gib`` GiB: 720p H.264, frames of shifting noise so that x264
    cannot compress them (~1.1 MB each, ~220 Mbit/s). Made once, then kept in the cache."""
    import av
    import numpy as np

    target = int(gib * 1024 * MIB)
    path = cache_dir() / f"noise-720p-{target}.mp4"  # the recipe's version is its name
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    print(f"making {path} (once)")
    rng = np.random.default_rng(0)
    width, height, slack = 1280, 720, 64
    noise = rng.integers(0, 256, (height + slack, width + slack, 3), dtype=np.uint8)
    size = 0
    with av.open(str(partial), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "4"}
        while size < target:
            dy, dx = rng.integers(0, slack, 2)
            frame = np.ascontiguousarray(noise[dy : dy + height, dx : dx + width])
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                size += packet.size
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    os.replace(partial, path)
    return path


def bench_memory(farm: Farm, gib: float) -> dict[str, float]:
    video = big_video(gib)  # before the processes start: not part of what is measured
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
            video_id = api.upload("lip_sync_video", video, "big.mp4")
            assert api.wait_file(video_id, timeout=900)["status"] == 1
            audio_id = api.ready_file("lip_sync_audio", tiny_wav(deployment.folder / "a.wav"))
            task_id = api.create(audio_body(video_id, audio_id))
            done_task = api.wait_task(task_id, timeout=900)
            assert done_task["status"] == 20, done_task
            httpx.get(done_task["video_url"]).raise_for_status()
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
        "gib": video.stat().st_size / (1024 * MIB),
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
    parser.add_argument(
        "--generator", choices=("auto", "wrk", "python"), default="auto",
        help="detail load: wrk (auto: when it is or can be installed) or the Python one",
    )
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
                rows = bench_detail(farm, args.seconds, args.concurrency, args.generator)
                for name, row in rows.items():
                    print(json.dumps({"server": name, **row}))
            if "memory" not in skip:
                print(f"peak RSS while {args.big_gib} GiB goes upload -> render -> result:")
                print(json.dumps(bench_memory(farm, args.big_gib)))
        finally:
            farm.close()


if __name__ == "__main__":
    main()
