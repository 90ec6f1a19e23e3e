"""Response bodies: the API envelope, object-store XML errors and gateway HTML pages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

from starlette.responses import JSONResponse, Response

from .._wire import Code
from .ids import new_id


def envelope_body(code: int, msg: str, data: Any = None) -> dict[str, Any]:
    return {"trace_id": new_id(), "code": int(code), "msg": msg, "data": data}


def ok(data: Any = None) -> JSONResponse:
    return JSONResponse(envelope_body(Code.SUCCESS, "success", data))


def fail(
    code: int, msg: str, status: int = 200, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """An error envelope; business errors keep HTTP 200, routing errors their own status."""
    return JSONResponse(envelope_body(code, msg, None), status_code=status, headers=headers)


def xml_error(
    status: int,
    code: str,
    message: str,
    resource: str = "",
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
        f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"<Resource>{escape(resource)}</Resource><RequestId>{new_id().upper()}</RequestId>"
        "</Error>"
    )
    return Response(body, status_code=status, media_type="application/xml", headers=headers)


def gateway_page(status: int) -> Response:
    titles = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}
    title = f"{status} {titles.get(status, 'Error')}"
    body = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
    return Response(body, status_code=status, media_type="text/html")
