"""The sans-I/O core: every decision and multi-step flow of the client, with no network I/O.

Flows are generators that yield :class:`Send`, :class:`Sleep` and :class:`WithStoreLock`
effects; the drivers in ``_client.py`` (sync) and ``_async_client.py`` (async) carry them out.
"""

from ._context import Context, TokenCache
from ._decisions import PollPolicy, RetryPolicy
from ._effects import FileBody, Flow, Reply, Send, Sink, Sleep, WithStoreLock
from ._ratelimit import RateLimiter

__all__ = [
    "Context",
    "FileBody",
    "Flow",
    "PollPolicy",
    "RateLimiter",
    "Reply",
    "RetryPolicy",
    "Send",
    "Sink",
    "Sleep",
    "TokenCache",
    "WithStoreLock",
]
