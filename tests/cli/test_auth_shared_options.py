"""``auth`` takes the shared options before or after its name, like every command; ``auth set``
refuses --local (it stores credentials for the API, not the local sandbox)."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import Env


def test_auth_set_verifies_against_the_base_url_given_before_it(env: Env, tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    environ = env.environ(CHANJING_OPENAPI_BASE_URL=None)  # only the option names the server
    r = env.run("--base-url", env.base_url, "--json", "auth", "set", "--app-id", env.app_id,
                "--credentials-dir", str(creds), input=env.secret_key + "\n", env=environ)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.out)["verified"] is True
    assert json.loads((creds / "credentials.json").read_text())["access_token"]


def test_auth_set_refuses_local(env: Env, tmp_path: Path) -> None:
    r = env.run("--local", "auth", "set", "--app-id", env.app_id, "--credentials-dir",
                str(tmp_path / "creds"), input=env.secret_key + "\n")
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--local does not apply to" in lines[0], r.stderr
    assert not (tmp_path / "creds").exists()
