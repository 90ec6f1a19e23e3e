"""The folders are the architecture: each part may import only the parts below it.

See docs/ARCHITECTURE.md. A violation here means a module reaches "up" (e.g. the client importing
the sandbox, or the sandbox importing the client) and the layering has to be mended, not this test.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "chanjing_avatar"

# part -> parts it may import (besides itself). "client" is every top-level _*.py module and
# _core/, "wire" is _wire.py alone.
ALLOWED: dict[str, set[str]] = {
    "wire": set(),
    "client": {"wire", "version"},
    "render": {"wire"},
    "sandbox": {"wire", "render", "version"},
    "callback": {"client", "wire", "version"},
    "batch": {"client", "wire", "callback", "version"},
    "mcp": {"client", "wire", "batch", "callback", "version"},
    "cli": {"client", "wire", "sandbox", "render", "batch", "callback", "mcp", "version"},
}


def _part_of_module(dotted: str) -> str | None:
    parts = dotted.split(".")
    if parts[0] != "chanjing_avatar":
        return None
    if len(parts) == 1:
        return "client"  # the package's public face
    head = parts[1]
    if head == "_wire":
        return "wire"
    if head == "_version":
        return "version"
    if head == "__main__":
        return "cli"
    if head.startswith("_"):
        return "client"
    return head


def _part_of_file(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    dotted = ".".join(rel.parts)
    if dotted.endswith(".__init__"):
        dotted = dotted[: -len(".__init__")]
    part = _part_of_module(dotted)
    assert part is not None
    return part


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module_parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if module_parts[-1] == "__init__":
        module_parts.pop()
    else:
        module_parts.pop()  # the package that contains this module
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module_parts[: len(module_parts) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:
                    # `from .. import x`: x is a submodule, or a name of the package itself.
                    for a in node.names:
                        sub = PKG.parent.joinpath(*target.split("."), a.name)
                        is_module = sub.is_dir() or sub.with_suffix(".py").exists()
                        found.append((node.lineno, f"{target}.{a.name}" if is_module else target))
                    continue
            else:
                target = node.module or ""
            found.append((node.lineno, target))
    return found


SOURCES = sorted(PKG.rglob("*.py"))


def test_every_part_is_known() -> None:
    parts = {_part_of_file(p) for p in SOURCES}
    assert parts <= set(ALLOWED) | {"version"}, parts - set(ALLOWED)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PKG)))
def test_imports_point_down(path: Path) -> None:
    part = _part_of_file(path)
    if part == "version":
        return
    allowed = ALLOWED[part] | {part}
    bad = []
    for lineno, target in _imports(path):
        other = _part_of_module(target)
        if other is not None and other not in allowed:
            bad.append(f"line {lineno}: {part} imports {target} ({other})")
    assert not bad, "\n".join(bad)


# The parts built on the client use its public face only: the package itself (whose names are its
# public API) and the wire contract. Reaching `_core`, `_client`, `_exceptions`, `_models`, ...
# directly would make those private modules an API that cannot change.
PUBLIC_ONLY = {"cli", "batch", "callback", "mcp"}
PUBLIC_MODULES = {"chanjing_avatar", "chanjing_avatar._wire", "chanjing_avatar._version"}
OUTER_SOURCES = [p for p in SOURCES if _part_of_file(p) in PUBLIC_ONLY]


@pytest.mark.parametrize("path", OUTER_SOURCES, ids=lambda p: str(p.relative_to(PKG)))
def test_outer_parts_use_the_public_client_only(path: Path) -> None:
    bad = [
        f"line {lineno}: imports {target}; import it from chanjing_avatar (export it there)"
        for lineno, target in _imports(path)
        if _part_of_module(target) in {"client", "wire", "version"}
        and target not in PUBLIC_MODULES
    ]
    assert not bad, "\n".join(bad)


def test_public_only_covers_the_outer_parts() -> None:
    # A new outer package (mcp/) is checked as soon as it exists.
    outer = {_part_of_file(p) for p in SOURCES} - {"client", "wire", "version", "render",
                                                   "sandbox"}
    assert outer <= PUBLIC_ONLY, outer - PUBLIC_ONLY
