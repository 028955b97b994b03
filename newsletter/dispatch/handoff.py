"""What the send engine needs from the outside: a way to hand a job over once the rows it
will look for are committed. The edges give it one (newsletter.jobs: in-process or Celery)."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session

JobArg = int | str | None


class Jobs(Protocol):
    def enqueue(self, session: Session | None, name: str, **kwargs: JobArg) -> None:
        """Hand a job over once `session` commits (at once when session is None)."""
