"""A relay that refuses us (TLS or authentication) is not the readers' fault: the edition
pauses saying why, nobody is marked failed, and once the relay takes us `resume` sends each
reader one copy. Each relay is an aiosmtpd server in this process."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult
from dispatch_kit import WEEK, RecordingJobs, SlowHandler, free_port

from newsletter import dispatch
from newsletter.models import EditionStatus
from newsletter.runtime import Runtime

embedded = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def untrusted_tls(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A server context with a self-signed certificate no client trusts."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl makes the relay's certificate")
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


class _RefusingStartTls(SMTP):
    """Announces STARTTLS, then refuses it, as a relay with a broken TLS setup does."""

    async def smtp_STARTTLS(self, arg: str) -> None:
        await self.push("454 4.7.0 TLS not available due to temporary reason")


class _Relay(Controller):
    def __init__(self, smtp_class: type[SMTP], *args: Any, **kwargs: Any) -> None:
        self.smtp_class = smtp_class
        super().__init__(*args, **kwargs)

    def factory(self) -> SMTP:
        return self.smtp_class(self.handler, **self.SMTP_kwargs)


class _OAuthOnly(SlowHandler):
    """A relay whose only AUTH mechanism is one we do not speak (with LOGIN and PLAIN off)."""

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        return AuthResult(success=False, handled=False)


@contextmanager
def relay(
    smtp_class: type[SMTP] = SMTP, handler: SlowHandler | None = None, **options: Any
) -> Iterator[tuple[int, SlowHandler]]:
    """An aiosmtpd relay on a free port with these SMTP options: yields (port, handler)."""
    handler = handler or SlowHandler(0.0)
    port = free_port()
    controller = _Relay(smtp_class, handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield port, handler
    finally:
        controller.stop()


class Passwords:
    """An authenticator that refuses every password until told to accept."""

    def __init__(self) -> None:
        self.accept = False

    def __call__(self, server, session, envelope, mechanism, auth_data) -> AuthResult:  # type: ignore[no-untyped-def]
        # handled=False: aiosmtpd answers "535 5.7.8 Authentication credentials invalid".
        return AuthResult(success=self.accept, handled=False)


def _send(runtime: Runtime) -> dispatch.Progress:
    jobs = RecordingJobs()
    with runtime.session() as session:
        dispatch.start_send(session, runtime.settings, WEEK, jobs=jobs)
    jobs.run(runtime)
    with runtime.session() as session:
        return dispatch.progress(session, WEEK)


def _resume(runtime: Runtime) -> dispatch.Progress:
    jobs = RecordingJobs()
    with runtime.session() as session:
        dispatch.resume(session, WEEK, settings=runtime.settings, jobs=jobs)
    jobs.run(runtime)
    with runtime.session() as session:
        return dispatch.progress(session, WEEK)


@embedded
def test_authentication_refused_pauses_and_wait_exits_non_zero(cli, edition, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the relay answers 535 to our password: `send --wait` exits 1 with one line
    saying the edition is paused because authentication was refused, `status` says the same,
    nobody is failed and nothing was sent; the password is fixed at the relay, `resume`
    sends each reader exactly one copy."""
    readers(5)
    passwords = Passwords()
    with relay(authenticator=passwords, auth_require_tls=False) as (port, handler):
        env = {"NEWSLETTER_SMTP_URL": f"smtp://mailer:wrong@127.0.0.1:{port}?timeout=5"}
        sent = cli("send", "--week", WEEK, "--wait", env=env)
        assert sent.returncode == 1, sent.stdout + sent.stderr
        assert "Traceback" not in sent.stderr
        [line] = [x for x in sent.stderr.splitlines() if x.startswith("error:")]
        assert "2020-W05 is paused" in line and "SMTP authentication refused: 535" in line
        status = cli("status", "--week", WEEK, env=env)
        assert "paused — queued 5, sending 0, sent 0, failed 0" in status.stdout
        assert "SMTP authentication refused: 535" in status.stdout
        assert handler.copies() == {}
        passwords.accept = True
        resumed = cli("resume", "--week", WEEK, env=env)
        assert resumed.returncode == 0, resumed.stderr
    assert handler.copies() == {f"reader{i}@example.org": 1 for i in range(5)}
    assert "sent — queued 0, sending 0, sent 5, failed 0" in cli("status", "--week", WEEK).stdout


