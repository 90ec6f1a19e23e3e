"""The credentials folder never makes a client act as the wrong account, and never holds or
trusts what it must not: real processes, a second Unix user, a shared 1777 folder."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chanjing_avatar import Client, CredentialsFileError, save_credentials

sandbox_mod = pytest.importorskip("chanjing_avatar.sandbox")
HERE = Path(__file__).parent


def _task_for(c: Client, video: Path, audio: Path) -> str:
    v = c.files.upload(video, "lip_sync_video").id
    a = c.files.upload(audio, "lip_sync_audio").id
    return c.lipsync.create(video_file_id=v, audio_file_id=a)


def _wait_for(predicate: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _token_of(path: Path) -> object:
    try:
        return json.loads(path.read_text()).get("access_token")
    except (OSError, ValueError):
        return None


def test_a_long_running_client_never_writes_its_token_into_another_apps_file(
    sandbox: Any, tiny_video: Path, tiny_audio: Path, tmp_path: Path
) -> None:
    app_a, secret_a = sandbox.app_id, sandbox.secret_key
    app_b, secret_b = sandbox.admin.add_app()
    with Client(app_a, secret_a, base_url=sandbox.base_url, credentials_dir=tmp_path / "a") as c:
        task_a = _task_for(c, tiny_video, tiny_audio)
    with Client(app_b, secret_b, base_url=sandbox.base_url, credentials_dir=tmp_path / "b") as c:
        task_b = _task_for(c, tiny_video, tiny_audio)

    cred = tmp_path / "cred"
    save_credentials(app_a, secret_a, credentials_dir=cred)
    main = cred / "credentials.json"
    stop = tmp_path / "stop"
    worker = subprocess.Popen(
        [sys.executable, str(HERE / "account_worker.py"), app_a, secret_a, sandbox.base_url,
         str(cred), str(stop)], stdout=subprocess.PIPE, text=True,
    )
    try:
        _wait_for(lambda: _token_of(main) is not None)  # A's client took its token
        # The user switches the folder to app B (auth set --force) while A's client runs...
        save_credentials(app_b, secret_b, credentials_dir=cred, force=True)
        # ... and A's token dies, so A's client refreshes and saves its new token.
        before = sandbox.admin.count("access_token")
        sandbox.admin.invalidate_tokens(app_a)
        _wait_for(lambda: sandbox.admin.count("access_token") > before)
        time.sleep(0.3)  # a few more of A's calls with its new token
    finally:
        stop.touch()
        out, _ = worker.communicate(timeout=60)
    report = json.loads(out)
    assert report["errors"] == [] and report["foreign"] == 0 and report["calls"] > 0

    stored = json.loads(main.read_text())
    assert stored["app_id"] == app_b and stored["secret_key"] == secret_b
    # B's programs act as B: its list shows B's task, never A's.
    with Client(credentials_dir=cred, base_url=sandbox.base_url) as c:
        assert c.app_id == app_b
        assert {t.id for t in c.lipsync.list(1, 50).items} == {task_b}
    # A's token went to A's own file.
    own = json.loads((cred / f"credentials-{app_a}.json").read_text())
    assert own["app_id"] == app_a and own["access_token"]
    with Client(app_a, secret_a, credentials_dir=cred, base_url=sandbox.base_url) as c:
        assert {t.id for t in c.lipsync.list(1, 50).items} == {task_a}


def test_keys_from_the_environment_are_never_written_to_disk(
    sandbox: Any, tmp_path: Path
) -> None:
    cred = tmp_path / "cred"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANJING_")}
    env.update(CHANJING_APP_ID=sandbox.app_id, CHANJING_SECRET_KEY=sandbox.secret_key,
               CHANJING_OPENAPI_BASE_URL=sandbox.base_url,
               CHANJING_OPENAPI_CREDENTIALS_DIR=str(cred))
    code = "from chanjing_avatar import Client\nwith Client() as c: c.lipsync.list(1, 1)\n"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    stored = json.loads((cred / "credentials.json").read_text())
    assert stored["app_id"] == sandbox.app_id and stored["access_token"]  # the token is shared
    assert "secret_key" not in stored
    for path in cred.rglob("*"):
        if path.is_file():
            assert sandbox.secret_key.encode() not in path.read_bytes(), path


# -- files and folders of other users --------------------------------------------------------

def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: runs a second Unix user with runuser")


def _as_nobody(code: str) -> None:
    """Run Python ``code`` as the user ``nobody`` (any python it can execute)."""
    if shutil.which("runuser") is None:
        pytest.skip("needs runuser (util-linux) to act as a second Unix user")
    for python in (sys.executable, shutil.which("python3") or "", "/usr/bin/python3"):
        probe = subprocess.run(["runuser", "-u", "nobody", "--", python, "-c", "pass"],
                               capture_output=True, timeout=60)
        if python and probe.returncode == 0:
            subprocess.run(["runuser", "-u", "nobody", "--", python, "-c", code], check=True,
                           timeout=60)
            return
    pytest.skip("the user nobody can execute no python here")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A 1777 folder (like /tmp) that the user ``nobody`` can reach."""
    base = Path(tempfile.mkdtemp(prefix="chanjing-shared-"))
    try:
        os.chmod(base, 0o755)
        shared = base / "shared"
        shared.mkdir()
        os.chmod(shared, 0o1777)
        yield shared
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_file_planted_in_a_shared_folder_is_refused_and_the_folder_left_alone(
    sandbox: Any, shared_dir: Path
) -> None:
    _need_root()
    planter_app, planter_secret = sandbox.admin.add_app()
    plant = (f"import json; json.dump({{'app_id': {planter_app!r}, 'secret_key': "
             f"{planter_secret!r}}}, open({str(shared_dir / 'credentials.json')!r}, 'w'))")
    _as_nobody(plant)
    assert (shared_dir / "credentials.json").stat().st_uid == pwd.getpwnam("nobody").pw_uid
    for keys in ((), (sandbox.app_id, sandbox.secret_key)):
        with pytest.raises(CredentialsFileError) as info:
            Client(*keys, base_url=sandbox.base_url, credentials_dir=shared_dir)
        assert "every user" in str(info.value) and "folder of your own" in str(info.value)
    with pytest.raises(CredentialsFileError):
        save_credentials(sandbox.app_id, sandbox.secret_key, credentials_dir=shared_dir)
    assert stat.S_IMODE(shared_dir.stat().st_mode) == 0o1777  # never chmod-ed
    assert sandbox.admin.count("access_token") == 0  # nobody worked as the planter's app


