"""Endpoint keys: the short names used by fault rules, rate limits and request counts."""

from __future__ import annotations

from typing import Final

from .. import _wire

ADMIN_PREFIX: Final = "/_sandbox"
UPLOAD_PREFIX: Final = "/upload/"
RESULT_PREFIX: Final = "/result/lip-sync/"
AUDITION_PREFIX: Final = "/audition/"

API_ENDPOINTS: Final = {
    _wire.PATH_ACCESS_TOKEN: "access_token",
    _wire.PATH_CREATE_UPLOAD_URL: "create_upload_url",
    _wire.PATH_FILE_DETAIL: "file_detail",
    _wire.PATH_LIPSYNC_CREATE: "lipsync_create",
    _wire.PATH_LIPSYNC_DETAIL: "lipsync_detail",
    _wire.PATH_LIPSYNC_LIST: "lipsync_list",
    _wire.PATH_LIST_COMMON_AUDIO: "list_common_audio",
}
# Keys that fault rules may name (besides "*", which means every one of them).
FAULTABLE: Final = (*API_ENDPOINTS.values(), "upload", "download")


def endpoint_key(path: str) -> str:
    """The key of a request path; ``"admin"`` and ``"other"`` are never faulted."""
    key = API_ENDPOINTS.get(path.rstrip("/") or "/")
    if key is not None:
        return key
    if path.startswith(UPLOAD_PREFIX):
        return "upload"
    if path.startswith(RESULT_PREFIX):
        return "download"
    if path.startswith(AUDITION_PREFIX):
        return "audition"
    if path.startswith(ADMIN_PREFIX + "/") or path == ADMIN_PREFIX:
        return "admin"
    return "other"
