"""Sandbox benchmark: detail throughput on loopback, and server memory during a 1 GiB upload.

    .venv/bin/python bench/sandbox_throughput.py [--seconds 10] [--concurrency 16] [--upload-gib 1]

The server runs in its own process (``chanjing-avatar sandbox serve``), as it would for users, so
the load generator does not share its interpreter; its RSS is read from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx

from chanjing_avatar import _wire

MIB = 1024 * 1024


@contextmanager
def server(data_dir: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    command = [
        sys.executable, "-m", "chanjing_avatar", "sandbox", "serve", "--port", "0",
        "--data-dir", str(data_dir), "--no-rate-limits", "--sync-delay", "0",
        "--renderer", "passthrough", "--json",
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        yield proc, info
    finally:
        proc.terminate()
        proc.wait(30)


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def login(http: httpx.Client, info: dict[str, Any]) -> dict[str, str]:
    answer = http.post(
        _wire.PATH_ACCESS_TOKEN,
        json={"app_id": info["app_id"], "secret_key": info["secret_key"]},
    ).json()
    return {_wire.TOKEN_HEADER: answer["data"]["access_token"]}


def tiny_video(path: Path) -> Path:
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(25))
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for i in range(25):
            frame = np.full((64, 64, 3), i * 9, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def upload(http: httpx.Client, headers: dict[str, str], service: str, body: Any, name: str) -> str:
    info = http.get(
        _wire.PATH_CREATE_UPLOAD_URL, params={"service": service, "name": name}, headers=headers
    ).json()["data"]
    put = httpx.put(
        info["sign_url"], content=body, headers={"Content-Type": info["mime_type"]}, timeout=600
    )
    put.raise_for_status()
    return str(info["file_id"])


def make_task(http: httpx.Client, headers: dict[str, str], video: Path) -> str:
    file_id = upload(http, headers, "lip_sync_video", video.read_bytes(), "v.mp4")
    while (
        http.get(_wire.PATH_FILE_DETAIL, params={"id": file_id}, headers=headers).json()["data"][
            "status"
        ]
        == 0
    ):
        time.sleep(0.05)
    tts = {"text": "你好", "audio_man_id": voice(http, headers)}
    body = {"video_file_id": file_id, "screen_width": 64, "screen_height": 64, "tts_config": tts}
    return str(http.post(_wire.PATH_LIPSYNC_CREATE, json=body, headers=headers).json()["data"])


def voice(http: httpx.Client, headers: dict[str, str]) -> str:
    answer = http.get(_wire.PATH_LIST_COMMON_AUDIO, headers=headers).json()
    return str(answer["data"]["list"][0]["id"])


async def hammer(
    base_url: str, headers: dict[str, str], task_id: str, seconds: float, concurrency: int
) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits) as http:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                answer = await http.get(_wire.PATH_LIPSYNC_DETAIL, params={"id": task_id})
                latencies.append(time.perf_counter() - started)
                assert answer.json()["code"] == 0

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def bench_detail(seconds: float, concurrency: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, server(Path(tmp) / "data") as (proc, info):
        http = httpx.Client(base_url=info["base_url"], timeout=60)
        headers = login(http, info)
        task_id = make_task(http, headers, tiny_video(Path(tmp) / "v.mp4"))
        asyncio.run(hammer(info["base_url"], headers, task_id, 1.0, concurrency))  # warm up
        cpu_before = cpu_s(proc.pid)
        latencies = asyncio.run(hammer(info["base_url"], headers, task_id, seconds, concurrency))
        server_cpu = cpu_s(proc.pid) - cpu_before
        http.close()
    latencies.sort()
    return {
        "requests": len(latencies),
        "requests_per_s": len(latencies) / seconds,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "server_cpu_ms_per_request": server_cpu * 1000 / len(latencies),
    }


def bench_upload(gib: float) -> dict[str, float]:
    total = int(gib * 1024 * MIB)
    chunk = b"\0" * MIB

    def body() -> Iterator[bytes]:
        sent = 0
        while sent < total:
            piece = chunk[: min(MIB, total - sent)]
            sent += len(piece)
            yield piece

    with tempfile.TemporaryDirectory() as tmp, server(Path(tmp) / "data") as (proc, info):
        http = httpx.Client(base_url=info["base_url"], timeout=60)
        headers = login(http, info)
        baseline = rss_kib(proc.pid)
        peak = baseline
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss_kib(proc.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.perf_counter()
        upload(http, headers, "lip_sync_video", body(), "big.mp4")
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
        hwm = rss_kib(proc.pid, "VmHWM")
        http.close()
    return {
        "upload_gib": gib,
        "upload_s": elapsed,
        "upload_mib_per_s": total / MIB / elapsed,
        "rss_before_mib": baseline / 1024,
        "rss_peak_mib": max(peak, hwm) / 1024,
        "rss_growth_mib": (max(peak, hwm) - baseline) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--upload-gib", type=float, default=1.0)
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}  python: {sys.version.split()[0]}")
    detail = bench_detail(args.seconds, args.concurrency)
    print(
        f"detail: {detail['requests_per_s']:.0f} req/s over {args.seconds:.0f} s "
        f"({args.concurrency} concurrent), p50 {detail['p50_ms']:.1f} ms, "
        f"p99 {detail['p99_ms']:.1f} ms; server CPU {detail['server_cpu_ms_per_request']:.2f} ms "
        "per request"
    )
    up = bench_upload(args.upload_gib)
    print(
        f"upload: {up['upload_gib']:g} GiB in {up['upload_s']:.1f} s "
        f"({up['upload_mib_per_s']:.0f} MiB/s); server RSS {up['rss_before_mib']:.0f} MiB before, "
        f"peak {up['rss_peak_mib']:.0f} MiB (+{up['rss_growth_mib']:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
