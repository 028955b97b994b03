"""The sample week judged by ../shared/tools/mailcheck (SpamAssassin, RFC 8058, caniemail,
Chromium at 375 px, axe-core, links), as mailbox providers and mail clients would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.editions import import_edition_file
from newsletter.languages import LANGUAGE_SETS, parse_languages
from newsletter.messages import preview_message

ROOT = Path(__file__).resolve().parents[2]
# A few sets cover every primary language, two- and three-language layouts; set
# NEWSLETTER_MAILCHECK_SETS=all (or "be;ru,en;...") for more (about 5 s per message).
DEFAULT_SETS = "be;ru,en;en,be,ru"


def _script() -> Path | None:
    candidates = [
        os.environ.get("MAILCHECK_SCRIPT", ""),
        str(ROOT.parent / "shared" / "tools" / "mailcheck" / "mailcheck.py"),
        "/work/shared/tools/mailcheck/mailcheck.py",
    ]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def _home(script: Path) -> Path | None:
    """Where install.sh put mailcheck's venv and node_modules (the places it looks itself)."""
    candidates = [
        os.environ.get("MAILCHECK_HOME", ""),
        str(script.parent),
        str(Path.home() / ".cache" / "mailcheck"),
    ]
    for candidate in filter(None, candidates):
        home = Path(candidate).expanduser()
        if (home / ".venv" / "bin" / "python").exists() and (home / "node_modules").is_dir():
            return home
    return None


def _sets() -> list[tuple[str, ...]]:
    wanted = os.environ.get("NEWSLETTER_MAILCHECK_SETS", DEFAULT_SETS)
    if wanted.strip() == "all":
        return list(LANGUAGE_SETS)
    return [parse_languages(item) for item in wanted.split(";") if item.strip()]


@pytest.mark.slow
def test_sample_week_passes_mailcheck(
    rendering_db: Session, render_settings: Settings, sample_path: Path, tmp_path: Path
) -> None:
    """Every checked language set of the sample week passes mailcheck with an https base."""
    script = _script()
    if script is None:
        pytest.skip("mailcheck not found (../shared/tools/mailcheck/mailcheck.py)")
    home = _home(script)
    if home is None:
        pytest.skip(f"mailcheck not installed: run bash {script.parent}/install.sh")
    edition = import_edition_file(rendering_db, sample_path)
    files = []
    for langs in _sets():
        path = tmp_path / f"{'-'.join(langs)}.eml"
        path.write_bytes(preview_message(rendering_db, render_settings, edition, langs))
        files.append(str(path))
    rendering_db.rollback()
    result = subprocess.run(
        [sys.executable, str(script), *files, "--shots", str(tmp_path / "shots")],
        capture_output=True,
        text=True,
        env={**os.environ, "MAILCHECK_HOME": str(home)},
        timeout=60 + 30 * len(files),
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert summary.startswith("mailcheck:") and " 0 failed" in summary
