"""Upload a large file to the sandbox: the client (sync, async) and ``curl -T``, side by side.

    .venv/bin/python bench/client_upload.py [--size-mib 1024] [--rounds 2] [--file PATH]

Each upload runs in its own process against one embedded sandbox, so the client and curl compete
for the same server on equal terms. Reported: throughput (MiB/s) and peak RSS; for the client also
its RSS growth during the upload (baseline taken after imports, client setup and the token).
Goals (issue 3): growth under 64 MiB; throughput at least 0.9x curl's.

The sandbox (a Python server sharing this machine's cores) is usually the bottleneck, so a second
table sends the same bytes to a bare discard server (recv_into in a loop): there the client's
streaming path (``_client._file_chunks`` through httpx) and curl are limited by themselves only.

The test file is written in a private temporary folder and deleted at the end, also when the run
is interrupted (Ctrl-C or SIGTERM); one given with ``--file`` is kept (and reused next time).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHILD = r"""
import json, sys, time
from chanjing_avatar import Client, AsyncClient
app_id, secret, base_url, cred, path, mode = sys.argv[1:7]
def status_mib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
def rss_mib():
    return status_mib("VmRSS")
kw = dict(base_url=base_url, credentials_dir=cred, rate_limits=False)
if mode == "sync":
    c = Client(app_id, secret, **kw)
    c.auth.token()
    base = rss_mib()
    t0 = time.perf_counter()
    detail = c.files.upload(path, "lip_sync_video", wait=False)
    dt = time.perf_counter() - t0
    c.close()
else:
    import anyio
    async def main():
        async with AsyncClient(app_id, secret, **kw) as c:
            await c.auth.token()
            base = rss_mib()
            t0 = time.perf_counter()
            await c.files.upload(path, "lip_sync_video", wait=False)
            return base, time.perf_counter() - t0
    base, dt = anyio.run(main)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forked parent across exec.
peak = status_mib("VmHWM")
print(json.dumps({"seconds": dt, "base_rss_mib": base, "peak_rss_mib": peak}))
"""


SINK_SERVER = r"""
import socket, sys, threading
def handle(c):
    mv = memoryview(bytearray(1 << 20)); data = b""
    while b"\r\n\r\n" not in data:
        data += c.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    got = len(rest)
    while got < length:
        n = c.recv_into(mv)
        if not n:
            break
        got += n
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    c.close()
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
while True:
    conn, _ = s.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
"""

SINK_CLIENT = r"""
import sys, time, anyio, httpx
from pathlib import Path
from chanjing_avatar import _async_client, _client
from chanjing_avatar._core import FileBody
path = Path(sys.argv[2])
body = FileBody(path, 0, path.stat().st_size)
headers = {"Content-Length": str(body.length), "Content-Type": "video/mp4"}
if sys.argv[3] == "sync":
    with httpx.Client() as c:
        t0 = time.perf_counter()
        c.put(sys.argv[1], content=_client._file_chunks(body), headers=headers).raise_for_status()
else:
    async def main():
        async with httpx.AsyncClient() as c:
            r = await c.put(sys.argv[1], content=_async_client._file_chunks(body), headers=headers)
            r.raise_for_status()
    t0 = time.perf_counter()
    anyio.run(main)
