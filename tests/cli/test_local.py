"""``--local``: the embedded sandbox inside the command's own process (no account, no network).

The renderer is the fast passthrough one (CHANJING_LOCAL_RENDERER); ``bash scripts/demo`` runs the
real one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Env


@pytest.fixture
def local_dir(env: Env, tmp_path: Path) -> Path:
    # Under the runs' HOME, so that the output checks know the local sandbox's secrets.
    return env.home / f"local-{tmp_path.name}"


@pytest.fixture
def local_env(env: Env, local_dir: Path) -> dict[str, str]:
    pytest.importorskip("skimage")
    return env.environ(
        CHANJING_LOCAL_DIR=str(local_dir),
        CHANJING_LOCAL_RENDERER="passthrough",
        CHANJING_OPENAPI_BASE_URL="http://127.0.0.1:9",  # --local must not need it
        CHANJING_OPENAPI_CREDENTIALS_DIR=str(local_dir.with_name(local_dir.name + "-nocreds")),
    )


def test_make_local_on_a_fresh_machine(env: Env, local_env: dict[str, str],
                                       local_dir: Path, tmp_path: Path) -> None:
    import av

    out = tmp_path / "demo.mp4"
    r = env.run("make", "--local", "--text", "你好，欢迎使用蝉镜数字人。", "-o", str(out),
                env=local_env, timeout=180)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # not a terminal: no notes, no renderer noise
    assert r.out.startswith(str(out))
    with av.open(str(out)) as f:
        kinds = {s.type for s in f.streams}
        assert next(f.decode(video=0)) is not None
    assert kinds == {"video", "audio"}

    # Step by step, one process each: the task outlives the process that created it.
    demo = local_dir / "demo" / "demo-face.mp4"
    assert demo.exists()
    r = env.run("create", "--local", "--video", str(demo), "--text", "Hello", env=local_env,
                timeout=120)
    assert r.returncode == 0, r.stderr
    task_id = r.out
    r = env.run("wait", "--local", task_id, "--json", env=local_env, timeout=120)
    assert r.returncode == 0, r.stderr
    out2 = tmp_path / "step.mp4"
    r = env.run("download", "--local", task_id, "-o", str(out2), env=local_env, timeout=120)
    assert r.returncode == 0 and out2.stat().st_size > 0, r.stderr


def test_local_bad_input_fails_before_starting(env: Env, local_env: dict[str, str],
                                               local_dir: Path, tmp_path: Path) -> None:
    r = env.run("make", "--local", "--video", str(tmp_path / "none.mp4"), "--text", "hi",
                "-o", str(tmp_path / "o.mp4"), env=local_env)
    assert r.returncode == 2 and "not found" in r.stderr
    assert not local_dir.exists()
