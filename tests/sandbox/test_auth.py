"""access_token: issue, expiry, invalidation by a newer token, wrong credentials, bad bodies."""

from __future__ import annotations

import time

import httpx

from chanjing_avatar import _wire
from chanjing_avatar.sandbox import Sandbox

from .api import Api, envelope
from .conftest import Factory
from .stub import FakeRenderer


def test_token_is_a_day_ahead_and_works(api: Api) -> None:
    before = time.time()
    token = api.login()
    body = api.get(_wire.PATH_LIST_COMMON_AUDIO)
    assert body["code"] == 0
    data = api.ok(
        api.http.post(
            _wire.PATH_ACCESS_TOKEN, json={"app_id": api.app_id, "secret_key": api.secret}
        )
    )
    assert abs(data["expire_in"] - (before + 86400)) < 60
    assert data["access_token"] != token


def test_new_token_invalidates_the_previous_one(api: Api) -> None:
    old = api.token
    other = Api(api.sb)
    other.login()  # same app_id: knocks the first token out
    api.token = old
    body = api.get(_wire.PATH_LIST_COMMON_AUDIO)
    assert body["code"] == 10400
    assert "AccessToken已失效" in body["msg"]
    assert other.get(_wire.PATH_LIST_COMMON_AUDIO)["code"] == 0
    other.close()


def test_missing_or_unknown_token_is_10400(api: Api) -> None:
    api.token = ""
    assert api.get(_wire.PATH_LIPSYNC_DETAIL, id="0" * 32)["code"] == 10400
    api.token = "x" * 64
    assert api.post(_wire.PATH_LIPSYNC_LIST, {})["code"] == 10400


def test_wrong_credentials_are_refused(stub_sandbox: Sandbox) -> None:
    url = stub_sandbox.base_url + _wire.PATH_ACCESS_TOKEN
    wrong = envelope(httpx.post(url, json={"app_id": stub_sandbox.app_id, "secret_key": "nope"}))
    assert wrong["code"] == 10401 and wrong["data"] is None
    unknown = envelope(httpx.post(url, json={"app_id": "nobody", "secret_key": "x"}))
    assert unknown["code"] == 10401
    missing = envelope(httpx.post(url, json={"app_id": stub_sandbox.app_id}))
    assert missing["code"] == 40000 and "secret_key" in missing["msg"]
    typed = envelope(httpx.post(url, json={"app_id": 5, "secret_key": []}))
    assert typed["code"] == 40000


def test_malformed_bodies_are_400(stub_sandbox: Sandbox) -> None:
    url = stub_sandbox.base_url + _wire.PATH_ACCESS_TOKEN
    for content in (b"{not json", b"\xff\xfe", b"[1, 2]", b""):
        body = envelope(
            httpx.post(url, content=content, headers={"Content-Type": "application/json"})
        )
        assert body["code"] == 400, (content, body)
    huge = b'{"app_id": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    assert envelope(httpx.post(url, content=huge))["code"] == 400


def test_short_token_ttl_expires(sandbox_factory: Factory, stub: FakeRenderer) -> None:
    sb: Sandbox = sandbox_factory(renderer=stub, token_ttl_s=1.0)
    client = Api(sb)
    client.login()
    assert client.get(_wire.PATH_LIST_COMMON_AUDIO)["code"] == 0
    time.sleep(1.2)
    assert client.get(_wire.PATH_LIST_COMMON_AUDIO)["code"] == 10400
    client.close()


def test_extra_apps_and_admin_apps_have_their_own_tokens(
    sandbox_factory: Factory, stub: FakeRenderer
) -> None:
    sb: Sandbox = sandbox_factory(
        renderer=stub,
        app_id="fixed-app",
        secret_key="fixed-secret",
        extra_apps={"second": "s2"},
    )
    assert (sb.app_id, sb.secret_key) == ("fixed-app", "fixed-secret")
    first, second = Api(sb), Api(sb, "second", "s2")
    first.login()
    second.login()
    app_id, secret = sb.admin.add_app()
    third = Api(sb, app_id, secret)
    third.login()
    for client in (first, second, third):
        assert client.get(_wire.PATH_LIST_COMMON_AUDIO)["code"] == 0
    assert sb.admin.invalidate_tokens("second") == 1
    assert second.get(_wire.PATH_LIST_COMMON_AUDIO)["code"] == 10400
    assert first.get(_wire.PATH_LIST_COMMON_AUDIO)["code"] == 0
    for client in (first, second, third):
        client.close()
