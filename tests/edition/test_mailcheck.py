"""The sample week judged by ../shared/tools/mailcheck (SpamAssassin, RFC 8058, caniemail,
Chromium at 375 px, axe-core, links), as mailbox providers and mail clients would.

This judges preview_message; tests/dispatch/test_mailcheck_wire.py judges the same week as
the sending engine puts it on the wire."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mailcheck_kit import Mailcheck
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.editions import import_edition_file
from newsletter.languages import LANGUAGE_SETS, parse_languages
from newsletter.messages import preview_message

# A few sets cover every primary language, two- and three-language layouts; set
# NEWSLETTER_MAILCHECK_SETS=all (or "be;ru,en;...") for more (about 5 s per message).
DEFAULT_SETS = "be;ru,en;en,be,ru"


def _sets() -> list[tuple[str, ...]]:
    wanted = os.environ.get("NEWSLETTER_MAILCHECK_SETS", DEFAULT_SETS)
    if wanted.strip() == "all":
        return list(LANGUAGE_SETS)
    return [parse_languages(item) for item in wanted.split(";") if item.strip()]


@pytest.mark.slow
def test_sample_week_passes_mailcheck(
    mailcheck: Mailcheck,
    rendering_db: Session,
    render_settings: Settings,
    sample_path: Path,
    tmp_path: Path,
) -> None:
    """Every checked language set of the sample week passes mailcheck with an https base."""
    edition = import_edition_file(rendering_db, sample_path)
    files = []
    for langs in _sets():
        path = tmp_path / f"{'-'.join(langs)}.eml"
        path.write_bytes(preview_message(rendering_db, render_settings, edition, langs))
        files.append(path)
    rendering_db.rollback()
    verdict = mailcheck.run(files, tmp_path / "shots")
    assert verdict.passed, verdict
