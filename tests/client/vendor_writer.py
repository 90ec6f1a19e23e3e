"""What the vendor's scripts do to the credentials file: take a new token over raw HTTP and
rewrite the file in place with ``open("w")`` (not atomic), again and again until a deadline."""

from __future__ import annotations

import json
import sys
import time
import urllib.request


def main() -> None:
    app_id, secret, base_url, path, seconds, start_at, pause = sys.argv[1:8]
    while time.time() < float(start_at):
        time.sleep(0.005)
    end = time.monotonic() + float(seconds)
    writes = 0
    while time.monotonic() < end:
        body = json.dumps({"app_id": app_id, "secret_key": secret}).encode()
        request = urllib.request.Request(base_url + "/open/v1/access_token", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            data = json.loads(answer.read())["data"]
        with open(path, "w") as f:  # the scripts' way: truncate, then write
            json.dump({"app_id": app_id, "secret_key": secret,
                       "access_token": data["access_token"], "expire_in": data["expire_in"]},
                      f, indent=2)
        writes += 1
        time.sleep(float(pause))
    print(json.dumps({"writes": writes}))


if __name__ == "__main__":
    main()
