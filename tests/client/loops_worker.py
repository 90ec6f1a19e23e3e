"""One AsyncClient driven from several event loops: ``asyncio.run`` again and again, then two
loops at once in two threads. Prints one JSON line: how many runs worked and the errors."""

from __future__ import annotations

import asyncio
import json
import sys
import threading

from chanjing_avatar import AsyncClient


def main() -> None:
    app_id, secret, base_url, cred_dir = sys.argv[1:5]
    client = AsyncClient(app_id, secret, base_url=base_url, credentials_dir=cred_dir)
    ok, errors = 0, []

    async def calls() -> None:
        await client.lipsync.list(1, 1)
        await asyncio.gather(*(client.lipsync.list(1, 1) for _ in range(3)))

    def run_once() -> None:
        nonlocal ok
        try:
            asyncio.run(calls())
            ok += 1
        except Exception as e:  # report, keep going
            errors.append(f"{type(e).__name__}: {e}")

    for _ in range(4):
        run_once()
    threads = [threading.Thread(target=run_once) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"ok": ok, "errors": errors}))


if __name__ == "__main__":
    main()
