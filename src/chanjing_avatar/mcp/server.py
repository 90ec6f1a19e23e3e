"""The MCP server: lip-sync tools and resources over the async client.

Every tool returns structured content (its output schema) and one short line of text. Every
failure is a tool error (``isError``) carrying one line that says what to fix; no traceback, no
secret (secret key, token, URL signature) reaches a result, an error or the log.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError, UnexpectedToolError
from mcp.types import CallToolResult, InputRequiredResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field, ValidationError

from chanjing_avatar import (
    ContentRejectedError,
    FileUnavailableError,
    InvalidRequestError,
    LipSyncRequest,
    Task,
    TaskFailedError,
    WaitTimeoutError,
)
from chanjing_avatar._version import __version__
from chanjing_avatar._wire import SERVICE_EXTENSIONS, file_extension
from chanjing_avatar.batch.journal import JournalLostError

from ._keys import KEY_RE, CreateRequest, KeyConflictError, KeyedCreates, NotSettledError
from ._keys import media_ref as _media_ref
from ._schemas import (
    CreateOut,
    DownloadOut,
    MakeOut,
    TaskListOut,
    TaskOut,
    UploadOut,
    VoiceOut,
    VoicesOut,
    WaitOut,
)

if TYPE_CHECKING:
    from chanjing_avatar import AsyncClient, Voice

__all__ = ["ServerOptions", "build_server"]

Service = Literal["lip_sync_video", "lip_sync_audio"]
VIDEO_SERVICE: Service = "lip_sync_video"
AUDIO_SERVICE: Service = "lip_sync_audio"
MAX_WAIT_S = 120.0


class InputError(ValueError):
    """A bad argument found before any request; the message says what to fix."""


# A request's field -> the tool argument that sets it, and what to do about it.
_TOOL_ARGS = {"tts_config.text": "text", "tts_config.speed": "speed", "tts_config.pitch": "pitch",
              "tts_config.audio_man_id": "voice_id"}
_TOOL_HINTS = {"voice_id": "take one from list_voices", "text": "give what the person should say"}


def _tool_error(e: InvalidRequestError, *, both: bool) -> str:
    """LipSyncRequest's refusal in the tool's terms: the argument to fix, and how."""
    field = e.field or ""
    if field == "text" and not e.msg.startswith("text"):  # text and audio: one or the other
        return ("give either text + voice_id or audio, not both" if both
                else "give text and voice_id (from list_voices), or audio")
    arg = _TOOL_ARGS.get(field, field)
    reason = re.sub(r"^[\w.]+: ", "", e.msg)  # the wire's field name, replaced by the argument
    hint = _TOOL_HINTS.get(arg) if "empty" in reason or "required" in reason else None
    return f"{arg}: {reason}" + (f"; {hint}" if hint else "")


def _plain_message(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@dataclass
class ServerOptions:
    """How the server reaches the API and where it keeps its state.

    ``client_factory`` makes the client on first use (so a server with bad or missing
    credentials still starts and answers each call with what to fix). ``describe`` turns an
    exception into the one-line message the command line would print. ``settle`` is how long
    after sending the server may still act on a create whose answer was lost (see
    ``batch.reconcile``).
    """

    client_factory: Callable[[], AsyncClient]
    state_dir: Path
    download_dir: Path
    describe: Callable[[BaseException], str] = _plain_message
    settle: float = 60.0
    # Names the account's journal with the app id; default: the base URL (an embedded sandbox,
    # whose port changes with each start, passes something stable instead).
    account: str | None = None
    clock_offset: tuple[float, float] = (-10.0, 10.0)
    max_wait: float = MAX_WAIT_S


# Any URL's query (where signatures and tokens live) is shown masked.
_URL_QUERY = re.compile(r"(https?://[^\s?#\"'<>]+)\?[^\s\"'<>]*")


class _Runtime:
    """The client, the key ledger and the scrubber, made once per server."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self._client: AsyncClient | None = None
        self._keys: KeyedCreates | None = None
        self._secrets: set[str] = set()

    def client(self) -> AsyncClient:
        if self._client is None:
            client = self.options.client_factory()
            self._client = client
        self._secrets.update(self._client.secrets())
        return self._client

    def keys(self) -> KeyedCreates:
        client = self.client()
        if self._keys is None:
            self._keys = KeyedCreates(
                self.options.state_dir,
                f"{self.options.account or client.base_url}\n{client.app_id}",
                settle=self.options.settle,
                clock_offset=self.options.clock_offset,
            )
        return self._keys

    def scrub(self, text: str) -> str:
        if self._client is not None:
            self._secrets.update(self._client.secrets())
        for value in self._secrets:
            if len(value) >= 6:
                text = text.replace(value, "***")
        return _URL_QUERY.sub(r"\1?***", text)

    def error_text(self, exc: BaseException) -> str:
        if isinstance(exc, UnexpectedToolError | ToolError) and exc.__cause__ is not None:
            cause = exc.__cause__
            if isinstance(cause, ValidationError):
                text = "bad arguments: " + "; ".join(
                    f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg']}"
                    for err in cause.errors()
                )
            elif isinstance(cause, InputError | KeyConflictError | NotSettledError):
                text = str(cause)
            elif isinstance(cause, JournalLostError):
                text = (f"{cause}; no create is sent without it: put it back, or restart the "
                        "server (its idempotency keys are then forgotten)")
            elif isinstance(cause, UnexpectedToolError | ToolError):
                return self.error_text(cause)
            else:
                # The API names its own endpoint; here the voices come from list_voices.
                text = self.options.describe(cause).replace("list_common_audio", "list_voices")
        else:
            text = str(exc)
        return self.scrub(" ".join(text.split()))

    def resource_error(self, exc: BaseException) -> str:
        return self.scrub(" ".join(self.options.describe(exc).split()))

    def path(self, value: str) -> Path:
        return Path(value).expanduser()

    async def aclose(self) -> None:
        if self._keys is not None:
            self._keys.close()
        if self._client is not None:
            await self._client.aclose()


