"""``chanjing-avatar callback serve``: receive task callbacks, confirm each, print the result."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ._common import BaseUrlOpt, CredentialsDirOpt, LocalOpt, VerboseOpt

if TYPE_CHECKING:
    from .. import Task

callback_app = typer.Typer(help="Receive the API's task callbacks.", no_args_is_help=True)


@callback_app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind (loopback by default; "
                                      "put a TLS proxy in front for the internet).")] =
    "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0: any free one).")] = 8787,
    path: Annotated[str, typer.Option("--path", help="URL path that receives callbacks.")] = "/",
    watch: Annotated[
        list[str] | None,
        typer.Option("--watch", metavar="TASK_ID",
                     help="Only act on these task ids (default: any task of this account)."),
    ] = None,
    max_body: Annotated[int, typer.Option("--max-body", help="Largest body accepted (bytes).")]
    = 64 * 1024,
    local: LocalOpt = False,
    base_url: BaseUrlOpt = None,
    credentials_dir: CredentialsDirOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Serve the receiver until Ctrl-C. Each confirmed task is printed as one JSON line."""
    import asyncio
    import contextlib
    import json
    import sys

    from ._common import session

    with session(verbose=verbose, local=local, base_url=base_url,
                 credentials_dir=credentials_dir) as s:

        async def main() -> None:
            from ..callback import CallbackReceiver, ReceiverServer, is_loopback
            from ._callbacks import start_server

            client = s.async_client()

            async def confirm(task_id: str) -> Task:
                return await client.lipsync.get(task_id)

            def on_task(task: Task) -> None:
                line = {"id": task.id, "status": int(task.status), "progress": task.progress,
                        "msg": task.msg, "video_url": task.video_url}
                sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
                sys.stdout.flush()

            receiver = CallbackReceiver(confirm, on_task=on_task, max_body=max_body,
                                        path=path, watch_all=not watch)
            if watch:
                receiver.watch(watch)
            if not is_loopback(host):
                s.out.warn(f"listening on {host}: reachable from other machines")
            server = ReceiverServer(receiver, host=host, port=port)
            try:
                await start_server(server, "--host/--port")
            except BaseException:
                await client.aclose()
                raise
            s.out.note(f"callback receiver on {server.url} (Ctrl-C to stop)")
            try:
                await asyncio.Event().wait()
            finally:
                await server.stop()
                await client.aclose()

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())
