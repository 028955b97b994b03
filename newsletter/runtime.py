"""What an edge (CLI, web app, worker) builds once from Settings: engine, sessions, jobs, mail."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from newsletter.config import Settings
from newsletter.db import make_engine, make_session_factory, session_scope

if TYPE_CHECKING:
    from newsletter.jobs import Jobs
    from newsletter.transport import Transport


@dataclass
class Runtime:
    settings: Settings
    _engine: Engine | None = field(default=None, repr=False)
    _jobs: Jobs | None = field(default=None, repr=False)
    _transport: Transport | None = field(default=None, repr=False)

    @cached_property
    def engine(self) -> Engine:
        return self._engine or make_engine(self.settings.database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work, committed on success."""
        with session_scope(self.sessions) as session:
            yield session

    @cached_property
    def jobs(self) -> Jobs:
        """Celery when a broker is configured, otherwise jobs run in this process."""
        from newsletter.jobs import CeleryJobs, InProcessJobs, run_job

        if self._jobs is not None:
            return self._jobs
        if self.settings.broker_url:
            from workers.celery_app import create_app

            return CeleryJobs(create_app(self.settings))
        return InProcessJobs(lambda name, kwargs: run_job(self, name, kwargs))

    @property
    def transport(self) -> Transport:
        """A fresh, unopened transport (each holds at most one connection; not shared)."""
        from newsletter.transport import make_transport

        return self._transport if self._transport is not None else make_transport(self.settings)

    def dispose(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