class _Server(MCPServer[Any]):
    """Turns every failure into a one-line tool error, without the SDK's traceback logging."""

    runtime: _Runtime

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as e:
            text = self.runtime.error_text(e)
        return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


def _result(runtime: _Runtime, model: BaseModel, text: str) -> CallToolResult:
    data = json.loads(runtime.scrub(model.model_dump_json()))
    return CallToolResult(
        content=[TextContent(type="text", text=runtime.scrub(text))], structured_content=data
    )


class _Progress:
    """Progress notifications, in order and strictly increasing (as the protocol asks), also
    from the client's synchronous callbacks."""

    def __init__(self, ctx: Context[Any, Any]) -> None:
        self._ctx = ctx
        self._last_value = -1.0
        self._last: asyncio.Future[None] | None = None

    def __call__(self, progress: float, message: str) -> None:
        self._last = asyncio.ensure_future(self._send(self._last, progress, message))

    async def _send(
        self, before: asyncio.Future[None] | None, progress: float, message: str
    ) -> None:
        if before is not None:
            await asyncio.gather(before, return_exceptions=True)
        value = max(round(progress, 2), round(self._last_value + 0.01, 2))
        self._last_value = value
        await self._ctx.report_progress(value, 100, message)

    async def stage(self, progress: float, message: str) -> None:
        self(progress, message)
        await self.flush()

    async def flush(self) -> None:
        if self._last is not None:
            await asyncio.gather(self._last, return_exceptions=True)


def _task_line(task: Task) -> str:
    out = TaskOut.of(task)
    if out.state == "generating":
        return f"task {task.id}: generating, {task.progress} %"
    if out.state == "failed":
        return f"task {task.id}: failed: {task.msg or 'no reason given'}"
    if out.state == "succeeded":
        return f"task {task.id}: done ({out.duration_s or 0:g} s of video)"
    return f"task {task.id}: {out.state}"


# -- argument types (their constraints become the input schema) ------------------------------------

TaskId = Annotated[str, Field(min_length=1, max_length=128, description="A lip-sync task id.")]
VideoArg = Annotated[str, Field(
    min_length=1,
    description="The driving video: a local path (.mp4 .mov .webm) or a file id from upload_media.",
)]
TextArg = Annotated[str | None, Field(
    description="What the person says (shorter than 4000 characters); needs voice_id.",
)]
VoiceArg = Annotated[str | None, Field(description="A voice id from list_voices; needs text.")]
AudioArg = Annotated[str | None, Field(
    description="Instead of text + voice_id: a local audio file (.mp3 .m4a .wav) or its file id.",
)]
WidthArg = Annotated[int | None, Field(
    ge=64, le=4096, description="Output width in pixels (default: the video's own).")]
HeightArg = Annotated[int | None, Field(
    ge=64, le=4096, description="Output height in pixels (default: the video's own).")]
