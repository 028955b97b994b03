"""The embedded demo: a whole week's send, in-process, into a Maildir in its own folder."""

from __future__ import annotations

import email
import email.policy
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy import select

from newsletter import dispatch, editions, migrate, subscriptions
from newsletter.config import Settings
from newsletter.errors import ConfigError, NewsletterError
from newsletter.languages import LANGUAGE_SETS
from newsletter.models import EditionStatus, EventSource, Subscriber, SubscriberStatus
from newsletter.paths import sample_data_dir
from newsletter.runtime import Runtime

MARKER = ".newsletter-demo"
SAMPLE_WEEK = "2020-W05"
# One reader per ordered language set; the name follows the primary language.
NAMES = {"be": "Алеся Каваль", "ru": "Ольга Петрова", "en": "Emily Carter"}
# Demo settings ignore these: the demo never touches a configured database, broker or server.
EMBEDDED_ONLY = ("DATABASE_URL", "BROKER_URL", "SMTP_URL", "OUTBOX", "SECRET_KEY")


@dataclass
class Delivered:
    email: str
    languages: str
    subject: str
    path: Path


@dataclass
class DemoReport:
    folder: Path
    week: str
    delivered: list[Delivered] = field(default_factory=list)
    not_sent: dict[str, str] = field(default_factory=dict)  # address -> status
    previews: dict[str, Path] = field(default_factory=dict)  # language set -> HTML file

    @property
    def outbox(self) -> Path:
        return self.folder / "outbox"

    @property
    def database(self) -> Path:
        return self.folder / "newsletter.db"


def demo_settings(folder: Path, environ: Mapping[str, str]) -> Settings:
    """Embedded settings rooted in the demo folder; presentation settings may come from env."""
    env = {
        k: v
        for k, v in environ.items()
        if k.startswith("NEWSLETTER_") and k.removeprefix("NEWSLETTER_") not in EMBEDDED_ONLY
    }
    env["NEWSLETTER_DATABASE_URL"] = f"sqlite:///{folder / 'newsletter.db'}"
    env["NEWSLETTER_OUTBOX"] = str(folder / "outbox")
    settings = Settings.from_env(env)
    return replace(settings, rate_limit=None)


def prepare_folder(folder: Path) -> Path:
    """Make the folder afresh; refuse to wipe a folder the demo did not make."""
    folder = folder.resolve()
    if folder.exists():
        if not (folder / MARKER).exists() and any(folder.iterdir()):
            raise ConfigError(f"{folder} exists and is not a demo folder: choose another --dir")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("made by `newsletter demo`; deleted by its next run\n")
    return folder


def run_demo(folder: Path, environ: Mapping[str, str]) -> DemoReport:
    """Import the sample week, add readers in every language set, send, and report."""
    folder = prepare_folder(folder)
    runtime = Runtime(demo_settings(folder, environ))
    try:
        migrate.upgrade(runtime.engine)
        with runtime.session() as session:
            editions.seed_topics(session)
            editions.import_edition_file(session, sample_data_dir() / f"{SAMPLE_WEEK}.yaml")
            _add_readers(session, runtime.settings)
        with runtime.session() as session:
            # In-process jobs run the batches when this session commits.
            dispatch.start_send(session, runtime.settings, SAMPLE_WEEK, jobs=runtime.jobs)
        with runtime.session() as session:
            done = dispatch.progress(session, SAMPLE_WEEK)
            if done.status != EditionStatus.sent:
                raise NewsletterError(
                    f"the demo send did not finish ({done.status}: {done.queued} queued, "
                    f"{done.failed} failed); see the log above"
                )
            report = _report(session, folder)
    finally:
        runtime.dispose()
    return report


def _add_readers(session, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    key = settings.secret_key
    for langs in LANGUAGE_SETS:
        address = f"reader-{'-'.join(langs)}@example.org"
        subscriptions.add_subscriber(
            session, key, address, langs, name=NAMES[langs[0]], confirmed=True
        )
    gone = subscriptions.add_subscriber(
        session, key, "former-reader@example.org", ("en",), name="Former Reader", confirmed=True
    )
    subscriptions.unsubscribe(session, gone.id, source=EventSource.staff)
    subscriptions.add_subscriber(
        session, key, "unconfirmed@example.org", ("ru",), name="Павел", confirmed=False
    )


def _report(session, folder: Path) -> DemoReport:  # type: ignore[no-untyped-def]
    report = DemoReport(folder=folder, week=SAMPLE_WEEK)
    languages = {s.email: s.languages for s in session.scalars(select(Subscriber))}
    preview_dir = folder / "preview"
    preview_dir.mkdir()
    for path in sorted((folder / "outbox" / "new").iterdir()):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        rcpt = str(message["Delivered-To"] or message["To"]).strip().lower()
        langs = languages.get(rcpt, "?")
        report.delivered.append(Delivered(rcpt, langs, str(message["Subject"]), path))
        if langs not in report.previews:
            html = message.get_body(preferencelist=("html",))
            if html is not None:
                target = preview_dir / f"{langs.replace(',', '-')}.html"
                target.write_text(html.get_content(), encoding="utf-8")
                report.previews[langs] = target
    report.delivered.sort(key=lambda d: (len(d.languages), d.languages))
    for sub in session.scalars(
        select(Subscriber).where(Subscriber.status != SubscriberStatus.active)
    ):
        report.not_sent[sub.email] = str(sub.status)
    return report
