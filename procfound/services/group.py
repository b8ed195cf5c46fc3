"""ServiceGroup: services started ready, stopped together, and nothing they started left behind.

What the pytest plugin's fixtures are made of (:mod:`procfound.pytest_plugin`), usable without
pytest too (a ``setUpClass``, a script that brings up a few servers). Each service gets an
environment variable that its descendants inherit (the group's ``variable``, a value of its own);
after the services are stopped, ``/proc`` is searched for it (Linux), and what still runs, such
as a daemon that left the process group of a service started with ``contain="group"``, is
killed and reported.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Sequence
from typing import Any, Final

from procfound.engine.contain import MarkerBox
from procfound.errors import ValidationError, command_display, command_text, shorten
from procfound.services.check import Check
from procfound.services.managed import DEFAULT_PROCESS_WAIT_TIMEOUT, ManagedProcess
from procfound.services.probes import refuse_if_answered

__all__ = ["ServiceGroup"]

# Processes SIGKILLed with the group can still show in /proc for a moment: how long to wait for
# them before calling them survivors.
_SURVIVOR_WAIT: Final = 1.0
_LABEL_CHARS: Final = 80


class ServiceGroup:
    """Services started ready and stopped together, with a search for what they left running.

    Args:
        variable: The environment variable that marks each service and whatever it starts
            (a name of letters, digits and ``_``).

    Raises:
        ValidationError: If ``variable`` is not such a name.

    Example:
        >>> import sys
        >>> group = ServiceGroup("MY_SERVICES")
        >>> code = "print('ready', flush=True); import time; time.sleep(30)"
        >>> server = group.start([sys.executable, "-c", code], output="ready", timeout=10)
        >>> server.is_running()
        True
        >>> group.stop_all()
        []
    """

    def __init__(self, variable: str = "PROCFOUND_SERVICE") -> None:
        if not isinstance(variable, str) or not variable.isidentifier() or not variable.isascii():
            raise ValidationError(
                "variable must be an environment variable name (letters, digits and _), got "
                f"{shorten(repr(variable))}",
                code="INVALID_ARGUMENT",
            )
        self.variable = variable
        self._services: list[tuple[ManagedProcess, MarkerBox]] = []

    @property
    def services(self) -> list[ManagedProcess]:
        """The services started so far, oldest first (also those that failed to get ready)."""
        return [process for process, _ in self._services]

    def start(
        self,
        cmd: list[str],
        *,
        output: str | Sequence[str] | None = None,
        port: int | tuple[str, int] | None = None,
        http: str | None = None,
        path: str | os.PathLike[str] | None = None,
        check: Check | None = None,
        timeout: float | None = DEFAULT_PROCESS_WAIT_TIMEOUT,
        **options: Any,
    ) -> ManagedProcess:
        """Start ``ManagedProcess(cmd, **options)``, wait until it is ready, and return it.

        A port, URL or socket that answers before the service starts is someone else's: refused
        (:func:`~procfound.refuse_if_answered`). Then the service is launched and waited for
        (:meth:`~procfound.ManagedProcess.wait_ready`, every given probe under one deadline).
        It belongs to the group from its launch on: :meth:`stop_all` stops it even if it never
        got ready.

        Args:
            cmd: The service's command and arguments.
            output: Text (or texts) that must appear in its stdout.
            port: A port on 127.0.0.1, or a ``(host, port)`` pair, that must accept connections.
            http: An ``http://`` URL that must answer a GET with 2xx or 3xx.
            path: A path (a unix socket, a pid file) that must exist.
            check: A callable that returns true when the service is ready.
            timeout: Seconds for all of them together.
            **options: :class:`~procfound.ManagedProcess` options (``env``, ``cwd``...).

        Returns:
            The running, ready process.

        Raises:
            ValidationError: If a probe's argument is not acceptable (nothing is started).
            StateError: If ``port``, ``http`` or a socket ``path`` answers before the service
                starts: another server holds it (code ``PROBE_ALREADY_ANSWERED``).
            ProcessError: If it cannot start, or exits before it is ready (with its output).
            ProcessTimeoutError: If it is not ready in time (with its output).
        """
        # The same sweep as contain="tree" without a cgroup (engine/contain.py), under a name
        # of its own: it finds what escaped even a service started with contain="group".
        marker = MarkerBox(self.variable)
        env = options.pop("env", None)
        options["env"] = {**(env or {}), self.variable: marker.value}
        process = ManagedProcess(cmd, **options)
        # Before the launch: what answers now is someone else (mirakuru's AlreadyRunning).
        refuse_if_answered(process.command, port=port, http=http, path=path)
        self._services.append((process, marker))  # before the launch: stop_all stops it anyway
        process.launch()
        process.wait_ready(
            output=output, port=port, http=http, path=path, timeout=timeout, check=check
        )
        return process

    def stop_all(self) -> list[str]:
        """Stop every service, newest first, then kill what they left running.

        Returns:
            What went wrong, one sentence each (an empty list: nothing): a stop that failed, a
            process that outlived its service's stop (it escaped the service's containment).
        """
        problems: list[str] = []
        for process, _ in reversed(self._services):
            try:
                try:
                    process.terminate_gracefully()
                finally:
                    process.cleanup()
            except Exception as exc:
                problems.append(f"stopping {label(process)} failed: {exc}")
        markers = [marker for _, marker in self._services]
        survivors = _survivors(markers)
        deadline = time.monotonic() + _SURVIVOR_WAIT
        while survivors and time.monotonic() < deadline:
            time.sleep(0.02)
            survivors = _survivors(markers)
        for marker in markers:
            marker.signal(signal.SIGKILL)  # each process pinned by a pidfd and re-checked
        for pid, command in survivors.items():
            problems.append(
                f"process {pid} ({command}) outlived its service's teardown (it escaped the "
                "service's containment); procfound killed it"
            )
        return problems

    def recent_output(self, chars: int = 8000) -> list[tuple[str, str]]:
        """The last ``chars`` characters of each launched service's stdout and stderr.

        Returns:
            ``(title, text)`` pairs, one per stream that wrote anything, the title naming the
            service and the stream (``"sleep 30 (pid 4242): recent stdout"``).
        """
        sections = []
        for process, _ in self._services:
            if process.pid is None:
                continue
            name = label(process)
            for stream, text in (("stdout", process.stdout_tail), ("stderr", process.stderr_tail)):
                if text:
                    sections.append((f"{name}: recent {stream}", _recent(text, chars)))
        return sections


def label(process: ManagedProcess) -> str:
    """The service as a one-line title: its command, whitespace collapsed and cut, its pid."""
    command = shorten(" ".join(command_text(process.command).split()), _LABEL_CHARS)
    return f"{command} (pid {process.pid})"


def _recent(text: str, chars: int) -> str:
    if len(text) <= chars:
        return text
    cut = text[-chars:]
    start = cut.find("\n") + 1
    return f"[... earlier output cut ...]\n{cut[start:] if 0 < start < len(cut) else cut}"


def _command_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            words = f.read().rstrip(b"\0").split(b"\0")
    except OSError:
        return "?"
    return command_display([word.decode("utf-8", "replace") for word in words])


def _survivors(boxes: list[MarkerBox]) -> dict[int, str]:
    """Live processes (not zombies) that carry one of the services' markers: pid -> command."""
    return {pid: _command_of(pid) for box in boxes for pid in box.members()}
