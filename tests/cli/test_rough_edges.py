"""The CLI's first-day rough edges: each refusal is one line, each success says what it did."""

from __future__ import annotations

import mailbox
import os
import socket
import subprocess
from dataclasses import replace
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter import dispatch
from newsletter.config import Settings
from newsletter.editions import import_edition_file
from newsletter.errors import ValidationError
from newsletter.migrations import versions
from newsletter.models import Subscriber
from newsletter.paths import sample_data_dir
from newsletter.runtime import Runtime
from newsletter.transport import destination

# The refusals happen before the database is touched: one database is enough for them.
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
REVISIONS = sorted(p.name[:4] for p in Path(versions.__file__).parent.glob("[0-9]*_*.py"))


@pytest.fixture
def run(settings: Settings, engine, env_for, monkeypatch, capsys, tmp_path: Path):  # type: ignore[no-untyped-def]
    """`newsletter ARGS` through the real entry point (main), in this process: the same
    parsing, messages and exit codes as the console script, without a Python start-up."""
    from newsletter.cli import main

    def invoke(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        for name in [n for n in os.environ if n.startswith("NEWSLETTER_")]:
            monkeypatch.delenv(name)
        for name, value in {**env_for(settings), **(env or {})}.items():
            if name.startswith("NEWSLETTER_"):
                monkeypatch.setenv(name, value)
        monkeypatch.chdir(tmp_path)
        capsys.readouterr()
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, captured.out, captured.err)

    return invoke


