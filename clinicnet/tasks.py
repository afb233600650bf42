"""Run background work the way the deployment wants (``settings.TASK_MODE``).

* ``celery``: send the task to the broker; worker processes run it.
* ``thread``: the embedded mode. Run it in a small thread pool inside the web
  process, after the current transaction commits, so a request answers
  before its background work is done (as it would with Celery).
* ``eager``: run it at once, synchronously (tests).

Call :func:`enqueue` after the data the task needs is committed (it defers
itself with ``transaction.on_commit``).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from django.conf import settings
from django.db import close_old_connections, transaction

from clinicnet.lib.threads import LazyThreadPool

logger = logging.getLogger(__name__)
_pool = LazyThreadPool(max_workers=2, thread_name_prefix="clinicnet-task")


def _run_in_thread(task: Task, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    try:
        task.apply(args=args, kwargs=kwargs, throw=True)
    except Exception:
        logger.exception("background task %s failed", task.name)
    finally:
        close_old_connections()


def run_now(task: Task, *args: Any, queue: str = "default", **kwargs: Any) -> None:
    """Dispatch *task* immediately (the caller makes sure its data is committed)."""
    mode = settings.TASK_MODE
    if mode == "celery":
        task.apply_async(args=args, kwargs=kwargs, queue=queue, priority=9 if queue == "emergency" else 0)
    elif mode == "thread":
        _pool.submit(_run_in_thread, task, args, kwargs)
    else:
        task.apply(args=args, kwargs=kwargs, throw=True)


def enqueue(task: Task, *args: Any, queue: str = "default", **kwargs: Any) -> None:
    """Run *task* in the background once the current transaction commits.

    In eager mode (tests) it runs at once: the test's own transaction never
    commits, and the data is visible on the same connection anyway.
    """
    if settings.TASK_MODE == "eager":
        run_now(task, *args, queue=queue, **kwargs)
        return
    transaction.on_commit(lambda: run_now(task, *args, queue=queue, **kwargs))


def wait_for_threads() -> None:
    """Block until queued thread-mode work is done; at once when there is none (or another mode).

    A command that ran background work in threads calls it before it exits: at
    interpreter exit that work would be cut short (no new thread, no event pushed).
    """
    _pool.drain()
