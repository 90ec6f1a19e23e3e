"""The package's public face: ``__all__`` is exactly what it exposes, and the lazy map, the
type-checking imports and ``__all__`` name the same things (as httpx's test_exported_members)."""

from __future__ import annotations

import ast
import subprocess
import sys
import types
from pathlib import Path

import chanjing_avatar

INIT = Path(chanjing_avatar.__file__)


def _public(module: types.ModuleType) -> set[str]:
    return {
        name for name in dir(module)
        if (not name.startswith("_") or name == "__version__")
        and not isinstance(getattr(module, name), types.ModuleType)  # subpackages: cli, batch...
    }


def _type_checking_imports() -> dict[str, str]:
    """name -> module of the imports under ``if TYPE_CHECKING:`` in ``__init__.py``."""
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    block = next(node for node in tree.body
                 if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test))
    return {
        alias.asname or alias.name: "." * node.level + (node.module or "")
        for node in block.body if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


def test_all_is_exactly_the_public_names() -> None:
    assert chanjing_avatar.__all__ == sorted(chanjing_avatar.__all__)
    assert set(chanjing_avatar.__all__) == _public(chanjing_avatar)


def test_lazy_map_and_type_checking_imports_agree_with_all() -> None:
    lazy = chanjing_avatar._LAZY
    assert lazy == _type_checking_imports()
    assert set(lazy) | {"__version__"} == set(chanjing_avatar.__all__)


def test_every_name_loads_in_a_fresh_interpreter() -> None:
    # `from chanjing_avatar import *` resolves every lazy name; a stale entry fails here.
    code = "from chanjing_avatar import *; import chanjing_avatar as c; print(len(c.__all__))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert int(out) == len(chanjing_avatar.__all__)