print(time.perf_counter() - t0)
"""


def sink_rounds(path: Path, rounds: int) -> dict[str, list[float]]:
    server = subprocess.Popen([sys.executable, "-c", SINK_SERVER], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{int(server.stdout.readline())}/discard"
        out: dict[str, list[float]] = {"client (sync)": [], "client (async)": [], "curl -T": []}
        for _ in range(rounds):
            t0 = time.perf_counter()
            subprocess.run(["curl", "-sS", "-f", "-o", "/dev/null", "-T", str(path),
                            "-H", "Content-Type: video/mp4", url], check=True)
            out["curl -T"].append(time.perf_counter() - t0)
            for mode in ("sync", "async"):
                run = subprocess.run([sys.executable, "-c", SINK_CLIENT, url, str(path), mode],
                                     capture_output=True, text=True, check=True)
                out[f"client ({mode})"].append(float(run.stdout))
        return out
    finally:
        server.kill()
        server.wait()


def _mib(n: float) -> float:
    return n / 1024 / 1024


def make_file(path: Path, size: int) -> None:
    if path.exists() and path.stat().st_size == size:
        return
    block = os.urandom(1024 * 1024)
    with open(path, "wb") as f:
        for _ in range(size // len(block)):
            f.write(block)
        f.write(block[: size % len(block)])


def run_client(sb: Any, cred: str, path: Path, mode: str) -> dict[str, float]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, sb.app_id, sb.secret_key, sb.base_url, cred, str(path), mode],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        out, err = proc.communicate()
    finally:  # interrupted: the child is gone before its folder is (subprocess.run on Ctrl-C
        proc.kill()  # kills it but does not wait, and it may still write its lock file)
        proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"client upload failed ({proc.returncode}): {err.strip()[-500:]}")
    result: dict[str, float] = json.loads(out)
    return result


def run_curl(sb: Any, cred: str, path: Path) -> dict[str, float]:
    from chanjing_avatar import Client

    with Client(sb.app_id, sb.secret_key, base_url=sb.base_url, credentials_dir=cred,
                rate_limits=False) as c:
        address = c.files.create_upload_url("lip_sync_video", path.name)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        ["curl", "-sS", "-f", "-o", "/dev/null", "-T", str(path),
         "-H", f"Content-Type: {address.mime_type}", address.sign_url],
    )
    peak = 0.0
    try:
        while proc.poll() is None:  # VmHWM while it runs (ru_maxrss would include our own RSS)
            try:
                with open(f"/proc/{proc.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            peak = max(peak, int(line.split()[1]) / 1024)
            except OSError:
                pass
            time.sleep(0.005)
    finally:  # interrupted: curl must not keep the (deleted) file open
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"curl failed with {proc.returncode}")
    return {"seconds": dt, "peak_rss_mib": peak}


class _Renderer:
    name = "none"

    def voices(self) -> list[Any]:
        return []

    def render(self, job: Any, progress: Any) -> Any:
        raise NotImplementedError

    def audition(self, voice_id: str, out_path: Path) -> None:
        raise NotImplementedError


def _interrupted(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--file", type=Path, default=None,
                        help="the file to upload, made if missing and kept (default: a "
                             "temporary file, deleted at the end)")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).with_name("results") / "client_upload.json")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the temporary folder (and its 1 GiB file) goes too.
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        with tempfile.TemporaryDirectory(prefix="chanjing-bench-upload-") as tmp:
            run(args, args.file or Path(tmp) / "upload.mp4", Path(tmp))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def run(args: argparse.Namespace, path: Path, tmp: Path) -> None:
    load_start = os.getloadavg()[0]
    from chanjing_avatar.sandbox import Sandbox, SandboxConfig

    size = args.size_mib * 1024 * 1024
    make_file(path, size)
    cfg = SandboxConfig(data_dir=tmp / "sb", rate_limits_enabled=False,
                        renderer=_Renderer(), max_upload_bytes=size * 2)
    cred = str(tmp / "cred")
    rows: dict[str, list[dict[str, float]]] = {"client (sync)": [], "client (async)": [],
                                               "curl -T": []}
    with Sandbox(cfg) as sb:
        runners = {
            "curl -T": lambda: run_curl(sb, cred, path),
            "client (sync)": lambda: run_client(sb, cred, path, "sync"),
            "client (async)": lambda: run_client(sb, cred, path, "async"),
        }
        names = list(runners)
        uploads = cfg.data_dir / "blobs" / "uploads"
        for i in range(args.rounds):
            # Rotate the order, and start every upload from the same state: delete the blob
            # just stored (its page cache and pending writeback go with it). Kept blobs pile
            # up (9 GiB in 3 rounds) and slow each later upload, whoever sends it, so the
            # first sender of the run (curl in round 1) would otherwise be favoured.
            for name in names[i % 3:] + names[: i % 3]:
                rows[name].append(runners[name]())
                for blob in uploads.glob("*"):
                    blob.unlink()
    sink = sink_rounds(path, args.rounds)
    print(f"upload of {args.size_mib} MiB to the sandbox, best of {args.rounds} rounds")
    print(f"{'':16} {'MiB/s':>8} {'peak RSS MiB':>13} {'RSS growth MiB':>15}")
    best = {name: max(runs, key=lambda r: -r["seconds"]) for name, runs in rows.items()}
    for name, r in best.items():
        growth = r["peak_rss_mib"] - r["base_rss_mib"] if "base_rss_mib" in r else float("nan")
        print(f"{name:16} {_mib(size) / r['seconds']:8.1f} {r['peak_rss_mib']:13.1f} "
              f"{growth:15.1f}")
    curl = _mib(size) / best["curl -T"]["seconds"]
    summary = {}
    for name in ("client (sync)", "client (async)"):
        ratio = _mib(size) / best[name]["seconds"] / curl
        growth = max(r["peak_rss_mib"] - r["base_rss_mib"] for r in rows[name])
        summary[name] = {"throughput_vs_curl": round(ratio, 2), "max_rss_growth_mib": growth}
        print(f"{name}: {ratio:.2f}x curl's throughput (goal >= 0.9), "
              f"memory growth {growth:.1f} MiB (goal < 64)")
    print("same bytes to a bare discard server (best MiB/s): " + ", ".join(
        f"{name} {_mib(size) / min(times):.0f}" for name, times in sink.items()))
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps({
        "size_mib": args.size_mib, "rounds": args.rounds, "cpus": os.cpu_count(),
        "load_avg_start": load_start, "summary": summary, "runs": rows,
        "discard_server_seconds": sink,
        "goals": {"throughput_vs_curl": 0.9, "rss_growth_mib": 64},
    }, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
