"""Staff-area fixtures: accounts of both roles, logged-in clients, API tokens, the sample week."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from newsletter.config import Settings
from newsletter.paths import sample_data_dir
from newsletter.runtime import Runtime

PASSWORD = "correct horse battery staple"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def api_token_text(result: object) -> str:
    """create_api_token's clear-text token, whether it returns it alone or with its row."""
    if isinstance(result, str):
        return result
    return next(item for item in result if isinstance(item, str))  # type: ignore[attr-defined]


@pytest.fixture
def held_jobs() -> list[tuple[str, dict[str, Any]]]:
    """Jobs published after commit, held as a broker holds them before a worker starts."""
    return []


@pytest.fixture
def runtime(
    settings: Settings, engine: Engine, held_jobs: list[tuple[str, dict[str, Any]]]
) -> Runtime:
    """The test runtime, its jobs published (after commit) into `held_jobs`, not run."""
    from newsletter.jobs import InProcessJobs

    jobs = InProcessJobs(lambda name, kwargs: held_jobs.append((name, dict(kwargs))))
    return Runtime(settings, _engine=engine, _jobs=jobs)


@pytest.fixture(scope="session")
def password_hashes() -> dict[str, str]:
    """Hashes made once by the real create_staff (argon2 is slow on purpose), reused after."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from newsletter.models import Base, StaffRole

    # Until the accounts module lands, the staff tests wait for it.
    create_staff = pytest.importorskip("newsletter.staff").create_staff

    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        hashes = {
            name: create_staff(session, name, PASSWORD, role).password_hash
            for name, role in (("ada", StaffRole.admin), ("erin", StaffRole.editor))
        }
    engine.dispose()
    return hashes


@pytest.fixture
def accounts(runtime: Runtime, password_hashes: dict[str, str]) -> dict[str, int]:
    """An admin "ada" and an editor "erin", both with PASSWORD."""
    from newsletter.models import StaffRole, StaffUser

    with runtime.session() as session:
        users = {
            name: StaffUser(
                name=name,
                password_hash=password_hashes[name],
                role=StaffRole.admin if name == "ada" else StaffRole.editor,
            )
            for name in ("ada", "erin")
        }
        session.add_all(users.values())
        session.flush()
        return {name: user.id for name, user in users.items()}


def session_cookie(runtime: Runtime, staff_id: int) -> str:
    """The cookie a successful login sets (the login itself is tested in test_auth.py)."""
    from newsletter import staff as staff_accounts
    from newsletter.models import StaffUser
    from newsletter.web.admin.session import _serializer, new_session

    with runtime.session() as session:
        user = session.get(StaffUser, staff_id)
        assert user is not None
        made = new_session(staff_accounts.start_login(session, user))
    return _serializer(runtime.settings).dumps({"c": made.csrf, "s": made.login})


@pytest.fixture
def make_client(app: FastAPI) -> Iterator[Callable[[], TestClient]]:
    """New browsers (each with its own cookie jar) on the app; redirects are not followed."""
    with ExitStack() as stack:

        def make() -> TestClient:
            return stack.enter_context(
                TestClient(app, base_url="https://news.example.org", follow_redirects=False)
            )

        yield make


def log_in(client: TestClient, name: str, password: str = PASSWORD) -> TestClient:
    page = client.get("/admin/login")
    response = client.post(
        "/admin/login",
        data={"name": name, "password": password, "csrf_token": csrf_of(page.text)},
    )
    assert response.status_code == 303, response.text
    return client


def _logged_in(client: TestClient, runtime: Runtime, staff_id: int) -> TestClient:
    client.cookies.set(
        "newsletter_staff",
        session_cookie(runtime, staff_id),
        domain="news.example.org",
        path="/admin",
    )
    return client


@pytest.fixture
def admin_client(
    make_client: Callable[[], TestClient], runtime: Runtime, accounts: dict[str, int]
) -> TestClient:
    return _logged_in(make_client(), runtime, accounts["ada"])


@pytest.fixture
def editor_client(
    make_client: Callable[[], TestClient], runtime: Runtime, accounts: dict[str, int]
) -> TestClient:
    return _logged_in(make_client(), runtime, accounts["erin"])


def form_csrf(client: TestClient, path: str = "/admin/editions") -> str:
    """The CSRF token of the client's session, read from a page it can open."""
    return csrf_of(client.get(path).text)


@pytest.fixture
def tokens(runtime: Runtime, accounts: dict[str, int]) -> dict[str, str]:
    """Bearer tokens of the admin and the editor."""
    from newsletter import staff as staff_accounts
    from newsletter.models import StaffUser

    with runtime.session() as session:
        return {
            name: api_token_text(
                staff_accounts.create_api_token(
                    session, session.get(StaffUser, staff_id), f"{name}'s script"
                )
            )
            for name, staff_id in accounts.items()
        }


@dataclass(frozen=True)
class EditionInfo:
    id: int
    week: str
    slugs: list[str]


@pytest.fixture
def edition(runtime: Runtime) -> EditionInfo:
    """The sample week 2020-W05, imported (all three languages)."""
    from newsletter.editions import import_edition_file

    with runtime.session() as session:
        imported = import_edition_file(session, sample_data_dir() / "2020-W05.yaml")
        return EditionInfo(imported.id, imported.week, [a.slug for a in imported.articles])


class Helpers:
    """What tests share without importing conftest (pytest runs with importlib)."""

    PASSWORD = PASSWORD
    csrf_of = staticmethod(csrf_of)
    form_csrf = staticmethod(form_csrf)
    log_in = staticmethod(log_in)


@pytest.fixture
def h() -> type[Helpers]:
    return Helpers
