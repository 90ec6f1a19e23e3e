import json

import pytest

from chanjing_avatar.batch.manifest import ManifestError, load_manifest

VOICE = "a" * 32


@pytest.fixture
def media(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"video-a")
    (tmp_path / "copy.mp4").write_bytes(b"video-a")
    (tmp_path / "b.mp4").write_bytes(b"video-b")
    (tmp_path / "s.wav").write_bytes(b"RIFF....")
    return tmp_path


def test_csv_rows_and_dedup_by_content(media):
    m = media / "m.csv"
    m.write_text(
        "id,video,text,voice,audio,model,speed\n"
        f"r1,a.mp4,hello,{VOICE},,1,1.5\n"
        f"r2,copy.mp4,world,{VOICE},,,\n"
        "r3,b.mp4,,,s.wav,,\n"
        f"r4,{'f' * 32},hi,{VOICE},,,\n"
    )
    man = load_manifest(m)
    assert [r.id for r in man.rows] == ["r1", "r2", "r3", "r4"]
    r1, r2, r3, r4 = man.rows
    assert r1.options == {"model": 1, "speed": 1.5}
    assert r1.video.key == r2.video.key  # identical content, one upload
    assert r3.audio is not None and r3.request.text is None
    assert r4.video.file_id == "f" * 32 and r4.video.path is None
    assert len(man.media()) == 3  # a (=copy), b, s.wav


def test_jsonl(media):
    m = media / "m.jsonl"
    m.write_text(
        json.dumps({"id": "x", "video": "a.mp4", "text": ["a", "b"], "voice_id": VOICE,
                    "screen_width": 720, "screen_height": 1280}) + "\n\n"
    )
    (row,) = load_manifest(m).rows
    assert row.request.text == "ab" and row.options["screen_width"] == 720


def test_all_errors_reported_at_once_with_lines(media):
    m = media / "m.csv"
    m.write_text(
        "id,video,text,voice,audio,model,speed,volume,modle\n"
        f"ok,a.mp4,hi,{VOICE},,,,,\n"
        f"ok,a.mp4,hi,{VOICE},,,,,\n"  # duplicate id
        f"bad id!,missing.mp4,hi,{VOICE},,,,,\n"
        f"r4,a.mp4,,,,,,,\n"  # no speech
        f"r5,a.mp4,hi,{VOICE},s.wav,,,,\n"  # both
        f"r6,a.mp4,hi,{VOICE},,7,9,0,\n"  # model, speed, volume
        f"r7,a.mp4,{'x' * 4000},{VOICE},,,,,\n"
        f"r8,a.avi,hi,{VOICE},,,,,x\n"
    )
    with pytest.raises(ManifestError) as ei:
        load_manifest(m)
    text = str(ei.value)
    lines = {p.line for p in ei.value.problems}
    assert lines >= {3, 4, 5, 6, 7, 8, 9}
    assert 2 not in lines
    for needle in ("duplicate id", "file not found", "speech", "either", "model", "text",
                   "unknown column", "extension"):
        assert needle in text, needle


def test_jsonl_bad_lines(media):
    m = media / "m.jsonl"
    m.write_text('{"id": "a"\n[1]\n')
    with pytest.raises(ManifestError) as ei:
        load_manifest(m)
    assert [p.line for p in ei.value.problems] == [1, 2]


def test_empty_manifest(media):
    m = media / "m.csv"
    m.write_text("id,video,text,voice\n")
    with pytest.raises(ManifestError):
        load_manifest(m)
