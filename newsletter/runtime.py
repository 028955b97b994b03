"""What an edge (CLI, web app, worker) builds once from Settings: engine, sessions, jobs, mail."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from newsletter.config import Settings
from newsletter.db import make_engine, make_session_factory, session_scope
from newsletter.errors import ConfigError

if TYPE_CHECKING:
    from newsletter.dispatch.handoff import Jobs
    from newsletter.dispatch.sending import Sender
    from newsletter.transport import Transport


@dataclass
class Runtime:
    """Built once per process by its edge (the CLI, the web app, a worker): the composition
    root. `broker_jobs` is how the edge hands jobs to a broker when one is configured (the
    domain never imports Celery or workers; see workers.publish)."""

    settings: Settings
    _engine: Engine | None = field(default=None, repr=False)
    _jobs: Jobs | None = field(default=None, repr=False)
    _transport: Transport | None = field(default=None, repr=False)
    broker_jobs: Callable[[Settings], Jobs] | None = field(default=None, repr=False)

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
        """The broker's when one is configured, otherwise jobs run in this process."""
        from newsletter.jobs import InProcessJobs, run_job

        if self._jobs is not None:
            return self._jobs
        if self.settings.broker_url:
            if self.broker_jobs is None:
                raise ConfigError(
                    "NEWSLETTER_BROKER_URL is set but this process cannot publish to a broker"
                )
            return self.broker_jobs(self.settings)
        return InProcessJobs(lambda name, kwargs: run_job(self, name, kwargs))

    @cached_property
    def sender(self) -> Sender:
        """The process's send engine: prepared variants, pacer, signer, Message-ID domain."""
        from newsletter.dispatch.sending import Sender

        return Sender(self.settings)

    @property
    def transport(self) -> Transport:
        """A fresh, unopened transport (each holds at most one connection; not shared)."""
        from newsletter.transport import make_transport

        return self._transport if self._transport is not None else make_transport(self.settings)

    def dispose(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
