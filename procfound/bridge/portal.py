"""The one process-wide AnyIO blocking portal that every sync call runs its coroutine in.

Started lazily by the first sync call, on a daemon thread, under a lock; the backend comes from
``PROCFOUND_BACKEND`` (``asyncio``, the default, or ``trio``). Starting a portal costs
milliseconds and a call through a warm one tens of microseconds, so there is exactly one, kept
warm (a portal per call is the kr8s #184 trap). It is stopped at interpreter exit, which
cancels whatever still runs in it so every child is killed, and forgotten in a forked child,
which starts its own on first use.

Fault isolation: every job enters the loop through :func:`submit`, and a job's exception reaches
its caller (through the caller's own channel) or is logged; it never ends the loop. A loop that
died anyway (its thread is gone) is noticed by the next call and replaced. Once the portal has
been stopped for interpreter exit, or while the interpreter is finalizing, no new portal is
started: a thread started then never runs (``Thread.start`` waits for ever), and a child started
then would outlive the exit.

Crossing into the loop: the loop's AnyIO token (:func:`anyio.lowlevel.current_token`, taken in
the loop when it starts) and the token's own thread-safe, non-blocking "call this soon"
(``token.backend_class.run_sync_soon``, what AnyIO's ``BlockingPortal.call_async`` is built on):
one path for both backends, nothing guessed. The :class:`BlockingPortal` itself serves where a
blocking round trip is what is wanted: the loop's lifetime and stopping it
(``portal.call(portal.stop, True)``). A sync call goes neither through ``BlockingPortal.call``
nor through ``anyio.from_thread.run(..., token=...)``: both start a task per call and make the
caller wait in a condition (``Future.result``, trio's queue), which a Ctrl-C can leave
half-restored and which trio's blocks without the signal slices of
:func:`procfound.bridge.sync.call_in_portal`; and both are slower (see the numbers there).

Exit order: the portal stops in stage :data:`procfound.lifecycle.STOP_PORTAL`, before the engine
closes what is still open (:data:`procfound.lifecycle.CLOSE_SESSIONS`); the bridge never imports
the engine for that.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, Final

import anyio
from anyio.abc import TaskGroup
from anyio.from_thread import BlockingPortal
from anyio.lowlevel import EventLoopToken, current_token

from procfound.errors import ProcessError, StateError, ValidationError
from procfound.lifecycle import STOP_PORTAL, at_exit

__all__ = [
    "BACKENDS",
    "PortalClosedError",
    "current_job_scope",
    "get_portal",
    "in_portal_thread",
    "register_shutdown_hook",
    "shutdown",
    "stopped_error",
    "submit",
]

_log: Final = logging.getLogger("procfound")

BACKENDS: Final = ("asyncio", "trio")
_STOP_TIMEOUT: Final = 10.0

_lock = threading.Lock()
_portal: BlockingPortal | None = None
_thread: threading.Thread | None = None
_thread_id: int | None = None
_hooks: list[Callable[[], None]] = []
_token: EventLoopToken | None = None  # the portal loop's AnyIO token: the way into it
_workers: _Workers | None = None  # where submitted coroutines run
_closed_for_exit = False  # set by the atexit shutdown: no portal is started after it
_exiting = False  # set when the atexit shutdown begins (calls still running are cancelled)


class PortalClosedError(ProcessError):
    """A sync call arrived while the interpreter is exiting: it cannot run, and says so at once."""

    default_code = "PORTAL_CLOSED"


def _refuse_if_exiting() -> None:
    if _exiting or _closed_for_exit or sys.is_finalizing():
        raise PortalClosedError(
            "procfound cannot run a sync call while the interpreter is exiting (its event-loop "
            "thread has been stopped and no thread can be started now); stop processes and "
            "streams before exit, or use the async_* form inside your own event loop",
            code="PORTAL_CLOSED",
        )


def stopped_error() -> StateError:
    """The error of a sync call whose portal was stopped while it ran (its child was stopped by
    the cancellation): ``INTERPRETER_EXITING`` at interpreter exit, else ``PORTAL_STOPPED``.

    A :class:`StateError`, so also a ``RuntimeError``, as the bare error it replaces was.
    """
    if _exiting or _closed_for_exit or sys.is_finalizing():
        return StateError(
            "procfound's event-loop thread was stopped because the interpreter is exiting: this "
            "call was cancelled and its process stopped; join the threads that make sync calls "
            "before the program ends (or make them non-daemon)",
            code="INTERPRETER_EXITING",
        )
    return StateError(
        "procfound's event-loop thread was stopped (portal.shutdown()) while this call ran: it "
        "was cancelled and its process stopped",
        code="PORTAL_STOPPED",
    )


def _backend() -> str:
    backend = os.environ.get("PROCFOUND_BACKEND", "asyncio").strip().lower() or "asyncio"
    if backend not in BACKENDS:
        raise ValidationError(
            f"PROCFOUND_BACKEND must be one of {', '.join(BACKENDS)}, not {backend!r}",
            code="INVALID_BACKEND",
        )
    return backend


def get_portal() -> BlockingPortal:
    """The shared portal, started on first use, replaced if its thread has died.

    Raises:
        PortalClosedError: If the interpreter is exiting (no thread can be started then).
    """
    portal, thread = _portal, _thread
    if portal is not None and thread is not None and thread.is_alive():
        return portal
    _refuse_if_exiting()
    with _lock:
        if _thread is not None and not _thread.is_alive():
            _forget_dead_loop()
        if _portal is None:
            _start(_backend())
        assert _portal is not None
        return _portal


def _forget_dead_loop() -> None:
    # The loop thread ended without shutdown() (a crash in the loop itself): whatever it held is
    # gone with it, and the next call starts a fresh one.
    global _portal, _thread, _thread_id, _token, _workers
    _log.error("procfound's portal thread had died; starting a new one")
    _portal = _thread = _thread_id = _token = _workers = None


def in_portal_thread() -> bool:
    """True when called from the portal's own event-loop thread."""
    return _thread_id is not None and threading.get_ident() == _thread_id


