"""media: probe, frame order, scaling, encoding."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from chanjing_avatar.render import media

from .conftest import decode_frames, frame_index, make_index_video, make_wav


def test_probe_video(long_index_video: Path) -> None:
    info = media.probe(long_index_video, "video")
    assert info.kind == "video" and not info.is_image
    assert (info.width, info.height) == (64, 64)
    assert info.fps == 25
    assert info.duration_s == pytest.approx(2.0, abs=0.05)
    assert info.has_video and info.has_audio


def test_probe_audio(speech_wav: Path, long_index_video: Path) -> None:
    info = media.probe(speech_wav, "audio")
    assert info.kind == "audio" and info.sample_rate == 22050 and info.channels == 1
    assert info.duration_s == pytest.approx(1.0, abs=0.01)
    # A video with a sound track is usable as audio too.
    assert media.probe(long_index_video, "audio").has_video


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_probe_still_image(tmp_path: Path, suffix: str) -> None:
    from skimage import data, io

    path = tmp_path / f"face{suffix}"
    io.imsave(path, data.astronaut()[:100, :80])
    info = media.probe(path, "video")
    assert info.kind == "image" and info.is_image
    assert (info.width, info.height, info.duration_s) == (80, 100, 0.0)
    # Without an extension the bytes still say what it is.
    bare = tmp_path / "upload"
    bare.write_bytes(path.read_bytes())
    assert media.probe(bare, "video").is_image


@pytest.mark.parametrize(
    ("content", "expect", "words"),
    [
        (b"", "video", "not a media file"),
        (b"hello, this is just text\n" * 20, "video", "not a media file"),
        (bytes(range(256)) * 40, "video", "not a media file"),
        (b"hello, this is just text\n" * 20, "audio", "not a media file"),
    ],
)
def test_probe_rejects_garbage(tmp_path: Path, content: bytes, expect: str, words: str) -> None:
    path = tmp_path / ("clip.mp4" if expect == "video" else "clip.mp3")
    path.write_bytes(content)
    with pytest.raises(media.MediaError, match=words) as err:
        media.probe(path, expect)  # type: ignore[arg-type]
    assert err.value.reason == str(err.value)


def test_probe_audio_given_as_video(speech_wav: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "speech.mp4"
    renamed.write_bytes(speech_wav.read_bytes())
    for path in (speech_wav, renamed):
        with pytest.raises(media.MediaError, match="only has audio"):
            media.probe(path, "video")


def test_probe_video_given_as_audio(index_video: Path) -> None:
    with pytest.raises(media.MediaError, match="no audio stream"):
        media.probe(index_video, "audio")


def test_probe_truncated_video(long_index_video: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(long_index_video.read_bytes()[:600])
    with pytest.raises(media.MediaError):
        media.probe(cut, "video")


def test_probe_missing_file(tmp_path: Path) -> None:
    with pytest.raises(media.MediaError, match="not found"):
        media.probe(tmp_path / "nope.mp4", "video")


def _flatten(runs: list[tuple[int, int]]) -> list[int]:
    out: list[int] = []
    for a, b in runs:
        out.extend(range(a, b + 1) if b >= a else range(a, b - 1, -1))
    return out


def test_frame_order() -> None:
    assert _flatten(list(media.frame_order(4, 10, 1, 0))) == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    assert _flatten(list(media.frame_order(4, 10, 2, 0))) == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]
    assert _flatten(list(media.frame_order(4, 6, 2, 2))) == [2, 3, 2, 1, 0, 1]
    assert _flatten(list(media.frame_order(4, 3, 1, 3))) == [3, 0, 1]
    assert _flatten(list(media.frame_order(1, 3, 2, 0))) == [0, 0, 0]
    assert _flatten(list(media.frame_order(2, 5, 2, 0))) == [0, 1, 0, 1, 0]
    assert _flatten(list(media.frame_order(5, 3, 1, 0))) == [0, 1, 2]  # trimmed


@pytest.mark.parametrize("cache_bytes", [None, 64 * 64 * 3 * 3])  # whole cache / 3-frame chunks
def test_frame_source_orders(index_video: Path, cache_bytes: int | None) -> None:
    src = media.FrameSource(index_video, 64, 64, cache_bytes=cache_bytes)
    assert src.frame_count == 10 and src.fps == 25
    loop = [frame_index(f) for f in src.frames(25, backway=1)]
    assert loop == [*range(10), *range(10), *range(5)]
    bounce = [frame_index(f) for f in src.frames(25, backway=2)]
    assert bounce == [*range(10), *range(8, -1, -1), *range(1, 7)]
    from_7 = [frame_index(f) for f in src.frames(6, backway=2, start=7)]
    assert from_7 == [7, 8, 9, 8, 7, 6]
    from_7_loop = [frame_index(f) for f in src.frames(5, backway=1, start=7)]
    assert from_7_loop == [7, 8, 9, 0, 1]


def test_frame_source_random_start(index_video: Path) -> None:
    src = media.FrameSource(index_video, 64, 64)
    assert src.start_frame("", 123) == 0
    starts = {src.start_frame("random", seed) for seed in range(20)}
    assert src.start_frame("random", 5) == src.start_frame("random", 5)
    assert 0 not in starts and len(starts) > 1
    assert all(0 < s < 10 for s in starts)


def test_cover_and_centre_crop(tmp_path: Path) -> None:
    # 200×100: red | green (middle 100 px) | blue. Covering 100×100 keeps the green middle.
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, :50] = (255, 0, 0)
    img[:, 50:150] = (0, 255, 0)
    img[:, 150:] = (0, 0, 255)
    path = tmp_path / "wide.png"
    from skimage import io

    io.imsave(path, img)
    frame = next(media.FrameSource(path, 100, 100).frames(1))
    assert frame.shape == (100, 100, 3)
    inner = frame[:, 3:-3].astype(int)
    assert inner[..., 1].min() > 200 and inner[..., 0].max() < 40 and inner[..., 2].max() < 40
    # Portrait output from a landscape source: scaled up to the height, middle kept.
    tall = next(media.FrameSource(path, 40, 120).frames(1))
    assert tall.shape == (120, 40, 3) and tall[..., 1].min() > 200
    assert media.cover_size(200, 100, 100, 100) == (200, 100)
    assert media.cover_size(200, 100, 40, 120) == (240, 120)


def test_still_image_frames(tmp_path: Path) -> None:
    from skimage import data, io

    path = tmp_path / "face.jpg"
    io.imsave(path, data.astronaut())
    src = media.FrameSource(path, 64, 48)
    frames = list(src.frames(7, backway=2, start=src.start_frame("random", 1)))
    assert len(frames) == 7 and all(f.shape == (48, 64, 3) for f in frames)
    assert all(np.array_equal(frames[0], f) for f in frames)


def test_writer_pads_audio_to_video(tmp_path: Path) -> None:
    out = tmp_path / "w.mp4"
    with media.Mp4Writer(out, 32, 32, Fraction(25)) as writer:
        for i in range(25):
            writer.write_frame(np.full((32, 32, 3), i, np.uint8))
        writer.write_audio(np.full(4800, 0.3, np.float32))  # 0.1 s of audio for 1 s of video
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name == "h264" and a.codec_context.name == "aac"
        assert float(v.duration * v.time_base) == pytest.approx(1.0, abs=0.04)
        assert float(a.duration * a.time_base) == pytest.approx(1.0, abs=0.04)
    assert len(decode_frames(out)) == 25
    samples = media.load_audio(out)
    assert samples.size == pytest.approx(48000, abs=1100)


def test_writer_rejects_odd_size(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        media.Mp4Writer(tmp_path / "x.mp4", 33, 32, Fraction(25))
    assert media.even(33) == 34 and media.even(32) == 32


def test_audio_resample_and_volume(tmp_path: Path) -> None:
    wav = make_wav(tmp_path / "t.wav", 0.5, amp=0.5, rate=16000)
    assert media.audio_sample_count(wav) == 24000
    full = media.load_audio(wav)
    half = media.load_audio(wav, volume=0.5)
    assert full.dtype == np.float32 and full.size == 24000
    ratio = float(np.sqrt(np.mean(half**2)) / np.sqrt(np.mean(full**2)))
    assert ratio == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("suffix", [".wav", ".mp3", ".m4a"])
def test_write_audio(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"a{suffix}"
    media.write_audio(out, np.full(22050, 0.2, np.float32), 22050)
    info = media.probe(out, "audio")
    assert info.duration_s == pytest.approx(1.0, abs=0.1)


def test_write_jpeg(tmp_path: Path) -> None:
    out = tmp_path / "p.jpg"
    img = np.zeros((33, 47, 3), np.uint8)
    img[:, :, 0] = 200
    media.write_jpeg(out, img)
    assert out.read_bytes()[:2] == b"\xff\xd8"
    info = media.probe(out, "video")
    assert (info.width, info.height) == (47, 33)
    back = decode_frames(out)[0]
    assert abs(int(back[..., 0].mean()) - 200) < 6


@pytest.mark.parametrize(("gop", "chunk"), [(None, 4), (5, 3), (5, 7), (4, 4)])
def test_backward_chunks_are_exact(tmp_path: Path, gop: int | None, chunk: int) -> None:
    path = make_index_video(tmp_path / "i.mp4", 40, size=(32, 32), gop=gop)
    src = media.FrameSource(path, 32, 32, cache_bytes=32 * 32 * 3 * chunk)
    assert not src._cache_all
    back = [frame_index(f) for f in src.frames(80, backway=2, start=37)]
    assert back == [37, 38, 39, *range(38, -1, -1), *range(1, 39)]


@pytest.mark.parametrize(("name", "codec", "fmt"),
                         [("x.webm", "libvpx-vp9", "webm"), ("x.mov", "libx264", "mov")])
def test_other_containers(tmp_path: Path, name: str, codec: str, fmt: str) -> None:
    path = tmp_path / name
    with av.open(str(path), "w", format=fmt) as out:
        stream: Any = out.add_stream(codec, rate=25)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        stream.gop_size = 6
        for i in range(30):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 5, np.uint8),
                                               format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    assert media.probe(path, "video").duration_s == pytest.approx(1.2, abs=0.05)
    src = media.FrameSource(path, 32, 32, cache_bytes=32 * 32 * 3 * 4)
    got = [frame_index(f) for f in src.frames(45, backway=2, start=25)]
    assert got == [*range(25, 30), *range(28, -1, -1), *range(1, 12)]
