"""The FastAPI app factory: public pages, the staff area and the API in one ASGI app."""

from __future__ import annotations

import gc
import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import event, text

from newsletter import scheduler
from newsletter.config import Settings
from newsletter.models import utcnow
from newsletter.paths import templates_dir
from newsletter.runtime import Runtime
from newsletter.ticker import Ticker
from newsletter.web import errors
from newsletter.web.cached import CachedPagesMiddleware
from newsletter.web.head import HeadAsGetMiddleware
from newsletter.web.pagecache import PageCache, Rendered, read_content_version
from newsletter.web.pages import make_environment
from newsletter.web.security import SecurityHeadersMiddleware

log = logging.getLogger(__name__)

# Routers other modules contribute. Each module exposes `router` (an APIRouter carrying its
# own prefix) and may expose `setup(app)` for anything else it needs at build time.
OPTIONAL_ROUTERS = ("newsletter.web.admin", "newsletter.web.api")


def create_app(
    settings: Settings, *, runtime: Runtime | None = None, run_tick: bool = False
) -> FastAPI:
    """Build the app for these settings; a given runtime (tests) is used and not disposed.

    With run_tick, the app also runs the scheduler's tick while it serves (when it holds the
    installation's tick lease): what `serve` does when there is no broker and no Celery beat.
    """
    owned = runtime is None
    if runtime is None:
        from workers.publish import celery_jobs

        runtime = Runtime(settings, broker_jobs=celery_jobs)
    rt = runtime
    ticker = Ticker(rt) if run_tick else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if ticker is not None:
            ticker.start()
        try:
            yield
        finally:
            if ticker is not None:
                ticker.stop()
            # Confirmations handed over by the last requests are sent before the app stops.
            _app.state.after_response.close()
            if owned:
                rt.dispose()

    app = FastAPI(
        title="Situation in Belarus",
        summary="JSON API of the newsletter",
        version="1",
        lifespan=lifespan,
        # The interactive docs load scripts from a CDN: refused by our CSP and our privacy rule.
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = rt
    app.state.ticker = ticker
    app.state.settings = settings
    app.state.pages = make_environment()
    app.state.page_cache = _page_cache(rt)

    errors.install(app)
    # The last added runs first: HEAD becomes GET, security headers go on every answer,
    # then a page the cache holds is answered before any routing.
    app.add_middleware(CachedPagesMiddleware, cache=app.state.page_cache)
    app.add_middleware(
        SecurityHeadersMiddleware, https=urlsplit(settings.base_url).scheme == "https"
    )
    app.add_middleware(HeadAsGetMiddleware)
    _add_basic_routes(app)
    include_optional_routers(app)
    _include_public(app)
    return app


def _page_cache(runtime: Runtime) -> PageCache:
    """The public pages rendered once; a commit in this process has the version read again
    (another process's commit is seen within twice the cache's recheck interval)."""
    cache = PageCache(lambda: read_content_version(runtime.engine), recheck_in_background=True)
    event.listen(runtime.engine, "commit", lambda _conn: cache.expire())
    return cache


def include_optional_routers(app: FastAPI, modules: tuple[str, ...] = OPTIONAL_ROUTERS) -> None:
    """Plug in the staff area and the API when their modules exist (before the public pages,
    whose /{lang}/ routes would otherwise shadow /admin/ and /api/)."""
    for name in modules:
        module = _import_optional(name)
        if module is None:
            continue
        setup = getattr(module, "setup", None)
        if callable(setup):
            setup(app)
        router = getattr(module, "router", None)
        if router is not None:
            app.include_router(router)


def _import_optional(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:  # the module exists but something it imports is missing
            raise
        return None


def _include_public(app: FastAPI) -> None:
    from newsletter.web import public

    public.setup(app)
    app.include_router(public.router)


def _add_basic_routes(app: FastAPI) -> None:
    css = (templates_dir() / "web" / "site.css").read_bytes()
    # Answered by the page cache's middleware, like the pages (with an ETag and 304 too).
    app.state.page_cache.pin(
        "/static/site.css", Rendered(css, "text/css; charset=utf-8", "public, max-age=3600")
    )

    @app.get("/healthz", include_in_schema=False)
    def healthz(request: Request) -> Response:
        """Liveness for a load balancer (the process answers, the database is reachable), and
        whether the scheduler ticks: a stopped scheduler is reported, not a failure here."""
        runtime: Runtime = request.app.state.runtime
        try:
            with runtime.session() as session:
                session.execute(text("SELECT 1"))
                ticks = scheduler.health(session, utcnow(), runtime.settings.tick_every)
        except Exception as exc:  # any driver error means "not ready"
            log.warning("healthz: database unreachable: %s", exc)
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503)
        last = ticks.last_tick_at.isoformat() if ticks.last_tick_at else None
        return JSONResponse(
            {"status": "ok", "scheduler": ticks.word, "last_tick": last},
            headers={"Cache-Control": "no-store"},
        )

    @app.get("/static/site.css", include_in_schema=False)
    async def site_css() -> Response:
        return Response(
            css,
            media_type="text/css; charset=utf-8",
            headers={"Cache-Control": "public, max-age=3600"},
        )


def serve_app() -> FastAPI:
    """The app factory `newsletter serve` gives uvicorn (in each of its worker processes):
    settings from the environment, and the tick when no broker (and so no beat) is set."""
    settings = Settings.from_env()
    app = create_app(settings, run_tick=not settings.broker_url)
    settle(app.state.runtime)
    return app


def settle(runtime: Runtime) -> None:
    """Build now what the first request would (the job publisher: Celery's app and imports,
    about 0.15 s), then keep what is loaded so far out of the collector's full passes.

    A full collection (generation 2) walks every object the process tracks. With the app,
    SQLAlchemy, Celery and their modules loaded, it stopped a worker for 130-160 ms, once
    every several seconds under a stream of POSTs: that pause was the POSTs' p99. Modules,
    classes, templates and the app live as long as the process, so gc.freeze() moves them
    to the permanent generation and a full pass walks only what requests left (10-15 ms).
    Only for a serving process: a test process building many apps must not freeze them."""
    _ = runtime.jobs  # a cached property: built here, once
    gc.collect()
    gc.freeze()
