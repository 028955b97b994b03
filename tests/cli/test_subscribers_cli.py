"""`newsletter subscribers ...` and `newsletter staff ...` through the real entry point."""

from __future__ import annotations

import csv
import mailbox
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.models import Event, StaffUser, Subscriber, SubscriberStatus
from newsletter.subscriptions import add_subscriber, forget

SECRET = "test-secret-key-not-for-production"


def one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    """A refused command: non-zero exit and one clear line, never a traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_add_list_unsubscribe_forget(cli, session: Session) -> None:  # type: ignore[no-untyped-def]
    """Scenario: staff add a reader, list, unsubscribe and forget them; bad input is refused."""
    added = cli("subscribers", "add", "Ales@Example.org", "--lang", "be,en", "--name", "Алесь",
                "--confirmed")  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "added ales@example.org (active, be,en)" in added.stdout

    again = cli("subscribers", "add", "ales@example.org", "--lang", "ru")
    assert one_error_line(again) == (
        "error: ales@example.org is already on the list (active); nothing changed"
    )
    assert "not a valid email address" in one_error_line(
        cli("subscribers", "add", "not-an-address", "--lang", "be")
    )

    listed = cli("subscribers", "list", "--status", "active")
    assert listed.stdout == "ales@example.org\tactive\tbe,en\tАлесь\n"

    left = cli("subscribers", "unsubscribe", "ales@example.org")
    assert left.returncode == 0 and "unsubscribed ales@example.org" in left.stdout
    sub = session.scalars(select(Subscriber)).one()
    assert sub.status == SubscriberStatus.unsubscribed
    last = session.scalars(select(Event).order_by(Event.id.desc())).first()
    assert last is not None and (last.kind, last.source.value) == ("unsubscribed", "staff")

    gone = cli("subscribers", "forget", "ales@example.org")
    assert gone.returncode == 0, gone.stderr
    session.expire_all()
    assert session.scalars(select(Subscriber)).all() == []
    assert "no subscriber with address" in one_error_line(
        cli("subscribers", "forget", "ales@example.org")
    )


def test_import_and_export(cli, session: Session, settings: Settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a CSV import adds valid rows, skips present ones, reports each bad line."""
    add_subscriber(session, SECRET, "old@example.org", "ru", confirmed=True)
    add_subscriber(session, SECRET, "erased@example.org", "ru", confirmed=True)
    forget(session, SECRET, "erased@example.org")
    session.commit()
    source = tmp_path / "readers.csv"
    source.write_text(
        "\ufefflanguages,email,status,name\n"
        '"be,en",new@example.org,,Алесь\n'
        "ru,pending@example.org,pending,\n"
        "en,OLD@example.org,,\n"
        "be,bad-address,,\n"
        "be,erased@example.org,,\n"
        "be,other@example.org,gone,\n",
        encoding="utf-8",
    )
    result = cli("subscribers", "import", str(source))
    assert result.returncode == 1
    assert "imported 2" in result.stdout
    assert "skipped 1 already present, rejected 3" in result.stdout
    assert "line 5: not a valid email address" in result.stderr
    assert "line 6: erased@example.org was erased" in result.stderr
    assert "line 7: other@example.org: unknown status 'gone'" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    # The pending row was sent its double opt-in email (in-process job, Maildir outbox).
    outbox = mailbox.Maildir(settings.outbox, create=False)
    assert [m["To"] for m in outbox] == ["pending@example.org"]
    statuses = dict(session.execute(select(Subscriber.email, Subscriber.status)).all())
    assert statuses == {
        "old@example.org": SubscriberStatus.active,
        "new@example.org": SubscriberStatus.active,
        "pending@example.org": SubscriberStatus.pending,
    }

    target = tmp_path / "out.csv"
    exported = cli("subscribers", "export", str(target))
    assert exported.returncode == 0 and "exported 3" in exported.stdout
    with target.open(encoding="utf-8", newline="") as handle:
        rows = {row["email"]: row for row in csv.DictReader(handle)}
    assert list(next(iter(rows.values()))) == [
        "email", "name", "languages", "status", "subscribed", "confirmed"
    ]  # fmt: skip
    assert rows["new@example.org"]["languages"] == "be,en"
    assert rows["new@example.org"]["name"] == "Алесь"
    assert rows["new@example.org"]["confirmed"] and not rows["pending@example.org"]["confirmed"]

    assert "no such file" in one_error_line(cli("subscribers", "import", str(tmp_path / "x.csv")))


def test_staff_add_reads_the_password_from_stdin(cli, session: Session) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a script adds an admin with the password on stdin; bad input is refused."""
    made = cli("staff", "add", "ada", "--role", "admin", input="correct horse battery\n")
    assert made.returncode == 0, made.stderr
    user = session.scalars(select(StaffUser)).one()
    assert (user.name, user.role.value) == ("ada", "admin")
    assert user.password_hash.startswith("$argon2id$")
    assert "at least 8" in one_error_line(cli("staff", "add", "bob", input="short\n"))
    token = cli("staff", "token", "ada", "--label", "script")
    assert token.returncode == 0 and token.stdout.startswith("nl_")
