"""The Runtime shared by every command, built on first use from the environment."""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from typing import Any, TypeVar

import click

from newsletter.config import Settings
from newsletter.runtime import Runtime

F = TypeVar("F", bound=Callable[..., Any])


def get_runtime(ctx: click.Context) -> Runtime:
    root = ctx.find_root()
    if not isinstance(root.obj, Runtime):
        from workers.publish import celery_jobs

        root.obj = Runtime(Settings.from_env(), broker_jobs=celery_jobs)
        root.call_on_close(root.obj.dispose)
    return root.obj


def pass_runtime(func: F) -> F:
    """Give the command the Runtime as its first argument."""

    @click.pass_context
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        return ctx.invoke(func, get_runtime(ctx), *args, **kwargs)

    return update_wrapper(wrapper, func)  # type: ignore[return-value]
