"""Pathological JSON bodies get code 400 with a message saying what is wrong, never a 500, and
the keep-alive connection stays usable."""

from __future__ import annotations

import pytest

from chanjing_avatar import _wire

from .api import Api

_BODIES = {
    "nested arrays": b"[" * 100_000 + b"]" * 100_000,
    "nested objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "5000-digit integer": b'{"page": ' + b"9" * 5000 + b"}",
    "400-digit integer": b'{"page": ' + b"9" * 400 + b', "page_size": 1}',
    "lone surrogate value": b'{"app_id": "\\ud800", "secret_key": "x"}',
    "lone surrogate key": b'{"\\udc00": 1}',
    "float overflow": b'{"page": 1e999}',
    "NaN": b'{"page": NaN}',
    "huge tts speed": b'{"video_file_id": "a", "audio_type": "tts", "tts_config": '
    b'{"text": "hi", "audio_man_id": "x", "speed": ' + b"9" * 400 + b"}}",
}
_PATHS = [_wire.PATH_ACCESS_TOKEN, _wire.PATH_LIPSYNC_CREATE, _wire.PATH_LIPSYNC_LIST]


@pytest.mark.parametrize("path", _PATHS)
def test_pathological_json_is_a_400_envelope_on_a_live_connection(api: Api, path: str) -> None:
    for name, body in _BODIES.items():
        answer = api.http.post(
            path,
            content=body,
            headers={"access_token": api.token, "content-type": "application/json"},
        )
        assert answer.status_code == 200, (name, answer.status_code, answer.text[:200])
        data = answer.json()
        assert data["code"] == _wire.Code.BAD_FORMAT, (name, data)
        assert "body" in data["msg"], (name, data["msg"])
    # The same keep-alive connection still serves a normal request.
    assert api.post(_wire.PATH_LIPSYNC_LIST, {})["code"] == 0
