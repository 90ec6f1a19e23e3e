"""The skill passes the Agent Skills rules; every client snippet in the skill and in docs/mcp.md
parses and its command starts a working server; the docs' transcript matches a fresh run."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import unicodedata
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp_support import CLI, McpEnv

import mcp

REPO = Path(__file__).resolve().parents[2]
SKILL_DIR = REPO / "skills" / "chanjing-avatar"
DOCS = [SKILL_DIR / "SKILL.md", REPO / "docs" / "mcp.md"]
ALLOWED = {"name", "description", "license", "compatibility", "metadata", "allowed-tools"}


# -- the front matter -----------------------------------------------------------------------------


def spec_problems(skill_dir: Path) -> list[str]:
    """The specification's rules, for when the reference validator is not installed."""
    text = (skill_dir / "SKILL.md").read_text(encoding="utf-8")
    if not text.startswith("---\n") or "\n---" not in text[4:]:
        return ["SKILL.md must start with front matter between --- lines"]
    block = text[4:].split("\n---", 1)[0]
    fields: dict[str, str] = {}
    current = None
    for line in block.splitlines():
        match = re.match(r"^([A-Za-z][\w-]*):\s*(.*)$", line)
        if match:
            current = match.group(1)
            value = match.group(2)
            fields[current] = "" if value in (">-", ">", "|", "|-") else value
        elif current is not None and line.strip():
            fields[current] = (fields[current] + " " + line.strip()).strip()
    problems = [f"field not allowed: {k}" for k in sorted(set(fields) - ALLOWED)]
    name = unicodedata.normalize("NFKC", fields.get("name", ""))
    if not name:
        problems.append("name is required")
    elif (len(name) > 64 or name != name.lower() or name.startswith("-") or name.endswith("-")
          or "--" in name or not all(c.isalnum() or c == "-" for c in name)):
        problems.append(f"bad name: {name!r}")
    elif name != skill_dir.name:
        problems.append("name must match the folder")
    description = fields.get("description", "")
    if not description or len(description) > 1024:
        problems.append("description must be 1-1024 characters")
    if len(fields.get("compatibility", "")) > 500:
        problems.append("compatibility must be at most 500 characters")
    return problems


def validate(skill_dir: Path) -> tuple[list[str], str]:
    try:
        from skills_ref.validator import validate as reference
    except ImportError:
        return spec_problems(skill_dir), "the specification's rules"
    return list(reference(skill_dir)), "skills-ref"


def test_skill_front_matter_passes_the_validator() -> None:
    problems, how = validate(SKILL_DIR)
    assert problems == [], f"{how}: {problems}"
    assert spec_problems(SKILL_DIR) == []


def test_the_validator_refuses_extra_fields(tmp_path: Path) -> None:
    bad = tmp_path / "chanjing-avatar"
    bad.mkdir()
    text = (SKILL_DIR / "SKILL.md").read_text(encoding="utf-8")
    (bad / "SKILL.md").write_text(text.replace("license:", "credential: chanjing\nlicense:", 1),
                                  encoding="utf-8")
    problems, _ = validate(bad)
    assert problems and "credential" in " ".join(problems)
    assert spec_problems(bad) == ["field not allowed: credential"]


# -- the client snippets --------------------------------------------------------------------------


def snippets() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for doc in DOCS:
        for block in re.findall(r"```json\n(.*?)```", doc.read_text(encoding="utf-8"), re.S):
            if "mcpServers" in block:
                found.append((doc.name, json.loads(block)))
    return found


def commands() -> list[tuple[str, ...]]:
    out: dict[tuple[str, ...], None] = {}
    for _, config in snippets():
        for server in config["mcpServers"].values():
            assert server.get("type", "stdio") == "stdio"
            out[(server["command"], *server.get("args", []))] = None
    return list(out)


def test_every_doc_has_snippets_that_name_our_command() -> None:
    found = snippets()
    assert {name for name, _ in found} == {"SKILL.md", "mcp.md"}
    assert len(found) >= 4
    for _, config in found:
        assert set(config) == {"mcpServers"}
        for server in config["mcpServers"].values():
            assert server["command"] == "chanjing-avatar" and server["args"][0] == "mcp"


def path_env(base: dict[str, str]) -> dict[str, str]:
    """The client finds ``chanjing-avatar`` on PATH, as a desktop client would."""
    return {**base, "PATH": f"{CLI.parent}{os.pathsep}{base.get('PATH', '')}"}


def load_transcript() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mcp_transcript",
                                                  REPO / "scripts" / "mcp_transcript.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mcp_transcript"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("command", commands(), ids=" ".join)
async def test_snippet_command_starts_a_server(
    command: tuple[str, ...], env: McpEnv, tmp_path: Path, anyio_backend: str
) -> None:
    if "--local" in command:
        # The offline one runs the whole documented session: it must match docs/mcp.md.
        transcript = load_transcript()
        environ = path_env(transcript.local_env(tmp_path / "home"))
        lines = await transcript.record(list(command), environ, tmp_path)
        for line in lines:
            env.check(line)
        env.check((tmp_path / "server-stderr.log").read_text())
        assert transcript.shape(lines) == transcript.shape(transcript.docs_block()), (
            "docs/mcp.md's transcript is stale: run scripts/mcp_transcript.py")
        await same_key_after_restart(command, environ, tmp_path, env)
        return
    home = env.home("snippet")
    params = StdioServerParameters(command=command[0], args=list(command[1:]),
                                   env=path_env(env.environ(home)), cwd=str(home))
    with (home / "stderr.log").open("w") as errlog:
        async with mcp.Client(stdio_client(params, errlog=errlog)) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert "make_video" in tools
            voices = env.seen(await client.call_tool("list_voices", {}))
            assert not voices.is_error and voices.structured_content["voices"]
    env.check((home / "stderr.log").read_text())


def test_transcript_shape_sees_changes() -> None:
    transcript = load_transcript()
    lines = transcript.docs_block()
    assert transcript.shape(lines), "the docs block is empty: run scripts/mcp_transcript.py"
    flipped = [ln.replace("isError=false", "isError=true", 1) for ln in lines]
    assert transcript.shape(flipped) != transcript.shape(lines)


async def same_key_after_restart(
    command: tuple[str, ...], environ: dict[str, str], workdir: Path, env: McpEnv
) -> None:
    """The embedded sandbox listens on a new port at each start: the session's key must still
    name its task (the journal is named after the local folder, not the address)."""
    params = StdioServerParameters(command=command[0], args=list(command[1:]), env=environ,
                                   cwd=str(workdir))
    with (workdir / "restart-stderr.log").open("w") as errlog:
        async with mcp.Client(stdio_client(params, errlog=errlog)) as client:
            tasks = env.seen(await client.call_tool("list_lipsyncs", {}))
            assert tasks.structured_content["total"] == 1
            voices = env.seen(await client.call_tool("list_voices", {"lang": "zh"}))
            again = env.seen(await client.call_tool("create_lipsync", {
                "video": str(workdir / "face.mp4"), "text": "你好，欢迎使用蝉镜数字人。",
                "voice_id": voices.structured_content["voices"][0]["id"],
                "idempotency_key": "welcome-video-1"}))
            assert not again.is_error, again
            assert again.structured_content["replayed"] is True
            assert again.structured_content["task_id"] == tasks.structured_content["tasks"][0][
                "task_id"]
            after = env.seen(await client.call_tool("list_lipsyncs", {}))
            assert after.structured_content["total"] == 1
    env.check((workdir / "restart-stderr.log").read_text())
