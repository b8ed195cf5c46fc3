"""Generating the sync twin of a coroutine function: one call through the shared portal.

``run = make_sync(async_run, "run")`` is the whole sync implementation of ``run``; there is no
second code path to drift. The twin keeps the coroutine's signature and docstring (with the
async spelling removed), marks the call so errors carry the seed's sync codes (see
:data:`procfound.call.failures.SYNC_CALL`), and makes Ctrl-C safe: a ``KeyboardInterrupt`` in the
calling thread cancels the coroutine in the portal and waits for its kill path to finish before
it reaches the caller, so the child is gone first.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator
from typing import Any, Final, ParamSpec, TypeVar

import anyio
from anyio.lowlevel import current_token

from procfound.bridge.portal import (
    PortalClosedError,
    current_job_scope,
    in_portal_thread,
    stopped_error,
    submit,
)
from procfound.call.failures import SYNC_CALL
from procfound.call.observe import caller_trace_context, enter_trace_context, exit_trace_context
from procfound.errors import ProcessError, StateError

__all__ = ["acall_in_portal", "call_in_portal", "make_sync", "make_sync_iterator", "sync_docstring"]

P = ParamSpec("P")
T = TypeVar("T")

# After Ctrl-C, how long to wait for the coroutine's shielded cleanup (its kill schedule is
# bounded well below this) before letting the KeyboardInterrupt through regardless.
_CLEANUP_WAIT: Final = 15.0


class _Interrupted(Exception):
    """The coroutine was cancelled because its caller got Ctrl-C (the caller re-raises that)."""


class _Call:
    """One sync call's link to its coroutine in the portal: its outcome and its cancel scope.

    ``done`` is a plain lock, held until the coroutine has finished. The caller waits by
    acquiring it: a Ctrl-C interrupts ``Lock.acquire`` cleanly, whereas one landing inside
    ``Condition.wait`` (``Future.result``, ``Event.wait``) can leave that condition's lock
    half-restored and surface as ``RuntimeError: cannot release un-acquired lock``.

    ``ticket`` decides, without a lock and without guessing from time, whether the job runs:
    the job takes it as it starts (:meth:`claim`), or its caller takes it on Ctrl-C
    (:meth:`abandon`); ``list.pop`` is atomic, so exactly one of them gets it.
    """

    __slots__ = (
        "cancel_requested",
        "done",
        "error",
        "finished",
        "notify",
        "result",
        "scope",
        "ticket",
        "trace",
    )

    def __init__(self) -> None:
        self.done = threading.Lock()
        self.done.acquire()
        self.ticket = [True]
        self.finished = False  # set before done is released: Ctrl-C may land after an acquire
        self.scope: anyio.CancelScope | None = None
        self.cancel_requested = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.notify: Callable[[], object] | None = None  # wakes an async caller's loop
        # The caller's OpenTelemetry context (None without it): the job runs in the worker's
        # context, so the current span is carried over by hand to be the command's parent.
        self.trace = caller_trace_context()

    def claim(self) -> bool:
        """In the portal, as the job starts: True if it may run, False if its caller gave up."""
        try:
            return self.ticket.pop()
        except IndexError:
            return False

    def abandon(self) -> bool:
        """In the caller: True if the job had not started, and now never will."""
        return self.claim()

    def fail(self, error: BaseException) -> None:
        """The task could not be started: hand the error to the waiting caller."""
        self.error = error
        self.end()

    def end(self) -> None:
        """Called in the portal once the outcome is set: wake whoever waits for it."""
        self.finished = True
        self.done.release()
        if self.notify is not None:
            self.notify()

    def outcome(self) -> Any:
        """The caller's side, once ``done`` is acquired: the result, or the error raised."""
        error = self.error
        if error is None:
            return self.result
        if not isinstance(error, Exception):  # cancelled: the portal was stopped under it
            raise stopped_error() from error
        raise error


