"""The MCP server uses the public client API only: ``chanjing_avatar`` itself, the wire
constants, and the batch runner's journal and reconciliation (never the client's internals)."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "src" / "chanjing_avatar" / "mcp"
ALLOWED = ("chanjing_avatar", "chanjing_avatar._wire", "chanjing_avatar._version",
           "chanjing_avatar.batch")


def test_mcp_imports_only_the_public_api() -> None:
    bad = []
    for path in sorted(PKG.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                if not name.startswith("chanjing_avatar"):
                    continue
                if not any(name == ok or (name.startswith(ok + ".") and ok.endswith("batch"))
                           for ok in ALLOWED):
                    bad.append(f"{path.name}:{node.lineno} imports {name}")
    assert not bad, bad