def _start(backend: str) -> None:
    global _portal, _thread, _thread_id
    ready = threading.Event()
    failure: list[BaseException] = []

    pools: list[_Workers] = []

    async def serve() -> None:
        global _portal, _thread_id, _token, _workers
        async with BlockingPortal() as portal, anyio.create_task_group() as tasks:
            _token, _workers = current_token(), _Workers(tasks, backend)
            pools.append(_workers)
            _portal, _thread_id = portal, threading.get_ident()
            ready.set()
            await portal.sleep_until_stopped()
            # Cancelling sends every call still running through its shielded kill path.
            tasks.cancel_scope.cancel()

    def main() -> None:
        try:
            anyio.run(serve, backend=backend)
        except BaseException as exc:  # reported to the thread that asked for the portal
            failure.append(exc)
        finally:
            ready.set()
            for pool in pools:
                pool.fail_unstarted()

    # A daemon thread: a non-daemon one would be joined by threading's shutdown *before* our
    # atexit hook could stop the portal, and the interpreter would hang at exit.
    _thread = threading.Thread(target=main, name="procfound-portal", daemon=True)
    _thread.start()
    ready.wait()
    if failure:
        raise failure[0]


def _call_soon(fn: Callable[..., object], *args: object) -> None:
    """Run ``fn(*args)`` in the portal loop soon, without waiting (from any thread).

    Raises:
        StateError: If the portal has stopped (or is stopping and its loop has ended).
    """
    token = _token
    if token is None:
        raise stopped_error()
    try:
        token.backend_class.run_sync_soon(fn, args, token.native_token)
    except RuntimeError as exc:  # anyio.RunFinishedError: the loop ended under us
        raise stopped_error() from exc