async def _run_linked(
    call: _Call, fn: Callable[..., Awaitable[Any]], args: Any, kwargs: Any, sync: bool = True
) -> None:
    if not call.claim():  # Ctrl-C landed before the job started: it never runs
        call.error = _Interrupted()
        call.end()
        return
    # The worker's own cancel scope, not one per call (#18: 4 µs per call on asyncio, 15 µs on
    # trio): cancelling it for Ctrl-C ends this job, and the worker retires after it.
    call.scope = current_job_scope()
    # Workers run job after job in one context: the mark is set for this job and reset after.
    token = SYNC_CALL.set(sync)
    trace = enter_trace_context(call.trace)
    try:
        call.result = await fn(*args, **kwargs)
    except Exception as exc:
        call.error = exc
    except BaseException as exc:  # cancelled: for Ctrl-C, or because the portal is stopping
        call.error = _Interrupted() if call.cancel_requested else exc
        raise
    finally:
        exit_trace_context(trace)
        SYNC_CALL.reset(token)
        call.end()


def _cancel(call: _Call) -> None:
    """Cancel the call's job (in the portal thread); a finished call's worker is left alone."""
    call.cancel_requested = True
    scope = call.scope
    if scope is not None and not call.finished:
        scope.cancel()


async def _cancel_soon(call: _Call) -> None:
    _cancel(call)


# How often a sync call's wait wakes to let the main thread run a pending signal handler.
_SIGNAL_CHECK: Final = 0.25


