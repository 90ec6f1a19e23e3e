"""list_common_audio paging and auditions; result downloads with HTTP Range; the OpenAPI doc."""

from __future__ import annotations

from pathlib import Path

import httpx

from chanjing_avatar import _wire

from .api import Api, tts_body
from .conftest import VOICE
from .stub import VOICES


def test_voices_page_and_cap(api: Api) -> None:
    first = api.get(_wire.PATH_LIST_COMMON_AUDIO, page=1, size=100)["data"]
    assert first["page_info"] == {"page": 1, "size": 50, "total_count": 60, "total_page": 2}
    assert len(first["list"]) == 50
    second = api.get(_wire.PATH_LIST_COMMON_AUDIO, page=2, size=50)["data"]["list"]
    assert [v["id"] for v in first["list"] + second] == [v.id for v in VOICES]
    voice = first["list"][0]
    assert set(voice) == {
        "id",
        "grade",
        "name",
        "gender",
        "lang",
        "desc",
        "speed",
        "pitch",
        "audition",
    }
    assert voice["gender"] in ("male", "female")
    sample = httpx.get(voice["audition"])
    assert sample.status_code == 200 and sample.content[:4] == b"RIFF"
    assert httpx.get(f"{api.sb.base_url}/audition/{'f' * 32}.wav").status_code == 404
    assert api.get(_wire.PATH_LIST_COMMON_AUDIO, page=9)["data"]["list"] == []
    for bad in ({"page": "x"}, {"size": 0}, {"page": -1}):
        assert api.get(_wire.PATH_LIST_COMMON_AUDIO, **bad)["code"] == 400


def test_downloads_support_range(api: Api, tiny_video: Path) -> None:
    video = api.ready_file("lip_sync_video", tiny_video)
    data = api.wait_task(api.create(tts_body(video, VOICE)))
    whole = tiny_video.read_bytes()
    full = httpx.get(data["video_url"])
    assert full.status_code == 200 and full.content == whole
    assert full.headers["accept-ranges"] == "bytes"
    part = httpx.get(data["video_url"], headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole)}"
    tail = httpx.get(data["video_url"], headers={"Range": "bytes=-10"})
    assert tail.content == whole[-10:]
    if "X-Amz-Signature" not in data["video_url"]:  # a presigned GET is for GET alone
        assert httpx.head(data["video_url"]).headers["content-length"] == str(len(whole))
    bad = httpx.get(data["video_url"], headers={"Range": f"bytes={len(whole) + 5}-"})
    assert bad.status_code == 416
    for name in ("0" * 32 + ".mp4", f"{data['id']}.exe", "x", "..%2f..%2fsandbox.db"):
        missing = httpx.get(f"{api.sb.base_url}/result/lip-sync/{name}")
        assert missing.status_code == 404 and b"SQLite" not in missing.content


def test_unfinished_task_has_no_download(api: Api, tiny_video: Path) -> None:
    video = api.ready_file("lip_sync_video", tiny_video)
    failed = api.wait_task(api.create(tts_body(video, VOICE, text="FAIL")))
    url = f"{api.sb.base_url}/result/lip-sync/{failed['id']}.mp4"
    assert httpx.get(url).status_code == 404


def test_openapi_describes_every_endpoint(api: Api) -> None:
    doc = httpx.get(api.sb.base_url + "/openapi.json").json()
    paths = doc["paths"]
    for path, method in [
        (_wire.PATH_ACCESS_TOKEN, "post"),
        (_wire.PATH_CREATE_UPLOAD_URL, "get"),
        (_wire.PATH_FILE_DETAIL, "get"),
        (_wire.PATH_LIPSYNC_CREATE, "post"),
        (_wire.PATH_LIPSYNC_DETAIL, "get"),
        (_wire.PATH_LIPSYNC_LIST, "post"),
        (_wire.PATH_LIST_COMMON_AUDIO, "get"),
        ("/upload/{file_id}", "put"),
        ("/result/lip-sync/{name}", "get"),
        ("/audition/{name}", "get"),
    ]:
        assert method in paths[path], path
    create = paths[_wire.PATH_LIPSYNC_CREATE]["post"]["requestBody"]["content"]
    ref = create["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    fields = doc["components"]["schemas"][ref]["properties"]
    assert {"video_file_id", "tts_config", "audio_file_id", "volume", "backway"} <= set(fields)
    params = {p["name"] for p in paths[_wire.PATH_CREATE_UPLOAD_URL]["get"]["parameters"]}
    assert {"service", "name", "access_token"} <= params
    # Statuses and codes are described from the wire's enums, every value with its name.
    schemas = doc["components"]["schemas"]
    for model, field, enum in [("TaskDetail", "status", _wire.TaskStatus),
                               ("FileDetailData", "status", _wire.FileStatus),
                               ("TaskDetailAnswer", "code", _wire.Code)]:
        described = schemas[model]["properties"][field]["description"]
        for member in enum:
            assert f"{member.value} {member.name.lower().replace('_', ' ')}" in described
