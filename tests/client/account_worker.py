"""A long-running client of one app: lists tasks until told to stop (a file appears), then
prints one JSON line with its calls and errors."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from chanjing_avatar import ChanjingError, Client


def main() -> None:
    app_id, secret, base_url, cred_dir, stop_file = sys.argv[1:6]
    calls, errors, foreign = 0, [], 0
    with Client(app_id, secret, base_url=base_url, credentials_dir=cred_dir,
                rate_limits=False) as c:
        mine = {t.id for t in c.lipsync.list(1, 50).items}
        while not Path(stop_file).exists():
            try:
                seen = {t.id for t in c.lipsync.list(1, 50).items}
                foreign += len(seen - mine)
                calls += 1
            except ChanjingError as e:
                errors.append(f"{type(e).__name__}: {e}")
            time.sleep(0.02)
    print(json.dumps({"calls": calls, "errors": errors, "foreign": foreign}))


if __name__ == "__main__":
    main()
