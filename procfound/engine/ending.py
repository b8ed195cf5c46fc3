"""The steps of a session's one kill path, below :meth:`ChildSession.finish`.

:class:`KillPath` is the part of :class:`~procfound.engine.session.ChildSession` that stops,
sweeps and reaps the tree: the TERM→KILL schedule (moving bytes meanwhile), the box of
``contain="tree"``, the signals to the group and the child, the reap, the synchronous last step
(:meth:`KillPath._kill_now`) that nothing can cut short, and :meth:`KillPath.close_now` for when
no event loop is left. ``ChildSession`` owns the state and the moving of bytes; this mixin
holds no state of its own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import anyio

from procfound.engine.contain import empty_box, empty_box_now
from procfound.engine.handoff import CLOSE_NOW_WAIT, handed_off, unreaped
from procfound.engine.kill import KillSchedule, KillStep
from procfound.engine.spawn import Child
from procfound.engine.waiting import child_has_exited

__all__ = ["KillPath", "UnkillableChildError"]

_log: Final = logging.getLogger("procfound")


class UnkillableChildError(Exception):
    """The child did not exit even after SIGKILL within the schedule's bound."""

    def __init__(self, pid: int, waited: float) -> None:
        super().__init__(f"process {pid} did not exit within {waited:g}s of SIGKILL")
        self.pid = pid
        self.waited = waited