# The Lock fast path is kept: AnyIO's own ways in are slower, measured in one run, interleaved
# (python -m benchmarks --only portal-ab --rounds 15, 2 shared vCPUs, median per no-op call):
#                                          asyncio   trio
#   submit + threading.Lock (this)           25 µs   34 µs
#   anyio.from_thread.run(..., token=...)    34 µs   36 µs
#   BlockingPortal.call                      69 µs   84 µs
# and from a caller's asyncio loop, acall_in_portal 30 µs against BlockingPortal.call_async 59 µs
# (trio portal: 49 against 93). Handing over through the token (run_sync_soon) costs the same
# as through the loop's native call_soon_threadsafe / TrioToken.run_sync_soon (27 µs, 34 µs).
def call_in_portal(fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``await fn(*args, **kwargs)`` in the shared portal and return its result.

    Raises:
        StateError: If called from the portal's own thread (it would wait on itself).
    """
    if in_portal_thread():
        raise StateError(
            "a sync procfound call was made from procfound's own portal thread (for example "
            "from a callback running in it); use the async_* form there",
            code="SYNC_CALL_IN_PORTAL",
        )
    call = _Call()
    try:
        submit(_run_linked, call, fn, args, kwargs, on_error=call.fail)
        # In slices: the kernel may deliver a process-directed SIGINT/SIGTERM to another thread
        # (the portal's), and Python runs the handler only when the main thread runs bytecode.
        # A wait without a timeout would sit out the whole call before Ctrl-C is acted on.
        while not call.done.acquire(timeout=_SIGNAL_CHECK):
            pass
    except OSError as exc:  # the portal's event loop could not start (no fds left...)
        raise ProcessError(
            f"procfound could not start its event loop thread: {exc}",
            code="PORTAL_START_FAILED",
        ) from exc
    except PortalClosedError:  # the interpreter is exiting: nothing was submitted
        raise
    except BaseException:
        _stop_and_wait(call)
        raise
    result: T = call.outcome()
    return result


async def acall_in_portal(fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """``await fn(...)`` in the portal, from another event loop, cancellably.

    For work that must run in the portal (it owns the child's session) but is awaited from a
    user's asyncio or trio loop: the caller's loop stays free while it runs and is woken the
    moment it ends (the portal schedules the wake-up with the caller loop's own thread-safe
    call). Cancelling the caller cancels the portal call, whose cleanup runs before the
    cancellation propagates.
    """
    call = _Call()
    finished = anyio.Event()
    call.notify = _waker(finished)
    submit(_run_linked, call, fn, args, kwargs, False, on_error=call.fail)
    try:
        await finished.wait()
    except BaseException:
        if not call.abandon():  # it runs: cancel it, and wait for its cleanup within a bound
            call.cancel_requested = True
            submit(_cancel_soon, call)
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLEANUP_WAIT):
                await finished.wait()
        raise
    call.done.acquire()
    result: T = call.outcome()
    return result


def _waker(event: anyio.Event) -> Callable[[], object]:
    """A callable, safe from any thread, that sets ``event`` in the current (caller's) loop.

    The caller's loop is known by its AnyIO token, asyncio's or trio's alike.
    """
    token = current_token()

    def wake() -> None:
        # The caller's loop may be gone (its run ended after a cancellation): nobody to wake.
        with contextlib.suppress(RuntimeError):  # anyio.RunFinishedError
            token.backend_class.run_sync_soon(event.set, (), token.native_token)

    return wake


def _stop_and_wait(call: _Call) -> None:
    """After Ctrl-C: cancel the coroutine and wait for its kill path, within a bound.

    A job that has not started yet never will (the caller takes its ticket): there is nothing
    to stop and nothing to wait for.
    """
    if call.abandon():
        return
    call.cancel_requested = True
    # Another Ctrl-C while we wait must not abandon the cleanup: keep going, within a bound.
    for _ in range(3):
        try:
            submit(_cancel_soon, call)
            break
        except KeyboardInterrupt:
            continue
        except RuntimeError:  # StateError: the portal is stopping and cancels everything itself
            break
    deadline = time.monotonic() + _CLEANUP_WAIT
    while not call.finished and time.monotonic() < deadline:
        try:
            if call.done.acquire(timeout=_SIGNAL_CHECK):
                return
        except KeyboardInterrupt:
            pass


def sync_docstring(doc: str | None, async_name: str, sync_name: str) -> str | None:
    """The coroutine's docstring, reworded for its sync twin."""
    if doc is None:
        return None
    doc = re.sub(r"anyio\.run\(([\w.]+), ", r"\1(", doc)  # also a method: proc.await_ready
    doc = re.sub(r"\n\s*>>> import anyio\n", "\n", doc)
    doc = re.sub(rf"\b{async_name}\b", sync_name, doc).replace("await ", "")
    return doc.replace("under asyncio or trio", "from sync code (it blocks the caller)")


def make_sync(fn: Callable[P, Coroutine[Any, Any, T]], name: str) -> Callable[P, T]:
    """The sync twin of coroutine function ``fn``, named ``name``."""

    @functools.wraps(fn, assigned=("__module__", "__annotations__"))
    def twin(*args: P.args, **kwargs: P.kwargs) -> T:
        return call_in_portal(fn, *args, **kwargs)

    twin.__name__ = twin.__qualname__ = name
    twin.__doc__ = sync_docstring(fn.__doc__, fn.__name__, name)
    twin.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    return twin


def make_sync_iterator(
    fn: Callable[P, AsyncIterator[T]], name: str
) -> Callable[P, Generator[T, None, None]]:
    """The sync twin of async generator function ``fn``: one portal call per item.

    Each item should be worth a portal call (the streams' twin yields the bytes of a read, not
    lines).
    Closing or dropping the sync generator closes the async one in the portal, which runs its
    cleanup (the kill path) before ``close()`` returns. Two copies are inert instead: one in a
    forked child (the async generator and its child belong to the parent), and one closed while
    the interpreter exits (the exit shutdown has already stopped every child).
    """

    def twin(*args: P.args, **kwargs: P.kwargs) -> Generator[T, None, None]:
        agen = fn(*args, **kwargs)
        owner = os.getpid()
        try:
            while True:
                if os.getpid() != owner:
                    raise StateError(
                        "this stream was opened before os.fork(); it belongs to the parent "
                        "process and cannot be read in the child",
                        code="FORKED_STREAM",
                    )
                try:
                    item = call_in_portal(_next_item, agen)
                except StopAsyncIteration:
                    return
                yield item
        finally:
            if os.getpid() == owner:
                with contextlib.suppress(PortalClosedError):
                    call_in_portal(_close, agen)

    twin.__name__ = twin.__qualname__ = name
    twin.__doc__ = sync_docstring(fn.__doc__, fn.__name__, name)
    return twin


async def _next_item(agen: AsyncIterator[T]) -> T:
    return await agen.__anext__()


async def _close(agen: AsyncIterator[Any]) -> None:
    aclose = getattr(agen, "aclose", None)
    if aclose is not None:
        await aclose()
