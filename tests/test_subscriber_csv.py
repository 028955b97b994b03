"""Reading the subscriber CSV: columns in any order, BOM, per-line rejections, file errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.errors import ImportFileError
from newsletter.models import SubscriberStatus
from newsletter.subscriber_csv import parse_subscriber_csv, read_subscriber_csv


def test_rows_are_validated_and_rejections_name_their_line(tmp_path: Path) -> None:
    """Scenario: a mixed file: good rows come through, each bad one is reported by line."""
    path = tmp_path / "list.csv"
    path.write_bytes(
        "\ufeffStatus , languages,email,name\n"
        ',"be,en",Ales@Example.org,Алесь\n'
        "pending,ru,p@example.org,\n"
        "\n"
        "gone,be,s@example.org,\n"
        ",be,not-an-address,\n"
        ",de,d@example.org,\n"
        ",,n@example.org,\n"
        ',be,ales@example.org,"Second, again"\n'
        ",be,x@example.org,X,extra\n".encode()
    )
    parsed = read_subscriber_csv(path)
    assert [(line, r.email, r.languages, r.status, r.name) for line, r in parsed.rows] == [
        (2, "ales@example.org", ("be", "en"), SubscriberStatus.active, "Алесь"),
        (3, "p@example.org", ("ru",), SubscriberStatus.pending, None),
    ]
    reasons = dict(parsed.rejected)
    assert sorted(reasons) == [5, 6, 7, 8, 9, 10]
    assert "unknown status 'gone'" in reasons[5]
    assert "not a valid email address" in reasons[6]
    assert "unknown language 'de'" in reasons[7]
    assert "at least one language" in reasons[8]
    assert "repeats line 2" in reasons[9]
    assert "5 fields" in reasons[10]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        ("email,name\na@example.org,A\n", "no 'languages' column"),
        ("email,langs\n", "unknown column 'langs'"),
        ("email,languages,email\n", "appears twice"),
        ('email,languages\n"a@example.org,be\n', "not valid CSV"),
    ],
)
def test_bad_files_are_refused_whole(content: str, message: str) -> None:
    """Scenario: a file without the needed header cannot be imported at all."""
    with pytest.raises(ImportFileError, match=message):
        parse_subscriber_csv(content, "list.csv")


def test_missing_and_non_utf8_files(tmp_path: Path) -> None:
    """Scenario: a missing file or a Windows-1251 file is one clear error."""
    with pytest.raises(ImportFileError, match="no such file"):
        read_subscriber_csv(tmp_path / "absent.csv")
    path = tmp_path / "cp1251.csv"
    path.write_bytes("email,languages,name\na@example.org,be,Алесь\n".encode("cp1251"))
    with pytest.raises(ImportFileError, match="line 2 is not UTF-8"):
        read_subscriber_csv(path)
