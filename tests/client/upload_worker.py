"""One process of several uploading with one app at once: waits for a start file, uploads the
file N times, prints one JSON line with its uploads and errors. Run as
``python -m tests.client.upload_worker APP SECRET BASE_URL CRED_DIR FILE N SCALE START_FILE``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from chanjing_avatar import ChanjingError, Client, RateLimits


def main() -> None:
    app_id, secret, base_url, cred_dir, path, n, scale, start = sys.argv[1:9]
    done, errors = 0, []
    with Client(app_id, secret, base_url=base_url, credentials_dir=cred_dir, allow_http=True,
                rate_limits=RateLimits.scaled(float(scale))) as c:
        c.auth.token()
        while not Path(start).exists():
            time.sleep(0.01)
        for _ in range(int(n)):
            try:
                c.files.upload(path, "lip_sync_video")
                done += 1
            except ChanjingError as e:
                errors.append(f"{type(e).__name__}: {e}")
    print(json.dumps({"done": done, "errors": errors}))


if __name__ == "__main__":
    main()