def test_a_file_another_user_owns_is_refused(sandbox: Any, tmp_path: Path) -> None:
    _need_root()
    cred = tmp_path / "cred"
    cred.mkdir(mode=0o700)
    path = cred / "credentials.json"
    path.write_text(json.dumps({"app_id": sandbox.app_id, "secret_key": sandbox.secret_key}))
    nobody = pwd.getpwnam("nobody")
    os.chown(path, nobody.pw_uid, nobody.pw_gid)
    with pytest.raises(CredentialsFileError) as info:
        Client(base_url=sandbox.base_url, credentials_dir=cred)
    assert f"owned by another user (uid {nobody.pw_uid})" in str(info.value)


def test_a_symlinked_credentials_file_is_refused(sandbox: Any, tmp_path: Path) -> None:
    cred = tmp_path / "cred"
    cred.mkdir(mode=0o700)
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps({"app_id": sandbox.app_id, "secret_key": sandbox.secret_key}))
    (cred / "credentials.json").symlink_to(target)
    with pytest.raises(CredentialsFileError) as info:
        Client(base_url=sandbox.base_url, credentials_dir=cred)
    assert "symbolic link" in str(info.value)


def test_a_huge_credentials_file_is_refused_without_reading_it(
    sandbox: Any, tmp_path: Path
) -> None:
    cred = tmp_path / "cred"
    cred.mkdir(mode=0o700)
    with open(cred / "credentials.json", "wb") as f:
        f.truncate(2 * 1024**3)  # sparse: 2 GiB that nobody should read into memory
    with pytest.raises(CredentialsFileError) as info:
        Client(sandbox.app_id, sandbox.secret_key, base_url=sandbox.base_url,
               credentials_dir=cred)
    assert "too big" in str(info.value)


