"""The sans-I/O core: flows fed with scripted replies, no network."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chanjing_avatar import (
    AuthenticationError,
    ContentRejectedError,
    FileUnavailableError,
    InvalidRequestError,
    LipSyncRequest,
    OutcomeUnknownError,
    QuotaExhaustedError,
    RateLimitError,
    ServerError,
    TaskFailedError,
    TransportError,
    WaitTimeoutError,
)
from chanjing_avatar._core import Context, Reply, Send, _calls, _files, _tasks
from chanjing_avatar._core._decisions import (
    AUTH_ATTEMPTS,
    PollPolicy,
    RetryPolicy,
    backoff,
    poll_delay,
)
from chanjing_avatar._core._envelope import decode
from chanjing_avatar._core._ratelimit import SlidingWindow
from chanjing_avatar._core._redact import redact_url
from chanjing_avatar._credentials import StoredToken
from chanjing_avatar._wire import (
    PATH_ACCESS_TOKEN,
    PATH_FILE_DETAIL,
    PATH_LIPSYNC_DETAIL,
    RateLimit,
)

from .fakes import FakeClock, MemoryStore, Recorder, envelope, http, neterr


def script(*replies: Reply) -> Iterator[Reply]:
    return iter(replies)


def runner(clock: FakeClock, *replies: Reply) -> Recorder:
    it = script(*replies)
    return Recorder(clock, lambda _s: next(it))


# --- envelope ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (400, InvalidRequestError),
        (40000, InvalidRequestError),
        (10400, AuthenticationError),
        (10401, AuthenticationError),
        (40001, RateLimitError),
        (40002, QuotaExhaustedError),
        (50011, ContentRejectedError),
        (50000, ServerError),
        (51000, ServerError),
        (12345, ServerError),
    ],
)
def test_codes_map_to_classes(code: int, cls: type[Exception]) -> None:
    with pytest.raises(cls) as info:
        decode(envelope(None, code, "screen_width: must be an integer"), "/open/v1/x")
    err = info.value
    assert err.code == code and err.trace_id == "t" * 32 and err.endpoint == "/open/v1/x"
    if isinstance(err, InvalidRequestError):
        assert err.field == "screen_width"


def test_html_gateway_is_transport_error() -> None:
    with pytest.raises(TransportError) as info:
        decode(http(502), "/open/v1/x")
    assert info.value.http_status == 502 and "HTML" in info.value.msg


def test_bad_keys_are_authentication_error() -> None:
    with pytest.raises(AuthenticationError):
        decode(envelope(None, 40000, "参数错误"), PATH_ACCESS_TOKEN)


# --- decisions -----------------------------------------------------------------------------------

@given(st.integers(0, 20), st.booleans(), st.integers(0, 2**32))
def test_backoff_is_capped_and_jittered(attempt: int, limited: bool, seed: int) -> None:
    policy = RetryPolicy()
    base = policy.rate_limited_base_s if limited else policy.base_s
    ceiling = min(policy.cap_s, base * 2.0**attempt)
    delay = backoff(policy, attempt, random.Random(seed), rate_limited=limited)
    assert ceiling / 2 <= delay <= ceiling


@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=60))
def test_sliding_window_never_exceeds_count(arrivals: list[float]) -> None:
    window = SlidingWindow(RateLimit("b", 3, 1.0))
    slots = []
    now = 0.0
    for gap in sorted(arrivals):
        now = max(now, gap)
        at = window.reserve(now)
        assert at >= now
        slots.append(at)
    slots.sort()
    for i in range(len(slots) - 3):
        assert slots[i + 3] - slots[i] >= 1.0 - 1e-9


def test_poll_delay_grows_to_about_30s() -> None:
    rng = random.Random(1)
    policy = PollPolicy()
    delays = [poll_delay(policy, n, rng) for n in range(1, 12)]
    assert 1.7 <= delays[0] <= 2.3
    assert all(27 <= d <= 33 for d in delays[6:])


def test_redact_url_hides_signatures() -> None:
    url = "https://b.test/up/x.mp4?Expires=1&OSSAccessKeyId=AK&Signature=abc%2F&id=5"
    shown = redact_url(url)
    assert "abc" not in shown and "AK" not in shown and "id=5" in shown


# --- token ---------------------------------------------------------------------------------------

def test_fresh_token_needs_no_request(ctx: Context, clock: FakeClock) -> None:
    rec = runner(clock)
    assert rec.run(_calls.token(ctx)) == "tok-1"
    assert rec.sends == [] and rec.locks == 0


def test_expiring_token_is_refreshed_under_lock(
    ctx: Context, store: MemoryStore, clock: FakeClock
) -> None:
    store.stored = StoredToken("old", 1.7e9 + 100)  # inside the 300 s margin
    rec = runner(clock, envelope({"access_token": "new", "expire_in": 1.7e9 + 86400}))
    assert rec.run(_calls.token(ctx)) == "new"
    assert rec.locks == 1 and rec.paths() == [PATH_ACCESS_TOKEN]
    assert store.stored == StoredToken("new", 1.7e9 + 86400)
    assert rec.sends[0].json == {"app_id": "app", "secret_key": "s3cret-key-value"}


def test_refresh_skipped_when_another_process_did_it(
    ctx: Context, store: MemoryStore, clock: FakeClock
) -> None:
    store.stored = StoredToken("old", 1.7e9 + 100)
    rec = runner(clock)
    flow = _calls.token(ctx)
    # Between the fast check and the lock, someone else refreshes.
    effect = next(flow)
    store.replace("theirs", 1.7e9 + 86400)
    rec_value = rec.run(effect.flow)  # type: ignore[union-attr]
    assert rec_value == "theirs" and rec.sends == []


def test_10400_uses_changed_shared_token_without_refresh(
    ctx: Context, store: MemoryStore, clock: FakeClock
) -> None:
    def answer(send: Send) -> Reply:
        if send.headers.get("access_token") == "tok-1":
            store.replace("tok-2", 1.7e9 + 86400)  # another process rotated it
            return envelope(None, 10400, "AccessToken已失效")
        return envelope({"id": "t1", "status": 10})

    rec = Recorder(clock, answer)
    task = rec.run(_tasks.get(ctx, "t1"))
    assert task.id == "t1"
    assert rec.paths() == [PATH_LIPSYNC_DETAIL, PATH_LIPSYNC_DETAIL]
    assert store.writes == 1  # only the other process's write


def test_10400_refreshes_once_and_retries_once(
    ctx: Context, store: MemoryStore, clock: FakeClock
) -> None:
    rec = runner(
        clock,
        envelope(None, 10400),
        envelope({"access_token": "tok-2", "expire_in": 1.7e9 + 86400}),
        envelope({"id": "t1", "status": 20}),
    )
    assert rec.run(_tasks.get(ctx, "t1")).succeeded
    assert rec.paths() == [PATH_LIPSYNC_DETAIL, PATH_ACCESS_TOKEN, PATH_LIPSYNC_DETAIL]


def test_10400_while_the_token_keeps_changing_is_retried_a_bounded_number_of_times(
    ctx: Context, store: MemoryStore, clock: FakeClock
) -> None:
    # Someone else replaces every token we get (the vendor's scripts, other processes): each
    # refused token is a new one, so the call tries again, but not forever.
    numbers = iter(range(2, 100))

    def answer(send: Send) -> Reply:
        if send.url.endswith(PATH_ACCESS_TOKEN):
            return envelope({"access_token": f"tok-{next(numbers)}", "expire_in": 1.7e9 + 86400})
        return envelope(None, 10400)

    rec = Recorder(clock, answer)
    with pytest.raises(AuthenticationError):
        rec.run(_tasks.get(ctx, "t1"))
    assert rec.paths().count(PATH_LIPSYNC_DETAIL) == AUTH_ATTEMPTS
    assert rec.paths().count(PATH_ACCESS_TOKEN) == AUTH_ATTEMPTS - 1


# --- retries -------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "fault",
    [envelope(None, 50000), envelope(None, 40001), http(502), http(524), neterr()],
)
def test_idempotent_calls_retry_then_succeed(ctx: Context, clock: FakeClock, fault: Reply) -> None:
    rec = runner(clock, fault, fault, envelope({"id": "t1", "status": 20}))
    assert rec.run(_tasks.get(ctx, "t1")).succeeded
    assert len(rec.sends) == 3 and len(rec.sleeps) == 2


def test_retries_give_up_after_max(ctx: Context, clock: FakeClock) -> None:
    rec = Recorder(clock, lambda _s: envelope(None, 50000))
    with pytest.raises(ServerError):
        rec.run(_tasks.get(ctx, "t1"))
    assert len(rec.sends) == 1 + 4


def test_parameter_errors_are_not_retried(ctx: Context, clock: FakeClock) -> None:
    rec = Recorder(clock, lambda _s: envelope(None, 40000, "id: no such task"))
    with pytest.raises(InvalidRequestError):
        rec.run(_tasks.get(ctx, "t1"))
    assert len(rec.sends) == 1


BODY = LipSyncRequest(video="f" * 32, text="你好", voice_id="v1").wire_body()


def test_create_sends_text_as_array() -> None:
    assert BODY["tts_config"]["text"] == ["你好"]
    assert BODY["audio_type"] == "tts"


def test_create_local_validation_names_field() -> None:
    with pytest.raises(InvalidRequestError) as info:
        LipSyncRequest(video="f" * 32, text="hi", voice_id="v", speed=3)
    assert info.value.field == "tts_config.speed"
    with pytest.raises(InvalidRequestError) as info:
        LipSyncRequest(video="f" * 32, text="hi", voice_id=None).wire_body()
    assert info.value.field == "voice_id"


@pytest.mark.parametrize(
    "fault", [envelope(None, 40001), neterr(httpx.ConnectError), neterr(httpx.ConnectTimeout)]
)
def test_create_retried_only_when_provably_unprocessed(
    ctx: Context, clock: FakeClock, fault: Reply
) -> None:
    rec = runner(clock, fault, envelope("a" * 32))
    assert rec.run(_tasks.create(ctx, BODY)) == "a" * 32
    assert len(rec.sends) == 2


@pytest.mark.parametrize(
    "fault",
    [neterr(httpx.ReadTimeout), neterr(httpx.RemoteProtocolError), http(502),
     envelope(None, 50000)],
)
def test_create_outcome_unknown(ctx: Context, clock: FakeClock, fault: Reply) -> None:
    rec = runner(clock, fault)
    with pytest.raises(OutcomeUnknownError) as info:
        rec.run(_tasks.create(ctx, BODY))
    assert len(rec.sends) == 1
    assert info.value.request == BODY and info.value.sent_at.timestamp() == 1.7e9


def test_create_definite_refusal_is_raised(ctx: Context, clock: FakeClock) -> None:
    rec = runner(clock, envelope(None, 40002, "生产时长已达上限"))
    with pytest.raises(QuotaExhaustedError):
        rec.run(_tasks.create(ctx, BODY))


# --- files ---------------------------------------------------------------------------------------

def _address(n: int) -> Reply:
    return envelope({"sign_url": f"https://up.test/{n}?Signature=s{n}", "mime_type": "video/mp4",
                     "file_id": f"file{n}", "full_path": "", "key": ""})


def test_upload_403_gets_new_address_and_rewinds(
    ctx: Context, clock: FakeClock, tmp_path: Path
) -> None:
    src = tmp_path / "a.mp4"
    src.write_bytes(b"x" * 1000)
    rec = runner(clock, _address(1), http(403, b"<Code>AccessDenied</Code>", "application/xml"),
                 _address(2), neterr(httpx.WriteError), http(200, b""))
    file_id = rec.run(_files.put(ctx, _files.upload_source(src, None), "lip_sync_video", None))
    assert file_id == "file2"
    puts = [s for s in rec.sends if s.method == "PUT"]
    assert [p.url.split("?")[0] for p in puts] == ["https://up.test/1", "https://up.test/2",
                                                   "https://up.test/2"]
    assert all(p.body is not None and p.body.start == 0 and p.body.length == 1000 for p in puts)
    assert all(p.headers["Content-Type"] == "video/mp4" for p in puts)
    assert all("access_token" not in p.headers for p in puts)


def test_upload_address_renewed_before_expiry(
    ctx: Context, clock: FakeClock, tmp_path: Path
) -> None:
    src = tmp_path / "a.mp4"
    src.write_bytes(b"x" * 10)
    replies = iter([_address(1), neterr(), _address(2), http(200, b"")])

    def answer(send: Send) -> Reply:
        if send.method == "PUT":
            clock.now += 14 * 60 + 30  # a slow PUT that ends near expiry
        return next(replies)

    rec = Recorder(clock, answer)
    assert rec.run(_files.put(ctx, _files.upload_source(src, None), "lip_sync_video", None)) \
        == "file2"


def test_upload_validates_before_any_request(ctx: Context, clock: FakeClock,
                                             tmp_path: Path) -> None:
    rec = runner(clock)
    (tmp_path / "a.txt").write_bytes(b"x")
    (tmp_path / "e.mp4").write_bytes(b"")
    for path, field in [(tmp_path / "a.txt", "name"), (tmp_path / "e.mp4", "path"),
                        (tmp_path / "missing.mp4", "path")]:
        with pytest.raises(InvalidRequestError) as info:
            rec.run(_files.upload(ctx, path, "lip_sync_video", name=None, on_progress=None,
                                  wait=False, timeout=1))
        assert info.value.field == field
    assert rec.sends == []


@pytest.mark.parametrize(("status", "cls"), [(98, ContentRejectedError),
                                             (99, FileUnavailableError),
                                             (100, FileUnavailableError)])
def test_wait_ready_failures(ctx: Context, clock: FakeClock, status: int,
                             cls: type[Exception]) -> None:
    rec = runner(clock, envelope({"id": "f", "status": 0}),
                 envelope({"id": "f", "status": status, "msg": "bad"}))
    with pytest.raises(cls):
        rec.run(_files.wait_ready(ctx, "f", 60))


@pytest.mark.parametrize("ready", [1, 2])
def test_wait_ready_accepts_1_and_2(ctx: Context, clock: FakeClock, ready: int) -> None:
    rec = runner(clock, envelope({"id": "f", "status": 0}), envelope({"id": "f", "status": ready}))
    assert rec.run(_files.wait_ready(ctx, "f", 60)).is_ready


def test_wait_ready_deadline(ctx: Context, clock: FakeClock) -> None:
    rec = Recorder(clock, lambda _s: envelope({"id": "f", "status": 0}))
    with pytest.raises(WaitTimeoutError) as info:
        rec.run(_files.wait_ready(ctx, "f", 30))
    assert info.value.last is not None and clock.now - 1000 <= 30 + 1e-6
    assert all(s.endpoint == PATH_FILE_DETAIL for s in rec.sends)


# --- wait ----------------------------------------------------------------------------------------

def _linear_task(clock: FakeClock, start: float, duration: float,
                 done_at: float = 1.0) -> Recorder:
    def answer(send: Send) -> Reply:
        elapsed = clock.now - start
        if elapsed >= duration * done_at:
            return envelope({"id": "t", "status": 20, "progress": 100})
        return envelope({"id": "t", "status": 10, "progress": int(100 * elapsed / duration)})

    return Recorder(clock, answer)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize(("done_at", "max_polls", "max_late_s"), [(0.99, 25, 10.0),
                                                                 (1.0, 28, 30.0)])
def test_wait_ten_minute_task_budget(ctx: Context, clock: FakeClock, seed: int, done_at: float,
                                     max_polls: int, max_late_s: float) -> None:
    """Linear progress; the task ends as it reaches 99 % (like the sandbox) or 100 %."""
    ctx.rng = random.Random(seed)
    start = clock.now
    rec = _linear_task(clock, start, 600, done_at)
    task = rec.run(_tasks.wait(ctx, "t", timeout=1800, on_progress=None))
    assert task.succeeded
    assert len(rec.sends) <= max_polls
    assert clock.now - start - 600 * done_at <= max_late_s


def test_wait_failed_and_billing(ctx: Context, clock: FakeClock) -> None:
    rec = runner(clock, envelope({"id": "t", "status": 30, "msg": "余额不足"}))
    with pytest.raises(TaskFailedError) as info:
        rec.run(_tasks.wait(ctx, "t", timeout=60, on_progress=None))
    assert info.value.is_billing and info.value.task.failed


def test_wait_timeout_carries_last_task(ctx: Context, clock: FakeClock) -> None:
    rec = Recorder(clock, lambda _s: envelope({"id": "t", "status": 0}))
    with pytest.raises(WaitTimeoutError) as info:
        rec.run(_tasks.wait(ctx, "t", timeout=100, on_progress=None))
    assert info.value.last is not None and info.value.last.id == "t"
    assert clock.now - 1000 <= 100 + 1e-6


def test_unknown_status_is_not_finished(ctx: Context, clock: FakeClock) -> None:
    rec = runner(clock, envelope({"id": "t", "status": 15}), envelope({"id": "t", "status": 20}))
    assert rec.run(_tasks.wait(ctx, "t", timeout=60, on_progress=None)).succeeded
    assert len(rec.sends) == 2


def test_wait_many_returns_failures_too(ctx: Context, clock: FakeClock) -> None:
    def answer(send: Send) -> Reply:
        tid = send.params["id"]  # type: ignore[index]
        if clock.now - 1000 < 10:
            return envelope({"id": tid, "status": 10, "progress": 50})
        return envelope({"id": tid, "status": 20 if tid == "a" else 30, "msg": "x"})

    rec = Recorder(clock, answer)
    out = rec.run(_tasks.wait_many(ctx, ["a", "b"], timeout=100, on_progress=None))
    assert out["a"].succeeded and out["b"].failed


def test_wait_many_timeout_keeps_what_finished(ctx: Context, clock: FakeClock) -> None:
    def answer(send: Send) -> Reply:
        tid = send.params["id"]  # type: ignore[index]
        return envelope({"id": tid, "status": 20 if tid == "a" else 10, "progress": 5})

    rec = Recorder(clock, answer)
    with pytest.raises(WaitTimeoutError) as info:
        rec.run(_tasks.wait_many(ctx, ["a", "b"], timeout=60, on_progress=None))
    assert set(info.value.done) == {"a"} and set(info.value.pending) == {"b"}
    assert clock.now - 1000 <= 60 + 1e-6


def test_probe_sizes(tmp_path: Path) -> None:
    from chanjing_avatar._core._probe import video_size
    from media_maker import make_video

    pytest.importorskip("av", reason="needs PyAV (the sandbox extra) to make a test video")
    assert video_size(make_video(tmp_path / "p.mp4", 176, 320)) == (176, 320)
    (tmp_path / "junk.mp4").write_bytes(b"\0" * 100)
    assert video_size(tmp_path / "junk.mp4") is None


@given(st.integers(100, 599), st.one_of(st.binary(max_size=200), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=10,
).map(lambda v: __import__("json").dumps(v).encode())))
def test_decode_raises_only_chanjing_errors(status: int, body: bytes) -> None:
    from chanjing_avatar import ChanjingError

    reply = Reply(status, httpx.Headers(), body, None, 0.0)
    with contextlib.suppress(ChanjingError):  # anything else fails the test
        decode(reply, "/open/v1/x")
