"""Client and AsyncClient cannot drift: the same public methods on the client and on each group,
with the same parameters, defaults, annotations (async types named for their sync twins) and
docstrings; every public method says what it does."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

from chanjing_avatar import AsyncClient, Client

# Where the async twin's types differ by nature, named as the sync twin's.
ASYNC_NAMES = [
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\bAsyncClient\b", "Client"),
    (r"httpx\.AsyncBaseTransport", "httpx.BaseTransport"),
    (r"Callable\[\[float\], Awaitable\[None\]\]", "Callable[[float], None]"),
    (r"_tasks\.AsyncWaiter", "_tasks.Waiter"),
]
RENAMED = {"aclose": "close"}  # async name -> sync name


def _sync_spelling(text: str) -> str:
    for pattern, repl in ASYNC_NAMES:
        text = re.sub(pattern, repl, text)
    return text


def _methods(cls: type, *, sync_names: bool = False) -> dict[str, Any]:
    found = {}
    for name, member in inspect.getmembers(cls):
        if name.startswith("_") or not (inspect.isfunction(member) or isinstance(member, property)):
            continue
        found[RENAMED.get(name, name) if sync_names else name] = member
    return found


def _shape(member: Any, *, sync_names: bool) -> list[tuple[str, str, str, str]]:
    fn = member.fget if isinstance(member, property) else member
    sig = inspect.signature(fn)
    spell = _sync_spelling if sync_names else str
    params = [(p.name, str(p.kind), repr(p.default), spell(str(p.annotation)))
              for p in sig.parameters.values()]
    return [*params, ("return", "", "", spell(str(sig.return_annotation)))]


def _pairs(tmp_path: Path) -> list[tuple[str, type, type]]:
    kw: dict[str, Any] = {"base_url": "http://127.0.0.1:9", "credentials_dir": tmp_path}
    sync, asyn = Client("app", "s" * 16, **kw), AsyncClient("app", "s" * 16, **kw)
    groups = sorted(name for name, v in vars(sync).items()
                    if not name.startswith("_") and hasattr(v, "_client"))
    assert groups == ["auth", "files", "lipsync", "voices"]
    assert sorted(name for name, v in vars(asyn).items()
                  if not name.startswith("_") and hasattr(v, "_client")) == groups
    sync.close()
    return [("client", Client, AsyncClient)] + [
        (g, type(getattr(sync, g)), type(getattr(asyn, g))) for g in groups
    ]


def test_twins_have_the_same_methods_signatures_and_docstrings(tmp_path: Path) -> None:
    problems = []
    for where, sync_cls, async_cls in _pairs(tmp_path):
        sync_methods = _methods(sync_cls)
        async_methods = _methods(async_cls, sync_names=True)
        if set(sync_methods) != set(async_methods):
            problems.append(f"{where}: only sync {set(sync_methods) - set(async_methods)}, "
                            f"only async {set(async_methods) - set(sync_methods)}")
        for name in sorted(set(sync_methods) & set(async_methods)):
            s, a = sync_methods[name], async_methods[name]
            if _shape(s, sync_names=False) != _shape(a, sync_names=True):
                problems.append(f"{where}.{name}: signatures differ")
            if name != "close" and (s.__doc__ or "") != _sync_spelling(a.__doc__ or ""):
                problems.append(f"{where}.{name}: docstrings differ")
            for twin in (s, a):
                if not (twin.__doc__ or "").strip():
                    problems.append(f"{where}.{name}: {getattr(twin, '__qualname__', name)} "
                                    "has no docstring")
    assert not problems, "\n".join(problems)


def test_async_twins_await_and_sync_twins_do_not(tmp_path: Path) -> None:
    shared = set(_methods(Client)) & set(_methods(AsyncClient))  # from the common base
    for where, sync_cls, async_cls in _pairs(tmp_path):
        for name, member in _methods(async_cls).items():
            if isinstance(member, property) or (where == "client" and name in shared):
                continue
            assert inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member), \
                f"{where}.{name}"
        for name, member in _methods(sync_cls).items():
            if not isinstance(member, property):
                assert not (inspect.iscoroutinefunction(member)
                            or inspect.isasyncgenfunction(member)), f"{where}.{name}"
