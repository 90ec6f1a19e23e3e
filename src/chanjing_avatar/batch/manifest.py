"""The batch manifest: CSV or JSONL, one video per row.

Every error in the file is collected and reported at once, with its line number, before anything is
uploaded or paid for. Each row is a :class:`LipSyncRequest`, which checks its options by the wire's
rules (the server's own) while its files are still to be uploaded.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .. import InvalidRequestError, LipSyncRequest
from .._wire import (
    AUDIO_EXTENSIONS,
    SERVICE_LIP_SYNC_AUDIO,
    SERVICE_LIP_SYNC_VIDEO,
    SOURCE_EXTENSIONS,
    file_extension,
)
from ._files import sha256_of

__all__ = ["Manifest", "ManifestError", "ManifestProblem", "MediaRef", "Row", "load_manifest"]

ROW_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

# Accepted column names (and aliases) -> canonical name.
COLUMNS: Mapping[str, str] = {
    "id": "id",
    "row_id": "id",
    "video": "video",
    "video_file_id": "video_file_id",
    "text": "text",
    "voice": "voice_id",
    "voice_id": "voice_id",
    "audio_man_id": "voice_id",
    "audio": "audio",
    "audio_file_id": "audio_file_id",
    "screen_width": "screen_width",
    "width": "screen_width",
    "screen_height": "screen_height",
    "height": "screen_height",
    "model": "model",
    "speed": "speed",
    "pitch": "pitch",
    "volume": "volume",
    "backway": "backway",
    "drive_mode": "drive_mode",
}
INT_OPTIONS = ("screen_width", "screen_height", "model", "volume", "backway")
FLOAT_OPTIONS = ("speed", "pitch")
# The request's field names (the wire's, for the speech) -> the manifest's column names.
FIELD_TO_COLUMN: Mapping[str, str] = {
    "tts_config.text": "text",
    "tts_config.audio_man_id": "voice_id",
    "tts_config.speed": "speed",
    "tts_config.pitch": "pitch",
    "tts_config": "text",
}
# What a row's spec leaves out when it has the request's default: files and speech are apart.
_OPTIONS = tuple(f.name for f in fields(LipSyncRequest)
                 if f.name not in ("video", "audio", "text", "voice_id", "callback"))
_DEFAULTS = {f.name: f.default for f in fields(LipSyncRequest)}


@dataclass(frozen=True)
class ManifestProblem:
    line: int  # 1-based line in the file (0: the file as a whole)
    message: str
    row_id: str | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "manifest"
        who = f" (row {self.row_id!r})" if self.row_id else ""
        return f"{where}{who}: {self.message}"


class ManifestError(ValueError):
    """The manifest has problems; ``problems`` lists every one of them."""

    def __init__(self, path: Path, problems: list[ManifestProblem]) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{path}: {len(problems)} problem(s)\n{lines}")


@dataclass(frozen=True)
class MediaRef:
    """A local file to upload (``path`` set, ``sha256`` of its content) or an existing file id."""

    service: str
    path: Path | None = None
    file_id: str | None = None
    sha256: str | None = None
    size: int | None = None

    @property
    def key(self) -> str:
        """Identity for upload dedup: same content and service, uploaded once."""
        if self.path is not None:
            return f"{self.service}:sha256:{self.sha256}"
        return f"{self.service}:id:{self.file_id}"


@dataclass(frozen=True)
class Row:
    """One manifest row: its ``request`` (files as local paths or ids, checked), and the files
    as uploads (``video``, ``audio``: dedup keys and hashes)."""

    id: str
    line: int
    video: MediaRef
    request: LipSyncRequest
    audio: MediaRef | None = None

    @property
    def options(self) -> dict[str, Any]:
        """The options that differ from the request's defaults."""
        return {k: getattr(self.request, k) for k in _OPTIONS
                if getattr(self.request, k) != _DEFAULTS[k]}

    def spec(self) -> dict[str, Any]:
        """What the row asks for, stable across runs (compared on resume)."""
        text = self.request.text
        return {
            "video": self.video.key,
            "text": "".join(text) if isinstance(text, tuple) else text,
            "voice_id": self.request.voice_id,
            "audio": self.audio.key if self.audio else None,
            "options": dict(sorted(self.options.items())),
        }

    def spec_hash(self) -> str:
        raw = json.dumps(self.spec(), sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class Manifest:
    path: Path
    rows: list[Row]

    def media(self) -> dict[str, MediaRef]:
        """Every distinct local file to upload, by dedup key."""
        out: dict[str, MediaRef] = {}
        for row in self.rows:
            for ref in (row.video, row.audio):
                if ref is not None and ref.path is not None:
                    out.setdefault(ref.key, ref)
        return out


def _read_records(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(line, record, error) per data row. CSV cells are strings; JSONL values keep their types."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        for lineno, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                yield lineno, None, f"not valid JSON ({exc.msg} at column {exc.colno})"
                continue
            if not isinstance(obj, dict):
                yield lineno, None, "each line must be a JSON object"
                continue
            yield lineno, obj, None
        return
    reader = csv.DictReader(text.splitlines(keepends=True))
    start = 2
    for rec in reader:
        if None in rec:
            yield start, None, "more cells than header columns"
        elif all((v or "").strip() == "" for v in rec.values()):
            pass  # blank line
        else:
            yield start, {k: v for k, v in rec.items() if k is not None}, None
        start = reader.line_num + 1


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _looks_like_path(value: str) -> bool:
    # File ids carry no extension and no separator.
    return "/" in value or "\\" in value or file_extension(value) != ""


class _Hasher:
    """Hashes each local file once, however many rows use it."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[str, int]] = {}

    def __call__(self, path: Path) -> tuple[str, int]:
        if path not in self._cache:
            size, digest = sha256_of(path)
            self._cache[path] = (digest, size)
        return self._cache[path]


def _media(
    cols: Mapping[str, Any],
    column: str,
    service: str,
    extensions: tuple[str, ...],
    base: Path,
    hasher: _Hasher,
    errors: list[str],
) -> MediaRef | None:
    """The row's ``column`` file (a local path or an id) or its ``column_file_id``."""
    value, explicit_id = cols.get(column), cols.get(f"{column}_file_id")
    if not _blank(explicit_id):
        if not _blank(value):
            errors.append(f"{column}: give either {column} or {column}_file_id, not both")
            return None
        return MediaRef(service=service, file_id=str(explicit_id).strip())
    if _blank(value):
        return None
    if not isinstance(value, str):
        errors.append(f"{column}: must be a file path or a file id")
        return None
    value = value.strip()
    if not _looks_like_path(value):
        return MediaRef(service=service, file_id=value)
    ext = file_extension(value)
    if ext not in extensions:
        errors.append(
            f"{column}: extension .{ext or '(none)'} not accepted; use "
            + ", ".join("." + e for e in extensions)
        )
        return None
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = base / path
    if not path.is_file():
        errors.append(f"{column}: file not found: {path}")
        return None
    try:
        digest, size = hasher(path.resolve())
    except OSError as exc:
        errors.append(f"{column}: cannot read {path}: {exc.strerror}")
        return None
    if size == 0:
        errors.append(f"{column}: file is empty: {path}")
        return None
    return MediaRef(service=service, path=path.resolve(), sha256=digest, size=size)


def _number(value: Any, column: str, kind: type, errors: list[str]) -> Any:
    if isinstance(value, str):
        try:
            return int(value.strip()) if kind is int else float(value.strip())
        except ValueError:
            what = "an integer" if kind is int else "a number"
            errors.append(f"{column}: {value!r} is not {what}")
            return None
    return value  # JSON number (or a wrong type that validate_create will name)


def _parse_row(
    lineno: int, rec: Mapping[str, Any], base: Path, hasher: _Hasher, *, csv_file: bool
) -> tuple[Row | None, list[str]]:
    errors: list[str] = []
    cols: dict[str, Any] = {}
    for key, value in rec.items():
        canon = COLUMNS.get(str(key).strip().lower())
        if canon is None:
            if not csv_file:  # a CSV header is checked once, on line 1
                errors.append(f"unknown column {key!r}")
            continue
        if canon in cols and not _blank(cols[canon]):
            errors.append(f"column {canon!r} given twice")
            continue
        cols[canon] = value

    row_id = cols.get("id")
    if _blank(row_id):
        errors.append("id: required")
        row_id = None
    else:
        row_id = str(row_id).strip()
        if not ROW_ID_RE.match(row_id):
            errors.append(
                "id: use 1-100 letters, digits, '.', '_' or '-' (it names the output file)"
            )

    video = _media(cols, "video", SERVICE_LIP_SYNC_VIDEO, SOURCE_EXTENSIONS, base, hasher, errors)
    if video is None and _blank(cols.get("video")) and _blank(cols.get("video_file_id")):
        errors.append("video: required (a local video file or a file id)")
    audio = _media(cols, "audio", SERVICE_LIP_SYNC_AUDIO, AUDIO_EXTENSIONS, base, hasher, errors)
    text = cols.get("text")
    voice = cols.get("voice_id")
    has_audio_col = not _blank(cols.get("audio")) or not _blank(cols.get("audio_file_id"))
    if has_audio_col and (not _blank(text) or not _blank(voice)):
        errors.append("give either text + voice_id or audio, not both")
    elif not has_audio_col and (_blank(text) or _blank(voice)):
        errors.append("speech: give text and voice_id, or audio")

    options: dict[str, Any] = {}
    for col in INT_OPTIONS + FLOAT_OPTIONS:
        value = cols.get(col)
        if _blank(value):
            continue
        options[col] = _number(value, col, int if col in INT_OPTIONS else float, errors)
    if not _blank(cols.get("drive_mode")):
        options["drive_mode"] = str(cols["drive_mode"]).strip()

    if has_audio_col:
        for k in FLOAT_OPTIONS:
            if k in options:
                errors.append(f"{k}: only applies to text + voice rows")
    speech_ok = has_audio_col == (_blank(text) and _blank(voice))
    if not speech_ok or any(v is None for v in options.values()):
        return None, errors
    if isinstance(text, list):
        text = "".join(str(t) for t in text)
    # Checked even when a file is wrong, so that every problem of the row shows at once: the
    # files are uploaded later anyway (pending), so their names serve.
    try:
        request = LipSyncRequest(
            video=_ref(video, cols.get("video")),
            audio=_ref(audio, cols.get("audio")) if has_audio_col else None,
            text=None if has_audio_col else str(text),
            voice_id=None if has_audio_col else str(voice).strip(),
            **options,
        )
    except InvalidRequestError as exc:
        field = exc.field or ""
        reason = exc.msg.removeprefix(f"{field}: ")
        errors.append(f"{FIELD_TO_COLUMN.get(field, field)}: {reason}")
        return None, errors
    if errors or row_id is None or video is None:
        return None, errors
    return Row(id=row_id, line=lineno, video=video, audio=audio, request=request), []


def _ref(media: MediaRef | None, given: Any) -> str | Path:
    """A request's file: the local path, or the id given (a file not found: its name)."""
    if media is None:
        return Path(str(given or "."))
    if media.path is not None:
        return media.path
    assert media.file_id is not None
    return media.file_id


def load_manifest(path: str | Path) -> Manifest:
    """Parse and check a manifest; raise :class:`ManifestError` listing every problem."""
    path = Path(path)
    problems: list[ManifestProblem] = []
    try:
        records = list(_read_records(path))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ManifestError(path, [ManifestProblem(0, f"cannot read: {exc}")]) from exc
    if not records:
        raise ManifestError(path, [ManifestProblem(0, "no rows")])
    base = path.resolve().parent
    hasher = _Hasher()
    rows: list[Row] = []
    seen: dict[str, int] = {}
    csv_file = path.suffix.lower() not in (".jsonl", ".ndjson", ".json")
    if csv_file:
        header = next(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()[:1]), [])
        for name in header:
            if COLUMNS.get(name.strip().lower()) is None:
                problems.append(
                    ManifestProblem(1, f"unknown column {name!r}; known: " + ", ".join(COLUMNS))
                )
    for lineno, rec, err in records:
        if err is not None or rec is None:
            problems.append(ManifestProblem(lineno, err or "unreadable"))
            continue
        row, errs = _parse_row(lineno, rec, base, hasher, csv_file=csv_file)
        rid = str(rec.get("id") or rec.get("row_id") or "").strip() or None
        problems.extend(ManifestProblem(lineno, e, rid) for e in errs)
        if rid is not None:
            if rid in seen:
                problems.append(
                    ManifestProblem(lineno, f"duplicate id (first on line {seen[rid]})", rid)
                )
            else:
                seen[rid] = lineno
        if row is not None:
            rows.append(row)
    # Output names are case-folded on some file systems.
    folded: dict[str, str] = {}
    for row in rows:
        other = folded.setdefault(row.id.lower(), row.id)
        if other != row.id:
            problems.append(
                ManifestProblem(row.line, f"id differs from {other!r} only by case", row.id)
            )
    if problems:
        raise ManifestError(path, problems)
    return Manifest(path=path, rows=rows)
