"""Admin-only pages: staff accounts and API tokens (a new token is shown once)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from newsletter.errors import NotFound, ValidationError
from newsletter.models import ApiToken, StaffRole, StaffUser
from newsletter.web.admin.deps import AdminDep, CsrfDep, SessionDep
from newsletter.web.admin.routing import AdminRoute, redirect, render

router = APIRouter(route_class=AdminRoute)


def _page(request: Request, session: Session, **extra: object) -> Response:
    users = list(session.scalars(select(StaffUser).order_by(StaffUser.name)))
    tokens = list(session.scalars(select(ApiToken).order_by(ApiToken.created_at.desc())))
    context = {"users": users, "tokens": tokens, "roles": [r.value for r in StaffRole]}
    context.update(extra)
    return render(request, "admin/staff.html", context)


@router.get("/staff")
def staff_page(request: Request, session: SessionDep, admin: AdminDep) -> Response:
    return _page(request, session)


@router.post("/staff")
def add_staff(
    request: Request,
    session: SessionDep,
    admin: AdminDep,
    _csrf: CsrfDep,
    name: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    role: Annotated[StaffRole, Form()] = StaffRole.editor,
) -> Response:
    from newsletter import staff as staff_accounts

    if not name.strip() or not password:
        raise ValidationError("a staff account needs a name and a password")
    staff_accounts.create_staff(session, name.strip(), password, role)
    return redirect(request, "/admin/staff")


def _account(session: Session, staff_id: int) -> StaffUser:
    user = session.get(StaffUser, staff_id)
    if user is None:
        raise NotFound("no such staff account")
    return user


StaffId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post("/staff/{staff_id}/password")
def set_password(
    request: Request,
    staff_id: StaffId,
    session: SessionDep,
    admin: AdminDep,
    _csrf: CsrfDep,
    password: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """A new password for the account; every session of it ends (the admin's own too)."""
    from newsletter import staff as staff_accounts

    staff_accounts.set_password(session, _account(session, staff_id).name, password)
    return redirect(request, "/admin/staff")


@router.post("/staff/{staff_id}/role")
def set_role(
    request: Request,
    staff_id: StaffId,
    session: SessionDep,
    admin: AdminDep,
    _csrf: CsrfDep,
    role: Annotated[StaffRole, Form()] = StaffRole.editor,
) -> Response:
    from newsletter import staff as staff_accounts

    staff_accounts.set_role(session, _account(session, staff_id).name, role)
    return redirect(request, "/admin/staff")


@router.post("/staff/{staff_id}/disable")
def disable(
    request: Request, staff_id: StaffId, session: SessionDep, admin: AdminDep, _csrf: CsrfDep
) -> Response:
    from newsletter import staff as staff_accounts

    staff_accounts.disable(session, _account(session, staff_id).name)
    return redirect(request, "/admin/staff")


@router.post("/staff/{staff_id}/enable")
def enable(
    request: Request, staff_id: StaffId, session: SessionDep, admin: AdminDep, _csrf: CsrfDep
) -> Response:
    from newsletter import staff as staff_accounts

    staff_accounts.enable(session, _account(session, staff_id).name)
    return redirect(request, "/admin/staff")


@router.post("/tokens")
def create_token(
    request: Request,
    session: SessionDep,
    admin: AdminDep,
    _csrf: CsrfDep,
    label: Annotated[str, Form(max_length=100)] = "",
    staff_user_id: Annotated[int | None, Form()] = None,
) -> Response:
    from newsletter import staff as staff_accounts

    owner = session.get(StaffUser, staff_user_id) if staff_user_id else admin
    if owner is None:
        raise NotFound("no such staff account")
    if not label.strip() or "\x00" in label:
        raise ValidationError("give the token a label saying where it is used")
    token = staff_accounts.create_api_token(session, owner, label.strip())
    # Shown once, on this response only: only its hash is stored.
    return _page(request, session, new_token=token, new_token_label=label.strip())


@router.post("/tokens/{token_id}/revoke")
def revoke_token(
    request: Request,
    token_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    session: SessionDep,
    admin: AdminDep,
    _csrf: CsrfDep,
) -> Response:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound("no such API token")
    session.delete(token)
    return redirect(request, "/admin/staff")
