"""Failures of a shared deployment, made by real signals to real processes: workers killed or
frozen mid-render, SIGTERM, an API replica killed, the database and the object store away for a
while, every process restarted."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from chanjing_avatar import Client, OutcomeUnknownError, _wire
from chanjing_avatar._wire import Code
from chanjing_avatar.sandbox.admin import SandboxAdmin
from sandbox.receiver import Receiver

from .deploy import DeployedApi, Deployment, RoundRobin, audio_body, wait_for
from .services import S3_SECRET, Postgres, SeaweedS3

pytestmark = pytest.mark.slow
LOST_AFTER = 3.0
WORKER_ARGS = (
    "--lost-after", str(LOST_AFTER), "--render-attempts", "2", "--task-min-duration", "6",
    "--grace", "1",
)  # fmt: skip


@pytest.fixture(scope="module")
def farm(deployment_factory: type[Deployment]) -> Deployment:
    """Two API replicas; each test starts (and kills) its own workers."""
    return deployment_factory.fresh(worker_args=WORKER_ARGS).start(apis=2, workers=0)


@pytest.fixture
def api(farm: Deployment) -> Iterator[DeployedApi]:
    client = DeployedApi(farm)
    client.login()
    yield client
    client.close()
    for proc in farm.workers():
        farm.kill(proc)
        proc.popen.wait(10)


@pytest.fixture(scope="module")
def inputs(farm: Deployment, tiny_video: Path, tiny_audio: Path) -> tuple[str, str]:
    """A ready video and audio (probed by a worker started for them)."""
    client = DeployedApi(farm)
    prober = farm.start_worker()
    try:
        client.login()
        return (
            client.ready_file("lip_sync_video", tiny_video),
            client.ready_file("lip_sync_audio", tiny_audio),
        )
    finally:
        client.close()
        farm.kill(prober)
        prober.popen.wait(10)


def attempt_of(farm: Deployment, task_id: str) -> int:
    with psycopg.connect(farm.store_url) as conn:
        row = conn.execute("SELECT attempt FROM tasks WHERE id=%s", (task_id,)).fetchone()
    assert row is not None
    return int(row[0])


def rendering(api: DeployedApi, task_id: str) -> Any:
    return wait_for(
        lambda: (d := api.detail(task_id))["status"] == 10 and d["progress"] >= 5,
        60,
        "the render to start",
    )


def test_a_killed_worker_s_render_runs_again_on_another(
    farm: Deployment, api: DeployedApi, inputs: tuple[str, str]
) -> None:
    first = farm.start_worker()
    task_id = api.create(audio_body(*inputs))
    rendering(api, task_id)
    farm.kill(first)  # SIGKILL: no goodbye, its heartbeat just stops
    farm.start_worker()
    done = api.wait_task(task_id, timeout=120)
    assert done["status"] == 20, done
    assert attempt_of(farm, task_id) == 2
    assert f"{task_id}-2.mp4" in done["video_url"]  # the second attempt's result
    assert httpx.get(done["video_url"]).status_code == 200


def test_a_task_lost_too_often_ends_30_with_a_clear_msg(
    farm: Deployment, api: DeployedApi, inputs: tuple[str, str]
) -> None:
    task_id = api.create(audio_body(*inputs))
    for attempt in (1, 2):  # --render-attempts 2: both starts are lost
        worker = farm.start_worker()
        wait_for(lambda n=attempt: attempt_of(farm, task_id) == n, 60, f"attempt {attempt}")
        rendering(api, task_id)
        farm.kill(worker)
        worker.popen.wait(10)
    farm.start_worker()
    done = api.wait_task(task_id, timeout=120)
    assert done["status"] == 30
    assert "interrupted 2 times" in done["msg"] and "giving up" in done["msg"]


def test_a_zombie_worker_cannot_publish_again(
    farm: Deployment, api: DeployedApi, inputs: tuple[str, str]
) -> None:
    receiver = Receiver()
    zombie = farm.start_worker()
    secret = "cb-secret-0123456789"
    task_id = api.create(audio_body(*inputs, callback=f"{receiver.url}?token={secret}"))
    rendering(api, task_id)
    farm.kill(zombie, signal.SIGSTOP)  # frozen: it looks lost, then wakes up
    try:
        heir = farm.start_worker()
        done = api.wait_task(task_id, timeout=120)
        assert done["status"] == 20 and f"{task_id}-2.mp4" in done["video_url"]
        receiver.wait(1, timeout=20)
    finally:
        farm.kill(zombie, signal.SIGCONT)
    wait_for(
        lambda: "finished late: not published" in zombie.log.read_text(),
        30,
        "the zombie to finish",
    )
    time.sleep(1.0)
    after = api.detail(task_id)
    assert (after["status"], after["progress"]) == (20, 100)
    assert f"{task_id}-2.mp4" in after["video_url"]
    assert len(receiver.bodies) == 1  # one callback, from the attempt that published
    # Whichever of the two finished its job second says so in one line, without a traceback.
    logs = lambda: [w.log.read_text() for w in (zombie, heir)]  # noqa: E731
    wait_for(lambda: any("not recorded twice" in log for log in logs()), 30, "the late end")
    assert not any("Traceback" in log for log in logs()), logs()
    every_log = "".join(p.log.read_text() for p in farm.procs)
    for leak in (secret, farm.secret_key, S3_SECRET, api.token, "X-Amz-Signature"):
        assert leak not in every_log, leak


def test_sigterm_hands_running_work_back(
    farm: Deployment, api: DeployedApi, inputs: tuple[str, str]
) -> None:
    leaving = farm.start_worker()
    task_id = api.create(audio_body(*inputs))
    rendering(api, task_id)
    farm.kill(leaving, signal.SIGTERM)
    assert leaving.popen.wait(30) == 0  # --grace 1: gone well within the bound
    assert "worker stopped" in leaving.log.read_text()
    assert api.detail(task_id)["status"] in (0, 10)
    farm.start_worker()
    done = api.wait_task(task_id, timeout=120)
    assert done["status"] == 20
    assert attempt_of(farm, task_id) == 1  # handed back: not counted as a lost attempt


def test_an_api_replica_killed_mid_traffic(farm: Deployment, api: DeployedApi) -> None:
    victim = farm.apis()[0]
    answers: list[int] = []
    for n in range(40):
        if n == 10:
            farm.kill(victim)
        try:
            answers.append(api.post(_wire.PATH_LIPSYNC_LIST, {"page": 1})["code"])
        except httpx.TransportError:
            answers.append(-1)  # only a request in flight at the moment of the kill
    assert answers[:10] == [0] * 10
    assert answers.count(-1) <= 1 and answers[-20:] == [0] * 20
    farm.start_api()  # back to two replicas for the next tests


def test_an_api_replica_killed_mid_create_never_pays_twice(
    farm: Deployment, api: DeployedApi, inputs: tuple[str, str], tmp_path: Path
) -> None:
    """The client library through a load balancer: the replica holding a create dies after the
    task was inserted, before its answer left. The client does not send the create again; it
    says the outcome is unknown, with what it needs to find the one task the server has."""
    survivor, victim = farm.apis()[:2]
    # The token request goes to the survivor, the create (the next request) to the victim.
    balancer = RoundRobin([survivor.url, victim.url])
    client = Client(
        farm.app_id, farm.secret_key, base_url=victim.url, credentials_dir=tmp_path,
        allow_http=True, transport=balancer,
    )  # fmt: skip
    admin = SandboxAdmin(victim.url, victim.info["admin_token"])
    try:
        client.auth.token()
        before = task_ids(farm)
        # The victim handles the create (the task and its job commit), then holds the answer.
        admin.add_fault("lipsync_create", "delay_after:120", times=1)
        outcome: list[object] = []

        def create() -> None:
            try:
                outcome.append(client.lipsync.create(video_file_id=inputs[0],
                                                     audio_file_id=inputs[1]))
            except Exception as err:  # judged below
                outcome.append(err)

        creating = threading.Thread(target=create)
        creating.start()
        wait_for(lambda: task_ids(farm) - before, 60, "the task to be inserted")
        assert creating.is_alive()  # held by the victim: its answer has not left
        farm.kill(victim)
        victim.popen.wait(10)
        creating.join(60)
        assert not creating.is_alive()
        assert len(task_ids(farm) - before) == 1  # not created twice
        [result] = outcome
        print(f"the client said: {result!r}")
        after = client.lipsync.list(page_size=100).items  # through the survivor
        new = [t for t in after if t.id not in before]
        assert len(new) == 1, new
        if isinstance(result, OutcomeUnknownError):
            # Enough to recover: the body sent and when; the task is found by both.
            assert result.request["video_file_id"] == inputs[0]
            assert result.request["audio_file_id"] == inputs[1]
            created = new[0].create_time
            assert created is not None and created >= result.sent_at - timedelta(seconds=1)
        else:
            assert result == new[0].id, result
        farm.start_worker()
        assert client.lipsync.wait(new[0].id, timeout=120).status == 20
        assert client.lipsync.create(video_file_id=inputs[0], audio_file_id=inputs[1])
        assert len(task_ids(farm) - before) == 2
        # Every answer came from the survivor (the victim's one never left).
        assert set(balancer.sent) == {survivor.url.removeprefix("http://")}
    finally:
        admin.close()
        client.close()
        farm.start_api()  # back to two replicas for the next tests


def task_ids(farm: Deployment) -> set[str]:
    with psycopg.connect(farm.store_url) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM tasks")}


def test_database_outage_answers_50000_then_everything_resumes(
    farm: Deployment, api: DeployedApi, inputs: tuple[str, str], postgres: Postgres
) -> None:
    farm.start_worker()
    task_id = api.create(audio_body(*inputs))
    rendering(api, task_id)
    postgres.stop()
    try:
        for _ in range(4):  # every replica
            answer = api.http.get(
                _wire.PATH_LIPSYNC_DETAIL,
                params={"id": task_id},
                headers={"access_token": api.token},
            )
            assert answer.status_code == 200
            body = answer.json()
            assert body["code"] == Code.INTERNAL and "Traceback" not in answer.text
        for proc in farm.procs:
            if proc.alive():
                assert httpx.get(f"{proc.url}/readyz", timeout=30).status_code == 503
        time.sleep(2)
    finally:
        postgres.start()
    started = time.monotonic()
    wait_for(
        lambda: api.get(_wire.PATH_LIPSYNC_DETAIL, id=task_id)["code"] == 0, 60, "recovery"
    )
    print(f"API answering again {time.monotonic() - started:.1f}s after the database")
    done = api.wait_task(task_id, timeout=90)
    assert done["status"] == 20, done
    assert api.create(audio_body(*inputs))


def test_object_store_outage_answers_50000_then_resumes(
    farm: Deployment, api: DeployedApi, s3: SeaweedS3, tiny_video: Path
) -> None:
    info = api.upload_url("lip_sync_video", "clip.mp4")
    put = httpx.put(
        info["sign_url"], content=tiny_video.read_bytes(), headers={"Content-Type": "video/mp4"}
    )
    assert put.status_code == 200
    s3.stop()
    try:
        answer = api.get(_wire.PATH_FILE_DETAIL, id=info["file_id"])
        assert answer["code"] == Code.INTERNAL
        assert httpx.get(f"{farm.apis()[0].url}/readyz", timeout=60).status_code == 503
    finally:
        s3.start()
    farm.start_worker()
    assert api.wait_file(info["file_id"], timeout=60)["status"] == 1


def test_every_process_restarted_keeps_all_state(
    farm: Deployment, api: DeployedApi, inputs: tuple[str, str]
) -> None:
    farm.start_worker()
    task_id = api.create(audio_body(*inputs))
    done = api.wait_task(task_id, timeout=120)
    running = farm.apis() + farm.workers()
    for proc in running:
        farm.kill(proc, signal.SIGTERM)
    # Each one stops on its own within its bound (replicas 5 s, workers --grace 1 s + jobs),
    # gracefully (uvicorn exits by re-raising the signal once it has shut down).
    codes = [proc.popen.wait(60) for proc in running]
    assert all(code in (0, -signal.SIGTERM) for code in codes), codes
    for proc in running:
        said = "Finished server process" if proc.role == "api" else "worker stopped"
        assert said in proc.log.read_text()
    assert not farm.apis() and not farm.workers()
    farm.start(apis=2, workers=1)
    again = DeployedApi(farm)
    try:
        again.login()
        after = again.detail(task_id)
        assert after["status"] == 20 and after["duration"] == done["duration"]
        assert httpx.get(after["video_url"]).status_code == 200
        listed = again.post(_wire.PATH_LIPSYNC_LIST, {"page": 1, "page_size": 100})
        assert task_id in [t["id"] for t in listed["data"]["list"]]
    finally:
        again.close()