def one_line(result) -> str:  # type: ignore[no-untyped-def]
    """The refusal: exit 1 and exactly one line on stderr, no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_db_upgrade_names_the_migrations_it_applied(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Scenario: on a fresh database `db upgrade` lists every migration it applied, in order;
    run again, it says there was nothing to apply and where the database stands."""
    fresh = {"NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}
    first = cli("db", "upgrade", env=fresh)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.strip().splitlines()
    assert lines[0] == f"applied {len(REVISIONS)} migrations:"
    assert [line.split()[0] for line in lines[1:-1]] == REVISIONS
    assert all(len(line.split()) > 1 for line in lines[1:-1])  # each with what it does
    assert lines[-1] == f"the database is now at {REVISIONS[-1]}"
    assert "up to date" not in first.stdout
    again = cli("db", "upgrade", env=fresh)
    assert again.returncode == 0
    assert again.stdout.strip() == f"nothing to apply: the database is already at {REVISIONS[-1]}"


@pytest.fixture
def imported(runtime: Runtime) -> str:
    with runtime.session() as session:
        import_edition_file(session, sample_data_dir() / "2020-W05.yaml")
    return "2020-W05"


@sqlite_only
def test_preview_out_file_type_follows_its_name(run, imported: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Scenario: .eml writes the whole message, .html (any case) the HTML part; any other
    name is refused in one line before anything is written."""
    eml, html = tmp_path / "ru.EML", tmp_path / "be.html"
    assert run("preview", "--week", imported, "--lang", "ru", "--out", str(eml)).returncode == 0
    message = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    assert message["Subject"].startswith("Ситуация в Беларуси")
    assert run("preview", "--week", imported, "--lang", "be", "--out", str(html)).returncode == 0
    assert html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    for name in ("x.txt", "x", "x.eml.txt", "x.htmlx", ".html.", "x.mbox"):
        out = tmp_path / name
        line = one_line(run("preview", "--week", imported, "--lang", "be", "--out", str(out)))
        assert ".eml" in line and ".html" in line
        assert not out.exists()


@sqlite_only
def test_preview_into_a_missing_folder_is_one_line(run, imported: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Scenario: --out names a folder that does not exist (or is a folder): one clear line."""
    missing = tmp_path / "no" / "such" / "folder" / "x.html"
    line = one_line(run("preview", "--week", imported, "--lang", "be", "--out", str(missing)))
    assert line == f"error: --out {missing}: there is no folder {missing.parent}"
    assert not (tmp_path / "no").exists()
    folder = tmp_path / "a.html"
    folder.mkdir()
    assert "is a folder" in one_line(
        run("preview", "--week", imported, "--lang", "be", "--out", str(folder))
    )


@sqlite_only
@pytest.mark.parametrize("fallback", ["xx", "be,en", "бе", "ru\u200b", "x" * 300])
def test_fallback_is_refused_the_same_way_everywhere(  # type: ignore[no-untyped-def]
    run, imported: str, runtime: Runtime, fallback: str
) -> None:
    """Scenario: a bad --fallback (unknown, a list, a Cyrillic look-alike, a zero-width
    space, huge) gets the same line from `preview`, `send` and the domain, even for a
    complete edition that needs no fallback; nothing is sent."""
    expected = f"error: the fallback language must be one of be, ru, en, not {fallback!r}"
    commands = [("preview", "--week", imported, "--lang", "be"), ("send", "--week", imported)]
    if fallback == "xx":
        commands.append(("send", "--week", imported, "--test-to", "me@example.org"))
    for args in commands:
        assert one_line(run(*args, "--fallback", fallback)) == expected, args
    with pytest.raises(ValidationError) as refused, runtime.session() as session:
        dispatch.start_send(
            session, runtime.settings, imported, fallback_language=fallback, jobs=runtime.jobs
        )
    assert f"error: {refused.value}" == expected
    with runtime.session() as session:
        assert dispatch.progress(session, imported).total == 0


@sqlite_only
def test_fallback_in_any_case_is_accepted(run, imported: str) -> None:  # type: ignore[no-untyped-def]
    """Scenario: `--fallback EN` is English, as `--lang EN` is."""
    shown = run("preview", "--week", imported, "--lang", "be", "--fallback", " EN ")
    assert shown.returncode == 0, shown.stderr


@sqlite_only
@pytest.mark.parametrize(
    "week", ["2020-X05", "20-W05", "'; DROP TABLE editions;--", "２０２０-W05", ""]
)
def test_a_malformed_week_gets_the_same_line_from_every_command(  # type: ignore[no-untyped-def]
    run, imported: str, week: str
) -> None:
    """Scenario: `status` and `preview` (and send, pause, resume, cancel) read the week by
    the same rule and say the same thing when it is not a week."""
    expected = f"error: a week looks like 2020-W05, not {week!r}"
    commands = [("status",), ("preview", "--lang", "be")]
    if week == "2020-X05":
        commands += [("send",), ("pause",), ("resume",), ("cancel",)]
    for args in commands:
        assert one_line(run(*args, "--week", week)) == expected, args


@sqlite_only
def test_a_well_formed_week_without_edition_is_one_line_too(run, imported: str) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a real week that has no edition: the same line from status and preview."""
    status = one_line(run("status", "--week", "2020-W09"))
    assert status == one_line(run("preview", "--week", "2020-W09", "--lang", "be"))
    assert status == "error: no edition for week 2020-W09"


@sqlite_only
def test_usage_errors_are_one_line_too(run) -> None:  # type: ignore[no-untyped-def]
    """Scenario: a missing or unknown option: one line naming it and where the help is."""
    line = one_line_usage(run("send"))
    assert "--week" in line and "newsletter send --help" in line
    assert "--nonsense" in one_line_usage(run("status", "--week", "2020-W05", "--nonsense"))


def one_line_usage(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_subscribers_add_says_the_confirmation_went_to_the_outbox(  # type: ignore[no-untyped-def]
    run, settings: Settings
) -> None:
    """Scenario: without an SMTP URL, `add` says the confirmation is in the outbox folder,
    and it is there."""
    added = run("subscribers", "add", "new@example.org", "--lang", "be,en")
    assert added.returncode == 0, added.stderr
    lines = added.stdout.strip().splitlines()
    assert lines == [
        "added new@example.org (pending, be,en)",
        f"the confirmation email was written into the outbox folder {settings.outbox.resolve()}",
    ]
    box = mailbox.Maildir(settings.outbox, create=False)
    assert [m["To"] for m in box] == ["new@example.org"]


def test_subscribers_add_says_the_confirmation_went_to_the_smtp_server(  # type: ignore[no-untyped-def]
    run, smtp_server
) -> None:
    """Scenario: with an SMTP URL, `add` names the server, and the server got the
    confirmation; a URL's credentials are never shown."""
    url, handler = smtp_server
    host_port = url.removeprefix("smtp://")
    added = run(
        "subscribers", "add", "new@example.org", "--lang", "ru", env={"NEWSLETTER_SMTP_URL": url}
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip().splitlines()[-1] == (
        f"the confirmation email was accepted by the SMTP server {host_port}"
    )
    assert list(handler.by_recipient()) == ["new@example.org"]
    with_password = replace(Settings(), smtp_url="smtps://ada:s3cr%40t@mx.example.org")
    assert destination(with_password) == "the SMTP server mx.example.org:465"


def test_subscribers_add_says_when_the_smtp_server_is_down(run, session) -> None:  # type: ignore[no-untyped-def]
    """Scenario: nothing listens at the SMTP URL: the reader is added (pending), and one
    line says the confirmation could not be handed over, and why."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"NEWSLETTER_SMTP_URL": f"smtp://127.0.0.1:{port}"}
    added = run("subscribers", "add", "new@example.org", "--lang", "en", env=env)
    assert added.stdout.strip() == "added new@example.org (pending, en)"
    line = one_line(added)
    assert line.startswith(
        f"error: the confirmation email could not be handed to the SMTP server 127.0.0.1:{port}: "
    )
    assert session.scalar(select(Subscriber.status).where(Subscriber.email == "new@example.org"))


def test_subscribers_add_with_an_unusable_outbox_says_the_tick_tries_again(  # type: ignore[no-untyped-def]
    run, session, tmp_path: Path
) -> None:
    """Scenario: the outbox's name is taken by a file: the reader is added (pending), and
    the one line says the confirmation could not be handed over and will be tried again
    (it is: the fault is the outbox's, not a refusal of the address)."""
    outbox = tmp_path / "taken"
    outbox.write_text("not a folder")
    added = run("subscribers", "add", "new@example.org", "--lang", "en",
                env={"NEWSLETTER_OUTBOX": str(outbox)})  # fmt: skip
    assert added.stdout.strip() == "added new@example.org (pending, en)"
    line = one_line(added)
    assert line.startswith("error: the confirmation email could not be handed to the outbox")
    assert "unusable" in line and line.endswith(
        "the tick tries again (`newsletter beat`, or `serve`)"
    )
    due = select(Subscriber.confirm_due_at).where(Subscriber.email == "new@example.org")
    assert session.scalar(due) is not None  # when the tick tries again
