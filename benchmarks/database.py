"""A throwaway PostgreSQL database per run, filled with subscribers by COPY."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from newsletter.languages import LANGUAGE_SETS, format_languages
from newsletter.models import new_link_salt

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
COPY_CHUNK = 20_000


class BenchDatabase:
    """CREATE DATABASE with a unique name on enter, DROP ... WITH (FORCE) on exit."""

    def __init__(self, admin_dsn: str = ADMIN_DSN, keep: bool = False) -> None:
        self.admin_dsn = admin_dsn
        self.name = f"nlbench_{uuid.uuid4().hex[:12]}"
        self.keep = keep

    @property
    def dsn(self) -> str:
        return self.admin_dsn.rsplit("/", 1)[0] + "/" + self.name

    @property
    def url(self) -> str:
        """The SQLAlchemy URL the newsletter processes use."""
        return self.dsn.replace("postgresql://", "postgresql+psycopg://", 1)

    def __enter__(self) -> BenchDatabase:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.keep:
            return
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.dsn, autocommit=True)


def load_subscribers(dsn: str, count: int, domain: str = "bench.example") -> None:
    """COPY `count` active, confirmed subscribers, spread evenly over all 15 language sets.

    Every third has a name (with a character that needs escaping in HTML) so the
    per-recipient substitution does real work.
    """
    sets = [format_languages(s) for s in LANGUAGE_SETS]
    now = datetime.now(UTC).isoformat()
    columns = (
        "email, name, languages, status, created_at, updated_at, confirmed_at, "
        "consent_at, consent_form, consent_lang, link_salt"
    )
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY subscribers ({columns}) FROM STDIN") as copy:
            for start in range(0, count, COPY_CHUNK):
                rows = []
                for i in range(start, min(start + COPY_CHUNK, count)):
                    name = f"Reader {i} & Co" if i % 3 == 0 else "\\N"
                    langs = sets[i % len(sets)]
                    rows.append(
                        f"reader{i}@{domain}\t{name}\t{langs}\tactive\t{now}\t{now}\t{now}"
                        f"\t{now}\tbench\t{langs[:2]}\t{new_link_salt()}\n"
                    )
                copy.write("".join(rows).encode())
        conn.commit()
        cur.execute("ANALYZE subscribers")
        conn.commit()
