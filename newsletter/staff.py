"""Staff accounts: argon2 password hashes, logins held on the server, API bearer tokens.

Secrets (passwords, session secrets, API tokens) are stored only as hashes. Every change that
matters to security (a new password, disabling the account, a new role) ends the account's
logins at once; a disabled account's API tokens are refused until it is enabled again.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from newsletter.errors import Conflict, NotFound, ValidationError
from newsletter.models import ApiToken, StaffLogin, StaffRole, StaffUser, utcnow

MIN_PASSWORD_LENGTH = 8
# A login ends after this long without a request, and in any case after LOGIN_MAX_AGE.
LOGIN_IDLE = timedelta(hours=1)
LOGIN_MAX_AGE = timedelta(hours=12)
# last_seen_at is written at most this often: not one UPDATE per page view.
_TOUCH_EVERY = timedelta(minutes=1)
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


def _check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > 1000 or "\x00" in password:
        raise ValidationError("the password must be at most 1000 characters, without NUL")


def create_staff(
    session: Session, name: str, password: str, role: StaffRole | str = StaffRole.editor
) -> StaffUser:
    """A new staff account; Conflict if the name is taken."""
    name = _check_name(name)
    role = _check_role(role)
    _check_password(password)
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
    user = _by_name(session, name)
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password or "")
    except (VerificationError, InvalidHashError):
        return None
    if user is None or user.disabled_at is not None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(session: Session, staff_user: int | StaffUser, label: str) -> str:
    """A new bearer token, returned in clear this once; only its SHA-256 is kept."""
    staff_user_id = staff_user.id if isinstance(staff_user, StaffUser) else staff_user
    owner = session.get(StaffUser, staff_user_id)
    if owner is None:
        raise NotFound(f"no staff user with id {staff_user_id}")
    if owner.disabled_at is not None:
        raise Conflict(f"{owner.name} is disabled: enable the account first")
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
    if row.staff_user.disabled_at is not None:
        return None  # kept, and working again once the account is enabled
    row.last_used_at = utcnow()
    return row.staff_user


def _by_name(session: Session, name: str) -> StaffUser | None:
    """The account of that name; a name no account can have (NUL, look-alikes, too long) is
    nobody, without asking the database (PostgreSQL refuses NUL even in a query)."""
    name = (name or "").strip()
    if not _NAME.fullmatch(name):
        return None
    return session.scalar(select(StaffUser).where(StaffUser.name == name))


def get_staff(session: Session, name: str) -> StaffUser:
    user = _by_name(session, name)
    if user is None:
        raise NotFound(f"no staff user named {repr(name)[:70]}")
    return user


def list_staff(session: Session) -> list[StaffUser]:
    return list(session.scalars(select(StaffUser).order_by(StaffUser.name)))


# --- account changes: each ends the account's logins -------------------------------------


def end_logins(session: Session, user: StaffUser) -> int:
    """End every login of the account on the server; the number ended."""
    result = session.execute(delete(StaffLogin).where(StaffLogin.staff_user_id == user.id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def set_password(session: Session, name: str, password: str) -> StaffUser:
    user = get_staff(session, name)
    _check_password(password)
    user.password_hash = _hasher.hash(password)
    end_logins(session, user)
    return user


def _enabled_admins(session: Session) -> int:
    query = select(func.count()).where(
        StaffUser.role == StaffRole.admin, StaffUser.disabled_at.is_(None)
    )
    return int(session.scalar(query) or 0)


def _keep_an_admin(session: Session, user: StaffUser) -> None:
    """Refuse the change that would leave no enabled admin to manage accounts."""
    if user.role == StaffRole.admin and user.disabled_at is None and _enabled_admins(session) <= 1:
        raise Conflict(f"{user.name} is the last enabled admin; make another admin first")


def disable(session: Session, name: str) -> StaffUser:
    """No login, no session and no API token of the account works until it is enabled."""
    user = get_staff(session, name)
    _keep_an_admin(session, user)
    if user.disabled_at is None:
        user.disabled_at = utcnow()
    end_logins(session, user)
    return user


def enable(session: Session, name: str) -> StaffUser:
    user = get_staff(session, name)
    user.disabled_at = None
    return user


def set_role(session: Session, name: str, role: StaffRole | str) -> StaffUser:
    user = get_staff(session, name)
    role = _check_role(role)
    if role != user.role:
        _keep_an_admin(session, user)
        user.role = role
    end_logins(session, user)
    return user


# --- logins ------------------------------------------------------------------------------


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def start_login(session: Session, user: StaffUser) -> str:
    """A new login for the account; its secret (for the cookie) is returned, only a hash kept."""
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        StaffLogin(
            secret_hash=_secret_hash(secret),
            staff_user_id=user.id,
            created_at=now,
            last_seen_at=now,
        )
    )
    # Now and then drop logins that have run out, so the table stays small.
    if secrets.randbelow(50) == 0:
        session.execute(delete(StaffLogin).where(StaffLogin.last_seen_at < now - LOGIN_IDLE))
    session.flush()
    return secret


def login_user(session: Session, secret: str, now: datetime | None = None) -> StaffUser | None:
    """The account a login secret belongs to, while that login lasts; else None."""
    if not secret or len(secret) > 100:
        return None
    login = session.get(StaffLogin, _secret_hash(secret))
    if login is None:
        return None
    now = now or utcnow()
    user = session.get(StaffUser, login.staff_user_id)
    if (
        user is None
        or user.disabled_at is not None
        or now - login.last_seen_at > LOGIN_IDLE
        or now - login.created_at > LOGIN_MAX_AGE
    ):
        session.delete(login)
        return None
    if now - login.last_seen_at > _TOUCH_EVERY:
        login.last_seen_at = now
    return user


def end_login(session: Session, secret: str) -> None:
    """Logout: this login ends on the server, whatever the browser keeps."""
    if secret:
        session.execute(delete(StaffLogin).where(StaffLogin.secret_hash == _secret_hash(secret)))
