"""`newsletter preview` through the real command line."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path


def test_preview_html_to_stdout_and_eml_file(cli, sample_path: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Preview prints the HTML a be+en reader gets, or writes the whole message as .eml."""
    assert cli("import", str(sample_path)).returncode == 0
    shown = cli("preview", "--week", "2020-W05", "--lang", "be,en")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("<!DOCTYPE html>")
    assert '<html lang="be"' in shown.stdout and 'lang="en"' in shown.stdout
    out = tmp_path / "ru.eml"
    written = cli("preview", "--week", "2020-W05", "--lang", "ru", "--out", str(out))
    assert written.returncode == 0, written.stderr
    msg = BytesParser(policy=policy.default).parsebytes(out.read_bytes())
    assert msg["Subject"] == "Ситуация в Беларуси: 27 января — 2 февраля 2020 г."
    missing = cli("preview", "--week", "2020-W09", "--lang", "ru")
    assert missing.returncode == 1 and missing.stderr.startswith("error: no edition")
