"""Settings resolution, the credentials file, redaction in reprs."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import pytest

from chanjing_avatar import Client, ConfigurationError, Task, UploadUrl
from chanjing_avatar._config import resolve_settings
from chanjing_avatar._credentials import CredentialsStore, read_credentials_file


def _settings(tmp_path: Path, env: dict[str, str], **kw: object):  # type: ignore[no-untyped-def]
    args = {"base_url": None, "credentials_dir": None, "allow_http": False, **kw}
    return resolve_settings(args.pop("app_id", None), args.pop("secret_key", None),  # type: ignore[arg-type]
                            environ=env, **args)  # type: ignore[arg-type]


def test_args_beat_env_beat_file(tmp_path: Path) -> None:
    (tmp_path / "credentials.json").write_text(json.dumps(
        {"app_id": "file-app", "secret_key": "file-secret", "access_token": "", "expire_in": 0}))
    env = {"CHANJING_OPENAPI_CREDENTIALS_DIR": str(tmp_path)}
    s = _settings(tmp_path, env)
    assert (s.app_id, s.secret_key) == ("file-app", "file-secret")
    env |= {"CHANJING_APP_ID": "env-app", "CHANJING_SECRET_KEY": "env-secret"}
    assert _settings(tmp_path, env).app_id == "env-app"
    assert _settings(tmp_path, env, app_id="arg", secret_key="x").app_id == "arg"
    assert "secret" not in repr(_settings(tmp_path, env))


def test_legacy_env_names(tmp_path: Path) -> None:
    env = {"CHANJING_CONFIG_DIR": str(tmp_path), "CHANJING_API_BASE": "https://legacy.test/",
           "CHANJING_APP_ID": "a", "CHANJING_SECRET_KEY": "b"}
    s = _settings(tmp_path, env)
    assert s.base_url == "https://legacy.test" and s.credentials_dir == tmp_path


def test_missing_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        _settings(tmp_path, {"CHANJING_OPENAPI_CREDENTIALS_DIR": str(tmp_path)})


@pytest.mark.parametrize(
    ("url", "ok"),
    [("http://127.0.0.1:8000", True), ("http://localhost:1", True), ("http://[::1]:5", True),
     ("http://10.0.0.1", False), ("http://api.example.com", False), ("https://x.test", True)],
)
def test_plain_http_only_for_loopback(tmp_path: Path, url: str, ok: bool) -> None:
    env = {"CHANJING_APP_ID": "a", "CHANJING_SECRET_KEY": "b"}
    if ok:
        _settings(tmp_path, env, base_url=url)
    else:
        with pytest.raises(ConfigurationError):
            _settings(tmp_path, env, base_url=url)
        _settings(tmp_path, env, base_url=url, allow_http=True)


def test_store_writes_seed_format_privately(tmp_path: Path) -> None:
    cdir = tmp_path / "cfg"
    store = CredentialsStore(cdir, "app", "secret")
    held = store.acquire(blocking=True, timeout=5)
    assert held is not None
    try:
        store.write("tok", 1721289220)
    finally:
        store.release(held)
    data = json.loads((cdir / "credentials.json").read_text())
    # The token cache never writes the secret key (only `auth set` / save_credentials do).
    assert data == {"app_id": "app", "access_token": "tok", "expire_in": 1721289220}
    assert stat.S_IMODE((cdir / "credentials.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(cdir.stat().st_mode) == 0o700
    assert store.read() is not None and store.read().token == "tok"  # type: ignore[union-attr]


def test_store_keeps_other_fields_and_other_apps(tmp_path: Path) -> None:
    main = tmp_path / "credentials.json"
    main.write_text(json.dumps({"app_id": "other", "secret_key": "o", "note": 1}))
    store = CredentialsStore(tmp_path, "mine", "m")
    store.write("tok", 5)
    assert json.loads(main.read_text()) == {"app_id": "other", "secret_key": "o", "note": 1}
    assert store.path.name == "credentials-mine.json"
    same = CredentialsStore(tmp_path, "other", "o")
    same.write("t2", 6)
    assert json.loads(main.read_text())["note"] == 1


def test_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    store = CredentialsStore(tmp_path, "app", "secret")
    store.write("t" * 5000, 1)
    stop = threading.Event()
    bad: list[object] = []

    def reader() -> None:
        while not stop.is_set():
            data = read_credentials_file(store.path)
            if data is None or len(data.get("access_token", "")) != 5000:
                bad.append(data)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for i in range(300):
        store.write(str(i % 10) * 5000, i)
    stop.set()
    for t in threads:
        t.join()
    assert bad == []


def test_reprs_hide_secrets(tmp_path: Path) -> None:
    c = Client("app", "very-secret-key", base_url="http://127.0.0.1:9", credentials_dir=tmp_path)
    assert "very-secret" not in repr(c) and "very-secret" not in repr(c._ctx)
    u = UploadUrl(sign_url="https://b/x?Signature=SIG&Expires=1", mime_type="video/mp4",
                  file_id="f")
    t = Task.model_validate({"id": "t", "video_url": "https://r/x.mp4?auth_key=KEY"})
    assert "SIG" not in repr(u) and "SIG" not in str(u) and "KEY" not in repr(t)
    c.close()



def test_rate_limits_scaled() -> None:
    from chanjing_avatar import RateLimits

    scaled = RateLimits.scaled(60).limits
    assert scaled["lipsync_create"].count == 10 and scaled["lipsync_create"].period_s == 1.0
    assert RateLimits().limits["lipsync_query"].period_s == 1.0


def test_internal_reprs_hide_secrets() -> None:
    from chanjing_avatar._core import Reply, Send, TokenCache
    from chanjing_avatar._credentials import StoredToken

    send = Send("POST", "https://x/open/v1/access_token?Signature=SIG", "/open/v1/access_token",
                headers={"access_token": "TOKEN"}, json={"secret_key": "SECRET"})
    reply = Reply(200, __import__("httpx").Headers(), b'{"access_token": "TOKEN"}', None, 0.0)
    for obj in (send, reply, TokenCache("TOKEN", 1.0), StoredToken("TOKEN", 1.0)):
        assert "TOKEN" not in repr(obj) and "SECRET" not in repr(obj) and "SIG" not in repr(obj)
