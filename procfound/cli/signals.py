"""The CLI's stop signals: SIGINT, SIGTERM, SIGHUP and SIGQUIT stop the command's tree as
Ctrl-C does, and ``procfound`` exits 128+N.

It owns the handlers :func:`procfound.cli.main` installs for the process (the library installs
none), the :class:`Signalled` exception they raise, the forwarding of a signal the kernel gave
another thread, and :meth:`StopSignals.run_loop`, the event loop a stop signal cancels. It
imports nothing of procfound's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any, Final, TypeVar, final

import anyio

__all__ = ["STOP_SIGNALS", "Signalled", "StopSignals"]

T = TypeVar("T")

# The signals that stop procfound the way Ctrl-C does: coreutils timeout(1), CI runners and
# systemd send SIGTERM, a closed terminal SIGHUP, Ctrl-\ SIGQUIT. Each exits 128+N.
STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
# A stop signal the main thread has not handled this long after it arrived is sent to it again.
_FORWARD_AFTER: Final = 0.02


class Signalled(KeyboardInterrupt):
    """Stop signal ``signum`` arrived: stop the command's tree as on Ctrl-C, then exit 128+N.

    A ``KeyboardInterrupt``, so the sync bridge takes it for Ctrl-C: it cancels the call running
    in the portal and waits for its kill path (the call's stop policy: stop signal, kill grace,
    containment, cgroup removed) before letting it through.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@final
