"""Fixtures of the shared-backend tests: a fresh database and bucket per test (on the session's
PostgreSQL and SeaweedFS, tests/conftest.py), and deployments of API replicas and workers as
processes.

Tests skip, with the reason printed in the summary, when the machine cannot give a server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from .deploy import Deployment
from .services import Postgres, SeaweedS3, unique_name

_HERE = Path(__file__).parent


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if report.failed:  # type: ignore[attr-defined]
        item.stash[_FAILED] = True
    return report


_FAILED = pytest.StashKey[bool]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.scale)


@pytest.fixture
def pg_url(postgres: Postgres) -> str:
    return postgres.fresh_database()


@pytest.fixture
def bucket(s3: SeaweedS3) -> str:
    return s3.make_bucket(unique_name("b") + "-test")


@pytest.fixture(autouse=True)
def _show_logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """A failed test prints the logs of the deployment processes it used."""
    yield
    if request.node.stash.get(_FAILED, False) and "deployment_factory" in request.fixturenames:
        factory = request.getfixturevalue("deployment_factory")
        for deployment in factory.started:
            print(deployment.logs())


@pytest.fixture(scope="module")
def deployment_factory(
    postgres: Postgres, s3: SeaweedS3, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[type[Deployment]]:
    """``Deployment.start(...)`` for this test; every process is stopped afterwards."""
    started: list[Deployment] = []

    class Here(Deployment):
        started: ClassVar[list[Deployment]] = []

        @classmethod
        def fresh(cls, **options: object) -> Deployment:
            bucket = s3.make_bucket(unique_name("b") + "-test")
            deployment = cls(
                store_url=postgres.fresh_database(),
                blobs_url=f"s3://{bucket}/media",
                s3=s3,
                folder=tmp_path_factory.mktemp("deploy"),
                **options,  # type: ignore[arg-type]
            )
            started.append(deployment)
            cls.started.append(deployment)
            return deployment

    yield Here
    for deployment in reversed(started):
        deployment.stop_all()
