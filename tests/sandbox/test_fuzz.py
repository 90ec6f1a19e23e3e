"""Schema-driven fuzzing over the published OpenAPI document: bad input never gives a 5xx or a
traceback. Valid and invalid data (schemathesis "all" modes) hit every described operation with a
valid token; create bodies get real file ids and a real voice now and then, to reach deep rules."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig

from chanjing_avatar import _wire
from chanjing_avatar.sandbox import Sandbox

from .api import Api
from .conftest import VOICE, Factory
from .stub import stub_renderer

EXAMPLES = 30


@pytest.fixture
def fuzz_target(sandbox_factory: Factory, tiny_video: Path, tiny_audio: Path) -> Iterator[Any]:
    sb: Sandbox = sandbox_factory(
        renderer=stub_renderer(step_s=0),
        rate_limits_enabled=False,
        max_json_bytes=64 * 1024,
        max_upload_bytes=64 * 1024,
    )
    client = Api(sb)
    client.login()
    ids = {
        "video_file_id": client.ready_file("lip_sync_video", tiny_video),
        "audio_file_id": client.ready_file("lip_sync_audio", tiny_audio),
    }
    doc = httpx.get(sb.base_url + "/openapi.json").json()
    yield sb, client.token, ids, doc
    client.close()


def _fuzzable(doc: dict[str, Any]) -> dict[str, Any]:
    """The public API without the token parameter: the test sends a valid token (a fuzzed one
    would only ever reach 10400). Admin endpoints are left out: they reconfigure the server."""
    doc = copy.deepcopy(doc)
    doc["paths"] = {p: ops for p, ops in doc["paths"].items() if not p.startswith("/_sandbox")}
    for operations in doc["paths"].values():
        for operation in operations.values():
            params = operation.get("parameters", [])
            operation["parameters"] = [p for p in params if p["name"] != _wire.TOKEN_HEADER]
    return doc


def _schema(sb: Sandbox, doc: dict[str, Any]) -> Any:
    config = SchemathesisConfig.from_dict({"base-url": sb.base_url})
    return schemathesis.openapi.from_dict(_fuzzable(doc), config=config)


def _prepare(case: Any, ids: dict[str, str]) -> None:
    body = case.body
    if case.operation.path == _wire.PATH_LIPSYNC_CREATE and isinstance(body, dict):
        # Real ids (where the generator made the field a string) reach the rules past lookups.
        for field, file_id in ids.items():
            if isinstance(body.get(field), str):
                body[field] = file_id
        body.pop("callback", None)  # no deliveries to made-up hosts
        tts = body.get("tts_config")
        if isinstance(tts, dict) and isinstance(tts.get("audio_man_id"), str):
            tts["audio_man_id"] = VOICE


def _check(case: Any, response: Any) -> None:
    label = case.operation.label
    assert response.status_code < 500, (label, response.text[:500])
    assert "Traceback" not in response.text, label
    content_type = response.headers.get("content-type", [""])[0]
    json_answer = content_type.startswith("application/json")
    if json_answer and case.operation.path.startswith("/open/v1/"):
        envelope = response.json()
        assert set(envelope) == {"trace_id", "code", "msg", "data"}, (label, envelope)
        assert envelope["code"] in {int(c) for c in _wire.Code}, (label, envelope)
    case.validate_response(response, checks=[not_a_server_error])


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors(fuzz_target: Any, mode: GenerationMode) -> None:
    sb, token, ids, doc = fuzz_target
    schema = _schema(sb, doc)
    labels: list[str] = []
    unsatisfiable: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        labels.append(operation.label)

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,  # the same cases every run: a failure is reproducible
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            _prepare(case, ids)
            response = case.call(base_url=sb.base_url, headers={_wire.TOKEN_HEADER: token})
            _check(case, response)

        try:
            run()
        except Unsatisfiable:
            # Some operations have no invalid form (e.g. any string is a valid path segment).
            assert mode == GenerationMode.NEGATIVE, operation.label
            unsatisfiable.append(operation.label)
    assert len(labels) >= 10, labels
    assert len(unsatisfiable) <= 3, unsatisfiable
    assert sb.admin.count(code="http_500") == 0
    if mode == GenerationMode.POSITIVE:  # the real ids took some bodies all the way through
        assert sb.admin.count("lipsync_create", 0) > 0
