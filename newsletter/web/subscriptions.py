"""Subscribe, confirm, unsubscribe and preferences: the pages behind the links in our emails.

GET never changes anything (link scanners fetch every URL in an email); each change is a POST.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from newsletter import subscriptions
from newsletter.dispatch.welcome import welcome
from newsletter.errors import IllegalTransition, NotFound, SubscriptionError
from newsletter.errors import ValidationError as DomainValidationError
from newsletter.jobs import JobArg, Jobs
from newsletter.languages import LANGUAGES, parse_languages
from newsletter.models import EventSource, Subscriber, SubscriberStatus
from newsletter.tokens import TokenData, TokenPurpose
from newsletter.web.cached import PUBLIC, cached_page, html
from newsletter.web.deps import RuntimeDep, SessionDep
from newsletter.web.errors import N_
from newsletter.web.lang import request_language
from newsletter.web.pagecache import Rendered
from newsletter.web.pages import render, render_text
from newsletter.web.ratelimit import client_key

router = APIRouter()

PRIVATE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}
FORM_NAME = "web:subscribe"
ONE_CLICK = "One-Click"
MAX_EMAIL = 320
EXPORT_NAME = "my-newsletter-data.json"
CHECK_MAIL = "/{lang}/subscribed"  # the language switch of the "check your mail" page

FormStr = Annotated[str, Form()]
FormList = Annotated[list[str], Form()]


def check_lang(lang: str) -> str:
    if lang not in LANGUAGES:
        raise NotFound(f"no page in language {lang!r}")
    return lang


def chosen_languages(checked: list[str], first: str | None) -> tuple[str, ...]:
    """The ticked languages, the one chosen as first in front; ValidationError if none."""
    langs = [lang for lang in LANGUAGES if lang in checked]
    if first in langs:
        langs.remove(first)
        langs.insert(0, first)
    return parse_languages(langs)


# --- subscribe -----------------------------------------------------------------------------


@router.get("/{lang}/")
async def subscribe_page(request: Request, lang: str) -> Response:
    """The form, from the page cache: it holds nothing per visitor (no CSRF token: double
    opt-in and the rate limits guard the POST). Anything per visitor must not go into it."""
    check_lang(lang)

    def render() -> Rendered:
        form = {"languages": [lang], "first": lang}
        return html(render_text(request, "subscribe.html", lang, {"form": form}), PUBLIC)

    return await cached_page(request, render)


@router.get("/{lang}/subscribed")
async def check_mail_page(request: Request, lang: str) -> Response:
    """The "check your mail" page on its own address: where its language switch leads (the
    page itself answers a POST). The same words for everyone: it holds nothing personal."""
    check_lang(lang)

    def render() -> Rendered:
        return html(render_text(request, "subscribed.html", lang), PUBLIC)

    return await cached_page(request, render)


@router.post("/{lang}/subscribe")
def subscribe(
    request: Request,
    lang: str,
    session: SessionDep,
    runtime: RuntimeDep,
    email: FormStr = "",
    name: FormStr = "",
    languages: FormList = [],  # noqa: B006 - FastAPI copies defaults per request
    first: FormStr = "",
    website: FormStr = "",
) -> Response:
    """Start the double opt-in; the answer never says whether the address was known."""
    check_lang(lang)
    email, name = email.strip(), " ".join(name.split())
    form = {"email": email, "name": name, "languages": languages, "first": first or lang}
    if website:  # the honeypot: only bots fill a field people cannot see
        return render(request, "subscribed.html", lang, headers=PRIVATE, switch=CHECK_MAIL)

    problems: list[str] = []
    try:
        langs = chosen_languages(languages, first)
    except DomainValidationError:
        problems.append(N_("Choose at least one language."))
    if not email or len(email) > MAX_EMAIL or "@" not in email:
        problems.append(N_("Please enter a valid email address."))
    if len(name) > subscriptions.FORM_NAME_MAX:
        problems.append(N_("The name is too long."))
    else:
        try:
            subscriptions.form_name(name)
        except DomainValidationError:
            problems.append(
                N_(
                    "Please write only your name: letters, spaces, hyphens and apostrophes, "
                    "without links, addresses or digits."
                )
            )
    if problems:
        return _form_again(request, lang, form, problems)

    try:
        # Limits count the address as the store keeps it: Unicode spellings are one address.
        address = subscriptions.normalise_email(email)
    except DomainValidationError:
        return _form_again(request, lang, form, [N_("Please enter a valid email address.")])
    limiter, limits = request.app.state.rate_limiter, request.app.state.subscribe_limits
    secret = runtime.settings.secret_key
    ip = request.client.host if request.client else "unknown"
    if not limiter.hit("ip", client_key(ip), limits.per_ip) or not limiter.hit(
        "address", address, limits.per_address
    ):
        return render(request, "error.html", lang, _too_many(), status_code=429, headers=PRIVATE)
    # At most one confirmation email per address a day, whoever asks and from wherever.
    # Counted before the subscribe writes: on SQLite the limiter's own transaction would
    # otherwise wait for this request's.
    may_confirm = limiter.hit("confirmation", address, limits.confirmations)

    consent = subscriptions.Consent(
        form=FORM_NAME,
        page_lang=lang,
        user_agent=(request.headers.get("user-agent") or "")[:400] or None,
        ip=ip,
    )
    try:
        result = subscriptions.subscribe(
            session,
            secret,
            email,
            langs,
            name=name or None,
            consent=consent,
            confirmation=may_confirm,
        )
    except DomainValidationError:
        session.rollback()
        return _form_again(request, lang, form, [N_("Please enter a valid email address.")])
    except SubscriptionError:
        # An erased (suppressed) address: refused quietly, with the same answer as anyone,
        # and the same write (an event naming nobody), so in the same time.
        session.rollback()
        subscriptions.record_refused(session, EventSource.form)
        return render(request, "subscribed.html", lang, headers=PRIVATE, switch=CHECK_MAIL)
    response = render(request, "subscribed.html", lang, headers=PRIVATE, switch=CHECK_MAIL)
    if result.needs_confirmation and may_confirm:
        # Committed before the answer goes out; sent (embedded) or published (broker) only
        # after it: the answer must not take longer when an email is due.
        response.background = request.app.state.after_response.later(
            runtime.jobs.enqueue, None, "send_confirmation", subscriber_id=result.subscriber.id
        )
    return response


def _form_again(
    request: Request, lang: str, form: Mapping[str, object], problems: list[str]
) -> Response:
    return render(
        request,
        "subscribe.html",
        lang,
        {"form": form, "problems": problems},
        status_code=422,
        headers=PRIVATE,
    )


def _too_many() -> dict[str, object]:
    return {
        "status_code": 429,
        "title": N_("Too many attempts"),
        "text": N_("Please wait a while and try again."),
    }


# --- tokens --------------------------------------------------------------------------------


def _read(
    request: Request, session: Session, token: str, purpose: TokenPurpose
) -> tuple[TokenData, Subscriber]:
    """The token's data and the subscriber it acts on; TokenRevoked (a 410 page) when the
    subscription it was made for has been erased or started afresh since."""
    data: TokenData = request.app.state.signer.read(token, purpose)
    return data, subscriptions.token_holder(session, data)


def _page_lang(request: Request, subscriber: Subscriber) -> str:
    """?lang= (the language switch), else the subscriber's primary language, else the header.

    Kept on request.state so an error raised later speaks the same language."""
    lang = request_language(request, subscriber.primary_language)
    request.state.lang = lang
    return lang


def _on_link(token: str, page: str = "/unsubscribe/") -> str:
    """The language switch of a page answering a POST to a link: the link's own GET page."""
    return f"{page}{token}?lang={{lang}}"


