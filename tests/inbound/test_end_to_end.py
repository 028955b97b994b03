"""End to end: an edition goes out through the SMTP test server with a VERP envelope sender
per reader; a DSN, a complaint, an auto-reply and a mailed unsubscribe come back to
`newsletter inbound --listen`; the next edition reaches only the readers still wanted."""

from __future__ import annotations

import email
import re
import smtplib
import socket
import subprocess
import sys
import time
from dataclasses import replace
from email.policy import default as default_policy
from pathlib import Path

import pytest
from sqlalchemy import Engine

from newsletter import dispatch
from newsletter.config import Settings
from newsletter.models import EditionStatus, Subscriber, SubscriberStatus
from newsletter.paths import sample_data_dir
from newsletter.runtime import Runtime

FIXTURES = Path(__file__).parent / "fixtures"
INBOUND = "inbound@news.example.org"
VERP_RE = re.compile(r"^inbound\+[a-z2-7]{47}@news\.example\.org$")


def fill(name: str, **values: str) -> bytes:
    values.setdefault("to", INBOUND)
    return ((FIXTURES / name).read_text() % values).replace("\n", "\r\n").encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def send_week(runtime: Runtime, week: str) -> None:
    """Start the send and tick until it is done, as beat would."""
    with runtime.session() as session:
        dispatch.start_send(session, runtime.settings, week, jobs=runtime.jobs)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with runtime.session() as session:
            dispatch.tick(session, runtime.settings, runtime.jobs, idle_after=0)
            if dispatch.progress(session, week).status is not EditionStatus.sending:
                return
        time.sleep(0.2)
    raise AssertionError(f"{week} still sending")


class InboundProcess:
    """`newsletter inbound --listen 127.0.0.1:PORT` in a subprocess."""

    def __init__(self, env: dict[str, str], cwd: Path, port: int) -> None:
        self.port = port
        self.process = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "inbound", "--listen", f"127.0.0.1:{port}"],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert "receiving mail for inbound@news.example.org" in line, (
            line + self.process.stderr.read()  # type: ignore[union-attr]
        )

    def mail(self, sender: str, recipient: str, raw: bytes) -> None:
        with smtplib.SMTP("127.0.0.1", self.port) as smtp:
            assert smtp.sendmail(sender, [recipient], raw) == {}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.mark.slow
def test_what_comes_back_decides_who_gets_the_next_edition(  # type: ignore[no-untyped-def]
    settings: Settings, engine: Engine, smtp_server, env_for, tmp_path: Path
) -> None:
    """Scenario: five readers get W05, each from their own return path; one bounces, one
    complains, one is away (auto-reply), one mails the unsubscribe address; W06 goes to the
    away reader and the quiet one only. The server refuses a foreign recipient."""
    from newsletter.editions import import_edition_file
    from newsletter.subscriptions import add_subscriber

    url, handler = smtp_server
    settings = replace(settings, smtp_url=url, inbound_address=INBOUND)
    runtime = Runtime(settings, _engine=engine)
    sample = (sample_data_dir() / "2020-W05.yaml").read_text()
    (tmp_path / "w06.yaml").write_text(sample.replace("week: 2020-W05", "week: 2020-W06", 1))
    names = ("bounced", "complained", "away", "leaving", "quiet")
    with runtime.session() as session:
        import_edition_file(session, sample_data_dir() / "2020-W05.yaml")
        import_edition_file(session, tmp_path / "w06.yaml")
        ids = {
            n: add_subscriber(
                session, settings.secret_key, f"{n}@example.net", "en", confirmed=True
            ).id
            for n in names
        }

    send_week(runtime, "2020-W05")
    sent = {rcpts[0]: (sender, content) for sender, rcpts, content in handler.messages}
    assert set(sent) == {f"{n}@example.net" for n in names}
    senders = {rcpt: sender for rcpt, (sender, _) in sent.items()}
    assert all(VERP_RE.match(s) for s in senders.values()), senders
    assert len(set(senders.values())) == 5  # one return path per reader
    headers = {
        rcpt: email.message_from_bytes(content, policy=default_policy)
        for rcpt, (_, content) in sent.items()
    }

    def about(name: str) -> dict[str, str]:
        rcpt = f"{name}@example.net"
        return {
            "rcpt": rcpt,
            "rcpt_local": name,
            "return_path": senders[rcpt],
            "message_id": headers[rcpt]["Message-ID"],
        }

    mailto = re.search(
        r"<mailto:([^?>]+)\?subject=unsubscribe>",
        headers["leaving@example.net"]["List-Unsubscribe"],
    )
    assert mailto is not None and mailto.group(1).startswith("inbound+")

    inbound = InboundProcess(
        {**env_for(settings), "NEWSLETTER_INBOUND_ADDRESS": INBOUND}, tmp_path, free_port()
    )
    try:
        bounced = about("bounced")
        inbound.mail("", bounced["return_path"], fill("postfix_hard.eml", **bounced))
        complained = about("complained")
        inbound.mail("", INBOUND, fill("arf_abuse.eml", **complained))  # a feedback loop
        away = about("away")
        inbound.mail("", away["return_path"], fill("autoreply.eml", **away))
        leaving = about("leaving")
        inbound.mail("leaving@example.net", mailto.group(1), fill("unsubscribe.eml", **leaving))
        with smtplib.SMTP("127.0.0.1", inbound.port) as smtp:
            smtp.ehlo()
            smtp.mail("spammer@example.com")
            assert smtp.rcpt("victim@example.org")[0] == 550  # never a relay
    finally:
        inbound.stop()

    with runtime.session() as session:
        status = {n: session.get_one(Subscriber, i).status for n, i in ids.items()}
    assert status == {
        "bounced": SubscriberStatus.bounced,
        "complained": SubscriberStatus.complained,
        "away": SubscriberStatus.active,
        "leaving": SubscriberStatus.unsubscribed,
        "quiet": SubscriberStatus.active,
    }

    handler.messages.clear()
    send_week(runtime, "2020-W06")
    assert sorted(r for _, rcpts, _ in handler.messages for r in rcpts) == [
        "away@example.net",
        "quiet@example.net",
    ]
