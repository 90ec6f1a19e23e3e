"""An MCP server for lip-sync jobs (``chanjing-avatar mcp``; needs the ``mcp`` extra).

Tools: list_voices, upload_media, create_lipsync, get_lipsync, list_lipsyncs, wait_lipsync,
download_result, make_video. Resources: ``chanjing://voices``, ``chanjing://tasks/{id}``. Paid
creates take an idempotency key, kept in a journal (see ``_keys.py``), so a retry never pays
twice. See docs/mcp.md.
"""

from .server import ServerOptions, build_server, close_server

__all__ = ["ServerOptions", "build_server", "close_server"]