def test_a_lock_file_that_cannot_be_created_is_one_clear_error(
    sandbox: Any, tmp_path: Path
) -> None:
    cred = tmp_path / "cred"
    cred.mkdir(mode=0o700)
    (cred / "credentials.json.lock").mkdir()  # cannot be opened as the lock file
    with Client(sandbox.app_id, sandbox.secret_key, base_url=sandbox.base_url,
                credentials_dir=cred) as c, pytest.raises(CredentialsFileError) as info:
        c.lipsync.list(1, 1)  # needs a token: takes the lock
    assert "cannot create the lock file" in str(info.value)
    assert not isinstance(info.value.__cause__, OSError)


def test_a_refused_token_that_keeps_changing_is_retried_not_raised(
    sandbox: Any, tmp_path: Path
) -> None:
    # Two calls in a row find their token killed by someone else's refresh (the sandbox
    # invalidates it, as a vendor script's new token would): the first token, then the one the
    # client refreshed. Each time the token is new, so the call goes on.
    with Client(sandbox.app_id, sandbox.secret_key, base_url=sandbox.base_url,
                credentials_dir=tmp_path) as c:
        c.auth.token()
        sandbox.admin.add_fault("lipsync_list", "invalidate_token", times=2)
        try:
            assert c.lipsync.list(1, 1).items == []
        finally:
            sandbox.admin.clear_faults()
    assert sandbox.admin.count("lipsync_list", 10400) == 2
    assert sandbox.admin.count("lipsync_list", 0) == 1


def test_a_vendor_script_rewriting_the_token_in_place_never_reaches_callers(
    sandbox: Any, tmp_path: Path
) -> None:
    cred = tmp_path / "cred"
    save_credentials(sandbox.app_id, sandbox.secret_key, credentials_dir=cred)
    start_at = time.time() + 2.0  # after every process's imports
    args = [sandbox.app_id, sandbox.secret_key, sandbox.base_url]
    clients = [
        subprocess.Popen([sys.executable, str(HERE / "token_worker.py"), *args, str(cred), "2",
                          str(start_at)], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    # Several scripts at once, as agents run them, each taking a new token every 0.2 s: a new
    # token kills the one before, so the clients' tokens keep dying under them. (With no pause at
    # all a token dies before any request can use it, and no bounded number of retries wins.)
    vendors = [
        subprocess.Popen(
            [sys.executable, str(HERE / "vendor_writer.py"), *args,
             str(cred / "credentials.json"), "2", str(start_at), "0.2"],
            stdout=subprocess.PIPE, text=True,
        )
        for _ in range(3)
    ]
    reports = [json.loads(p.communicate(timeout=60)[0]) for p in clients]
    writes = sum(json.loads(p.communicate(timeout=60)[0])["writes"] for p in vendors)
    assert writes >= 20  # the token really kept changing under the clients
    errors = [e for r in reports for e in r["errors"]]
    assert sum(r["calls"] for r in reports) >= 15  # a few calls each, however loaded the machine
    assert (errors[:3], len(errors)) == ([], 0)


# -- the pure decisions behind the rules above --------------------------------------------------

@pytest.mark.parametrize(
    ("uid", "gid", "mode", "refused"),
    [
        (1000, 1000, 0o100600, None),
        (0, 0, 0o100644, None),  # root's: trusted, like ssh
        (1000, 1000, 0o100664, None),  # our own per-user group may write
        (1001, 1000, 0o100600, "is owned by another user (uid 1001)"),
        (1000, 1000, 0o040777, "can be written by every user"),
        (0, 0, 0o041777, "can be written by every user"),  # /tmp-like, even root's
        (1000, 50, 0o100660, "can be written by group 50"),
    ],
)
def test_unsafe_owner(uid: int, gid: int, mode: int, refused: str | None) -> None:
    from chanjing_avatar._credentials import unsafe_owner

    st = os.stat_result((mode, 0, 0, 1, uid, gid, 0, 0, 0, 0))
    assert unsafe_owner(st, uid=1000, gid=1000) == refused


def test_token_path_never_points_at_another_apps_file(tmp_path: Path) -> None:
    from chanjing_avatar._credentials import token_path

    main = tmp_path / "credentials.json"
    assert token_path(tmp_path, None, "a") == main
    assert token_path(tmp_path, "a", "a") == main
    assert token_path(tmp_path, "b", "a") == tmp_path / "credentials-a.json"
    assert token_path(tmp_path, "b", "../x y") == tmp_path / "credentials-.._x_y.json"
