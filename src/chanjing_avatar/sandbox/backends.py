"""The store, blob store and queue a configuration asks for.

Embedded (no ``store_url``): SQLite and a folder under ``data_dir``, work in threads of this
process. Shared (``store_url`` = PostgreSQL): every API replica and worker reads the same rows,
counts rate limits together and queues work with Procrastinate; with ``blobs_url`` = ``s3://``
media lives in an object store that clients reach by presigned URL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .blobs import BlobStore, LocalBlobStore
from .clock import Clock
from .config import SandboxConfig
from .limits import Limiter, RateLimiter, SharedRateLimiter
from .store import Store


@dataclass
class Backends:
    store: Store
    blobs: BlobStore
    limiter: Limiter
    shared: bool  # several processes share the state: no in-process queue, no resume on start


def is_shared(config: SandboxConfig) -> bool:
    return bool(config.store_url)


def check_urls(config: SandboxConfig) -> str | None:
    """What is wrong with the backend URLs (one line), or None."""
    url = config.store_url
    if url is not None and not url.startswith(("postgresql://", "postgres://")):
        return "--store: use postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
    blobs = config.blobs_url
    if blobs is not None:
        if not blobs.startswith("s3://") or len(blobs) <= len("s3://"):
            return "--blobs: use s3://BUCKET[/PREFIX]"
        if url is None:
            return "--blobs s3://... needs --store postgresql://... (the state must be shared too)"
    return None


def open_blobs(config: SandboxConfig, patient: bool = False) -> BlobStore:
    if not config.blobs_url:
        return LocalBlobStore(Path(config.data_dir) / "blobs")
    from .blobs_s3 import S3BlobStore, S3Location

    endpoint = (
        config.s3_endpoint_url
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
        or None
    )
    where = S3Location.parse(
        config.blobs_url,
        endpoint_url=endpoint,
        region=config.s3_region,
        public_endpoint_url=config.s3_public_endpoint_url,
    )
    # A worker holding work rides out a short outage (standard retries back off up to 20 s).
    return S3BlobStore(where, Path(config.data_dir) / "blob-cache", attempts=8 if patient else 3)


def open_backends(
    config: SandboxConfig, clock: Clock, max_connections: int = 10, patient: bool = False
) -> Backends:
    """``patient``: calls wait out a short outage of the database or the object store (for
    workers, which hold work) instead of failing at once (API replicas answer 50000)."""
    problem = check_urls(config)
    if problem:
        raise ValueError(problem)
    if not config.store_url:
        from .store_sqlite import SqliteStore

        store: Store = SqliteStore(Path(config.data_dir) / "sandbox.db")
        limiter: Limiter = RateLimiter(config.limits(), clock.real)
        return Backends(store, open_blobs(config), limiter, shared=False)
    from .store_postgres import PostgresStore

    wait_s = max(60.0, 4 * config.lost_after_s) if patient else 5.0
    pg = PostgresStore(config.store_url, max_connections=max_connections, wait_s=wait_s)
    limiter = SharedRateLimiter(config.limits(), clock.real, pg.rate_hit)
    try:
        blobs = open_blobs(config, patient)
    except Exception:
        pg.close()
        raise
    return Backends(pg, blobs, limiter, shared=True)
