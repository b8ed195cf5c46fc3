"""The custom readiness check of ``wait_ready(check=...)`` / ``await_ready(check=...)``.

A check is a callable taking no arguments that returns true once the service is ready (as
mirakuru's ``after_start_check`` and xprocess's ``startup_check``). It is called again and
again, under the wait's deadline, with the probes' pacing (a pause of 2% of the time waited so
far, 1 ms to 20 ms, after each false answer), until it returns true.

**Where it runs.** Unlike the probes, which run in the child's owner (procfound's portal loop),
the check runs in the caller's loop: an async check is awaited there, so it may use the
caller's asyncio or trio objects (a client session, a trio channel); a sync check runs in a
worker thread (``anyio.to_thread``), so a check that blocks (a ``requests.get``) never blocks
any event loop. From sync code (``wait_ready``), the caller's loop is procfound's portal loop
(asyncio unless ``PROCFOUND_BACKEND`` says otherwise).

**Fail fast.** Meanwhile a task watches the child's exit in its owner: when the child exits,
the check in flight is cancelled (a sync one is abandoned in its thread; its result is ignored)
and the wait raises :class:`~procfound.ProcessError` at once (``PROCESS_EXITED_EARLY``, with
the exit code and output tails). At the deadline it raises
:class:`~procfound.ProcessTimeoutError` (``PROCESS_WAIT_TIMEOUT``) naming the check's last
answer.

**Errors of the check.** An ``OSError`` (a refused connection, a missing file) means "not ready
yet": it is retried and named in the timeout's message. Any other exception is a bug in the
check or a verdict of its own: it ends the wait and propagates as it is (the child keeps
running).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

from procfound.bridge.portal import in_portal_thread
from procfound.bridge.sync import acall_in_portal
from procfound.engine.owner import ChildOwner
from procfound.errors import ValidationError, shorten
from procfound.services.probe_kinds import NOT_TRIED
from procfound.services.probes import exited_error, pause_after, timeout_error

__all__ = ["Check", "check_callable", "wait_for_check"]

T = TypeVar("T")

#: A readiness check: sync or async, no arguments, true when ready.
Check = Callable[[], Any]


def check_callable(check: object) -> Check | None:
    """``check`` as given to ``wait_ready``, checked (None: no check)."""
    if check is None:
        return None
    if not callable(check):
        raise ValidationError(
            "check must be a callable taking no arguments that returns true when ready, "
            f"not {type(check).__name__}",
            code="INVALID_ARGUMENT",
        )
    return check


async def _in_owner(fn: Callable[..., Awaitable[T]], *args: object) -> T:
    """``await fn(*args)`` in the owner's loop: at once if this is it, else through the portal."""
    if in_portal_thread():
        return await fn(*args)
    return await acall_in_portal(fn, *args)


async def _exit_seen(owner: ChildOwner) -> None:
    await owner.supervisor_done.wait()


async def _timeout_error(
    owner: ChildOwner, seconds: float | None, goal: str, problem: str, command: str
) -> Exception:
    return timeout_error(owner, seconds, goal, problem, command)


def _is_async(check: Check) -> bool:
    return inspect.iscoroutinefunction(check) or inspect.iscoroutinefunction(
        getattr(check, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


async def _answer(check: Check) -> object:
    """One call of ``check``: awaited here if async, else in a worker thread."""
    if _is_async(check):
        return await check()
    result = await anyio.to_thread.run_sync(check, abandon_on_cancel=True)
    if inspect.isawaitable(result):  # a sync callable that returned a coroutine (a lambda)
        result = await result
    return result


async def _until_true(check: Check, last: list[str]) -> None:
    """Call ``check`` until it returns true; ``last[0]`` says why the last call was not."""
    began = anyio.current_time()
    while True:
        started = anyio.current_time()
        try:
            result = await _answer(check)
        except OSError as exc:  # not ready yet: a refused connection, a missing file...
            last[0] = f"it raised {type(exc).__name__}: {shorten(str(exc), 200)}"
        else:
            if result:
                return
            last[0] = f"it returned {shorten(repr(result), 80)}"
        await anyio.sleep(pause_after(began, started))


async def wait_for_check(
    owner: ChildOwner,
    check: Check,
    deadline: float,
    seconds: float | None,
    command: str,
) -> None:
    """Call ``check`` until it returns true, in this loop, failing fast when the child exits.

    ``deadline`` is in this loop's clock (``math.inf``: none); ``seconds`` is the whole wait's
    timeout, for the message. See the module docstring for the rules.

    Raises:
        ProcessError: The child exited first (code ``PROCESS_EXITED_EARLY``).
        ProcessTimeoutError: The deadline passed first (code ``PROCESS_WAIT_TIMEOUT``).
        Exception: What the check raised, unless an ``OSError``.
    """
    name = getattr(check, "__qualname__", None) or repr(check)
    goal = f"the check {shorten(name, 80)} to return true"
    last = [NOT_TRIED]
    exited = ready = False
    failure: Exception | None = None

    async def watch_exit(scope: anyio.CancelScope) -> None:
        nonlocal exited
        await _in_owner(_exit_seen, owner)
        exited = True
        scope.cancel()

    with anyio.CancelScope(deadline=deadline):
        async with anyio.create_task_group() as group:
            group.start_soon(watch_exit, group.cancel_scope)
            try:
                await _until_true(check, last)
                ready = True
            except Exception as exc:  # raised below, outside the task group (not in a group)
                failure = exc
            group.cancel_scope.cancel()
    if failure is not None:
        raise failure
    # Ready, but the child exited meanwhile: not the service's answer.
    if exited or owner.supervisor_done.is_set():
        raise await _in_owner(exited_error, owner, goal, command)
    if not ready:
        raise await _in_owner(_timeout_error, owner, seconds, goal, last[0], command)
