"""chanjing-avatar: a client for Chanjing's lip-sync Open API, with a local sandbox.

>>> from chanjing_avatar import Client, LipSyncRequest
>>> request = LipSyncRequest(video=Path("me.mp4"), text="你好", voice_id="...")  # checked here
>>> with Client() as c:                       # keys from args, env or ~/.chanjing/credentials.json
...     result = c.lipsync.make(request, output="out.mp4")
...     # the same in keywords: c.lipsync.make(video="me.mp4", text=..., voice_id=..., output=...)
"""

import typing as _typing

from ._version import __version__

# The public names load on first use, so that importing a submodule (the CLI's `--help`) does not
# pay for httpx and pydantic.
if _typing.TYPE_CHECKING:
    from ._async_client import AsyncClient
    from ._client import Client
    from ._config import (
        RateLimit,
        RateLimits,
        ResolvedConfig,
        Setting,
        resolve_config,
        resolve_credentials_dir,
        save_credentials,
    )
    from ._core._download import download_part_path
    from ._core._pages import PageCursor
    from ._core._redact import redact_url
    from ._credentials import SavedCredentials, write_credentials
    from ._exceptions import (
        AuthenticationError,
        ChanjingError,
        ConfigurationError,
        ContentRejectedError,
        CredentialsConflictError,
        CredentialsFileError,
        DownloadError,
        FileUnavailableError,
        InsecureBaseUrlError,
        InvalidRequestError,
        MissingCredentialsError,
        OutcomeUnknownError,
        QuotaExhaustedError,
        RateLimitError,
        ServerError,
        TaskFailedError,
        TransportError,
        WaitTimeoutError,
    )
    from ._models import (
        CreateLipSync,
        Download,
        FileDetail,
        FileStatus,
        MakeEvent,
        MakeResult,
        PageInfo,
        Task,
        TaskPage,
        TaskStatus,
        TtsConfig,
        UploadUrl,
        Voice,
    )
    from ._request import LipSyncRequest

_LAZY = {
    "AsyncClient": "._async_client",
    "Client": "._client",
    "RateLimit": "._config",
    "RateLimits": "._config",
    "ResolvedConfig": "._config",
    "Setting": "._config",
    "resolve_config": "._config",
    "resolve_credentials_dir": "._config",
    "save_credentials": "._config",
    "CredentialsConflictError": "._exceptions",
    "CredentialsFileError": "._exceptions",
    "InsecureBaseUrlError": "._exceptions",
    "MissingCredentialsError": "._exceptions",
    "AuthenticationError": "._exceptions",
    "ChanjingError": "._exceptions",
    "ConfigurationError": "._exceptions",
    "ContentRejectedError": "._exceptions",
    "DownloadError": "._exceptions",
    "FileUnavailableError": "._exceptions",
    "InvalidRequestError": "._exceptions",
    "OutcomeUnknownError": "._exceptions",
    "QuotaExhaustedError": "._exceptions",
    "RateLimitError": "._exceptions",
    "ServerError": "._exceptions",
    "TaskFailedError": "._exceptions",
    "TransportError": "._exceptions",
    "WaitTimeoutError": "._exceptions",
    "LipSyncRequest": "._request",
    "redact_url": "._core._redact",
    "download_part_path": "._core._download",
    "PageCursor": "._core._pages",
    "SavedCredentials": "._credentials",
    "write_credentials": "._credentials",
    "CreateLipSync": "._models",
    "Download": "._models",
    "FileDetail": "._models",
    "FileStatus": "._models",
    "MakeEvent": "._models",
    "MakeResult": "._models",
    "PageInfo": "._models",
    "Task": "._models",
    "TaskPage": "._models",
    "TaskStatus": "._models",
    "TtsConfig": "._models",
    "UploadUrl": "._models",
    "Voice": "._models",
}


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AsyncClient",
    "AuthenticationError",
    "ChanjingError",
    "Client",
    "ConfigurationError",
    "ContentRejectedError",
    "CreateLipSync",
    "CredentialsConflictError",
    "CredentialsFileError",
    "Download",
    "DownloadError",
    "FileDetail",
    "FileStatus",
    "FileUnavailableError",
    "InsecureBaseUrlError",
    "InvalidRequestError",
    "LipSyncRequest",
    "MakeEvent",
    "MakeResult",
    "MissingCredentialsError",
    "OutcomeUnknownError",
    "PageCursor",
    "PageInfo",
    "QuotaExhaustedError",
    "RateLimit",
    "RateLimitError",
    "RateLimits",
    "ResolvedConfig",
    "SavedCredentials",
    "ServerError",
    "Setting",
    "Task",
    "TaskFailedError",
    "TaskPage",
    "TaskStatus",
    "TransportError",
    "TtsConfig",
    "UploadUrl",
    "Voice",
    "WaitTimeoutError",
    "__version__",
    "download_part_path",
    "redact_url",
    "resolve_config",
    "resolve_credentials_dir",
    "save_credentials",
    "write_credentials",
]
