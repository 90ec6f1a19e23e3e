"""Record a session with ``chanjing-avatar mcp --local`` through the ``mcp`` SDK's own client and
write it into docs/mcp.md (between the transcript markers), or check that the docs still match.

    .venv/bin/python scripts/mcp_transcript.py           # run, and rewrite the docs block
    .venv/bin/python scripts/mcp_transcript.py --check   # run, and compare shapes only

Nothing here is written by hand: every line is what the client sent or received. Ids, paths and
times differ between runs; ``shape`` keeps what must not (the calls, the fields, errors or not).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "mcp.md"
START, END = "<!-- transcript:start -->", "<!-- transcript:end -->"
CLI = Path(sys.executable).parent / "chanjing-avatar"


def _short(value: Any, limit: int = 1000) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def record(command: Sequence[str], env: dict[str, str], workdir: Path) -> list[str]:
    """Drive the server named by ``command`` through one job; the transcript's lines."""
    from mcp.client.stdio import StdioServerParameters, stdio_client

    import mcp
    from chanjing_avatar.render.demo import make_demo_video

    video = make_demo_video(workdir / "face.mp4", seconds=1.0, size=(128, 128))
    lines: list[str] = []
    params = StdioServerParameters(command=command[0], args=list(command[1:]), env=env,
                                   cwd=str(workdir))

    async def progress(value: float, total: float | None, message: str | None) -> None:
        lines.append(f"  ~ progress {value:g}/{total:g} {message or ''}".rstrip())

    async def tool(name: str, args: dict[str, Any], *, notify: bool = False) -> Any:
        lines.append(f"→ tools/call {name} {_short(args)}")
        result = await client.call_tool(name, args,
                                        progress_callback=progress if notify else None)
        text = " ".join(c.text for c in result.content if c.type == "text")
        lines.append(f"← isError={str(result.is_error).lower()} text: {text}")
        if result.structured_content is not None:
            lines.append(f"  structuredContent: {_short(result.structured_content)}")
        return result

    with (workdir / "server-stderr.log").open("w") as errlog:
        async with mcp.Client(stdio_client(params, errlog=errlog)) as client:
            tools = await client.list_tools()
            lines.append("→ tools/list")
            lines.append("← " + ", ".join(t.name for t in tools.tools))
            voices = await tool("list_voices", {"lang": "zh", "page_size": 2})
            voice = voices.structured_content["voices"][0]["id"]
            job = {"video": str(video), "text": "你好，欢迎使用蝉镜数字人。", "voice_id": voice,
                   "idempotency_key": "welcome-video-1"}
            made = await tool("make_video", job, notify=True)
            await tool("make_video", job)  # the same key again: the same task, nothing paid
            await tool("create_lipsync", {**job, "text": " ", "idempotency_key": "oops-1"})
            task_id = made.structured_content["task_id"]
            lines.append(f"→ resources/read chanjing://tasks/{task_id}")
            read = await client.read_resource(f"chanjing://tasks/{task_id}")
            lines.append("← " + " ".join(getattr(c, "text", "") for c in read.contents))
    return [_anonymize(line, workdir) for line in lines]


def _anonymize(line: str, workdir: Path) -> str:
    return line.replace(str(workdir), "/home/me/videos")


_HEX = re.compile(r"\b[0-9a-f]{32}\b")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_JSON_KEYS = re.compile(r'"([A-Za-z_]+)":')


def shape(lines: Sequence[str]) -> list[str]:
    """What a fresh run must reproduce: each call, each answer's error flag and field names,
    and that progress was reported (how often varies)."""
    out: list[str] = []
    for line in lines:
        if line.startswith("  ~ progress"):
            if out and out[-1] == "~":
                continue
            out.append("~")
        elif line.startswith("→"):
            out.append(_NUMBER.sub("N", _HEX.sub("ID", line.split(" {")[0])))
        elif line.startswith("← isError="):
            out.append(line.split(" text:")[0])
        elif line.startswith("  structuredContent:"):
            out.append("fields: " + ",".join(sorted(set(_JSON_KEYS.findall(line)))))
        elif line.startswith("←"):
            out.append("← " + ",".join(sorted(set(_JSON_KEYS.findall(line)))) if "{" in line
                       else line)
    return out


def docs_block(text: str | None = None) -> list[str]:
    text = DOC.read_text(encoding="utf-8") if text is None else text
    inner = text.split(START, 1)[1].split(END, 1)[0]
    body = inner.strip().removeprefix("```text").removesuffix("```").strip("\n")
    return body.splitlines()


def write_docs(lines: Sequence[str]) -> None:
    text = DOC.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    block = "\n".join(["```text", *lines, "```"])
    DOC.write_text(f"{head}{START}\n{block}\n{END}{tail}", encoding="utf-8")


def local_env(home: Path) -> dict[str, str]:
    """A private home: the embedded sandbox and the state folder live there."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANJING_")}
    env.update(HOME=str(home), XDG_STATE_HOME=str(home / "state"),
               CHANJING_LOCAL_DIR=str(home / "local"), CHANJING_LOCAL_RENDERER="passthrough",
               LANG="C.UTF-8")
    return env


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with docs/mcp.md only")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        lines = asyncio.run(record([str(CLI), "mcp", "--local"], local_env(work / "home"), work))
    if args.check:
        if shape(lines) != shape(docs_block()):
            print("docs/mcp.md's transcript no longer matches a fresh run; run "
                  "scripts/mcp_transcript.py", file=sys.stderr)
            return 1
        return 0
    write_docs(lines)
    print(f"wrote {len(lines)} lines to {DOC.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
