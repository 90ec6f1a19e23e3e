"""``model`` 1: the Wav2Lip-family ONNX path, exercised with a tiny randomly initialised network."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("mediapipe")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from chanjing_avatar.render import media  # noqa: E402
from chanjing_avatar.render.base import AudioSpeech, RenderError, RenderJob  # noqa: E402
from chanjing_avatar.render.demo import make_demo_video  # noqa: E402
from chanjing_avatar.render.lipsync.neural import melspectrogram  # noqa: E402
from chanjing_avatar.render.lipsync.renderer import LipsyncRenderer  # noqa: E402

pytestmark = [pytest.mark.render, pytest.mark.filterwarnings("ignore::UserWarning")]
SIZE = 192


def tiny_wav2lip(path: Path, seed: int = 0) -> str:
    """A random network with Wav2Lip's interface; returns its SHA-256."""
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.normal(0, 0.3, (3, 6, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(0, 0.1, (3,)).astype(np.float32), "b")
    k = numpy_helper.from_array(np.array(0.5, np.float32), "k")
    nodes = [
        helper.make_node("Conv", ["face_sequences", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("ReduceMean", ["audio_sequences"], ["m"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Mul", ["m", "k"], ["mk"]),
        helper.make_node("Add", ["c", "mk"], ["s"]),
        helper.make_node("Sigmoid", ["s"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_wav2lip",
        [
            helper.make_tensor_value_info("audio_sequences", TensorProto.FLOAT, ["B", 1, 80, 16]),
            helper.make_tensor_value_info("face_sequences", TensorProto.FLOAT, ["B", 6, 96, 96]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["B", 3, 96, 96])],
        [w, b, k],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("neural")
    video = make_demo_video(d / "face.mp4", seconds=1.0, size=(SIZE, SIZE))
    wav = d / "speech.wav"
    subprocess.run(
        ["espeak-ng", "-v", "en-us", "-w", str(wav), "Open wide, then close."],
        check=True,
        capture_output=True,
    )
    model = d / "tiny.onnx"
    digest = tiny_wav2lip(model)
    (d / "tiny.sha256").write_text(digest)
    return {"video": video, "wav": wav, "model": model, "dir": d}


def _job(inputs: dict[str, Path], tmp: Path, name: str) -> RenderJob:
    return RenderJob(
        task_id=name,
        video_path=inputs["video"],
        speech=AudioSpeech(inputs["wav"]),
        width=SIZE,
        height=SIZE,
        model=1,
        output_video=tmp / f"{name}.mp4",
        output_preview=tmp / f"{name}.jpg",
        work_dir=tmp,
    )


def test_mel_windows_match_wav2lip_conventions() -> None:
    t = np.arange(48_000) / 48_000
    mel = melspectrogram((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 48_000)
    assert mel.shape[0] == 80
    assert abs(mel.shape[1] - 81) <= 1  # 80 mel frames per second
    assert mel.min() >= -4.0 and mel.max() <= 4.0
    assert mel.max() > 0.0  # the tone is loud


def test_model1_runs_user_weights(inputs: dict[str, Path], tmp_path: Path) -> None:
    sha = (inputs["dir"] / "tiny.sha256").read_text()
    r = LipsyncRenderer(neural_model=inputs["model"], neural_sha256=sha)
    job = _job(inputs, tmp_path, "neural")
    res = r.render(job, lambda p: None)
    assert res.message == "success"
    from chanjing_avatar.render.lipsync.check import read_video

    frames, audio, _, _ = read_video(job.output_video)
    assert audio.size > 0 and len(frames) >= 10
    # The random network repaints the lower face: it differs clearly from the classical render.
    classic = LipsyncRenderer()
    job0 = _job(inputs, tmp_path, "classic")
    job0 = dataclasses.replace(job0, model=0)
    classic.render(job0, lambda p: None)
    frames0, *_ = read_video(job0.output_video)
    lower = slice(SIZE // 2, SIZE)
    diff = np.abs(frames[5][lower].astype(int) - frames0[5][lower].astype(int)).mean()
    assert diff > 5.0


def test_model1_refuses_weights_with_another_hash(inputs: dict[str, Path], tmp_path: Path) -> None:
    r = LipsyncRenderer(neural_model=inputs["model"], neural_sha256="0" * 64)
    with pytest.raises(RenderError, match="SHA-256"):
        r.render(_job(inputs, tmp_path, "badhash"), lambda p: None)


def test_model1_without_weights_falls_back_and_says_so(
    inputs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHANJING_LIPSYNC_MODEL1_ONNX", raising=False)
    r = LipsyncRenderer()
    job = _job(inputs, tmp_path, "fallback")
    res = r.render(job, lambda p: None)
    assert "model 0" in res.message
    assert media.probe(job.output_video, "video").has_audio
