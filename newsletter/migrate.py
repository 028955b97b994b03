"""Alembic driven from code: `newsletter db upgrade` and the tests call these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Engine

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported on use only: it costs about a third of a second at every start of the
# `newsletter` command (and `newsletter send` should reach the wire fast).


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "newsletter:migrations")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


@dataclass(frozen=True)
class Applied:
    """One migration that an upgrade applied."""

    revision: str
    doc: str


def upgrade(engine: Engine, revision: str = "head") -> list[Applied]:
    """Apply migrations up to `revision` on the engine's database; those applied, oldest
    first (empty when it was already there)."""
    from alembic import command
    from alembic.script import ScriptDirectory

    config = alembic_config(engine.url.render_as_string(hide_password=False))
    before = current(engine)
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            # A batch migration rebuilds a table and drops the old one; with foreign keys on,
            # SQLite would cascade that DROP into every row referring to it. The pragma only
            # takes effect outside a transaction, hence before BEGIN.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(f"migration broke foreign keys: {broken[:5]}")
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()
    after = current(engine)
    if after == before:
        return []
    steps = ScriptDirectory.from_config(config).iterate_revisions(after, before or "base")
    # Newest first from Alembic; the reader wants them in the order they ran.
    return [Applied(step.revision, _first_line(step.doc)) for step in reversed(list(steps))]


def current(engine: Engine) -> tuple[str, ...]:
    """The revision(s) the database is at (empty before the first upgrade)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return tuple(MigrationContext.configure(connection).get_current_heads())


def _first_line(doc: str | None) -> str:
    """A migration's docstring as one line of a list: its first paragraph, joined."""
    paragraph = (doc or "").strip().split("\n\n", 1)[0]
    return " ".join(paragraph.split())
