"""Importing a week from a YAML upload in the staff area: the CLI's rules, errors by line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from newsletter.models import Edition, EditionStatus
from newsletter.paths import sample_data_dir
from newsletter.runtime import Runtime

SAMPLE = (sample_data_dir() / "2020-W05.yaml").read_text(encoding="utf-8")

SMALL = """\
week: 2020-W06
languages: [be, en]
articles:
  - slug: economy
    topic: economy
    trend: improved
    translations:
      be:
        title: Эканоміка
        body: Тэкст.
      en:
        title: Economy
        body: Text.
  - slug: army
    topic: defence
    trend: unchanged
    translations:
      en:
        title: Army
        body: Text.
"""


def upload(
    client: TestClient, content: bytes | str, name: str = "2020-W06.yaml", csrf: str | None = None
) -> Any:
    token = csrf if csrf is not None else csrf_token(client)
    data = content.encode() if isinstance(content, str) else content
    return client.post(
        "/admin/editions/import",
        data={"csrf_token": token},
        files={"file": (name, data, "application/yaml")},
    )


def csrf_token(client: TestClient) -> str:
    page = client.get("/admin/editions/import")
    assert page.status_code == 200
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


def marked_line(html: str) -> int | None:
    match = re.search(r'<span class="line bad" id="line-(\d+)">', html)
    return int(match.group(1)) if match else None


def weeks(runtime: Runtime) -> list[str]:
    with runtime.session() as session:
        return sorted(e.week for e in session.query(Edition))


def test_an_editor_uploads_a_week_and_sees_it(editor_client: TestClient, runtime: Runtime) -> None:
    """The sample week uploaded by an editor becomes a draft; the page says what was added."""
    page = editor_client.get("/admin/editions")
    assert 'href="/admin/editions/import"' in page.text
    response = upload(editor_client, SAMPLE, "2020-W05.yaml")
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/admin/editions/2020-W05?added=")
    shown = editor_client.get(response.headers["location"])
    assert re.search(r"Imported: \d+ added, 0 updated, 0 kept article\(s\)\.", shown.text)
    assert weeks(runtime) == ["2020-W05"]
    again = upload(editor_client, SAMPLE, "2020-W05.yaml")
    assert "added=0&updated=" in again.headers["location"]


BROKEN = [
    # (what is wrong, the file, the line the error concerns)
    ("not YAML", SMALL.replace("    trend: improved", "    trend: [improved"), 7),
    ("unknown top-level field", SMALL.replace("languages:", "langs:"), 2),
    ("bad trend in the second article", SMALL.replace("trend: unchanged", "trend: better"), 16),
    ("title with a control character", SMALL.replace("title: Army", 'title: "Ar\\u0007my"'), 19),
    ("empty body", SMALL.replace("        body: Тэкст.", '        body: ""'), 10),
    ("unknown topic", SMALL.replace("topic: defence", "topic: spaceflight"), 15),
    ("language not listed", SMALL.replace("      be:\n", "      ru:\n"), 8),
    ("bad week", SMALL.replace("2020-W06", "2020-W60"), 1),
]


@pytest.mark.parametrize(("case", "content", "line"), BROKEN, ids=[b[0] for b in BROKEN])
def test_errors_are_the_clis_and_stand_beside_their_line(  # type: ignore[no-untyped-def]
    editor_client: TestClient,
    runtime: Runtime,
    cli,
    tmp_path: Path,
    case: str,
    content: str,
    line: int,
) -> None:
    """A refused file: the CLI's own message, shown under the line it concerns; nothing saved."""
    response = upload(editor_client, content)
    assert response.status_code == 422, response.text
    assert marked_line(response.text) == line, case
    assert weeks(runtime) == []
    folder = tmp_path / "cli"
    folder.mkdir()
    (folder / "2020-W06.yaml").write_text(content, encoding="utf-8")
    result = cli("import", str(folder / "2020-W06.yaml"))
    assert result.returncode == 1
    cli_message = result.stderr.strip().removeprefix("error: ").replace(str(folder) + "/", "")
    assert cli_message.startswith("2020-W06.yaml: ")
    from markupsafe import escape

    assert f"<p>{escape(cli_message)}</p>" in response.text, (case, cli_message)


def test_hostile_uploads_get_a_clear_page(
    editor_client: TestClient, runtime: Runtime, edition: Any, h: Any
) -> None:
    """Empty, binary, non-UTF-8, huge, script-laden and path-named uploads: 4xx pages."""
    assert upload(editor_client, b"").status_code == 422
    assert upload(editor_client, b"\x00\x01\xff\xfe" * 100).status_code == 422
    latin1 = SMALL.replace("Economy", "\xc9conomie").encode("latin-1", errors="replace")
    assert upload(editor_client, latin1).status_code == 422
    huge = upload(editor_client, b"#" * (2 * 1024 * 1024 + 1), "big.yaml")
    assert huge.status_code == 422 and "big.yaml: larger than 2 MB" in huge.text
    assert 'class="line' not in huge.text  # the file itself is not echoed back
    bomb = upload(editor_client, 'a: &x ["lol"]\nb: [*x, *x, *x]\n', "bomb.yaml")
    assert bomb.status_code == 422 and "anchors and aliases" in bomb.text
    assert marked_line(bomb.text) == 1
    deep = upload(editor_client, "[" * 5000 + "]" * 5000, "deep.yaml")
    assert deep.status_code == 422 and "Traceback" not in deep.text

    script = SMALL.replace("trend: improved", "trend: <script>alert(1)</script>")
    shown = upload(editor_client, script)
    assert shown.status_code == 422
    assert "<script>alert" not in shown.text and "&lt;script&gt;alert(1)" in shown.text

    traversal = upload(
        editor_client, SMALL.replace("trend: unchanged", "trend: x"), "../../etc/passwd"
    )
    assert traversal.status_code == 422
    assert "passwd: article" in traversal.text and "../" not in traversal.text

    no_file = editor_client.post(
        "/admin/editions/import", data={"csrf_token": csrf_token(editor_client)}
    )
    assert no_file.status_code == 422 and "Choose an edition YAML file" in no_file.text
    forged = upload(editor_client, SMALL, csrf="forged")
    assert forged.status_code == 403
    assert weeks(runtime) == ["2020-W05"]


def test_a_week_being_sent_is_not_changed_by_an_upload(
    editor_client: TestClient, runtime: Runtime, edition: Any, make_client: Any
) -> None:
    """Re-uploading a sent week is refused (409) and its texts stay; anonymous users log in."""
    with runtime.session() as session:
        session.query(Edition).filter_by(week="2020-W05").one().status = EditionStatus.sent
    response = upload(
        editor_client, SAMPLE.replace("Communication with the USA", "Changed"), "w.yaml"
    )
    assert response.status_code == 409 and "sent" in response.text
    with runtime.session() as session:
        row = session.query(Edition).filter_by(week="2020-W05").one()
        assert "Changed" not in row.articles[0].translation("en").title
    anonymous = make_client().get("/admin/editions/import")
    assert anonymous.status_code == 303 and "/admin/login" in anonymous.headers["location"]
