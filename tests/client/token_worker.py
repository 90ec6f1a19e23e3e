"""One of the processes of the shared-token test: calls the API in a loop, reports as JSON."""

from __future__ import annotations

import json
import sys
import time

from chanjing_avatar import ChanjingError, Client


def main() -> None:
    app_id, secret, base_url, cred_dir, seconds, start_at = sys.argv[1:7]
    calls, errors = 0, []
    tokens: set[str] = set()
    with Client(app_id, secret, base_url=base_url, credentials_dir=cred_dir,
                rate_limits=False) as c:
        while time.time() < float(start_at):
            time.sleep(0.005)
        end = time.monotonic() + float(seconds)
        while time.monotonic() < end:
            try:
                c.lipsync.list(1, 1)
                tokens.add(c.auth.token())
                calls += 1
            except ChanjingError as e:
                errors.append(f"{type(e).__name__}: {e}")
            time.sleep(0.01)
    print(json.dumps({"calls": calls, "errors": errors, "tokens": len(tokens)}))


if __name__ == "__main__":
    main()
