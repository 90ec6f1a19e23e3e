"""The sans-I/O core: every decision and multi-step flow of the client, with no network I/O.

Flows are generators that yield :class:`Send`, :class:`Sleep` and :class:`Locked` effects; the
drivers in ``_client.py`` (sync) and ``_async_client.py`` (async) carry them out.
"""

from ._context import Context, TokenCache
from ._decisions import PollPolicy, RetryPolicy
from ._effects import FileBody, Flow, Locked, Reply, Send, Sink, Sleep
from ._ratelimit import RateLimiter

__all__ = [
    "Context",
    "FileBody",
    "Flow",
    "Locked",
    "PollPolicy",
    "RateLimiter",
    "Reply",
    "RetryPolicy",
    "Send",
    "Sink",
    "Sleep",
    "TokenCache",
]
