"""Mail-bombing through the subscribe form: limits on the normalised address, the daily
confirmation cap, IPv6 sources by /64, and counts shared by several web processes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from newsletter.db import make_engine
from newsletter.runtime import Runtime
from newsletter.web.app import create_app
from newsletter.web.ratelimit import Limit

# One mailbox, fifteen spellings a stranger might type: case, full-width and mathematical
# letters and look-alike full stops in the domain (the store keeps one form of them all).
SPELLINGS = [
    "victim@example.org",
    "VICTIM@example.org",
    "Victim@Example.Org",
    "vIcTiM@EXAMPLE.ORG",
    "victim@ｅｘａｍｐｌｅ.ｏｒｇ",
    "victim@𝐞𝐱𝐚𝐦𝐩𝐥𝐞.org",
    "victim@𝕖𝕩𝕒𝕞𝕡𝕝𝕖.org",
    "victim@example。org",
    "victim@example．org",
    "victim@example｡org",
    "VICTIM@ｅｘａｍｐｌｅ。ｏｒｇ",
    "Victim@𝐄𝐗𝐀𝐌𝐏𝐋𝐄.org",
    " victim@example.org ",
    "viCTIM@Example｡ORG",
    "victiM@𝚎𝚡𝚊𝚖𝚙𝚕𝚎.𝚘𝚛𝚐",
]


def post_from(app: FastAPI, ip: str, email: str, lang: str = "en") -> int:
    """One form submission from a client at `ip`."""
    with TestClient(app, base_url="https://news.example.org", client=(ip, 40000)) as browser:
        return browser.post(
            f"/{lang}/subscribe", data={"email": email, "languages": [lang]}
        ).status_code


def test_unicode_spellings_of_one_address_mail_it_once(app: FastAPI, state) -> None:  # type: ignore[no-untyped-def]
    """Scenario: 15 spellings of one address from 15 IPs: one confirmation email, no more."""
    codes = [post_from(app, f"203.0.113.{i}", email) for i, email in enumerate(SPELLINGS)]
    assert set(codes) <= {200, 429} and codes[:3] == [200, 200, 200]
    assert codes.count(200) == 3  # the per-address limit counts every spelling as one
    assert len(state.outbox("victim@example.org")) == 1
    assert state.subscriber("victim@example.org") == ("pending", "en")


def test_one_confirmation_a_day_whatever_the_source(app: FastAPI, state) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the same address asked for from three IPs, an hour apart or not: one email."""
    app.state.subscribe_limits.per_address = Limit(100, 3600)
    codes = [post_from(app, f"198.51.100.{i}", "reader@example.org") for i in range(5)]
    assert codes == [200] * 5  # the same answer each time: nothing to learn from it
    assert len(state.outbox("reader@example.org")) == 1
    assert post_from(app, "198.51.100.9", "other@example.org") == 200
    assert len(state.outbox("other@example.org")) == 1


def test_ipv6_clients_are_counted_by_their_64(app: FastAPI) -> None:
    """Scenario: one IPv6 client rotating through its /64 is one source; the next /64 is not."""
    app.state.subscribe_limits.per_ip = Limit(3, 3600)
    codes = [post_from(app, f"2001:db8:5:6::{i:x}", f"u{i}@example.org") for i in range(1, 5)]
    assert codes == [200, 200, 200, 429]
    assert post_from(app, "2001:db8:5:7::1", "u9@example.org") == 200


@pytest.fixture(params=["database", "redis"])
def two_processes(
    request: pytest.FixtureRequest, runtime: Runtime, db_url: str
) -> Iterator[tuple[FastAPI, FastAPI]]:
    """Two web apps on one database, each with its own engine, as two `serve` processes are."""
    settings = runtime.settings
    if request.param == "redis":
        settings = replace(settings, broker_url="redis://127.0.0.1:6379/14")
    engines: list[Engine] = [make_engine(db_url), make_engine(db_url)]
    apps = tuple(
        create_app(settings, runtime=Runtime(settings, _engine=e, _jobs=runtime.jobs))
        for e in engines
    )
    yield apps  # type: ignore[misc]
    for e in engines:
        e.dispose()


def test_limits_hold_across_web_processes(two_processes: tuple[FastAPI, FastAPI], state) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a flood spread over two web processes meets one limit, not one each."""
    first, second = two_processes
    for app in two_processes:
        app.state.subscribe_limits.per_address = Limit(2, 3600)
    codes = [
        post_from(app, "192.0.2.1", "shared@example.org") for app in (first, second, first, second)
    ]
    assert codes == [200, 200, 429, 429]
    assert len(state.outbox("shared@example.org")) == 1
