"""``auth set`` over the credentials file of another app: refused unless --force, which keeps a
backup. The installed command, as a subprocess, against the sandbox."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from .conftest import Env


def test_auth_set_refuses_to_replace_another_apps_file_unless_forced(
    env: Env, tmp_path: Path
) -> None:
    creds = tmp_path / "creds"
    r = env.run("auth", "set", "--app-id", env.app_id, "--credentials-dir", str(creds),
                input=env.secret_key + "\n")
    assert r.returncode == 0, r.stderr
    path = creds / "credentials.json"
    first = path.read_bytes()
    other_app, other_secret = env.sb.admin.add_app()  # type: ignore[attr-defined]

    r = env.run("auth", "set", "--app-id", other_app, "--credentials-dir", str(creds),
                input=other_secret + "\n")
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--force" in lines[0] and "--credentials-dir" in lines[0]
    assert env.app_id in lines[0]
    assert path.read_bytes() == first  # untouched
    assert not list(creds.glob("*.bak"))

    r = env.run("auth", "set", "--app-id", other_app, "--credentials-dir", str(creds),
                "--force", "--json", input=other_secret + "\n")
    assert r.returncode == 0, r.stderr
    assert json.loads(path.read_text())["app_id"] == other_app
    backups = list(creds.glob("credentials.json.*.bak"))
    assert len(backups) == 1 and backups[0].read_bytes() == first
    assert stat.S_IMODE(backups[0].stat().st_mode) == 0o600
    assert r.json()["backup"] == str(backups[0])  # type: ignore[index]
    env.tokens.add(json.loads(first)["access_token"])

    # The same app again (a new secret, say) is no conflict.
    r = env.run("auth", "set", "--app-id", other_app, "--credentials-dir", str(creds),
                input=other_secret + "\n")
    assert r.returncode == 0, r.stderr
    assert len(list(creds.glob("*.bak"))) == 1
