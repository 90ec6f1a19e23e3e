"""Fault injection: every kind, by script and by probability, through the admin API."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest

from chanjing_avatar import _wire
from chanjing_avatar.sandbox import Fault, FaultRule
from chanjing_avatar.sandbox.faults import FaultInjector

from .api import Api, tts_body
from .conftest import VOICE, Factory
from .stub import FakeRenderer


def _detail(api: Api) -> httpx.Response:
    return api.http.get(
        _wire.PATH_LIPSYNC_DETAIL, params={"id": "0" * 32}, headers={"access_token": api.token}
    )


def test_no_faults_by_default_and_no_admin_unless_enabled(
    sandbox_factory: Factory, stub: FakeRenderer
) -> None:
    sb = sandbox_factory(
        renderer=stub, admin=False, faults=[FaultRule("*", Fault.parse("50000"))]
    )  # not enabled
    client = Api(sb)
    client.login()
    assert all(_detail(client).json()["code"] == 40000 for _ in range(5))
    assert httpx.get(sb.base_url + "/_sandbox/stats").status_code == 404
    with pytest.raises(RuntimeError):
        sb.admin  # noqa: B018
    client.close()


def test_scripted_sequence_of_codes_and_gateway_errors(api: Api) -> None:
    api.sb.admin.add_fault("lipsync_detail", sequence=["50000", None, "40001", "502"])
    answers = [_detail(api) for _ in range(5)]
    assert answers[0].json()["code"] == 50000
    assert answers[1].json()["code"] == 40000  # let through
    assert answers[2].json()["code"] == 40001
    assert answers[3].status_code == 502 and "<html>" in answers[3].text
    assert answers[3].headers["content-type"].startswith("text/html")
    assert answers[4].json()["code"] == 40000  # script used up
    assert api.sb.admin.count("lipsync_detail", "http_502") == 1
    assert api.sb.admin.count("lipsync_detail", 50000) == 1


def test_probability_and_times(api: Api) -> None:
    api.sb.admin.add_fault("lipsync_list", "51000", probability=1.0, times=3)
    codes = [api.post(_wire.PATH_LIPSYNC_LIST, {})["code"] for _ in range(5)]
    assert codes == [51000] * 3 + [0, 0]
    api.sb.admin.clear_faults()
    api.sb.admin.add_fault("*", "50000", probability=0.5)
    codes = [api.post(_wire.PATH_LIPSYNC_LIST, {})["code"] for _ in range(60)]
    assert 10 < codes.count(50000) < 50 and codes.count(0) == 60 - codes.count(50000)
    api.sb.admin.clear_faults()
    assert api.sb.admin.faults() == []


def test_dropped_connection_mid_response(api: Api) -> None:
    api.sb.admin.add_fault("lipsync_list", "drop", times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        api.http.post(_wire.PATH_LIPSYNC_LIST, json={}, headers={"access_token": api.token})
    assert api.post(_wire.PATH_LIPSYNC_LIST, {})["code"] == 0
    assert api.sb.admin.count("lipsync_list", "dropped") == 1


def test_delay(api: Api) -> None:
    api.sb.admin.add_fault("list_common_audio", "delay:0.5", times=1)
    started = time.monotonic()
    assert api.get(_wire.PATH_LIST_COMMON_AUDIO)["code"] == 0
    assert time.monotonic() - started >= 0.5
    started = time.monotonic()
    api.get(_wire.PATH_LIST_COMMON_AUDIO)
    assert time.monotonic() - started < 0.4


def test_token_invalidation(api: Api) -> None:
    api.sb.admin.add_fault("list_common_audio", "invalidate_token", times=1)
    assert api.get(_wire.PATH_LIST_COMMON_AUDIO)["code"] == 10400
    assert api.get(_wire.PATH_LIST_COMMON_AUDIO)["code"] == 10400  # the token stays dead
    api.login()
    assert api.get(_wire.PATH_LIST_COMMON_AUDIO)["code"] == 0


def test_file_status_98(api: Api, tiny_video: Path) -> None:
    api.sb.admin.add_fault("file_detail", "file_98", times=1)
    file_id = api.upload("lip_sync_video", tiny_video)
    data = api.wait_file(file_id)
    assert data["status"] == 98 and "fault" in data["msg"]
    assert api.wait_file(file_id)["status"] == 98  # stays failed
    api.sb.admin.add_fault("upload", "file_98", times=1)
    assert api.wait_file(api.upload("lip_sync_video", tiny_video))["status"] == 98


def test_task_failure_with_billing_message(api: Api, tiny_video: Path) -> None:
    video = api.ready_file("lip_sync_video", tiny_video)
    api.sb.admin.add_fault("lipsync_create", "task_failure", times=1)
    failed = api.wait_task(api.create(tts_body(video, VOICE)))
    assert failed["status"] == 30 and _wire.is_billing_failure(failed["msg"])
    assert "余额不足" in failed["msg"]
    assert api.wait_task(api.create(tts_body(video, VOICE)))["status"] == 20


def test_upload_and_download_faults(api: Api, tiny_video: Path) -> None:
    info = api.upload_url("lip_sync_video", "v.mp4")
    api.sb.admin.add_fault("upload", "503", times=1)
    put = httpx.put(
        info["sign_url"],
        content=tiny_video.read_bytes(),
        headers={"Content-Type": info["mime_type"]},
    )
    assert put.status_code == 503
    put = httpx.put(
        info["sign_url"],
        content=tiny_video.read_bytes(),
        headers={"Content-Type": info["mime_type"]},
    )
    assert put.status_code == 200
    api.wait_file(info["file_id"])
    done = api.wait_task(api.create(tts_body(info["file_id"], VOICE)))
    api.sb.admin.add_fault("download", "drop", times=1)
    with pytest.raises(httpx.HTTPError):
        httpx.get(done["video_url"])
    assert httpx.get(done["video_url"]).content == tiny_video.read_bytes()


def test_initial_plan_from_config(sandbox_factory: Factory, stub: FakeRenderer) -> None:
    sb = sandbox_factory(
        renderer=stub,
        faults_enabled=True,
        faults=[FaultRule("lipsync_detail", sequence=[Fault.parse("code:40002")])],
    )
    client = Api(sb)
    client.login()
    assert _detail(client).json()["code"] == 40002
    assert _detail(client).json()["code"] == 40000
    client.close()


def test_bad_rules_are_refused(api: Api) -> None:
    with pytest.raises(ValueError):
        api.sb.admin.set_faults([{"endpoint": "x", "fault": {"kind": "explode"}}])
    answer = httpx.post(
        api.sb.base_url + "/_sandbox/faults",
        json={"endpoint": "x"},
        headers={"Authorization": f"Bearer {api.sb.admin_token}"},
    )
    assert answer.status_code == 400


# --- Every matching rule gets its turn -------------------------------------------------------


def _codes(injector: FaultInjector, endpoint: str, n: int) -> list[int | str | None]:
    picks = (injector.pick(endpoint) for _ in range(n))
    return [
        None
        if f is None
        else f.code
        if f.kind == "code"
        else f.status
        if f.kind == "http"
        else f.kind
        for f in picks
    ]


def test_probability_rules_on_one_endpoint_combine_reproducibly() -> None:
    def injector(seed: int) -> FaultInjector:
        return FaultInjector(
            [
                FaultRule("lipsync_list", Fault.parse("50000"), probability=0.5),
                FaultRule("*", Fault.parse("40001"), probability=0.5),
                FaultRule("lipsync_list", Fault.parse("drop"), probability=0.5),
            ],
            seed=seed,
        )

    codes = _codes(injector(7), "lipsync_list", 800)
    # 1/2 first rule, 1/4 second, 1/8 third, 1/8 nothing (a failed roll used to mean nothing).
    assert 330 < codes.count(50000) < 470
    assert 140 < codes.count(40001) < 260
    assert 60 < codes.count("drop") < 140
    assert 60 < codes.count(None) < 140
    assert _codes(injector(7), "lipsync_list", 800) == codes  # the same under the same seed
    assert _codes(injector(8), "lipsync_list", 800) != codes
    other = _codes(injector(7), "lipsync_detail", 400)  # only "*" matches there
    assert set(other) == {40001, None} and 140 < other.count(40001) < 260


def test_sequences_and_times_take_turns_with_later_rules() -> None:
    injector = FaultInjector(
        [
            FaultRule("lipsync_create", sequence=[None, Fault.parse("502"), None]),
            FaultRule("lipsync_create", Fault.parse("40001"), times=2),
            FaultRule("*", sequence=[Fault.parse("drop_after"), Fault.parse("50000")]),
        ],
        seed=1,
    )
    # The script's None passes the request on; a rule after the one that fired is not asked
    # (the "*" script keeps its items until a request reaches it).
    assert _codes(injector, "lipsync_create", 6) == [40001, 502, 40001, "drop_after", 50000, None]
    assert [r["fired"] for r in injector.rules()] == [3, 2, 2]


def test_probability_rules_combine_over_http(api: Api) -> None:
    api.sb.admin.add_fault("lipsync_list", "50000", probability=0.5)
    api.sb.admin.add_fault("*", "40001")
    codes = [api.post(_wire.PATH_LIPSYNC_LIST, {})["code"] for _ in range(40)]
    assert set(codes) == {50000, 40001}  # every request faulted by one rule or the other
    faults = api.sb.admin.stats()["faults"]["lipsync_list"]
    assert faults == {"code": 40}


# --- Code faults on the object store ---------------------------------------------------------


def _xml_code(answer: httpx.Response) -> str:
    assert answer.headers["content-type"].startswith("application/xml"), answer.headers
    return str(ElementTree.fromstring(answer.content).findtext("Code"))


def test_code_faults_on_upload_and_download_are_object_store_errors(
    api: Api, tiny_video: Path
) -> None:
    info = api.upload_url("lip_sync_video", "v.mp4")
    api.sb.admin.add_fault(
        "upload", sequence=["50000", "40001", "code:10400", "code:40000", "code:51000"]
    )

    def put() -> httpx.Response:
        return httpx.put(
            info["sign_url"],
            content=tiny_video.read_bytes(),
            headers={"Content-Type": info["mime_type"]},
        )

    answers = [put() for _ in range(5)]
    assert [(a.status_code, _xml_code(a)) for a in answers] == [
        (500, "InternalError"),
        (503, "SlowDown"),
        (403, "AccessDenied"),
        (400, "InvalidRequest"),
        (500, "InternalError"),
    ]
    assert api.get(_wire.PATH_FILE_DETAIL, id=info["file_id"])["data"]["status"] == 0  # no bytes
    assert put().status_code == 200
    assert api.wait_file(info["file_id"])["status"] == 1
    done = api.wait_task(api.create(tts_body(info["file_id"], VOICE)))

    api.sb.admin.add_fault("download", sequence=["50000", "40001", "50000"])
    got = httpx.get(done["video_url"])
    assert (got.status_code, _xml_code(got)) == (500, "InternalError")
    got = httpx.get(done["preview_url"])
    assert (got.status_code, _xml_code(got)) == (503, "SlowDown")
    assert httpx.head(done["video_url"]).status_code == 500
    assert httpx.get(done["video_url"]).content == tiny_video.read_bytes()
    assert api.sb.admin.count("upload", "http_500") == 2
    assert api.sb.admin.count("download", "http_503") == 1
    assert api.sb.admin.count(None, 50000) == 0  # no envelope anywhere


# --- Faults after the request was handled ----------------------------------------------------


@pytest.fixture
def server_log(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """Warnings and errors the server logged (uvicorn's and ours), tracebacks included."""
    caplog.set_level(logging.WARNING)

    def problems() -> list[str]:
        return [
            f"{r.name}: {r.getMessage()}{' +traceback' if r.exc_info else ''}"
            for r in caplog.records
            if r.levelno >= logging.WARNING
        ]

    return problems


def _wait_count(api: Api, endpoint: str, outcome: str, n: int = 1) -> None:
    deadline = time.monotonic() + 5
    while api.sb.admin.count(endpoint, outcome) < n:
        assert time.monotonic() < deadline, api.sb.admin.stats()
        time.sleep(0.05)


def test_drop_after_creates_the_task_and_answers_nothing(
    api: Api, tiny_video: Path, server_log: Callable[[], list[str]], sandbox_target: str
) -> None:
    video = api.ready_file("lip_sync_video", tiny_video)
    api.sb.admin.add_fault("lipsync_create", "drop_after", times=1)

    def create() -> httpx.Response:
        body, auth = tts_body(video, VOICE), {"access_token": api.token}
        return api.http.post(_wire.PATH_LIPSYNC_CREATE, json=body, headers=auth)

    if sandbox_target == "deployment":  # the balancer answers for the replica that hung up
        assert create().status_code == 502  # (and does not send the POST to another one)
    else:
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            create()
    tasks = api.sb.admin.tasks()
    assert len(tasks) == 1  # the outcome the client did not see: created
    assert api.wait_task(tasks[0]["id"])["status"] == 20
    assert api.post(_wire.PATH_LIPSYNC_LIST, {})["data"]["page_info"]["total_count"] == 1
    assert api.sb.admin.count("lipsync_create", "dropped") == 1
    assert api.sb.admin.stats()["faults"] == {"lipsync_create": {"drop_after": 1}}
    # The same on the object store: the upload is stored, the PUT sees no answer.
    info = api.upload_url("lip_sync_video", "v.mp4")
    api.sb.admin.add_fault("upload", "drop_after", times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.put(
            info["sign_url"],
            content=tiny_video.read_bytes(),
            headers={"Content-Type": info["mime_type"]},
        )
    assert api.wait_file(info["file_id"])["status"] == 1
    assert server_log() == []


def test_drop_mid_answer_is_quiet_and_cuts_bodiless_answers_too(
    api: Api, tiny_video: Path, server_log: Callable[[], list[str]]
) -> None:
    api.sb.admin.add_fault("lipsync_list", "drop", times=1)
    with pytest.raises(httpx.RemoteProtocolError, match=r"complete message body"):
        api.http.post(_wire.PATH_LIPSYNC_LIST, json={}, headers={"access_token": api.token})
    # The signed PUT answers 200 with no body: a drop cannot cut that in half, so it answers
    # nothing rather than a whole 200.
    info = api.upload_url("lip_sync_video", "v.mp4")
    api.sb.admin.add_fault("upload", "drop", times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.put(
            info["sign_url"],
            content=tiny_video.read_bytes(),
            headers={"Content-Type": info["mime_type"]},
        )
    assert api.sb.admin.count("upload", "dropped") == 1
    assert server_log() == []


def test_delay_after_answers_late_what_was_already_done(
    api: Api, tiny_video: Path, server_log: Callable[[], list[str]]
) -> None:
    video = api.ready_file("lip_sync_video", tiny_video)
    api.sb.admin.add_fault("lipsync_create", "delay_after:1.0", times=2)
    impatient = httpx.Client(base_url=api.sb.base_url, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        impatient.post(
            _wire.PATH_LIPSYNC_CREATE,
            json=tts_body(video, VOICE),
            headers={"access_token": api.token},
        )
    impatient.close()
    assert time.monotonic() - started < 0.9
    assert len(api.sb.admin.tasks()) == 1  # created before the answer was due
    _wait_count(api, "lipsync_create", "disconnected")
    # A patient client gets the answer, late.
    started = time.monotonic()
    task_id = api.create(tts_body(video, VOICE))
    assert time.monotonic() - started >= 1.0
    assert {t["id"] for t in api.sb.admin.tasks()} >= {task_id}
    assert len(api.sb.admin.tasks()) == 2
    assert api.sb.admin.count("lipsync_create", 0) == 1
    assert server_log() == []


def test_delay_before_stays_before_and_a_client_gone_meanwhile_is_quiet(
    api: Api, tiny_video: Path, server_log: Callable[[], list[str]]
) -> None:
    video = api.ready_file("lip_sync_video", tiny_video)
    api.sb.admin.add_fault("lipsync_create", "delay:0.8", times=1)
    with httpx.Client(base_url=api.sb.base_url, timeout=0.2) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            impatient.post(
                _wire.PATH_LIPSYNC_CREATE,
                json=tts_body(video, VOICE),
                headers={"access_token": api.token},
            )
        assert api.sb.admin.tasks() == []  # not handled yet
    _wait_count(api, "lipsync_create", "disconnected")
    assert api.sb.admin.tasks() == []  # its client was gone: never handled
    assert server_log() == []


def test_new_fault_texts_parse() -> None:
    assert Fault.parse("delay_after:2.5") == Fault("delay_after", delay_s=2.5)
    assert Fault.parse("delay_after").delay_s == 1.0
    assert Fault.parse("drop_after") == Fault("drop_after")
    assert Fault.parse({"kind": "drop_after"}).kind == "drop_after"
    for bad in ("delay_after:-1", "delay_after:nan", "drop_later"):
        with pytest.raises(ValueError):
            Fault.parse(bad)


def test_cli_fault_option_takes_the_new_names_and_refuses_unknown_ones() -> None:
    import typer

    from chanjing_avatar.cli.sandbox_cmd import _parse_fault

    assert _parse_fault("lipsync_create=drop_after@0.05") == {
        "endpoint": "lipsync_create",
        "fault": "drop_after",
        "probability": 0.05,
    }
    assert _parse_fault("*=delay_after:2")["fault"] == "delay_after:2"
    for bad in ("lipsync_create=drop_later", "upload=drop@2", "upload=50000@x"):
        with pytest.raises(typer.BadParameter):
            _parse_fault(bad)