class _Workers:
    """Where submitted coroutines run: idle tasks of one portal's task group, reused.

    Handing a job to an idle task costs less than starting a task (measured: 20-30 µs less
    per sync call). Every job still runs inside the portal's task group, so stopping the portal
    cancels it like any task. Each portal has its own pool: a worker belongs to the loop it
    waits in. Jobs in one worker share its context, so a job must not set context variables
    it does not reset (procfound's jobs reset the one they set).

    A worker starts in a copy of the portal loop's own context, taken here: not in the context
    of the callback that starts it, which is a copy of the *caller's* (``run_sync_soon`` runs
    callbacks so) and would hand one caller's context variables (a trace context, say) to
    every later job of that worker.
    """

    __slots__ = ("context", "idle", "park", "tasks", "unstarted")

    # Workers kept waiting for work; more than this many idle at once end.
    MAX_IDLE: Final = 8

    def __init__(self, tasks: TaskGroup, backend: str) -> None:
        self.tasks = tasks
        self.context = contextvars.copy_context()
        self.idle: list[_Worker] = []
        # Idle workers wait on their backend's own primitive, picked by the backend this
        # portal was started with (see _Worker for what it saves per call).
        self.park = _trio_park if backend == "trio" else _asyncio_park
        # The error callbacks of submitted jobs whose start has not run yet, by submission. A
        # start handed over after the loop's last pass is dropped with the loop, unrun: the
        # loop thread fails what is left here once its loop has ended, so no caller waits on
        # a job that will never run. Whoever pops an entry first (the start or the sweep) owns it.
        self.unstarted: dict[int, Callable[[BaseException], object]] = {}

    def fail_unstarted(self) -> None:
        """Once the loop has ended (in its thread): fail every submitted job that never started."""
        while self.unstarted:
            try:
                _, on_error = self.unstarted.popitem()
            except KeyError:  # a late start took the last one
                return
            with contextlib.suppress(BaseException):
                on_error(stopped_error())

    def start(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        """Run ``await fn(*args)`` soon (called in the portal thread)."""
        # Once the portal is stopping its idle workers are being cancelled: start a task
        # instead, which the cancelled group fails at once, so the job's caller hears back.
        while self.idle and not self.tasks.cancel_scope.cancel_called:
            worker = self.idle.pop()
            wake, worker.wake = worker.wake, None
            if wake is not None:
                worker.job = (fn, args)
                wake()
                return
        self.context.copy().run(self.tasks.start_soon, _Worker(self).serve, fn, args)


# The cancel scope of the worker running the current job (set once in each worker's context).
_JOB_SCOPE: Final[contextvars.ContextVar[anyio.CancelScope]] = contextvars.ContextVar(
    "procfound_job_scope"
)


def current_job_scope() -> anyio.CancelScope:
    """The cancel scope around the portal job running now; cancelling it ends only that job.

    Call it in a job, before its first ``await`` returns control. The worker that ran a job
    whose scope was cancelled is retired after it, so no later job inherits the cancellation.

    Raises:
        LookupError: Outside a portal job.
    """
    return _JOB_SCOPE.get()


class _Worker:
    """One task of a :class:`_Workers` pool: runs jobs one after another, idle in between.

    Idle, it waits on the backend's own primitive (an asyncio future, a parked trio task)
    rather than an ``anyio.Event``, and runs every job under one cancel scope of its own
    rather than one per job (#18: together 11 µs less per sync call on asyncio, about 25 µs
    on trio). A job cancelled through that scope is its last: the worker ends after it.
    """

    __slots__ = ("job", "pool", "wake")

    def __init__(self, pool: _Workers) -> None:
        self.pool = pool
        self.job: tuple[Callable[..., Any], tuple[Any, ...]] | None = None
        self.wake: Callable[[], object] | None = None  # set while parked in pool.idle

    async def serve(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        with anyio.CancelScope() as scope:
            _JOB_SCOPE.set(scope)  # this task's own context: seen by its jobs only
            while True:
                await _guarded(fn, args)
                del fn, args  # a finished job's arguments (and its result) are not kept alive
                if scope.cancel_called or len(self.pool.idle) >= _Workers.MAX_IDLE:
                    return
                try:
                    await self.pool.park(self)
                except BaseException:
                    # Cancelled (the portal stops) just after being handed a job: run it
                    # anyway, so it fails at its first checkpoint and its caller hears back.
                    if self.job is None:
                        with contextlib.suppress(ValueError):
                            self.pool.idle.remove(self)
                        raise
                    fn, args = self._take_job()
                    await _guarded(fn, args)
                    raise
                fn, args = self._take_job()

    def _take_job(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        job, self.job = self.job, None
        if job is None:  # pragma: no cover - a worker is only woken with a job
            raise RuntimeError("procfound portal worker woken without a job")
        return job


async def _asyncio_park(worker: _Worker) -> None:
    """Wait, idle, until :meth:`_Workers.start` wakes ``worker`` (asyncio)."""
    waiter = asyncio.get_running_loop().create_future()

    def wake() -> None:
        if not waiter.done():
            waiter.set_result(None)

    worker.wake = wake
    worker.pool.idle.append(worker)
    await waiter


async def _trio_park(worker: _Worker) -> None:
    """Wait, idle, until :meth:`_Workers.start` wakes ``worker`` (trio)."""
    import trio

    task = trio.lowlevel.current_task()

    def wake() -> None:
        trio.lowlevel.reschedule(task)

    def abort(_: object) -> trio.lowlevel.Abort:
        worker.wake = None  # cancelled while idle: nobody may wake it now
        return trio.lowlevel.Abort.SUCCEEDED

    worker.wake = wake
    worker.pool.idle.append(worker)
    await trio.lowlevel.wait_task_rescheduled(abort)


async def _guarded(fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """Run one job; whatever it raises is logged, never let loose on the portal's task group.

    Jobs that report to a caller (procfound.bridge.sync) catch their own errors; this is the net
    under the rest (a ManagedProcess's supervisor, a kill on garbage collection). Only the portal's
    own cancellation (it is stopping) passes through.
    """
    try:
        await fn(*args)
    except anyio.get_cancelled_exc_class():
        raise
    except BaseException:
        _log.exception("procfound portal job %s failed", getattr(fn, "__qualname__", fn))


def submit(
    fn: Callable[..., Any], *args: Any, on_error: Callable[[BaseException], object] | None = None
) -> None:
    """Run ``await fn(*args)`` in the portal loop without waiting for it to start.

    The only way into the loop. The caller learns the outcome through its own channel (see
    :mod:`procfound.bridge.sync`); if the job cannot even be started, ``on_error`` gets the
    exception (in the portal thread), so no caller is left waiting for a job that never ran. Without
    ``on_error`` that failure is logged. Whatever the job raises is logged at most: a failing
    job never ends the loop.

    Raises:
        PortalClosedError: If the interpreter is exiting.
        StateError: If the portal stopped while the job was being submitted.
    """
    get_portal()
    workers = _workers
    if workers is None:
        raise stopped_error()

    def start() -> None:
        if on_error is not None and workers.unstarted.pop(key, None) is None:
            return  # the ended loop's sweep has already failed it: its caller has heard
        # A loop callback must not raise: trio would end the whole run with TrioInternalError.
        try:
            workers.start(fn, args)
        except BaseException as exc:
            if on_error is None:
                _log.error("procfound could not start portal job %s: %r", fn, exc)
            else:
                with contextlib.suppress(BaseException):
                    on_error(exc)

    key = id(start)
    if on_error is not None:
        workers.unstarted[key] = on_error
    try:
        _call_soon(start)
    except BaseException:
        workers.unstarted.pop(key, None)
        raise


def register_shutdown_hook(hook: Callable[[], None]) -> None:
    """Run ``hook`` at interpreter exit while the portal still works (before it is stopped)."""
    _hooks.append(hook)


def shutdown() -> None:
    """Stop the portal: run the shutdown hooks, cancel what still runs, join the thread.

    A later sync call starts a new portal (unless the interpreter is exiting).
    """
    global _portal, _thread, _thread_id, _token, _workers
    for hook in reversed(_hooks):
        with contextlib.suppress(Exception):
            hook()
    with _lock:
        portal, thread = _portal, _thread
        _portal = _thread = _thread_id = _token = _workers = None
    if portal is None or thread is None:
        return
    if thread.is_alive():
        with contextlib.suppress(RuntimeError):  # the loop is already gone
            portal.call(portal.stop, True)
        thread.join(_STOP_TIMEOUT)


def _shutdown_at_exit() -> None:
    global _closed_for_exit, _exiting
    _exiting = True  # before the cancellation, which wakes the callers that will read it
    try:
        shutdown()
    finally:
        # From here on a sync call fails at once (a new portal thread would never start, and a
        # child it started would outlive us). Then the engine's stage kills whatever still runs:
        # a stream held in a global, a run in a user's own event loop on a daemon thread.
        _closed_for_exit = True


def _forget_after_fork() -> None:
    # The portal thread does not exist in a forked child; its lock may be held by a thread that
    # does not exist either. Start from nothing: the child makes its own portal on first use.
    global _lock, _portal, _thread, _thread_id, _token, _workers
    _lock = threading.Lock()
    _portal = _thread = _thread_id = _token = _workers = None


at_exit(STOP_PORTAL, _shutdown_at_exit)
os.register_at_fork(after_in_child=_forget_after_fork)
