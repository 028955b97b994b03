"""Staff actions on a week's send: test, now, schedule, pause, resume, cancel, progress."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from sqlalchemy.orm import Session
from starlette.responses import JSONResponse, Response

from newsletter.config import Settings
from newsletter.errors import ValidationError
from newsletter.languages import parse_fallback
from newsletter.runtime import Runtime
from newsletter.web.admin.deps import CsrfDep, RuntimeDep, SessionDep, StaffDep
from newsletter.web.admin.editions import load_edition
from newsletter.web.admin.routing import AdminRoute, redirect, render

router = APIRouter(route_class=AdminRoute)


def parse_local_time(text: str, settings: Settings, *, now: datetime | None = None) -> datetime:
    """A schedule time typed by staff: ISO 8601, read in the configured time zone without an
    offset; it must lie in the future (and within a sane range)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValidationError(f"not a date and time: {text!r} (use 2020-02-03T09:00)") from exc
    if not 2000 <= moment.year <= 2999:
        raise ValidationError("the schedule time must be a date in this millennium")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=settings.tz)
    if moment <= (now or datetime.now(UTC)):
        raise ValidationError("the schedule time is in the past")
    return moment


def fallback_of(value: str | None) -> str | None:
    return parse_fallback(value)  # the one rule for a fallback language, everywhere


def progress_dict(progress: Any) -> dict[str, Any]:
    """The Progress of dispatch as plain JSON, with the share already done."""
    fields = ("queued", "sending", "sent", "failed", "skipped", "total")
    data: dict[str, Any] = {name: int(getattr(progress, name, 0) or 0) for name in fields}
    status = getattr(progress, "status", "")
    data["status"] = getattr(status, "value", status)
    done = data["sent"] + data["failed"] + data["skipped"]
    data["done"] = done
    data["percent"] = round(100 * done / data["total"], 1) if data["total"] else 0.0
    data["planning"] = bool(getattr(progress, "planning", False))
    return data


@router.post("/editions/{week}/test")
def test_send(
    request: Request,
    week: str,
    session: SessionDep,
    runtime: RuntimeDep,
    staff: StaffDep,
    _csrf: CsrfDep,
    to: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    from newsletter import dispatch

    edition = load_edition(session, week)
    if not to.strip():
        raise ValidationError("give an address for the test email")
    sets = dispatch.send_test(
        session, runtime.settings, edition.week, to.strip(), runtime.transport
    )
    copies = "; ".join(",".join(langs) for langs in sets)
    message = (
        f"A test email of {edition.week} went to {to.strip()}: "
        f"{len(sets)} {'copy' if len(sets) == 1 else 'copies'}, one per language set ({copies}), "
        "each marked [TEST]."
    )
    return render(request, "admin/done.html", {"edition": edition, "message": message})


@router.get("/editions/{week}/send")
def confirm_send(
    request: Request,
    week: str,
    session: SessionDep,
    staff: StaffDep,
    fallback: str | None = None,
) -> Response:
    """The page "Send now" leads to: who gets it in which languages, which texts are missing."""
    from newsletter.audience import send_outlook

    edition = load_edition(session, week)
    outlook = send_outlook(session, edition, fallback_of(fallback))
    return render(request, "admin/confirm_send.html", {"edition": edition, "outlook": outlook})


@router.post("/editions/{week}/send")
def send_now(
    request: Request,
    week: str,
    session: SessionDep,
    runtime: RuntimeDep,
    staff: StaffDep,
    _csrf: CsrfDep,
    fallback: Annotated[str | None, Form()] = None,
    confirmed: Annotated[str | None, Form()] = None,
) -> Response:
    from newsletter import dispatch

    edition = load_edition(session, week)
    if confirmed != "yes":
        # Only the confirmation page's button sends; anything else is shown that page first.
        query = f"?fallback={fallback_of(fallback)}" if fallback else ""
        return redirect(request, f"/admin/editions/{edition.week}/send{query}")
    dispatch.start_send(
        session,
        runtime.settings,
        edition.week,
        fallback_language=fallback_of(fallback),
        jobs=runtime.jobs,
    )
    return redirect(request, f"/admin/editions/{edition.week}/progress")


@router.post("/editions/{week}/schedule")
def schedule(
    request: Request,
    week: str,
    session: SessionDep,
    runtime: RuntimeDep,
    staff: StaffDep,
    _csrf: CsrfDep,
    at: Annotated[str, Form(max_length=64)] = "",
    fallback: Annotated[str | None, Form()] = None,
) -> Response:
    from newsletter import dispatch

    edition = load_edition(session, week)
    moment = parse_local_time(at, runtime.settings)
    dispatch.start_send(
        session,
        runtime.settings,
        edition.week,
        at=moment,
        fallback_language=fallback_of(fallback),
        jobs=runtime.jobs,
    )
    return redirect(request, f"/admin/editions/{edition.week}")


def control(name: str, session: Session, runtime: Runtime, week: str) -> None:
    """Pause, resume, cancel or retry the failed; a resumed send has its remaining batches
    queued at once."""
    from newsletter import dispatch

    if name == "resume":
        dispatch.resume(session, week, settings=runtime.settings, jobs=runtime.jobs)
    elif name == "retry":  # queue the failed deliveries again
        dispatch.retry_failed(session, week, settings=runtime.settings, jobs=runtime.jobs)
    else:
        getattr(dispatch, name)(session, week)


def _control(name: str) -> Any:
    def action(
        request: Request,
        week: str,
        session: SessionDep,
        runtime: RuntimeDep,
        staff: StaffDep,
        _csrf: CsrfDep,
    ) -> Response:
        edition = load_edition(session, week)
        control(name, session, runtime, edition.week)
        target = "progress" if name == "resume" else ""
        return redirect(request, f"/admin/editions/{edition.week}/{target}".rstrip("/"))

    action.__name__ = f"{name}_send"
    action.__doc__ = f"{name.capitalize()} the week's send."
    return action


for _name in ("pause", "resume", "cancel", "retry"):
    router.add_api_route(f"/editions/{{week}}/{_name}", _control(_name), methods=["POST"])


@router.get("/editions/{week}/progress")
def progress_page(request: Request, week: str, session: SessionDep, staff: StaffDep) -> Response:
    from newsletter import dispatch

    edition = load_edition(session, week)
    data = progress_dict(dispatch.progress(session, edition.week))
    return render(request, "admin/progress.html", {"edition": edition, "progress": data})


@router.get("/editions/{week}/progress.json")
def progress_json(request: Request, week: str, session: SessionDep, staff: StaffDep) -> Response:
    from newsletter import dispatch

    edition = load_edition(session, week)
    data = progress_dict(dispatch.progress(session, edition.week))
    return JSONResponse(data, headers={"Cache-Control": "no-store"})
