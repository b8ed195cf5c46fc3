"""ProcessHandle: a launched ManagedProcess's child, with the part of ``Popen``'s API the seed's
``ManagedProcess.process`` offered. Every call is a request to the child's owner
(:class:`~procfound.engine.owner.ChildOwner`) in procfound's portal.
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import cast

from procfound.bridge.portal import in_portal_thread, submit
from procfound.bridge.sync import call_in_portal
from procfound.call.options import check_timeout
from procfound.call.stop import parse_signal
from procfound.engine.owner import ChildOwner
from procfound.errors import StateError
from procfound.services.talking import StdinFile

__all__ = ["ProcessHandle"]


class ProcessHandle:
    """A launched :class:`ManagedProcess`'s child, with the part of ``Popen``'s API that the
    seed's ``ManagedProcess.process`` offered (what :attr:`ManagedProcess.process` returns).

    Signals go to the child alone (not its group, as ``Popen.send_signal``), through its pidfd,
    and are sent by the child's owner in procfound's portal: never to a pid that was reaped and
    reused. The owner also reaps the child: :meth:`wait` waits for the exit, and the process is
    reaped by :meth:`ManagedProcess.terminate_gracefully` or :meth:`ManagedProcess.cleanup`.

    Example:
        >>> from procfound import ManagedProcess
        >>> with ManagedProcess(["sleep", "30"]) as proc:
        ...     proc.process.terminate()
        ...     proc.process.wait(timeout=5)
        -15
    """

    __slots__ = ("_owner", "args", "stdin")

    def __init__(self, owner: ChildOwner, command: str, stdin: StdinFile | None = None) -> None:
        self._owner = owner
        self.args = command
        # With stdin=PIPE (or pty=True): a small binary file writing to the child's stdin
        # through its owner, as Popen.stdin; None otherwise, as Popen's.
        self.stdin = stdin

    def __repr__(self) -> str:
        return f"<ProcessHandle pid={self.pid} returncode={self.returncode}>"

    @property
    def pid(self) -> int:
        """The child's process id."""
        session = self._owner.session
        assert session is not None
        return session.pid

    @property
    def returncode(self) -> int | None:
        """The exit code once the child has exited (``-N`` for signal N), else None."""
        return self._owner.returncode()

    def poll(self) -> int | None:
        """The exit code if the child has exited, else None; never blocks."""
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the child to exit and return its exit code.

        When it returns, the output the child wrote before it exited has been read (it is in
        ``stdout_tail`` and the buffer the reads take from).

        Args:
            timeout: Seconds to wait (None: until it exits).

        Returns:
            The exit code (``-N`` for signal N).

        Raises:
            subprocess.TimeoutExpired: If it is still running after ``timeout`` (as
                ``Popen.wait``); the child keeps running.
            ValidationError: If ``timeout`` is not a number of seconds.
            StateError: If called from procfound's portal thread, or in a process forked
                after the launch (``FORKED_PROCESS``).
        """
        seconds = check_timeout(timeout)
        self._check_not_forked()
        # The owner's exit event, not a peek at the status: it is set once the output the child
        # left in its pipes has been read too, so stdout_tail is complete when wait() returns.
        if self._owner.exited.is_set():
            code = self.returncode
        else:
            code = call_in_portal(self._owner.wait_exit, seconds)
        if code is None:
            raise subprocess.TimeoutExpired(self.args, cast(float, timeout))
        return code

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the child (nothing once it has exited and been reaped).

        Raises:
            ValidationError: If ``sig`` is not a signal.
            StateError: In a process forked after the launch (``FORKED_PROCESS``).
        """
        number = parse_signal(sig, "sig")
        self._check_not_forked()
        if in_portal_thread():
            submit(self._owner.send_signal, number)  # a job of its own: no nested wait
        else:
            call_in_portal(self._owner.send_signal, number)

    def _check_not_forked(self) -> None:
        if self._owner.pid_of_creator != os.getpid():
            raise StateError(
                "this process was launched before os.fork(); it belongs to the parent process, "
                "which alone can wait for it or signal it",
                code="FORKED_PROCESS",
            )

    def terminate(self) -> None:
        """Send SIGTERM to the child."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """Send SIGKILL to the child."""
        self.send_signal(signal.SIGKILL)
