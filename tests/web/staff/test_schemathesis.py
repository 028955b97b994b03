"""Schemathesis against /openapi.json: generated requests never cause a server error."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings

from newsletter.models import Subscriber, SubscriberStatus
from newsletter.runtime import Runtime

schemathesis = pytest.importorskip("schemathesis")

# Few examples per operation keep this test to seconds; CI runs it on both databases.
EXAMPLES = 10
# A test send renders and inlines every language set: a few examples say enough.
SLOW_EXAMPLES = 3


def test_generated_api_requests_cause_no_server_error(
    app: FastAPI, runtime: Runtime, tokens: dict[str, str], edition: Any
) -> None:
    """Every API operation, fed generated input with an admin token on a seeded database,
    answers without a 5xx."""
    from schemathesis.checks import not_a_server_error

    with runtime.session() as session:
        session.add(Subscriber(email="seed@example.org", languages="be,en", status="active"))
        session.add(Subscriber(email="left@example.org", languages="ru", status="unsubscribed"))
    assert SubscriberStatus.active.value == "active"
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {tokens['ada']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    if importlib.util.find_spec("newsletter.messages") is None:  # test sends need rendering
        operations = [o for o in operations if not o.label.endswith("/test")]
    assert len(operations) >= 15

    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=SLOW_EXAMPLES if operation.label.endswith("/test") else EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        try:
            run()
        except Exception as exc:  # collect every failing operation, then report them all
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
