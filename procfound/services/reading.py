"""Reading a ManagedProcess's stdout and waiting until it is ready (:class:`Reading`, a part of
:class:`~procfound.ManagedProcess`), and the entry point of the module-level waits
(:func:`await_probes`).

Each method checks its arguments, then runs in the child's owner through the portal: the
owner reads stdout into one buffer and answers the reads from it, and runs the readiness
probes (:mod:`procfound.services.probes`) and the custom check (:mod:`procfound.services.check`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Final

import anyio

from procfound.bridge.sync import acall_in_portal, make_sync
from procfound.call.options import check_timeout
from procfound.engine.owner import ChildOwner
from procfound.errors import ProcessError, command_text
from procfound.services.check import Check, check_callable, wait_for_check
from procfound.services.probes import Probe, probes_for, ready_in_owner
from procfound.services.wording import expected_parts as _expected_parts

__all__ = [
    "DEFAULT_PROCESS_READCHAR_TIMEOUT",
    "DEFAULT_PROCESS_READLINE_TIMEOUT",
    "DEFAULT_PROCESS_WAIT_TIMEOUT",
    "Reading",
    "await_probes",
    "owner_of",
]

DEFAULT_PROCESS_WAIT_TIMEOUT: Final = 10.0
DEFAULT_PROCESS_READLINE_TIMEOUT: Final = 2.0
DEFAULT_PROCESS_READCHAR_TIMEOUT: Final = 1.0


class Reading:
    """Reading a ManagedProcess's stdout and waiting for its readiness (a part of
    ManagedProcess: the facade sets ``_owner`` at launch)."""

    _owner: ChildOwner | None = None
    command: list[str] | str

    # -- reading (requests to the owner) ------------------------------------------------------

    def _reader(self) -> ChildOwner:
        owner = self._owner
        if owner is None or owner.finished or not owner.capture:
            raise ProcessError(
                "Process not running or stdout not available", code="PROCESS_NO_STDOUT"
            )
        return owner

    async def read_line_async(self, timeout: float = DEFAULT_PROCESS_READLINE_TIMEOUT) -> str:
        """Read one line of stdout, without its line ending.

        Args:
            timeout: Seconds to wait for a whole line (None: no limit).

        Returns:
            The line; at end of output the last partial line, then "".

        Raises:
            TimeoutError: If no whole line arrived in time (nothing read is lost).
            ProcessError: If the process is not running with stdout piped.
            DecodeError: If the line does not decode (possible with ``errors="strict"``); it is
                consumed, and ``.result.stdout`` holds its bytes.
            ValidationError: If ``timeout`` is not a number of seconds.
        """
        seconds = check_timeout(timeout)
        return await acall_in_portal(self._reader().read_line, seconds)

    async def read_char_async(self, timeout: float = DEFAULT_PROCESS_READCHAR_TIMEOUT) -> str:
        """Read one character of stdout, decoded in the process's ``encoding``.

        Args:
            timeout: Seconds to wait (None: no limit).

        Returns:
            The character, or "" at end of output.

        Raises:
            TimeoutError: If nothing arrived in time (nothing read is lost).
            ProcessError: If the process is not running with stdout piped.
            DecodeError: If the bytes do not decode (possible with ``errors="strict"``); they are
                consumed, and ``.result.stdout`` holds them.
            ValidationError: If ``timeout`` is not a number of seconds.
        """
        seconds = check_timeout(timeout)
        return await acall_in_portal(self._reader().read_char, seconds)

    # -- readiness (probes run in the owner: procfound.services.probes) ----------------------------

    async def await_ready(
        self,
        output: str | Sequence[str] | None = None,
        port: int | tuple[str, int] | None = None,
        http: str | None = None,
        path: str | os.PathLike[str] | None = None,
        timeout: float | None = DEFAULT_PROCESS_WAIT_TIMEOUT,
        *,
        check: Check | None = None,
    ) -> None:
        """Wait until the service is ready: every given probe succeeds, under one deadline.

        In order: ``output`` (as :func:`wait_for_process_output`: the handshake is consumed from
        stdout), then ``port`` (:func:`~procfound.wait_for_port`), ``http``
        (:func:`~procfound.wait_for_http`, any 2xx or 3xx), ``path``
        (:func:`~procfound.wait_for_path`) and ``check``. ``timeout`` covers all of them. The
        wait ends at once when the process exits. No probe at all returns at once.

        ``check`` is a callable taking no arguments, sync or async, that returns true when the
        service is ready (mirakuru's ``after_start_check``); it is called until it does. An
        async check is awaited in the caller's loop (for ``wait_ready``: procfound's portal
        loop); a sync one runs in a worker thread, so it may block. An ``OSError`` it raises
        means "not ready yet"; any other exception ends the wait and propagates. When the
        process exits, the check in flight is cancelled (a sync one abandoned in its thread).

        While it waits, stdout keeps being read even past the 4 MiB of unread output normally
        buffered: the oldest unread output beyond that is let go (whole lines where possible)
        and counted in :attr:`stdout_dropped`; the last 64 KiB stay in :attr:`stdout_tail`.

        Args:
            output: A string, or a list of strings, that must all appear in stdout.
            port: A TCP port on 127.0.0.1 that must accept a connection, or a
                ``(host, port)`` pair (``("::1", 8080)``).
            http: An ``http://`` URL that must answer a GET with a 2xx or 3xx status.
            path: A path (a unix socket, a pid file) that must exist.
            timeout: Seconds for all of them together (None: no limit).
            check: A callable that returns true when the service is ready.

        Raises:
            ValidationError: If a probe's argument, ``check`` or ``timeout`` is not acceptable.
            ProcessError: If the process exits first (code ``PROCESS_EXITED_EARLY``, with its
                return code and output tails), if a process outside its tree answers a probe
                (code ``PROBE_ANSWERED_BY_OTHER``), or if it is not running.
            ProcessTimeoutError: If it was not ready in time (a ``TimeoutError``).
            Exception: What ``check`` raised, unless an ``OSError``.

        Example:
            >>> import anyio, os, tempfile
            >>> from procfound import ManagedProcess
            >>> with ManagedProcess(["sh", "-c", "echo ready; exec sleep 30"]) as proc:
            ...     anyio.run(proc.await_ready, "ready")
            >>> flag = os.path.join(tempfile.mkdtemp(), "up")
            >>> with ManagedProcess(["sh", "-c", f"touch {flag}; exec sleep 30"]) as proc:
            ...     proc.wait_ready(check=lambda: os.path.exists(flag), timeout=5)
            >>> os.remove(flag)
        """
        parts = (
            None
            if output is None
            else _expected_parts([output] if isinstance(output, str) else output)
        )
        probes = probes_for(port, http, path)
        seconds = check_timeout(timeout)
        checked = check_callable(check)
        deadline = math.inf if seconds is None else anyio.current_time() + seconds
        if parts or probes:
            await await_probes(self, probes, seconds, parts)
        if checked is not None:
            owner = self._prober()
            await wait_for_check(owner, checked, deadline, seconds, command_text(self.command))

    wait_ready = make_sync(await_ready, "wait_ready")

    def _prober(self) -> ChildOwner:
        owner = self._owner
        if owner is None or owner.finished:
            raise ProcessError(
                "Process not running: launch it before waiting for it to be ready",
                code="PROCESS_NOT_RUNNING",
            )
        return owner


async def await_probes(
    process: Reading,
    probes: Sequence[Probe],
    seconds: float | None,
    parts: list[str] | None = None,
) -> list[object]:
    """Run a readiness wait (the handshake ``parts``, then ``probes``) in ``process``'s owner;
    the probes' results (see :func:`procfound.services.probes.ready_in_owner`).

    Raises:
        ProcessError: If ``process`` is not running (or, with ``parts``, has no stdout piped).
    """
    owner = process._reader() if parts else process._prober()
    return await acall_in_portal(
        ready_in_owner, owner, parts, probes, seconds, command_text(process.command)
    )


def owner_of(process: Reading) -> ChildOwner:
    """``process``'s owner, for reading its stdout (ProcessError if it has none)."""
    return process._reader()
