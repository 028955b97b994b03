"""Who is asking: the logged-in staff member, their role, and the CSRF check of every form."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Form, Request

from newsletter.models import StaffRole, StaffUser
from newsletter.web.admin.routing import Forbidden, LoginRequired, settings_of
from newsletter.web.admin.session import csrf_matches, read_session
from newsletter.web.deps import RuntimeDep, SessionDep

__all__ = ["AdminDep", "CsrfDep", "RuntimeDep", "SessionDep", "StaffDep"]


def current_staff(request: Request, session: SessionDep) -> StaffUser:
    """The logged-in staff member; anonymous visitors go to the login page."""
    from newsletter import staff as staff_accounts

    staff_session = read_session(request, settings_of(request))
    if staff_session.login is None:
        raise LoginRequired()
    # Held on the server: logout, a new password, disabling or a new role end it at once.
    user = staff_accounts.login_user(session, staff_session.login)
    if user is None:
        raise LoginRequired()
    request.state.staff = user
    return user


def admin_staff(user: Annotated[StaffUser, Depends(current_staff)]) -> StaffUser:
    """Only an admin sees subscribers and manages staff and API tokens."""
    if user.role != StaffRole.admin:
        raise Forbidden("Only an admin may open this page.")
    return user


def check_csrf(request: Request, csrf_token: Annotated[str | None, Form()] = None) -> None:
    """Every staff form carries the session's CSRF token in a hidden field."""
    if not csrf_matches(read_session(request, settings_of(request)), csrf_token):
        raise Forbidden("The form has expired or did not come from this site. Reload and retry.")


StaffDep = Annotated[StaffUser, Depends(current_staff)]
AdminDep = Annotated[StaffUser, Depends(admin_staff)]
CsrfDep = Annotated[None, Depends(check_csrf)]
