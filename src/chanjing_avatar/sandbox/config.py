"""Everything a sandbox can be told at start."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .._wire import RATE_LIMITS, UPLOAD_URL_TTL_S, RateLimit
from ..render.base import Renderer
from .faults import FaultRule

TOKEN_TTL_S = 24 * 3600


@dataclass(frozen=True)
class CallbackPolicy:
    """How task callbacks are delivered: ``attempts`` tries, waiting ``backoff_s`` × ``factor``^n
    (sandbox seconds) between them; a 2xx answer within ``timeout_s`` counts as delivered."""

    attempts: int = 4
    backoff_s: float = 1.0
    factor: float = 2.0
    timeout_s: float = 5.0
    connect_s: float = 2.0  # connecting gets at most this long (within timeout_s)
    senders: int = 4  # callbacks in flight at once (at most half of them on one target)


@dataclass(frozen=True)
class SandboxConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port (the embedded default)
    # The app that works out of the box; generated and kept in the data dir when not given.
    app_id: str | None = None
    secret_key: str | None = None
    extra_apps: Mapping[str, str] = field(default_factory=dict)  # app_id -> secret_key
    # Waits, in sandbox seconds (see ``time_scale``).
    file_sync_delay_s: float = 1.0
    task_min_duration_s: float = 0.0  # pace tasks to last at least this long, progress rising
    time_scale: float = 1.0  # >1 makes every sandbox wait shorter (10 min at 60 → 10 s)
    render_concurrency: int = 2
    probe_concurrency: int = 2
    # Rate limits per app_id: off entirely, counts multiplied by ``rate_limit_scale``, or one
    # bucket replaced (a RateLimit) or switched off (None) in ``rate_limits``.
    rate_limits_enabled: bool = True
    rate_limit_scale: float = 1.0
    rate_limits: Mapping[str, RateLimit | None] = field(default_factory=dict)
    token_ttl_s: float = TOKEN_TTL_S  # real seconds
    upload_url_ttl_s: float = UPLOAD_URL_TTL_S  # real seconds
    max_upload_bytes: int = 8 * 1024**3
    max_json_bytes: int = 1024 * 1024
    # Bounds on connections: a request head's bytes and header count and the real seconds a
    # client may take to send it (431 / closed after), connections at once (more get 503),
    # seconds an idle keep-alive connection is kept.
    max_head_bytes: int = 64 * 1024
    max_headers: int = 100
    head_timeout_s: float = 10.0
    max_connections: int = 1000
    keep_alive_s: float = 5.0
    callback: CallbackPolicy = field(default_factory=CallbackPolicy)
    # Callbacks to loopback, private and link-local addresses: refused unless allowed (for a
    # receiver on this machine, as in tests and the single-user embedded mode).
    callback_allow_private: bool = False
    faults_enabled: bool = False
    faults: Sequence[FaultRule] = ()
    fault_seed: int | None = None
    admin: bool = False  # serve the admin endpoints under /_sandbox
    # The bearer token the admin endpoints require (made up at each start when not given).
    admin_token: str | None = None
    # Admin endpoints on a host other than loopback: refused unless explicitly allowed.
    admin_remote: bool = False
    # A renderer instance or a name for render.get_renderer ("auto": the best available one).
    renderer: Renderer | str = "auto"
    public_url: str | None = None  # base of video_url etc. when behind a proxy
    access_log: bool = False
    # Shared backends (docs/deploy.md). None: SQLite and a folder under data_dir, in-process work.
    store_url: str | None = None  # postgresql://user@host/db: PostgreSQL + its job queue
    blobs_url: str | None = None  # s3://bucket/prefix: any S3-compatible object store
    s3_endpoint_url: str | None = None  # else AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3 / AWS's own
    s3_public_endpoint_url: str | None = None  # the endpoint put in presigned URLs, if different
    s3_region: str | None = None  # else AWS_REGION
    # A render whose worker is lost runs again; the task fails after this many starts.
    render_attempts: int = 3
    lost_after_s: float = 30.0  # real seconds without a worker heartbeat before its jobs move
    shutdown_grace_s: float = 20.0  # on SIGTERM, running work gets this long before handing back

    def limits(self) -> dict[str, RateLimit]:
        """The effective rate limits per bucket."""
        if not self.rate_limits_enabled:
            return {}
        out: dict[str, RateLimit] = {}
        for bucket, default in RATE_LIMITS.items():
            limit = self.rate_limits.get(bucket, default)
            if limit is None:
                continue
            count = max(1, round(limit.count * self.rate_limit_scale))
            out[bucket] = RateLimit(bucket, count, limit.period_s)
        return out