class KillPath:
    """Mixin of :class:`~procfound.engine.session.ChildSession`: how its tree is ended."""

    # The part of the session's state this mixin sets; ChildSession's __init__ gives it values.
    __slots__ = (
        "_box_ended",
        "_exited",
        "_polite_until",
        "ended_at",
        "killed",
        "returncode",
        "rusage",
    )

    # The session's state, declared for the type checker.
    child: Child
    returncode: int | None
    killed: bool
    rusage: Any
    ended_at: float | None
    _box_ended: bool
    _disowned: bool
    _exited: bool
    _polite_until: float | None
    _readers: Mapping[int, object]
    _stdin: int | None

    if TYPE_CHECKING:  # ChildSession's, for the type checker only

        @property
        def pid(self) -> int: ...

        async def step(self) -> bool: ...

        async def drain(self) -> None: ...

        def _close_all(self) -> None: ...

    async def _finish(self, schedule: KillSchedule, interruptible: bool) -> None:
        if self._exited and not self._readers and self._stdin is None:
            # The common end of a run: nothing left to wait for, so nothing to shield (unless
            # descendants that left the group are to be stopped too: contain="tree").
            self._signal_group(signal.SIGKILL)  # sweep what is left of the tree
            await self._end_box(schedule)
            self._reap()
            self._close_all()
            return
        steps = schedule.steps()
        interrupted: BaseException | None = None
        if interruptible and len(steps) > 1 and not self._exited:
            try:
                await self._run_step(steps[0])  # the polite step, not shielded
            except anyio.get_cancelled_exc_class() as exc:
                interrupted = exc
            steps = steps[1:]
        with anyio.CancelScope(shield=True):
            try:
                if not self._exited and not child_has_exited(self.pid):
                    await self._stop(steps, schedule.kill_wait)
                else:
                    self._exited = True
                if self._exited:
                    await self.drain()
                    self._signal_group(signal.SIGKILL)  # sweep what is left of the tree
                    await self._end_box(schedule)
                    self._reap()
            except UnkillableChildError:  # in unreaped: a later session's start reaps it
                if self.child.box is not None and not self._box_ended:
                    self._box_ended = True
                    self.child.box.signal(signal.SIGKILL)
                self._close_all()
                raise
        self._close_all()
        if interrupted is not None:
            raise interrupted

    def _kill_now(self) -> None:
        """The last step of every kill path, synchronous so that nothing can cut it short.

        SIGKILL to the group and the child (pidfd), ``cgroup.kill`` or the pinned sweep of the
        box, then one reap that does not block. What is not reaped yet (SIGKILL is delivered at
        once, but the exit takes a moment), and a box that is not empty yet, are handed to the
        reaper: the next session's start and the interpreter's exit (:func:`close_all_sessions`)
        finish them. Safe to call more than once.
        """
        if self._disowned:
            return
        if self.returncode is None:
            self.killed = True
            self._signal_group(signal.SIGKILL)
            self.signal_child(signal.SIGKILL)  # even if it left the group
            self._reap(block=False)
        box = self.child.box
        if box is not None and not self._box_ended:
            self._box_ended = True
            box.signal(signal.SIGKILL)
            if not box.is_empty():
                self.child.box = None  # _close_all must not remove it while it is populated
                handed_off.append((None, box))
        if self.returncode is None:
            handed_off.append((self.pid, None))

    async def _stop(self, steps: tuple[KillStep, ...], kill_wait: float) -> None:
        for step in steps:
            await self._run_step(step)
            if self._exited:
                return
        unreaped.add(self.pid)
        raise UnkillableChildError(self.pid, kill_wait)

    async def _run_step(self, step: KillStep) -> None:
        """Signal the group, then move bytes until the child exits or the step's wait is over."""
        if signal.SIGKILL in step.signals:
            self.killed = True
        box = self.child.box
        for sig in step.signals:
            self._signal_group(sig)
            if box is not None:
                box.signal(sig, skip_group=self.child.pgid)
        if box is not None and signal.SIGKILL not in step.signals:
            self._polite_until = anyio.current_time() + step.wait
        with anyio.move_on_after(step.wait):
            while not await self.step():
                pass

    async def _end_box(self, schedule: KillSchedule) -> None:
        """contain="tree": stop every descendant still in the box, following ``schedule``.

        Descendants the polite step already signalled get what is left of its grace.
        """
        box = self.child.box
        if box is None or self._box_ended:
            return
        self._box_ended = True
        until = self._polite_until
        signalled = until is not None
        grace = schedule.grace if until is None else max(0.0, until - anyio.current_time())
        with anyio.CancelScope(shield=True):  # bounded by the schedule
            left = await empty_box(
                box, schedule.stop_signal, grace, schedule.kill_wait, signalled=signalled
            )
        if left:
            _log.error(
                "procfound could not stop every process of pid %s's tree (%s): still running: %s",
                self.pid,
                box.name,
                left,
            )

    def _signal_group(self, sig: int) -> None:
        """Send ``sig`` to the child's process group, and to the child itself if it left it.

        The group id stays reserved while the leader is an unreaped zombie, so signalling the
        group before _reap() can never hit an unrelated process that reused the id. A child
        that moved to another group (``setpgid``, ``setsid``), or one that never had its own
        (foreground mode), is signalled through its pidfd, which cannot name another process.
        """
        if self.returncode is not None or self._disowned:
            return
        pgid = self.child.pgid
        if pgid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
            try:
                if os.getpgid(self.pid) == pgid:
                    return
            except ProcessLookupError:
                return
        self.signal_child(sig)

    def signal_child(self, sig: int) -> None:
        """Send ``sig`` to the child alone (its pidfd where there is one)."""
        if self._disowned:  # our copy of the pidfd is closed: its number may be another fd's
            return
        pidfd = self.child.pidfd
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if pidfd is not None:
                signal.pidfd_send_signal(pidfd, sig)
            else:  # no pidfd: the pid is still reserved for us (unreaped), so it is still ours
                os.kill(self.pid, sig)

    def _reap(self, *, block: bool = True) -> None:
        if self.returncode is not None:
            return
        try:
            pid, status, rusage = os.wait4(self.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:  # someone else reaped it (a foreign SIGCHLD handler)
            self.returncode = 0
            return
        if not pid:  # not exited yet (block=False)
            return
        self.ended_at = time.monotonic()
        self.returncode = os.waitstatus_to_exitcode(status)
        self.rusage = rusage

    def close_now(self) -> None:
        """Without an event loop: SIGKILL the group, reap, close every fd.

        Only for when no task waits on this session (a failed setup, interpreter exit). The wait
        for the exit blocks, but briefly: SIGKILL cannot be ignored, and a child that outlives
        :data:`CLOSE_NOW_WAIT` (uninterruptible sleep) is left for a later reap.
        """
        if self._disowned:
            return
        self._signal_group(signal.SIGKILL)
        box = self.child.box
        if box is not None and not self._box_ended:
            self._box_ended = True
            left = empty_box_now(box)
            if left:
                _log.error("procfound could not stop processes of pid %s: %s", self.pid, left)
        if self.returncode is None:
            give_up = time.monotonic() + CLOSE_NOW_WAIT
            while True:
                try:
                    pid, status = os.waitpid(self.pid, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid:
                    self.ended_at = time.monotonic()
                    self.returncode = os.waitstatus_to_exitcode(status)
                    break
                if time.monotonic() > give_up:
                    unreaped.add(self.pid)
                    break
                time.sleep(0.005)
        self._close_all()
