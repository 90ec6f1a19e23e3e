"""Signed upload URLs: an HMAC over file id, Content-Type and expiry, checked on the PUT."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode


@dataclass(frozen=True)
class Rejection:
    """Why an upload is refused, in object-store terms."""

    code: str  # "AccessDenied" | "SignatureDoesNotMatch"
    message: str


class UploadSigner:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _signature(self, file_id: str, content_type: str, expires: int) -> str:
        text = f"PUT\n{content_type}\n{expires}\n{file_id}"
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def query(self, file_id: str, content_type: str, expires: int) -> str:
        signature = self._signature(file_id, content_type, expires)
        return urlencode({"Expires": expires, "Signature": signature})

    def check(
        self, file_id: str, content_type: str, params: Mapping[str, str], now: float
    ) -> Rejection | None:
        """None when the PUT may proceed."""
        expires_text = params.get("Expires", "")
        signature = params.get("Signature", "")
        if not expires_text or not signature:
            return Rejection(
                "AccessDenied",
                "Query-string authentication requires the Signature and Expires parameters",
            )
        if not (expires_text.isascii() and expires_text.isdigit()):
            return Rejection("AccessDenied", "Invalid date (should be seconds since epoch)")
        expected = self._signature(file_id, content_type, int(expires_text))
        # As bytes: compare_digest refuses str with non-ASCII characters (a 500, not a 403).
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            return Rejection(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check the Content-Type and the query string.",
            )
        if int(expires_text) < now:
            return Rejection("AccessDenied", "Request has expired")
        return None