ModelArg = Annotated[Literal[0, 1], Field(description="0 basic, 1 high quality.")]
BackwayArg = Annotated[Literal[1, 2], Field(
    description="When the speech outlasts the video: 1 loop forward, 2 play back and forth.")]
DriveArg = Annotated[Literal["", "random"], Field(
    description='"" follows the video in order, "random" picks frames at random.')]
SpeedArg = Annotated[float, Field(ge=0.5, le=2, description="Speech speed (text only).")]
PitchArg = Annotated[float, Field(ge=0.5, le=2, description="Speech pitch (text only).")]
VolumeArg = Annotated[int, Field(ge=1, le=100, description="Speech volume.")]
CallbackArg = Annotated[str | None, Field(
    max_length=2048, description="An https URL the API calls when the task ends (optional).")]
KeyArg = Annotated[str | None, Field(
    description=(
        "Makes the paid create safe to retry: a call that repeats a key returns the first "
        "call's task and never creates again (also after a lost answer or a restart). Letters, "
        "digits, . _ - (at most 100). Generated and returned when absent."
    ),
)]


def build_server(options: ServerOptions) -> MCPServer[Any]:
    """The MCP server with every tool and resource; run it with ``.run(...)``."""
    runtime = _Runtime(options)
    app = _Server(
        "chanjing-avatar",
        title="Chanjing lip sync",
        version=__version__,
        instructions=(
            "Make lip-synced videos: a video of a person plus text (spoken by a voice from "
            "list_voices) or an audio file. make_video does the whole job; or upload_media, "
            "create_lipsync (pass an idempotency_key and reuse it on every retry: it is paid), "
            "wait_lipsync (call again while it says the task is still running), "
            "download_result. Paths are on the machine running this server."
        ),
        log_level="WARNING",
    )
    app.runtime = runtime
    max_wait = options.max_wait

    def client() -> AsyncClient:
        return runtime.client()

    # -- voices -----------------------------------------------------------------------------------

    @app.tool(
        title="List voices",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True,
                                    open_world_hint=True),
    )
    async def list_voices(
        lang: Annotated[str | None, Field(
            description='Language prefix, e.g. "zh", "en", "zh-CN".')] = None,
        gender: Annotated[Literal["male", "female"] | None, Field(
            description="Only voices of this gender.")] = None,
        name: Annotated[str | None, Field(
            description="Only voices whose name contains this.")] = None,
        page: Annotated[int, Field(ge=1, description="Page number, from 1.")] = 1,
        page_size: Annotated[int, Field(ge=1, le=100)] = 20,
    ) -> Annotated[CallToolResult, VoicesOut]:
        """The public voices for text-driven videos; pass a voice's id as voice_id."""
        voices = await client().voices.list(lang=lang, gender=gender, name=name)
        start = (page - 1) * page_size
        shown = voices[start:start + page_size]
        out = VoicesOut(voices=[VoiceOut.of(v) for v in shown], page=page, page_size=page_size,
                        total=len(voices), has_more=start + page_size < len(voices))
        text = f"{len(shown)} of {len(voices)} voices" + (
            f" (more on page {page + 1})" if out.has_more else "")
        if shown:
            text += ": " + ", ".join(f"{v.id} {v.name} ({v.lang}, {v.gender})" for v in shown[:5])
        return _result(runtime, out, text)

    # -- uploads ----------------------------------------------------------------------------------

    def local_file(value: str, what: str, service: str) -> Path:
        path = runtime.path(value)
        if not path.exists():
            raise InputError(f"{what} not found: {path}")
        if not path.is_file():
            raise InputError(f"{what} is not a file: {path}")
        accepted = SERVICE_EXTENSIONS[service]
        ext = file_extension(path.name)
        if ext not in accepted:
            shown = "." + ext if ext else "(none)"
            raise InputError(
                f"{what} {path}: extension {shown} is not accepted for service {service}; "
                f"use {', '.join('.' + e for e in accepted)}"
            )
        if path.stat().st_size == 0:
            raise InputError(f"{what} is empty: {path}")
        return path

    @app.tool(
        title="Upload a video or audio file",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False,
                                    idempotent_hint=False, open_world_hint=True),
    )
    async def upload_media(
        path: Annotated[str, Field(min_length=1, description="A local file.")],
        service: Annotated[Service | None, Field(description=(
            "lip_sync_video for the driving video (.mp4 .mov .webm), lip_sync_audio for speech "
            "(.mp3 .m4a .wav); default: from the file's extension."))] = None,
    ) -> Annotated[CallToolResult, UploadOut]:
        """Upload a local file and wait until the API can use it; returns its file id."""
        if service is None:
            ext = file_extension(path)
            service = AUDIO_SERVICE if ext in SERVICE_EXTENSIONS[AUDIO_SERVICE] else VIDEO_SERVICE
        local = local_file(path, "file", service)
        try:
            detail = await client().files.upload(local, service)
        except ContentRejectedError as e:
            raise InputError(f"{e.msg} (status 98): the API refused this file; use another "
                             "one") from None
        except FileUnavailableError as e:
            raise InputError(f"{e.msg} (status 99/100): upload the file again") from None
        out = UploadOut(file_id=detail.id, service=service, bytes=detail.bytes)
        return _result(runtime, out, f"uploaded {local.name}: file id {detail.id} (ready)")

    # -- creates ----------------------------------------------------------------------------------

    def request_of(
        video: str, text: str | None, voice_id: str | None, audio: str | None,
        options: dict[str, Any],
    ) -> CreateRequest:
        """The create's parameters, checked (by LipSyncRequest's rules) before anything is
        uploaded or paid."""
        options = {k: v for k, v in options.items() if v is not None}
        try:
            LipSyncRequest(video=where(video), text=text, voice_id=voice_id,
                           audio=where(audio) if audio is not None else None,
                           **options).check_before_upload()
        except InvalidRequestError as e:
            raise InputError(_tool_error(e, both=text is not None and audio is not None)) from None
        if audio is not None:
            # The create ignores speech settings with an audio; a tool call that sets them
            # has mistaken the mode.
            for name in ("speed", "pitch"):
                if options.get(name, 1.0) != 1.0:
                    raise InputError(f"{name} only applies to text + voice_id")
            options = {k: v for k, v in options.items() if k not in ("speed", "pitch")}
        video_ref = media(video, "video", VIDEO_SERVICE)
        audio_ref = media(audio, "audio", AUDIO_SERVICE) if audio is not None else None
        return CreateRequest(
            video=video_ref, text=text, voice_id=voice_id.strip() if voice_id else None,
            audio=audio_ref, options=options,
        )

    def looks_local(value: str) -> bool:
        return "/" in value or "\\" in value or file_extension(value) != ""

    def where(value: str) -> str | Path:
        """A local file (a path, or a name that exists here) or else a file id."""
        path = runtime.path(value)
        return path if looks_local(value) or path.exists() else value

    def media(value: str, what: str, service: Service) -> Any:
        if isinstance(where(value), Path):
            local_file(value, what, service)
        return _media_ref(str(runtime.path(value)) if looks_local(value) else value, service)

    def key_of(value: str | None) -> str:
        if value is None:
            return uuid.uuid4().hex
        if not KEY_RE.match(value):
            raise InputError(
                "idempotency_key: use 1-100 letters, digits, '.', '_' or '-', starting with a "
                "letter or digit"
            )
        return value

    async def create(
        key: str, request: CreateRequest, progress: _Progress | None, budget: float
    ) -> tuple[str, bool]:
        stage_at = {"upload_video": 1.0, "upload_audio": 5.0, "create": 9.0}

        async def on_stage(stage: str) -> None:
            if progress is not None:
                await progress.stage(stage_at.get(stage, 0.0), stage.replace("_", " "))

        made = await runtime.keys().create(client(), key, request, budget=budget,
                                           on_stage=on_stage)
        return made.task_id, made.replayed

    @app.tool(
        title="Create a lip-sync task (paid)",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False,
                                    idempotent_hint=False, open_world_hint=True),
    )
    async def create_lipsync(
        video: VideoArg,
        text: TextArg = None,
        voice_id: VoiceArg = None,
        audio: AudioArg = None,
        screen_width: WidthArg = None,
        screen_height: HeightArg = None,
        model: ModelArg = 0,
        backway: BackwayArg = 1,
        drive_mode: DriveArg = "",
        speed: SpeedArg = 1.0,
        pitch: PitchArg = 1.0,
        volume: VolumeArg = 100,
        callback: CallbackArg = None,
        idempotency_key: KeyArg = None,
    ) -> Annotated[CallToolResult, CreateOut]:
        """Start a lip-sync video (paid): uploads local files, creates the task, returns its id
        at once. Then call wait_lipsync and download_result. Retry with the same
        idempotency_key, never without it: the key guarantees one task per key."""
        key = key_of(idempotency_key)
        request = request_of(video, text, voice_id, audio, dict(
            screen_width=screen_width, screen_height=screen_height, model=model,
            backway=backway, drive_mode=drive_mode, speed=speed, pitch=pitch, volume=volume,
            callback=callback))
        task_id, replayed = await create(key, request, None, max_wait)
        out = CreateOut(task_id=task_id, idempotency_key=key, replayed=replayed)
        how = "already created by an earlier call with this key" if replayed else "created"
        return _result(runtime, out, f"task {task_id} {how} (idempotency_key {key}); next: "
                       "wait_lipsync")

    # -- tasks ------------------------------------------------------------------------------------

    @app.tool(
        title="Get a lip-sync task",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True,
                                    open_world_hint=True),
    )
    async def get_lipsync(task_id: TaskId) -> Annotated[CallToolResult, TaskOut]:
        """A task's current state, progress and (when failed) reason."""
        task = await client().lipsync.get(task_id)
        return _result(runtime, TaskOut.of(task), _task_line(task))

    @app.tool(
        title="List lip-sync tasks",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True,
                                    open_world_hint=True),
    )
    async def list_lipsyncs(
        page: Annotated[int, Field(ge=1, description="Page number, from 1 (newest first).")] = 1,
        page_size: Annotated[int, Field(ge=1, le=100)] = 10,
    ) -> Annotated[CallToolResult, TaskListOut]:
        """The account's tasks, newest first, one page at a time."""
        result = await client().lipsync.list(page, page_size)
        info = result.page_info
        out = TaskListOut(tasks=[TaskOut.of(t) for t in result.items], page=page,
                          page_size=page_size, total=info.total_count,
                          total_pages=info.total_page)
        return _result(runtime, out, f"page {page} of {info.total_page}: {len(result.items)} "
                       f"of {info.total_count} tasks")

    async def wait_for(
        task_id: str, timeout: float, progress: _Progress, span: tuple[float, float]
    ) -> tuple[Task, bool]:
        lo, hi = span

        def on_task(task: Task) -> None:
            state = TaskOut.of(task).state
            progress(lo + (hi - lo) * task.progress / 100, f"{state} {task.progress} %")

        try:
            task = await client().lipsync.wait(task_id, timeout=timeout, on_progress=on_task)
            finished = True
        except TaskFailedError as e:
            task, finished = e.task, True
        except WaitTimeoutError as e:
            if not isinstance(e.last, Task):
                raise
            task, finished = e.last, False
        await progress.flush()
        return task, finished

    @app.tool(
        title="Wait for a lip-sync task",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True,
                                    open_world_hint=True),
    )
    async def wait_lipsync(
        task_id: TaskId,
        ctx: Context[Any, Any],
        timeout: Annotated[float, Field(gt=0, le=MAX_WAIT_S, description=(
            "Longest this call waits, in seconds; the task keeps running after it."))] = max_wait,
    ) -> Annotated[CallToolResult, WaitOut]:
        """Wait (at most `timeout` s, with progress notifications) until the task ends. If it
        says the task is still running, call wait_lipsync again; nothing is lost."""
        started = time.monotonic()
        task, finished = await wait_for(task_id, min(timeout, max_wait), _Progress(ctx),
                                        (0.0, 100.0))
        out = WaitOut(task=TaskOut.of(task), finished=finished,
                      waited_s=round(time.monotonic() - started, 1))
        text = _task_line(task)
        if not finished:
            text += "; still running: call wait_lipsync again"
        elif out.task.state == "succeeded":
            text += "; next: download_result"
        return _result(runtime, out, text)

    def output_of(task_id: str, output: str | None) -> Path:
        if output is None:
            return options.download_dir / f"{task_id}.mp4"
        return runtime.path(output)

    @app.tool(
        title="Download a finished video",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True,
                                    idempotent_hint=True, open_world_hint=True),
    )
    async def download_result(
        task_id: TaskId,
        output: Annotated[str | None, Field(description=(
            "Where to save: a .mp4 path or a folder (default: <task id>.mp4 in the server's "
            "download folder)."))] = None,
        preview: Annotated[bool, Field(description="Also save the preview image.")] = False,
        overwrite: Annotated[bool, Field(description=(
            "Replace an existing file (otherwise an existing file is an error)."))] = False,
    ) -> Annotated[CallToolResult, DownloadOut]:
        """Save a finished task's video on this machine; never overwrites unless asked."""
        target = output_of(task_id, output)
        got = await client().lipsync.download(task_id, target, overwrite=overwrite,
                                              preview=preview)
        out = DownloadOut(task_id=task_id, path=str(got.path), bytes=got.bytes,
                          preview_path=str(got.preview_path) if got.preview_path else None)
        return _result(runtime, out, f"saved {got.path} ({got.bytes} bytes)")

    @app.tool(
        title="Make a lip-sync video (whole job)",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False,
                                    idempotent_hint=False, open_world_hint=True),
    )
    async def make_video(
        video: VideoArg,
        ctx: Context[Any, Any],
        text: TextArg = None,
        voice_id: VoiceArg = None,
        audio: AudioArg = None,
        output: Annotated[str | None, Field(description=(
            "Where to save the video: a new .mp4 path or a folder (default: <task id>.mp4 in "
            "the server's download folder). An existing file is never replaced."))] = None,
        screen_width: WidthArg = None,
        screen_height: HeightArg = None,
        model: ModelArg = 0,
        backway: BackwayArg = 1,
        drive_mode: DriveArg = "",
        speed: SpeedArg = 1.0,
        pitch: PitchArg = 1.0,
        volume: VolumeArg = 100,
        timeout: Annotated[float, Field(gt=0, le=3600, description=(
            "Longest to wait for the render, in seconds; after it the result says the task "
            "still runs."))] = 1800,
        idempotency_key: KeyArg = None,
    ) -> Annotated[CallToolResult, MakeOut]:
        """The whole job in one call, with progress notifications: upload, create (paid, once
        per idempotency_key), wait, download. For clients that allow long calls; otherwise use
        create_lipsync + wait_lipsync + download_result."""
        key = key_of(idempotency_key)
        request = request_of(video, text, voice_id, audio, dict(
            screen_width=screen_width, screen_height=screen_height, model=model,
            backway=backway, drive_mode=drive_mode, speed=speed, pitch=pitch, volume=volume))
        if output is not None and runtime.keys().task_of(key) is None:
            target = runtime.path(output)
            if target.is_file():
                raise InputError(f"{target} exists: give a new output path")
        progress = _Progress(ctx)
        task_id, replayed = await create(key, request, progress, max_wait)
        await progress.stage(10.0, f"created task {task_id}")
        task, finished = await wait_for(task_id, timeout, progress, (10.0, 95.0))
        out = MakeOut(task_id=task_id, idempotency_key=key, replayed=replayed,
                      finished=finished, task=TaskOut.of(task), path=None, bytes=None)
        if not finished or not task.succeeded:
            text = _task_line(task)
            if not finished:
                text += "; still running: call wait_lipsync, then download_result"
            return _result(runtime, out, text)
        await progress.stage(95.0, "downloading")
        target = output_of(task_id, output)
        if target.is_dir():
            target = target / f"{task_id}.mp4"
        if replayed and target.is_file():
            # A repeated call: the first one saved the video.
            got_path, got_bytes = target, target.stat().st_size
        else:
            got = await client().lipsync.download(task, target, overwrite=False)
            got_path, got_bytes = got.path, got.bytes
        await progress.stage(100.0, "done")
        out = out.model_copy(update={"path": str(got_path), "bytes": got_bytes})
        return _result(runtime, out, f"{_task_line(task)}; saved {got_path} ({got_bytes} bytes)")

    # -- resources --------------------------------------------------------------------------------

    async def voices_json() -> str:
        try:
            voices: list[Voice] = await client().voices.list()
        except Exception as e:
            raise ResourceError(runtime.resource_error(e)) from None
        return json.dumps([VoiceOut.of(v).model_dump() for v in voices], ensure_ascii=False)

    @app.resource("chanjing://voices", name="voices", title="Voice catalogue",
                  description="Every public voice (id, name, gender, lang, desc) as JSON.",
                  mime_type="application/json")
    async def voices_resource() -> str:
        return await voices_json()

    @app.resource("chanjing://tasks/{task_id}", name="task", title="Lip-sync task",
                  description="A task's current detail as JSON (the get_lipsync output).",
                  mime_type="application/json")
    async def task_resource(task_id: str) -> str:
        try:
            task = await client().lipsync.get(task_id)
        except Exception as e:
            raise ResourceError(runtime.resource_error(e)) from None
        return runtime.scrub(TaskOut.of(task).model_dump_json())

    return app


async def close_server(app: MCPServer[Any]) -> None:
    """Close the client and the key ledger of a server made by :func:`build_server`."""
    runtime = getattr(app, "runtime", None)
    if isinstance(runtime, _Runtime):
        await runtime.aclose()
