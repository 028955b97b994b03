"""Staff accounts: argon2 passwords, unique names, API tokens kept only as hashes."""

from __future__ import annotations

import hashlib

import pytest
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST
from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter import staff
from newsletter.errors import Conflict, NotFound, ValidationError
from newsletter.models import ApiToken, StaffRole


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2's production cost is ~1 s on this machine; the rules do not depend on it."""
    monkeypatch.setattr(staff, "_hasher", PasswordHasher.from_parameters(CHEAPEST))


def test_create_and_authenticate(session: Session) -> None:
    """Scenario: an admin is created and logs in; a wrong password or name gets nothing."""
    user = staff.create_staff(session, "alice", "correct horse", StaffRole.admin)
    assert user.password_hash.startswith("$argon2id$") and "correct" not in user.password_hash
    assert staff.authenticate(session, "alice", "correct horse") is user
    assert staff.authenticate(session, "alice", "wrong horse!") is None
    assert staff.authenticate(session, "nobody", "correct horse") is None
    assert staff.authenticate(session, "alice", "") is None


def test_create_refuses_bad_input(session: Session) -> None:
    """Scenario: empty or short passwords, odd names and unknown roles are refused."""
    cases = [
        ("bob", "", "editor", "at least 8"),
        ("bob", "short", "editor", "at least 8"),
        ("", "long enough pw", "editor", "staff name"),
        ("bad name", "long enough pw", "editor", "staff name"),
        ("bob", "long enough pw", "owner", "unknown role"),
    ]
    for name, password, role, message in cases:
        with pytest.raises(ValidationError, match=message):
            staff.create_staff(session, name, password, role)
    assert staff.authenticate(session, "bob", "long enough pw") is None


def test_names_are_unique(session: Session) -> None:
    """Scenario: a second account with a taken name is a Conflict."""
    staff.create_staff(session, "carol", "long enough pw")
    with pytest.raises(Conflict):
        staff.create_staff(session, "carol", "another long pw", "admin")


def test_api_tokens_are_stored_only_as_hashes(session: Session) -> None:
    """Scenario: a token is shown once, works as a bearer token, and only its hash is kept."""
    user = staff.create_staff(session, "dave", "long enough pw")
    token = staff.create_api_token(session, user.id, "newsroom script")
    stored = session.scalars(select(ApiToken)).one()
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in stored.token_hash and stored.label == "newsroom script"
    assert staff.staff_for_api_token(session, token) is user
    assert stored.last_used_at is not None
    assert staff.staff_for_api_token(session, token[:-1] + "x") is None
    assert staff.staff_for_api_token(session, "") is None
    with pytest.raises(NotFound):
        staff.create_api_token(session, 999, "x")
    with pytest.raises(ValidationError):
        staff.create_api_token(session, user.id, " ")


def test_api_token_for_a_user_object(session: Session) -> None:
    """Scenario: the admin area passes the StaffUser itself; the token works the same."""
    user = staff.create_staff(session, "erin", "long enough pw")
    token = staff.create_api_token(session, user, "admin page")
    assert staff.staff_for_api_token(session, token) is user