def test_no_authentication_we_can_speak_pauses_the_send(settings, engine, edition, readers) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the URL has a user, but the relay offers only XOAUTH2: no mechanism in
    common is our configuration's fault, not a reader's nor a passing outage: the edition
    pauses at once saying so, nobody failed, nothing sent."""
    readers(3)
    options = {"auth_require_tls": False, "auth_exclude_mechanism": ["LOGIN", "PLAIN"]}
    with relay(handler=_OAuthOnly(0.0), **options) as (port, handler):
        url = f"smtp://mailer:secret@127.0.0.1:{port}?timeout=5"
        p = _send(Runtime(replace(settings, smtp_url=url), _engine=engine))
    assert (p.status, p.queued, p.failed, p.sent) == (EditionStatus.paused, 3, 0, 0)
    assert p.reason == "SMTP authentication refused: No suitable authentication method found."
    assert handler.copies() == {}


def _starttls_refused(ctx: ssl.SSLContext) -> tuple[type[SMTP], dict[str, Any], str, str]:
    return _RefusingStartTls, {"tls_context": ctx}, "smtp", "454 4.7.0 TLS not available"


def _starttls_untrusted(ctx: ssl.SSLContext) -> tuple[type[SMTP], dict[str, Any], str, str]:
    return SMTP, {"tls_context": ctx}, "smtp", "CERTIFICATE_VERIFY_FAILED"


def _smtps_untrusted(ctx: ssl.SSLContext) -> tuple[type[SMTP], dict[str, Any], str, str]:
    return SMTP, {"ssl_context": ctx}, "smtps", "CERTIFICATE_VERIFY_FAILED"


def _smtps_to_plain(ctx: ssl.SSLContext) -> tuple[type[SMTP], dict[str, Any], str, str]:
    return SMTP, {}, "smtps", "WRONG_VERSION_NUMBER"


@pytest.mark.parametrize(
    "case", [_starttls_refused, _starttls_untrusted, _smtps_untrusted, _smtps_to_plain]
)
def test_tls_refused_or_failed_pauses_the_send(
    settings, engine, edition, readers, untrusted_tls, case: Callable[..., Any]
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: TLS with the relay cannot be had — it announces STARTTLS and then refuses
    it, its certificate is not trusted (STARTTLS or implicit TLS), or smtps:// meets a
    plain server: the edition pauses at once saying TLS failed and why; every delivery
    stays queued, none failed, nothing reached the relay."""
    smtp_class, options, scheme, detail = case(untrusted_tls)
    readers(4)
    with relay(smtp_class, **options) as (port, handler):
        url = f"{scheme}://127.0.0.1:{port}?timeout=5"
        p = _send(Runtime(replace(settings, smtp_url=url), _engine=engine))
    assert (p.status, p.queued, p.sending, p.failed, p.sent) == (EditionStatus.paused, 4, 0, 0, 0)
    assert p.reason and p.reason.startswith("TLS with the relay failed") and detail in p.reason
    assert handler.copies() == {}


def test_relay_demanding_authentication_pauses_then_resume_sends_once(
    settings, engine, edition, readers
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: the SMTP URL has no user but the relay wants one (530 at MAIL FROM): that
    is no reader's address, so nobody is failed; the edition pauses saying so, and after
    the URL gets its credentials `resume` sends each reader one copy."""
    readers(4)
    passwords = Passwords()
    passwords.accept = True
    with relay(authenticator=passwords, auth_require_tls=False, auth_required=True) as (
        port,
        handler,
    ):
        bare = Runtime(replace(settings, smtp_url=f"smtp://127.0.0.1:{port}"), _engine=engine)
        p = _send(bare)
        assert (p.status, p.queued, p.failed, p.sent) == (EditionStatus.paused, 4, 0, 0)
        assert p.reason and "530" in p.reason and "authentication" in p.reason
        with_user = f"smtp://mailer:secret@127.0.0.1:{port}"
        p = _resume(Runtime(replace(settings, smtp_url=with_user), _engine=engine))
    assert (p.status, p.sent, p.failed) == (EditionStatus.sent, 4, 0)
    assert handler.copies() == {f"reader{i}@example.org": 1 for i in range(4)}


def test_the_staff_area_shows_why_the_send_paused(
    settings, engine, edition, readers, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Scenario: after a 535 paused the send, the staff edition page says so, literally."""
    from fastapi.testclient import TestClient

    from newsletter import staff
    from newsletter.models import StaffRole
    from newsletter.web.app import create_app

    readers(2)
    with relay(authenticator=Passwords(), auth_require_tls=False) as (port, _handler):
        url = f"smtp://mailer:wrong@127.0.0.1:{port}"
        runtime = Runtime(replace(settings, smtp_url=url), _engine=engine)
        assert _send(runtime).status is EditionStatus.paused
    with runtime.session() as session:
        staff.create_staff(session, "erin", "correct horse battery staple", StaffRole.editor)
    app = create_app(runtime.settings, runtime=runtime)
    with TestClient(app, base_url="https://news.example.org", follow_redirects=False) as client:
        login = client.get("/admin/login")
        token = login.text.split('name="csrf_token" value="')[1].split('"')[0]
        answer = client.post(
            "/admin/login",
            data={"name": "erin", "password": "correct horse battery staple", "csrf_token": token},
        )
        assert answer.status_code == 303, answer.text
        page = client.get(f"/admin/editions/{WEEK}")
        progress = client.get(f"/admin/editions/{WEEK}/progress.json").json()
    assert page.status_code == 200
    assert "SMTP authentication refused: 535 5.7.8 Authentication credentials invalid" in page.text
    assert (progress["status"], progress["failed"], progress["queued"]) == ("paused", 0, 2)