class StopSignals:
    """``main()``'s handlers for :data:`STOP_SIGNALS` (the library itself installs none).

    The first signal raises :class:`Signalled` in the main thread, wherever it is; inside an
    event loop the CLI runs (see :meth:`run_loop`) it cancels the loop's work instead, as asyncio
    does for Ctrl-C, rather than raising in the middle of the loop's own code. Every later
    signal is ignored: a second one must not cut the stop short (it leaves the tree, or its
    cgroup, behind), and the stop is bounded anyway (the stop signal, at most the kill grace,
    then SIGKILL). :meth:`uninstall` restores the handlers it found, unless ``main()`` owns
    the process (``argv`` is None): then only the interpreter's exit is left, everything has
    been stopped, and a signal must neither raise in an exit hook (a traceback) nor change the
    outcome of a stop already made. So after a stop signal the later ones stay ignored, and
    without one the first exits 128+N at once. While a command runs, a signal the kernel gave
    another thread is forwarded to the main one (:meth:`forward_from_other_threads`).
    """

    __slots__ = ("_cancel", "_deferred", "_owns_process", "_previous", "_wakeup", "received")

    def __init__(self, *, owns_process: bool) -> None:
        self._owns_process = owns_process
        self._previous: dict[int, Any] = {}
        self.received: int | None = None  # the first stop signal
        self._cancel: Callable[[], object] | None = None  # set while run_loop's work runs
        self._deferred = False  # the first signal cancelled run_loop's work: raise after it
        self._wakeup: tuple[int, int] | None = None  # our wakeup fd and the one it replaced

    def install(self) -> None:
        """Install the handlers (a signal may raise as soon as the first one is in place)."""
        # Python runs signal handlers in the main thread only; a main() called from another
        # thread (embedded use) leaves signals to whoever owns the process.
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                # None (a handler set outside Python) cannot be put back: the default is, then
                self._previous[signum] = signal.getsignal(signum) or signal.SIG_DFL
                signal.signal(signum, self._handle)

    def forward_from_other_threads(self) -> None:
        """See that a stop signal reaches the main thread, whichever thread the kernel gave it.

        The kernel hands a process-directed signal to any thread that does not block it, and
        Python runs the handler only in the main thread, once that thread runs Python code. One
        that lands in procfound's portal thread while the main thread sleeps on a call's lock
        (or in its event loop) would wait until the call ended: SIGTERM during the spawn of a
        silent command hung the CLI 5 times in 80. Blocking the signals in the portal thread
        is no cure, as the children it spawns would inherit the mask. So every signal also
        writes its number to a pipe (``signal.set_wakeup_fd``), and a thread of ours that
        blocks them re-sends it to the main thread while the handler has not run there.
        """
        if not self._previous or self._wakeup is not None:  # not the main thread, or done
            return
        try:
            read_fd, write_fd = os.pipe()
        except OSError:  # no fds left: the command cannot start either, and says so
            return
        os.set_blocking(write_fd, False)
        self._wakeup = (write_fd, signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False))
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:  # the thread inherits the mask: the kernel never hands it a stop signal
            threading.Thread(
                target=self._forward, args=(read_fd,), name="procfound-cli-signals", daemon=True
            ).start()
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def _forward(self, read_fd: int) -> None:
        main_thread = threading.main_thread().ident
        assert main_thread is not None
        try:
            while data := os.read(read_fd, 64):
                for signum in data:
                    # Give the main thread a moment: if it got the signal itself, its handler
                    # has run by then. Re-sent, the signal writes here again: until it has.
                    time.sleep(_FORWARD_AFTER)
                    if signum in STOP_SIGNALS and self.received is None:
                        with contextlib.suppress(OSError):
                            signal.pthread_kill(main_thread, signum)
        finally:
            os.close(read_fd)

    def uninstall(self) -> None:
        """Put back the handlers found, or the process's exit handlers (see the class).

        The first stop signal may land in it and raise (main() then calls it again: once one
        has landed, no signal raises any more).
        """
        for signum, previous in self._previous.items():
            if not self._owns_process:
                handler = previous
            elif self.received is not None:
                # Ignored by the kernel, not by a Python handler: Python's finalization puts
                # back the default action of a signal with a Python handler, and a second
                # signal would then kill procfound (-N instead of the first one's 128+N).
                handler = signal.SIG_IGN
            else:
                handler = self._exit_now
            signal.signal(signum, handler)
        wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None:
            write_fd, previous_fd = wakeup
            signal.set_wakeup_fd(previous_fd)
            os.close(write_fd)  # the forwarding thread reads the end of the pipe, and ends

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            return  # already stopping: see the class docstring
        self.received = signum
        cancel = self._cancel
        if cancel is None:
            raise Signalled(signum)
        self._deferred = True
        cancel()

    def _exit_now(self, signum: int, frame: FrameType | None) -> None:
        """The handler once main() is done (see the class): nothing is left to stop."""
        if self.received is not None:
            return  # procfound exits 128+N for the first signal
        with contextlib.suppress(Exception):  # a write the signal interrupted may hold a buffer
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(128 + signum)

    def run_loop(self, fn: Callable[..., Awaitable[T]], *args: object) -> T:
        """``anyio.run(fn, *args)``, which the first stop signal cancels.

        From before the loop is built until it is closed, the handler does not raise: an
        exception in the middle of building or closing a loop leaves a broken one behind (and
        a traceback at exit). A signal that lands while there is nothing to cancel yet is
        acted on when ``fn`` would start; either way it is raised once the loop is gone.

        Raises:
            Signalled: If a stop signal arrived while it ran.
        """
        outcome: list[T] = []

        async def guarded() -> None:
            with anyio.CancelScope() as scope:
                # The loop's own signal-safe wake-up: the handler may interrupt any line of
                # the loop's code, and only this is safe to call from there.
                call_soon = asyncio.get_running_loop().call_soon_threadsafe

                def cancel() -> None:
                    with contextlib.suppress(RuntimeError):  # the loop is closing: raised below
                        call_soon(scope.cancel)

                self._cancel = cancel
                try:
                    if not self._deferred:  # else it landed while the loop was being built
                        outcome.append(await fn(*args))
                finally:
                    self._cancel = _later

        self._cancel = _later
        try:
            anyio.run(guarded, backend="asyncio")
        except Exception:
            if not self._deferred:
                raise
            # fn failed (timed out, its command exited) as the signal landed: the signal wins
        finally:
            self._cancel = None
        if self._deferred:
            self._deferred = False
            assert self.received is not None
            raise Signalled(self.received)
        return outcome[0]  # only a stop signal cancels guarded, and that raised above


def _later() -> None:
    """The handler's "cancel" while there is nothing to cancel: run_loop raises afterwards."""
