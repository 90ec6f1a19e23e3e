"""LipSyncRequest: immutable, checked by the wire's own rule book, ids pending until the create."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chanjing_avatar import CreateLipSync, InvalidRequestError, LipSyncRequest
from chanjing_avatar._request import from_create_fields, from_make_fields
from chanjing_avatar._wire import CreateFieldError, validate_create

ID = "f" * 32


def _wire_body(fields: dict[str, Any]) -> dict[str, Any]:
    """The documented create body for a request's fields, written out independently."""
    body: dict[str, Any] = {"video_file_id": fields["video"]}
    for key in ("screen_width", "screen_height", "backway", "drive_mode", "model", "volume"):
        if key in fields:
            body[key] = fields[key]
    if fields.get("callback"):  # an empty callback is no callback
        body["callback"] = fields["callback"]
    if "audio" in fields:
        body.update(audio_type="audio", audio_file_id=fields["audio"])
    else:
        text = fields.get("text")
        body.update(audio_type="tts", tts_config={
            "text": [text] if isinstance(text, str) else text,
            "audio_man_id": fields.get("voice_id"),
            "speed": fields.get("speed", 1.0),
            "pitch": fields.get("pitch", 1.0),
        })
    return body


def _maybe(values: list[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(dataclasses.MISSING), st.sampled_from(values))


FIELDS = st.fixed_dictionaries({
    "video": st.sampled_from([ID, "", "  ", "x" * 129, "vid-1"]),
    "text": _maybe(["你好", "", " ", "x" * 3999, "x" * 4000, ["a", "b"], []]),
    "voice_id": _maybe(["a" * 32, "", "  "]),
    "audio": _maybe([ID, "", "x" * 129]),
    "speed": _maybe([1.0, 0.5, 2, 2.01, 0.49, True, float("nan")]),
    "pitch": _maybe([1, 0.7, 3, -1]),
    "screen_width": _maybe([64, 4096, 63, 4097, 1080.0]),
    "screen_height": _maybe([1920, 10, 5000]),
    "backway": _maybe([1, 2, 0, 3, True]),
    "drive_mode": _maybe(["", "random", "x"]),
    "model": _maybe([0, 1, 2]),
    "volume": _maybe([1, 100, 0, 101, 50]),
    "callback": _maybe(["https://example.com/cb", "ftp://x", "", "http://" + "a" * 2048]),
}).map(lambda d: {k: v for k, v in d.items() if v is not dataclasses.MISSING})


@settings(max_examples=300, deadline=None)
@given(FIELDS)
def test_request_checks_exactly_what_the_wire_checks(fields: dict[str, Any]) -> None:
    """Every request the rule book refuses is refused on the same field, and the others'
    bodies carry what the rule book fills in."""
    has_text, has_audio = "text" in fields, "audio" in fields
    voice_pending = {"tts_config.audio_man_id"} if fields.get("voice_id") is None else set()
    try:
        request = LipSyncRequest(**fields)  # a voice may still be chosen later
    except InvalidRequestError as e:
        if has_text == has_audio:
            assert e.field == "text"
            return
        _assert_same_refusal(e, fields, voice_pending)
        return
    assert has_text != has_audio
    validate_create(_wire_body(fields), pending=voice_pending)
    try:
        body = request.wire_body()  # now every id must be there
    except InvalidRequestError as e:
        _assert_same_refusal(e, fields, ())
        return
    checked = validate_create(_wire_body(fields))
    assert body == CreateLipSync.model_validate(checked).to_wire()
    for key in ("video_file_id", "screen_width", "screen_height", "backway", "drive_mode",
                "model", "volume", "audio_type"):
        assert body[key] == checked[key]


def _assert_same_refusal(error: InvalidRequestError, fields: dict[str, Any],
                         pending: Collection[str]) -> None:
    with pytest.raises(CreateFieldError) as wire:
        validate_create(_wire_body(fields), pending=pending)
    assert error.field == ("voice_id" if wire.value.field == "tts_config.audio_man_id"
                           else wire.value.field)


def test_request_is_immutable_and_hashable() -> None:
    request = LipSyncRequest(video=ID, text=["你", "好"], voice_id="v" * 32)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.volume = 1  # type: ignore[misc]
    assert request.text == ("你", "好")  # a list given is kept as a tuple
    assert hash(request) == hash(dataclasses.replace(request))
    assert dataclasses.replace(request, volume=50).volume == 50
    with pytest.raises(InvalidRequestError) as info:
        dataclasses.replace(request, volume=0)  # replace checks again
    assert info.value.field == "volume"


def test_local_files_and_voice_may_be_pending(tmp_path: Path) -> None:
    video = tmp_path / "me.mp4"
    request = LipSyncRequest(video=video, text="hi")  # no upload, no voice yet: still valid
    assert request.video_path == video and request.video_file_id is None
    with pytest.raises(InvalidRequestError) as info:
        request.check_before_upload()
    assert info.value.field == "voice_id"
    chosen = dataclasses.replace(request, voice_id="v" * 32)
    chosen.check_before_upload()
    with pytest.raises(InvalidRequestError) as info:
        chosen.wire_body()  # the video is not uploaded yet
    assert info.value.field == "video"
    body = chosen.with_file_ids(video_file_id=ID).wire_body()
    assert body["video_file_id"] == ID
    # A size the file cannot give leaves the API's default; a bad value is still refused.
    assert (body["screen_width"], body["screen_height"]) == (1080, 1920)
    with pytest.raises(InvalidRequestError) as info:
        LipSyncRequest(video=video, text="hi", screen_width=10)
    assert info.value.field == "screen_width"
    audio = LipSyncRequest(video=ID, audio=tmp_path / "a.wav")
    assert audio.with_file_ids(audio_file_id="a" * 32).wire_body()["audio_file_id"] == "a" * 32


def test_a_file_name_is_not_taken_for_a_file_id() -> None:
    for name in ("me.mp4", "dir/clip", "voice.WAV"):
        with pytest.raises(InvalidRequestError, match="Path") as info:
            LipSyncRequest(video=name, text="hi", voice_id="v" * 32)
        assert info.value.field == "video"
    with pytest.raises(InvalidRequestError) as info:
        LipSyncRequest(video=ID, audio="speech.mp3")
    assert info.value.field == "audio"


def test_keyword_forms_build_the_same_request(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not a video")
    options: dict[str, Any] = {"text": "hi", "voice_id": "v" * 32, "volume": 40, "backway": 2}
    assert from_create_fields(None, {"video_file_id": ID, **options}) == LipSyncRequest(
        video=ID, **options)
    # make: a str naming an existing file is that file; otherwise a file id.
    assert from_make_fields(None, {"video": str(clip), **options}) == LipSyncRequest(
        video=clip, **options)
    assert from_make_fields(None, {"video": ID, **options}).video == ID
    with pytest.raises(InvalidRequestError, match="no such file"):
        from_make_fields(None, {"video": str(tmp_path / "gone.mp4"), **options})
    request = LipSyncRequest(video=ID, **options)
    assert from_create_fields(request, {}) is request
    with pytest.raises(TypeError, match="not both"):
        from_create_fields(request, {"volume": 40})
    with pytest.raises(TypeError, match="video="):
        from_make_fields(None, {"text": "hi"})
