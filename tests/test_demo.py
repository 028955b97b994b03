"""`newsletter demo` sends the sample week into its own Maildir, with no configuration."""

from __future__ import annotations

import email
import email.policy
import os
import re
import subprocess
import sys
from pathlib import Path

from newsletter.languages import LANGUAGE_SETS


def _run_demo(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    return subprocess.run(
        [sys.executable, "-m", "newsletter", "demo", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def test_demo_sends_every_language_set_once_and_nobody_else(tmp_path: Path) -> None:
    """Scenario: a user runs `newsletter demo` again and reads the fresh outbox."""
    folder = tmp_path / "newsletter-demo"
    (folder / "outbox" / "new").mkdir(parents=True)
    (folder / ".newsletter-demo").write_text("an earlier run")
    (folder / "outbox" / "new" / "stale-message").write_text("from the earlier run")
    result = _run_demo(tmp_path)
    assert result.returncode == 0, result.stderr
    files = sorted((folder / "outbox" / "new").iterdir())
    assert len(files) == len(LANGUAGE_SETS)
    received: dict[str, tuple[str, ...]] = {}
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        rcpt = str(message["To"])
        html = message.get_body(preferencelist=("html",)).get_content()
        # Sections carry their language, in the reader's order.
        section_langs = re.findall(r'<[^>]+\blang="(be|ru|en)"', html)
        order = tuple(dict.fromkeys(section_langs[1:] or section_langs))
        received[rcpt] = order
    expected = {f"reader-{'-'.join(s)}@example.org": s for s in LANGUAGE_SETS}
    assert {re.search(r"[\w.-]+@example\.org", k).group(0): v for k, v in received.items()} == (
        expected
    )
    assert "former-reader@example.org" in result.stdout
    assert "unconfirmed@example.org" in result.stdout
    assert not (tmp_path / "newsletter.db").exists()
    assert len(list((folder / "preview").glob("*.html"))) == len(LANGUAGE_SETS)


def test_demo_refuses_a_foreign_folder(tmp_path: Path) -> None:
    """Scenario: --dir names a folder the demo did not make: it is left alone."""
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("precious")
    refused = _run_demo(tmp_path, "--dir", "mine")
    assert refused.returncode != 0
    assert "not a demo folder" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert (foreign / "keep.txt").read_text() == "precious"
