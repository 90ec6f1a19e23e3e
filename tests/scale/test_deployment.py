"""The API contract against a shared deployment: 2 API replicas + 2 workers as separate processes
on PostgreSQL and S3, every request alternating between the replicas."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chanjing_avatar import _wire
from chanjing_avatar._wire import Code, FileStatus, TaskStatus
from chanjing_avatar.sandbox.admin import SandboxAdmin
from sandbox.api import envelope
from sandbox.receiver import Receiver

from .deploy import DeployedApi, Deployment, audio_body

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def deployed(deployment_factory: type[Deployment]) -> Deployment:
    return deployment_factory.fresh().start(apis=2, workers=2)


@pytest.fixture
def api(deployed: Deployment) -> Iterator[DeployedApi]:
    client = DeployedApi(deployed)
    client.login()
    yield client
    client.close()


def test_health_and_readiness_of_every_process(deployed: Deployment) -> None:
    for proc in deployed.procs:
        assert httpx.get(f"{proc.url}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{proc.url}/readyz").status_code == 200


def test_a_new_token_ends_the_previous_one_on_every_replica(api: DeployedApi) -> None:
    old = api.token
    for _ in range(2):  # both replicas accept it
        body = api.post(_wire.PATH_LIPSYNC_LIST, {"page": 1, "page_size": 10})
        assert body["code"] == 0, body
    api.login()
    assert api.token != old
    for _ in range(2):
        stale = api.http.post(
            _wire.PATH_LIPSYNC_LIST, json={"page": 1}, headers={"access_token": old}
        )
        assert envelope(stale)["code"] == Code.TOKEN_INVALID
        fresh = api.post(_wire.PATH_LIPSYNC_LIST, {"page": 1, "page_size": 10})
        assert fresh["code"] == 0
    assert len(api.replicas_used) == 2


def test_uploads_go_straight_to_the_object_store(
    api: DeployedApi, deployed: Deployment, tiny_video: Path
) -> None:
    info = api.upload_url("lip_sync_video", "clip.mp4")
    assert info["sign_url"].startswith(deployed.s3.endpoint)  # not through an API replica
    assert "X-Amz-Signature" in info["sign_url"]
    data = tiny_video.read_bytes()
    wrong = httpx.put(info["sign_url"], content=data, headers={"Content-Type": "audio/wav"})
    assert wrong.status_code == 403
    put = httpx.put(info["sign_url"], content=data, headers={"Content-Type": info["mime_type"]})
    assert put.status_code == 200
    ready = api.wait_file(info["file_id"])
    assert ready["status"] == 1 and ready["bytes"] == len(data)
    # full_path serves the bytes (a redirect to a presigned GET; Range works).
    part = httpx.get(info["full_path"], headers={"Range": "bytes=0-9"}, follow_redirects=True)
    assert part.status_code == 206 and part.content == data[:10]


def test_task_life_with_result_download_and_one_callback(
    api: DeployedApi, tiny_video: Path, tiny_audio: Path
) -> None:
    receiver = Receiver(fail_first=1)  # the first delivery fails: a worker retries it
    video = api.ready_file("lip_sync_video", tiny_video)
    audio = api.ready_file("lip_sync_audio", tiny_audio)
    task_id = api.create(audio_body(video, audio, callback=receiver.url))
    done = api.wait_task(task_id, timeout=90)
    assert done["status"] == 20 and done["progress"] == 100, done
    video_answer = httpx.get(done["video_url"], headers={"Range": "bytes=0-99"})
    assert video_answer.status_code == 206 and len(video_answer.content) == 100
    bodies = receiver.wait(2, timeout=30)
    assert bodies[1]["data"]["id"] == task_id and bodies[1]["data"]["status"] == 20
    time.sleep(1.5)
    assert len(receiver.bodies) == 2  # delivered once after the failure, never again


def test_list_paging_across_replicas(api: DeployedApi, tiny_video: Path, tiny_audio: Path) -> None:
    video = api.ready_file("lip_sync_video", tiny_video)
    audio = api.ready_file("lip_sync_audio", tiny_audio)
    created = [api.create(audio_body(video, audio)) for _ in range(5)]
    pages: list[str] = []
    for page in (1, 2, 3):
        body = api.post(_wire.PATH_LIPSYNC_LIST, {"page": page, "page_size": 2})
        assert body["code"] == 0
        pages += [t["id"] for t in body["data"]["list"]]
    assert pages[:5] == created[::-1]  # newest first, no gap, no repeat
    for task_id in created:
        assert api.wait_task(task_id, timeout=90)["status"] == 20


def test_rate_limits_count_every_replica_together(deployment_factory: type[Deployment]) -> None:
    # Documented limits (create: 10 per minute per app_id); two replicas, no workers needed.
    limited = deployment_factory.fresh(api_args=("--rate-limit-scale", "1")).start(2, 0)
    api = DeployedApi(limited)
    try:
        api.login()
        codes = [api.post(_wire.PATH_LIPSYNC_CREATE, {})["code"] for _ in range(16)]
        assert codes.count(Code.RATE_LIMITED) == 6, codes
        assert len(api.replicas_used) == 2
    finally:
        api.close()
        limited.stop_all()


def test_a_worker_refuses_a_private_callback_target(
    deployment_factory: type[Deployment], tiny_video: Path, tiny_audio: Path
) -> None:
    """Workers check where a callback goes as ``serve`` does: without
    --allow-private-callbacks a loopback target gets nothing; the task still succeeds."""
    strict = deployment_factory.fresh(worker_private_callbacks=False).start(apis=1, workers=1)
    api = DeployedApi(strict)
    receiver = Receiver()
    try:
        api.login()
        video = api.ready_file("lip_sync_video", tiny_video)
        audio = api.ready_file("lip_sync_audio", tiny_audio)
        task_id = api.create(audio_body(video, audio, callback=receiver.url))
        assert api.wait_task(task_id, timeout=90)["status"] == TaskStatus.SUCCEEDED
        time.sleep(2.0)  # a delivery would have come by now (the allowed one takes < 1 s)
        assert receiver.bodies == []
    finally:
        receiver.close()
        api.close()
        strict.stop_all()


def _mp4_of_size(tiny: bytes, size: int) -> bytes:
    """A valid mp4: the tiny clip followed by a ``free`` box filling it to ``size`` bytes."""
    box = size - len(tiny)
    return tiny + box.to_bytes(4, "big") + b"free" + b"\0" * (box - 8)


def test_an_upload_over_the_limit_is_failed_and_deleted(
    deployment_factory: type[Deployment], tiny_video: Path, tiny_audio: Path
) -> None:
    """The object store takes a presigned PUT of any size (the URL is made before the size is
    known, as the real API's are): the file then fails its check with the embedded sandbox's
    EntityTooLarge message, and its bytes are not kept."""
    limit = 64 * 1024
    option = ("--max-upload-bytes", str(limit))
    strict = deployment_factory.fresh(api_args=option, worker_args=option).start(1, 1)
    api = DeployedApi(strict)
    bucket, _, prefix = strict.blobs_url.removeprefix("s3://").partition("/")
    s3 = strict.s3.client()
    try:
        api.login()
        tiny = tiny_video.read_bytes()
        sizes = {"at": limit, "over": limit + 1}
        infos = {k: api.upload_url("lip_sync_video", f"{k}.mp4") for k in sizes}
        for name, size in sizes.items():
            info = infos[name]
            put = httpx.put(
                info["sign_url"],
                content=_mp4_of_size(tiny, size),
                headers={"Content-Type": info["mime_type"]},
            )
            assert put.status_code == 200, put.text  # nothing refuses it on the way
        assert api.wait_file(infos["at"]["file_id"])["status"] == FileStatus.READY
        over = api.wait_file(infos["over"]["file_id"])
        assert over["status"] == FileStatus.CHECK_FAILED, over
        assert f"Your proposed upload exceeds {limit} bytes" in over["msg"], over
        kept = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/uploads/").get("Contents", [])
        names = [obj["Key"] for obj in kept]
        assert any(infos["at"]["file_id"] in key for key in names)
        assert not any(infos["over"]["file_id"] in key for key in names), names
        gone = httpx.get(infos["over"]["full_path"], follow_redirects=True)
        assert gone.status_code == 404
        audio = api.ready_file("lip_sync_audio", tiny_audio)
        refused = api.post(_wire.PATH_LIPSYNC_CREATE, audio_body(infos["over"]["file_id"], audio))
        assert refused["code"] == Code.PARAM_ERROR and "unusable" in refused["msg"], refused
    finally:
        api.close()
        strict.stop_all()


def test_fault_rules_are_shared_by_the_replicas(deployed: Deployment, api: DeployedApi) -> None:
    """A rule set through one replica fires for requests to any, and its count is global: a
    ``times=1`` fault fires once in all, a sequence gives up its items in order."""
    admin = SandboxAdmin(deployed.apis()[0].url, deployed.admin_token)
    other = SandboxAdmin(deployed.apis()[1].url, deployed.admin_token)
    try:
        admin.add_fault("lipsync_list", "code:40002", times=1)
        admin.add_fault("lipsync_list", sequence=[None, "50000", None, "code:40000"])
        assert other.faults() == admin.faults() and len(admin.faults()) == 2
        codes = [api.post(_wire.PATH_LIPSYNC_LIST, {"page": 1})["code"] for _ in range(8)]
        assert codes == [40002, 0, 50000, 0, 40000, 0, 0, 0], codes
        assert len(api.replicas_used) == 2
        rules = other.faults()
        assert rules[0]["fired"] == 1 and rules[1]["sequence"] == []
        other.clear_faults()
        assert admin.faults() == []
    finally:
        admin.close()
        other.close()
