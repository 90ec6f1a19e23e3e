"""What every flow needs to know: where to send, who we are, the clocks, the policies."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ._decisions import PollPolicy, RetryPolicy


class TokenStore(Protocol):
    """The shared token file (see ``_credentials.CredentialsStore``)."""

    def signature(self) -> object | None: ...
    def read(self) -> StoredTokenLike | None: ...
    def write(self, token: str, expire_in: float) -> None: ...


class StoredTokenLike(Protocol):
    @property
    def token(self) -> str: ...
    @property
    def expire_in(self) -> float: ...


@dataclass(repr=False)
class TokenCache:
    """This client's copy of the token, and the file signature it was read at."""

    token: str | None = None
    expire_in: float = 0.0
    signature: object | None = None

    def __repr__(self) -> str:
        return f"TokenCache(token={'<set>' if self.token else None}, expire_in={self.expire_in})"


@dataclass
class Context:
    base_url: str
    app_id: str
    secret_key: str
    store: TokenStore
    clock: Callable[[], float]  # monotonic seconds (may be scaled): deadlines and polling
    wall: Callable[[], float]  # unix seconds: token expiry and send times
    rng: random.Random = field(default_factory=random.Random)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    poll: PollPolicy = field(default_factory=PollPolicy)
    file_poll: PollPolicy = field(
        default_factory=lambda: PollPolicy(first_s=1.0, growth=1.5, max_s=10.0)
    )
    cache: TokenCache = field(default_factory=TokenCache)

    def __repr__(self) -> str:
        return f"Context(base_url={self.base_url!r}, app_id={self.app_id!r})"

    def url(self, path: str) -> str:
        return self.base_url + path
