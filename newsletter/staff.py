"""Staff accounts: argon2 password hashes and API bearer tokens stored only as hashes."""

from __future__ import annotations

import hashlib
import re
import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from newsletter.errors import Conflict, NotFound, ValidationError
from newsletter.models import ApiToken, StaffRole, StaffUser, utcnow

MIN_PASSWORD_LENGTH = 8
TOKEN_PREFIX = "nl_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified when the name is unknown, so a wrong name costs as long as a wrong password."""
    return _hasher.hash(secrets.token_hex(16))


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not _NAME.fullmatch(name):
        raise ValidationError(
            "a staff name is 1-64 letters, digits or . _ @ - and starts with a letter or digit"
        )
    return name


def _check_role(role: StaffRole | str) -> StaffRole:
    try:
        return StaffRole(role)
    except ValueError as exc:
        raise ValidationError(f"unknown role {role!r} (choose editor or admin)") from exc


def create_staff(
    session: Session, name: str, password: str, role: StaffRole | str = StaffRole.editor
) -> StaffUser:
    """A new staff account; Conflict if the name is taken."""
    name = _check_name(name)
    role = _check_role(role)
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(select(StaffUser.id).where(StaffUser.name == name)) is not None:
        raise Conflict(f"a staff user named {name!r} already exists")
    user = StaffUser(name=name, password_hash=_hasher.hash(password), role=role)
    try:
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a staff user named {name!r} already exists") from exc
    return user


def authenticate(session: Session, name: str, password: str) -> StaffUser | None:
    """The staff user if the password is right, else None (no hint which part was wrong)."""
    user = session.scalar(select(StaffUser).where(StaffUser.name == (name or "").strip()))
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password or "")
    except (VerificationError, InvalidHashError):
        return None
    if user is None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(session: Session, staff_user: int | StaffUser, label: str) -> str:
    """A new bearer token, returned in clear this once; only its SHA-256 is kept."""
    staff_user_id = staff_user.id if isinstance(staff_user, StaffUser) else staff_user
    if session.get(StaffUser, staff_user_id) is None:
        raise NotFound(f"no staff user with id {staff_user_id}")
    label = (label or "").strip()
    if not label or len(label) > 100:
        raise ValidationError("a token label is 1-100 characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(staff_user_id=staff_user_id, label=label, token_hash=_token_hash(token)))
    session.flush()
    return token


def staff_for_api_token(session: Session, token: str) -> StaffUser | None:
    """The owner of a bearer token, or None; records when the token was last used."""
    if not token or not token.startswith(TOKEN_PREFIX):
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    if row is None:
        return None
    row.last_used_at = utcnow()
    return row.staff_user


def get_staff(session: Session, name: str) -> StaffUser:
    user = session.scalar(select(StaffUser).where(StaffUser.name == (name or "").strip()))
    if user is None:
        raise NotFound(f"no staff user named {name!r}")
    return user