# --- confirm -------------------------------------------------------------------------------


@router.get("/confirm/{token}")
def confirm_page(request: Request, token: str, session: SessionDep) -> Response:
    """The link in the confirmation email: a page with a button; fetching it confirms nothing."""
    _data, subscriber = _read(request, session, token, TokenPurpose.confirm)
    lang = _page_lang(request, subscriber)
    subscriber = _confirmable(subscriber)
    if subscriber.status == SubscriberStatus.active:
        return render(request, "confirmed.html", lang, headers=PRIVATE)
    return render(request, "confirm.html", lang, {"token": token}, headers=PRIVATE)


@router.post("/confirm/{token}")
def confirm(request: Request, token: str, session: SessionDep, runtime: RuntimeDep) -> Response:
    _data, subscriber = _read(request, session, token, TokenPurpose.confirm)
    lang = _page_lang(request, subscriber)
    subscriber = _confirmable(subscriber)
    welcomed = None
    deferred = DeferredJobs()
    if subscriber.status == SubscriberStatus.pending:
        subscriptions.confirm(session, subscriber.id, source=EventSource.link)
        # A new reader gets the latest edition, if recent: its delivery is planned in this
        # transaction, its job handed over once the answer is out (the page does not wait
        # for the rendering and the SMTP exchange; should the process stop first, the tick
        # enqueues the delivery).
        welcomed = welcome(session, runtime.settings, subscriber.id, deferred)
    response = render(
        request,
        "confirmed.html",
        lang,
        {"welcomed": welcomed},
        headers=PRIVATE,
        switch=_on_link(token, "/confirm/"),
    )
    if deferred.jobs:
        response.background = request.app.state.after_response.later(deferred.publish, runtime.jobs)
    return response


class DeferredJobs:
    """Jobs noted during a request and enqueued after its answer is sent."""

    def __init__(self) -> None:
        self.jobs: list[tuple[str, dict[str, JobArg]]] = []

    def enqueue(self, session: Session | None, name: str, **kwargs: JobArg) -> None:
        self.jobs.append((name, kwargs))

    def publish(self, jobs: Jobs) -> None:
        for name, kwargs in self.jobs:
            jobs.enqueue(None, name, **kwargs)


