"""Start-up time of ``chanjing-avatar --help`` next to ``python -c pass``.

    .venv/bin/python bench/cli_startup.py [--runs 20]

Each command runs ``--runs`` times after one warm-up; min / median / mean wall time are reported,
plus the heavy modules (server stack, renderer, numpy, pydantic) that ``--help`` imported, which
must be none. Results also go to bench/results/cli_startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# The same list as tests/cli/test_secrets_and_startup.py's --help import test.
HEAVY = ("fastapi", "uvicorn", "starlette", "av", "numpy", "skimage", "pydantic", "httpx",
         "asyncio", "anyio", "sqlite3", "chanjing_avatar.render", "chanjing_avatar.sandbox",
         "chanjing_avatar._models", "chanjing_avatar._client", "chanjing_avatar._async_client",
         "chanjing_avatar.batch", "chanjing_avatar.callback")


def _time(cmd: list[str], runs: int) -> list[float]:
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        out.append(time.perf_counter() - t0)
    return out


def heavy_imports() -> list[str]:
    """Heavy modules imported by ``--help`` (from -X importtime)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "chanjing_avatar", "--help"],
        capture_output=True, text=True, check=False,
        env={**os.environ, "COLUMNS": "100"},
    )
    found = set()
    for line in proc.stderr.splitlines():
        if "|" not in line:
            continue
        name = line.rsplit("|", 1)[1].strip()
        for heavy in HEAVY:
            if name == heavy or name.startswith(heavy + "."):
                found.add(heavy)
    return sorted(found)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    cli = BIN / "chanjing-avatar"
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "chanjing-avatar --help": [str(cli), "--help"],
        "python -m chanjing_avatar --help": [sys.executable, "-m", "chanjing_avatar", "--help"],
    }
    results = {}
    print(f"{'command':<36}{'min ms':>9}{'median ms':>11}{'mean ms':>9}   ({args.runs} runs)")
    for name, cmd in cases.items():
        t = _time(cmd, args.runs)
        results[name] = {"min_ms": min(t) * 1000, "median_ms": statistics.median(t) * 1000,
                         "mean_ms": statistics.fmean(t) * 1000}
        r = results[name]
        print(f"{name:<36}{r['min_ms']:>9.1f}{r['median_ms']:>11.1f}{r['mean_ms']:>9.1f}")
    base = results["python -c pass"]["median_ms"]
    cli_ms = results["chanjing-avatar --help"]["median_ms"]
    print(f"--help costs {cli_ms - base:.0f} ms over a bare interpreter (median)")
    heavy = heavy_imports()
    print("heavy modules imported by --help:", ", ".join(heavy) if heavy else "none")
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "cli_startup.json").write_text(
        json.dumps({"runs": args.runs, "results": results, "heavy_imports": heavy}, indent=2)
    )
    return 1 if heavy else 0


if __name__ == "__main__":
    sys.exit(main())
