"""The public configuration API: settings with their sources, saving credentials, the distinct
configuration errors, the secrets a caller must scrub."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import pytest

from chanjing_avatar import (
    Client,
    ConfigurationError,
    CredentialsFileError,
    InsecureBaseUrlError,
    MissingCredentialsError,
    resolve_config,
    resolve_credentials_dir,
    save_credentials,
)
from chanjing_avatar._config import resolve_settings


def test_sources_of_every_setting(tmp_path: Path) -> None:
    save_credentials("file-app", "file-secret", credentials_dir=tmp_path,
                     access_token="tok-file", expire_in=1.9e9)
    env = {"CHANJING_CONFIG_DIR": str(tmp_path)}
    cfg = resolve_config(environ=env)
    assert (cfg.app_id.value, cfg.app_id.source, cfg.app_id.origin) == (
        "file-app", "file", str(tmp_path / "credentials.json"))
    assert (cfg.secret_key.value, cfg.secret_key.source) == ("file-secret", "file")
    assert (cfg.credentials_dir.source, cfg.credentials_dir.origin) == (
        "legacy env", "CHANJING_CONFIG_DIR")
    assert (cfg.base_url.source, cfg.base_url.value) == ("default", "https://open-api.chanjing.cc")
    assert (cfg.token.value, cfg.token_expire_in) == ("tok-file", 1.9e9)

    env |= {"CHANJING_APP_ID": "env-app", "CHANJING_SECRET_KEY": "env-secret",
            "CHANJING_API_BASE": "https://legacy.test",
            "CHANJING_OPENAPI_CREDENTIALS_DIR": str(tmp_path)}
    cfg = resolve_config(environ=env)
    assert (cfg.app_id.source, cfg.app_id.origin) == ("env", "CHANJING_APP_ID")
    assert (cfg.secret_key.source, cfg.secret_key.value) == ("env", "env-secret")
    assert (cfg.base_url.source, cfg.base_url.origin) == ("legacy env", "CHANJING_API_BASE")
    assert cfg.credentials_dir.source == "env"
    assert cfg.token.value is None  # the file's token belongs to another app

    cfg = resolve_config("arg-app", "arg-secret", base_url="https://arg.test", environ=env)
    assert {cfg.app_id.source, cfg.secret_key.source, cfg.base_url.source} == {"argument"}
    # Secrets never in a repr.
    assert "arg-secret" not in repr(cfg)
    assert "tok-file" not in repr(resolve_config(environ=env))


def test_unset_keys_are_reported_then_raised_by_the_client_path(tmp_path: Path) -> None:
    env = {"CHANJING_OPENAPI_CREDENTIALS_DIR": str(tmp_path)}
    cfg = resolve_config(environ=env)
    assert cfg.app_id.source == "unset" and not cfg.has_credentials
    with pytest.raises(MissingCredentialsError, match=r"credentials\.json"):
        cfg.settings()
    with pytest.raises(MissingCredentialsError):
        resolve_settings(None, None, base_url=None, credentials_dir=None, allow_http=False,
                         environ=env)
    with pytest.raises(MissingCredentialsError):
        Client(credentials_dir=tmp_path / "nothing")
    assert issubclass(MissingCredentialsError, ConfigurationError)


def test_insecure_base_url_has_its_own_error(tmp_path: Path) -> None:
    with pytest.raises(InsecureBaseUrlError):
        Client("a", "b", base_url="http://api.example.com", credentials_dir=tmp_path)
    cfg = resolve_config("a", "b", base_url="http://api.example.com", credentials_dir=tmp_path)
    assert cfg.settings(allow_http=True).base_url == "http://api.example.com"


@pytest.mark.parametrize("content", ['{"app_id": "abc", "secret_key": ', "[1, 2]", ""])
def test_corrupt_credentials_file_is_a_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "credentials.json"
    path.write_text(content)
    with pytest.raises(CredentialsFileError) as info:
        Client(credentials_dir=tmp_path)
    assert info.value.path == path
    assert str(path) in str(info.value) and "delete it" in str(info.value)
    with pytest.raises(CredentialsFileError):
        resolve_config(credentials_dir=tmp_path)
    # Keys from elsewhere: the file is not needed for them, so no error.
    assert resolve_config("a", "b", credentials_dir=tmp_path).has_credentials


def test_a_writers_temp_file_and_concurrent_writes_never_look_corrupt(tmp_path: Path) -> None:
    save_credentials("app", "secret", credentials_dir=tmp_path)
    (tmp_path / ".credentials-half.tmp").write_text('{"app_id": ')  # a writer's temp file
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            save_credentials("app", "secret", credentials_dir=tmp_path,
                             access_token=f"tok-{n}", expire_in=1.9e9)

    def vendor_writer() -> None:
        # The vendor's scripts rewrite the file in place (open "w", dump): for a moment it is
        # empty or half-written.
        path = tmp_path / "credentials.json"
        for n in range(30):
            with open(path, "w") as f:
                f.write('{"app_id": "app", ')
                f.flush()
                f.write(f'"secret_key": "secret", "access_token": "v{n}", "expire_in": 1}}')

    threads = [threading.Thread(target=writer), threading.Thread(target=vendor_writer)]
    for t in threads:
        t.start()
    try:
        for _ in range(200):
            try:
                assert resolve_config(credentials_dir=tmp_path).app_id.value == "app"
            except BaseException as e:
                errors.append(e)
                break
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors


def test_save_credentials_is_private_and_atomic(tmp_path: Path) -> None:
    folder = tmp_path / "new" / "cred"
    env = {"CHANJING_OPENAPI_CREDENTIALS_DIR": str(folder)}
    path = save_credentials("app", "s3cret", environ=env)
    assert path == folder / "credentials.json"
    assert json.loads(path.read_text()) == {"app_id": "app", "secret_key": "s3cret"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert not list(folder.glob(".credentials-*"))
    with pytest.raises(MissingCredentialsError):
        save_credentials("app", "", credentials_dir=folder)
    assert resolve_credentials_dir(environ=env).value == str(folder)


def test_client_secrets_for_scrubbing_and_file(tmp_path: Path) -> None:
    save_credentials("app", "s3cret-key-value", credentials_dir=tmp_path,
                     access_token="tok-abcdef", expire_in=1.9e9)
    with Client(credentials_dir=tmp_path) as c:
        assert c.credentials_file == tmp_path / "credentials.json"
        secrets = c.secrets()
        assert "s3cret-key-value" in secrets and "tok-abcdef" in secrets
        assert not any(s in repr(c) for s in secrets)