def _confirmable(subscriber: Subscriber) -> Subscriber:
    if subscriber.status not in (SubscriberStatus.pending, SubscriberStatus.active):
        # Left since: an old confirmation link must not quietly subscribe them again.
        raise IllegalTransition(f"a {subscriber.status} subscription cannot be confirmed")
    return subscriber


# --- unsubscribe and preferences -----------------------------------------------------------


@router.get("/unsubscribe/{token}")
def preferences_page(
    request: Request, token: str, session: SessionDep, saved: bool = False
) -> Response:
    """The List-Unsubscribe URL opened in a browser: the preference page, nothing changed."""
    _data, subscriber = _read(request, session, token, TokenPurpose.unsubscribe)
    lang = _page_lang(request, subscriber)
    return _preferences(request, lang, token, subscriber, saved=saved)


def _preferences(
    request: Request,
    lang: str,
    token: str,
    subscriber: Subscriber,
    *,
    saved: bool = False,
    problems: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "token": token,
        "subscriber": subscriber,
        "form": {
            "languages": list(subscriber.language_list),
            "first": subscriber.primary_language,
        },
        "saved": saved,
        "problems": problems or [],
    }
    return render(
        request,
        "preferences.html",
        lang,
        context,
        status_code=status_code,
        headers=PRIVATE,
        switch=_on_link(token),  # also after a POST that was refused (422)
    )


@router.post("/unsubscribe/{token}")
def unsubscribe(
    request: Request,
    token: str,
    session: SessionDep,
    list_unsubscribe: Annotated[str, Form(alias="List-Unsubscribe")] = "",
) -> Response:
    """Unsubscribe at once: our button, or RFC 8058's one-click POST (no cookie, no CSRF)."""
    data, subscriber = _read(request, session, token, TokenPurpose.unsubscribe)
    lang = _page_lang(request, subscriber)
    source = EventSource.one_click if list_unsubscribe == ONE_CLICK else EventSource.link
    subscriptions.unsubscribe(session, subscriber.id, source=source, edition_id=data.edition_id)
    return render(
        request,
        "unsubscribed.html",
        lang,
        {"token": token},
        headers=PRIVATE,
        switch=_on_link(token),
    )


@router.post("/unsubscribe/{token}/preferences")
def change_preferences(
    request: Request,
    token: str,
    session: SessionDep,
    languages: FormList = [],  # noqa: B006 - FastAPI copies defaults per request
    first: FormStr = "",
) -> Response:
    data, subscriber = _read(request, session, token, TokenPurpose.unsubscribe)
    lang = _page_lang(request, subscriber)
    try:
        langs = chosen_languages(languages, first)
    except DomainValidationError:
        problem = N_("Choose at least one language.")
        return _preferences(request, lang, token, subscriber, problems=[problem], status_code=422)
    subscriptions.change_languages(
        session, subscriber.id, langs, source=EventSource.link, edition_id=data.edition_id
    )
    # Post/redirect/get: a reload shows the page instead of posting again.
    return RedirectResponse(
        f"/unsubscribe/{token}?lang={lang}&saved=1", status_code=303, headers=PRIVATE
    )


@router.post("/unsubscribe/{token}/export")
def export(request: Request, token: str, session: SessionDep) -> Response:
    """Everything held about the subscriber, as a JSON download (the download is noted)."""
    data, subscriber = _read(request, session, token, TokenPurpose.unsubscribe)
    _page_lang(request, subscriber)  # an error from here on speaks the reader's language
    subscriptions.record_export(
        session, subscriber.id, source=EventSource.link, edition_id=data.edition_id
    )
    held = subscriptions.export_data(session, subscriber.id)
    body = json.dumps(held, ensure_ascii=False, indent=2, default=str)
    return Response(
        body,
        media_type="application/json; charset=utf-8",
        headers={
            **PRIVATE,
            "Content-Disposition": 'attachment; filename="my-newsletter-data.json"',
        },
    )


@router.post("/unsubscribe/{token}/erase")
def erase(
    request: Request,
    token: str,
    session: SessionDep,
    runtime: RuntimeDep,
    confirm: FormStr = "",
) -> Response:
    """Erase the subscriber (as `subscribers forget` does); asks for a ticked box first."""
    data, subscriber = _read(request, session, token, TokenPurpose.unsubscribe)
    lang = _page_lang(request, subscriber)
    if confirm != "yes":
        problem = N_("Tick the box to confirm that all your data should be erased.")
        return _preferences(request, lang, token, subscriber, problems=[problem], status_code=422)
    subscriptions.forget(
        session,
        runtime.settings.secret_key,
        subscriber.id,
        source=EventSource.link,
        edition_id=data.edition_id,
    )
    return render(request, "erased.html", lang, headers=PRIVATE)
