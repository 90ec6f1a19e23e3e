"""Business errors: an envelope code and a message, answered with HTTP 200."""

from __future__ import annotations

from .._wire import CODE_MESSAGES, Code


class ApiError(Exception):
    def __init__(self, code: int, detail: str = "") -> None:
        base = CODE_MESSAGES.get(code, "error")
        super().__init__(f"{base}: {detail}" if detail else base)
        self.code = int(code)
        self.msg = str(self)


def param_error(detail: str) -> ApiError:
    return ApiError(Code.PARAM_ERROR, detail)


def format_error(detail: str) -> ApiError:
    return ApiError(Code.BAD_FORMAT, detail)
