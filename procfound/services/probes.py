"""Readiness waits: until a ManagedProcess's service accepts connections, answers HTTP, creates a
path or passes a custom check, failing fast when it exits first; and the public entry points
that check probe arguments and refuse probes someone else answers.

A probe is a small object whose ``attempt()`` checks once (a TCP connect, an HTTP GET, a
``stat``: :mod:`procfound.services.probe_kinds`, :mod:`procfound.services.http_probe`).
:func:`wait_until_ready` runs probes one after another under one deadline, **in the child's
owner** (procfound's portal loop, :mod:`procfound.engine.owner`), where it sees the exit the
moment the supervisor notices it: a task watching ``supervisor_done`` cancels the attempt in
flight and the wait ends with a :class:`~procfound.ProcessError` carrying the exit code and the
tails of stdout and stderr. Meanwhile the owner keeps reading the child's output, also past its
4 MiB high-water mark, so a chatty service never blocks on a full pipe.

Attempts are paced by a pause of 2% of the time waited so far (1 ms to 20 ms), and any output
from the child starts the next attempt at once: a server that logs "listening on ..." is seen
within about a millisecond of the log line, not at the next tick of a polling loop.

**Who answers.** A connection that succeeds proves only that something listens. When a probe
succeeds, the listening socket behind it is looked up in /proc (Linux,
:mod:`procfound.engine.listeners`); if a process outside the child's tree holds it (another
server on that port), the wait fails at once naming that process, code
``PROBE_ANSWERED_BY_OTHER``. Where the holder cannot be told (another platform, a remote host),
the answer is accepted; :func:`refuse_if_answered`, which the pytest plugin and the CLI run
before they start the child, refuses a port or socket that answers before the child exists.

This module imports no ManagedProcess: :mod:`procfound.services.managed` calls into it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final, NamedTuple, Protocol, TypedDict

import anyio

from procfound.bridge.sync import call_in_portal
from procfound.engine.listeners import Holder, Tree, descendant_holds, outside_holder
from procfound.engine.owner import ChildOwner
from procfound.errors import (
    ProcessError,
    ProcessTimeoutError,
    StateError,
    command_display,
    describe_returncode,
)
from procfound.services.http_probe import HttpProbe, redact_url
from procfound.services.probe_kinds import (
    PathProbe,
    PortProbe,
    Probe,
    check_host,
    check_port,
    path_probe,
    port_probe,
)

__all__ = [
    "DEFAULT_PROBE_TIMEOUT",
    "HttpProbe",
    "PathProbe",
    "PortProbe",
    "Probe",
    "ProbeArguments",
    "ProbeTarget",
    "check_host",
    "check_port",
    "check_probes",
    "exited_error",
    "path_probe",
    "pause_after",
    "port_probe",
    "probes_for",
    "ready_in_owner",
    "redact_url",
    "refuse_answered",
    "refuse_answered_sync",
    "refuse_if_answered",
    "timeout_error",
    "wait_until_ready",
]

DEFAULT_PROBE_TIMEOUT: Final = 10.0
# The pause after a failed attempt is this share of the time waited so far, within
# [_FIRST_PAUSE, _LAST_PAUSE]: the wait adds about 1% to the start-up it waits for (a service
# up after 0.2 s is tried every 4 ms, one up after 10 s every 20 ms). A refused connect to a
# local port costs tens of microseconds, so even the fast start is cheap. (A fixed doubling
# backoff reached its 20 ms cap within 40 ms and measured 13 ms from listen to return, behind
# a plain 10 ms polling loop: benchmarks/probes.py.)
_PAUSE_SHARE: Final = 0.02
_FIRST_PAUSE: Final = 0.001
_LAST_PAUSE: Final = 0.02
# Output from the child starts the next attempt at once, but no sooner than this after the
# last one began: a service writing megabytes before it listens must not turn the wait into a
# connect loop.
_MIN_GAP: Final = 0.001
# Before the child starts, one connect per probe, bounded by this.
_ANSWER_CHECK_TIME: Final = 1.0


class ProbeTarget(Protocol):
    """What :func:`wait_until_ready` needs from the child's owner (``managed._Owner``)."""

    @property
    def supervisor_done(self) -> anyio.Event:
        """Set once the child has exited and its output was drained (or it was stopped)."""
        ...

    def activity(self) -> anyio.Event:
        """An event set the next time the child writes to stdout or stderr."""
        ...

    async def exit_code(self) -> int | None:
        """The child's exit code, once it has exited."""
        ...

    def stdout_text(self) -> str:
        """The last 64 KiB the child wrote to stdout."""
        ...

    def stderr_text(self) -> str:
        """The last 64 KiB the child wrote to stderr."""
        ...

    def tree(self) -> Tree | None:
        """The child's process tree, to tell whether it is what answered (None: not started)."""
        ...


def probes_for(port: object = None, http: object = None, path: object = None) -> list[Probe]:
    """The probes of ``wait_ready``'s ``port``, ``http`` and ``path`` (None: not wanted), in
    that order, checked (ValidationError)."""
    probes: list[Probe] = []
    if port is not None:
        probes.append(port_probe(port))
    if http is not None:
        probes.append(HttpProbe(http))
    if path is not None:
        probes.append(path_probe(path))
    return probes


# -- the wait ---------------------------------------------------------------------------------


async def ready_in_owner(
    owner: ChildOwner,
    parts: list[str] | None,
    probes: Sequence[Probe],
    seconds: float | None,
    command: str,
) -> list[object]:
    """The handshake (``parts``), then every probe, under one deadline; the probes' results.

    Runs in the child's owner (procfound's portal loop). Meanwhile stdout is read past its
    high-water mark (:meth:`~procfound.engine.owner.ChildOwner.probing`).
    """
    deadline = math.inf if seconds is None else anyio.current_time() + seconds
    with owner.probing():
        if parts:
            await owner.wait_for_output(parts, seconds, 1024)
        return await wait_until_ready(owner, probes, deadline, seconds, command)


async def wait_until_ready(
    target: ProbeTarget,
    probes: Sequence[Probe],
    deadline: float,
    seconds: float | None,
    command: str,
) -> list[object]:
    """Run ``probes`` one after another until each succeeds, all under one deadline.

    Runs in the child's owner. Ends at once when the child exits (``supervisor_done``).
    ``deadline`` is in the loop's clock (``math.inf``: none); ``seconds`` is the whole wait's
    timeout, for the message.

    Returns:
        Each probe's result, in order.

    Raises:
        ProcessError: The child exited first (code ``PROCESS_EXITED_EARLY``), or a process
            outside its tree answered a probe (code ``PROBE_ANSWERED_BY_OTHER``).
        ProcessTimeoutError: The deadline passed first (code ``PROCESS_WAIT_TIMEOUT``).
    """
    results: list[object] = []
    outsider: Holder | None = None
    with anyio.CancelScope(deadline=deadline):
        async with anyio.create_task_group() as group:
            group.start_soon(_cancel_on_exit, target, group.cancel_scope)
            for probe in probes:
                result = await _until_ready(target, probe)
                # Something answered; it must be the child's tree (not another server).
                outsider = await _outsider(probe, target.tree())
                if outsider is not None:
                    break
                results.append(result)
            group.cancel_scope.cancel()
    if len(results) == len(probes) and not (probes and target.supervisor_done.is_set()):
        return results
    probe = probes[min(len(results), len(probes) - 1)]
    if outsider is not None and not target.supervisor_done.is_set():
        raise ProcessError(
            f"Not ready: {probe.where} is answered by {outsider}, which is not this process or "
            "one of its descendants (another server holds it: stop that one, or use another)",
            command=command,
            code="PROBE_ANSWERED_BY_OTHER",
            **_tails(target),
        )
    # Ready, but the child exited meanwhile: something else answered (another server on that
    # port, a file left by an earlier run). Not ready.
    if target.supervisor_done.is_set():
        raise await exited_error(target, probe.goal, command)
    raise timeout_error(target, seconds, probe.goal, probe.problem, command)


async def exited_error(target: ProbeTarget, goal: str, command: str) -> ProcessError:
    """The error of a readiness wait the child's exit ended (code ``PROCESS_EXITED_EARLY``)."""
    code = await target.exit_code()
    status = "" if code is None else f" with code {describe_returncode(code)}"
    return ProcessError(
        f"Process exited{status} while waiting for {goal}",
        command=command,
        return_code=code,
        code="PROCESS_EXITED_EARLY",
        **_tails(target),
    )


def timeout_error(
    target: ProbeTarget, seconds: float | None, goal: str, problem: str, command: str
) -> ProcessTimeoutError:
    """The error of a readiness wait its deadline ended (code ``PROCESS_WAIT_TIMEOUT``)."""
    return ProcessTimeoutError(
        f"Not ready within {math.inf if seconds is None else seconds:g}s: waiting for "
        f"{goal}; last attempt: {problem}",
        command=command,
        timeout_seconds=seconds,
        code="PROCESS_WAIT_TIMEOUT",
        **_tails(target),
    )


class _Tails(TypedDict):
    stdout: str | None
    stderr: str | None


def _tails(target: ProbeTarget) -> _Tails:
    """The child's output tails, as a readiness error carries them (None: nothing written)."""
    return {"stdout": target.stdout_text() or None, "stderr": target.stderr_text() or None}


async def _outsider(probe: Probe, tree: Tree | None) -> Holder | None:
    """Who, outside ``tree``, answered ``probe``'s last attempt (None: the tree, or unknown).

    The usual answer (the child or a descendant holds the socket) takes a few reads, done here;
    the search through every process, in a worker thread.
    """
    listeners = probe.listeners()
    if not listeners or (tree is not None and descendant_holds(listeners, tree)):
        return None
    return await anyio.to_thread.run_sync(outside_holder, listeners, tree)


async def refuse_answered(probes: Sequence[Probe], command: str | list[str]) -> None:
    """Refuse to start a child whose probe already succeeds: someone else answers it.

    Run before the child is spawned (the pytest plugin and the CLI do); one connect per port,
    URL or unix socket, bounded. Where /proc can tell (Linux), the message names the process
    that holds it. A plain file that exists already is not refused (it answers nothing).

    Raises:
        StateError: A probe's port or socket answers already (code ``PROBE_ALREADY_ANSWERED``).
    """
    for probe in probes:
        answered = False
        with anyio.move_on_after(_ANSWER_CHECK_TIME):
            answered = await probe.answers()
        if not answered:
            continue
        holder = await _outsider(probe, None)
        raise StateError(
            f"{probe.where} already answers before {command_display(command)} "
            f"starts: {holder or 'another server'} holds it (stop that one, or use another)",
            code="PROBE_ALREADY_ANSWERED",
        )


class ProbeArguments(NamedTuple):
    """``wait_ready``'s probe arguments, checked (what :func:`check_probes` returns)."""

    #: ``(host, port)`` of the ``port`` probe (IPv6 without brackets), or None.
    port: tuple[str, int] | None
    #: The ``http`` probe's URL as given, or None.
    http: str | None
    #: The host of that URL (IPv6 without brackets), or None.
    http_host: str | None
    #: The ``path`` probe's path, made absolute, or None.
    path: str | None


def check_probes(
    *, port: object = None, http: object = None, path: object = None
) -> ProbeArguments:
    """Check the probe arguments of :meth:`~procfound.ManagedProcess.wait_ready` without waiting.

    The same checks ``wait_ready`` makes, so a tool can refuse a bad ``--port`` before anything
    starts. Nothing is connected to or looked up.

    Args:
        port: A TCP port (1 to 65535) on 127.0.0.1, or a ``(host, port)`` pair.
        http: An ``http://`` URL.
        path: A path (relative: to the current working directory).

    Returns:
        The checked values (None for a probe not given).

    Raises:
        ValidationError: If an argument is not acceptable (the message says which and why).

    Example:
        >>> check_probes(port=("[::1]", 8080), http="http://localhost:80/health").port
        ('::1', 8080)
        >>> check_probes(http="http://localhost:80/health").http_host
        'localhost'
    """
    port_check = None if port is None else port_probe(port)
    http_check = None if http is None else HttpProbe(http)
    path_check = None if path is None else path_probe(path)
    return ProbeArguments(
        port=None if port_check is None else (port_check.host, port_check.port),
        http=None if http_check is None else http_check.url,
        http_host=None if http_check is None else http_check.host,
        path=None if path_check is None else path_check.path,
    )


def refuse_if_answered(
    command: str | list[str], *, port: object = None, http: object = None, path: object = None
) -> None:
    """Refuse to start ``command`` when one of its probes already answers: someone else does.

    Call it before launching a service that :meth:`~procfound.ManagedProcess.wait_ready` will
    wait for with the same arguments (the pytest plugin and the CLI do, as mirakuru's
    ``AlreadyRunning``). One connect per port, URL or unix socket, each bounded by 1 s; where
    /proc can tell (Linux), the message names the process that holds it. A plain file that
    exists already is not refused (it answers nothing). Works from sync code, also inside a
    running event loop.

    Args:
        command: The service's command, for the message.
        port: As for ``wait_ready``.
        http: As for ``wait_ready``.
        path: As for ``wait_ready``.

    Raises:
        ValidationError: If a probe argument is not acceptable (checked first).
        StateError: If a port, URL or socket answers already (code ``PROBE_ALREADY_ANSWERED``).

    Example:
        >>> import socket
        >>> with socket.create_server(("127.0.0.1", 0)) as taken:
        ...     refuse_if_answered(["my-server"], port=taken.getsockname()[1])
        Traceback (most recent call last):
        ...
        procfound.errors.StateError: 127.0.0.1:... already answers before my-server starts: ...
    """
    probes = probes_for(port, http, path)
    if probes:
        call_in_portal(refuse_answered, probes, command)


def refuse_answered_sync(
    command: str | list[str], *, port: object = None, http: object = None, path: object = None
) -> None:
    """The former name of :func:`refuse_if_answered` (kept for imports from before 0.2)."""
    refuse_if_answered(command, port=port, http=http, path=path)


async def _cancel_on_exit(target: ProbeTarget, scope: anyio.CancelScope) -> None:
    await target.supervisor_done.wait()
    scope.cancel()


def pause_after(began: float, started: float) -> float:
    """The pause after a failed attempt that ``started`` in a wait that ``began`` (loop clock)."""
    return min(_LAST_PAUSE, max(_FIRST_PAUSE, (started - began) * _PAUSE_SHARE))


async def _until_ready(target: ProbeTarget, probe: Probe) -> object:
    began = anyio.current_time()
    while True:
        output = target.activity()  # taken first: output during the attempt counts
        started = anyio.current_time()
        result = await probe.attempt()
        if result is not None:
            return result
        pause = pause_after(began, started)
        if not probe.wake_on_output:
            await anyio.sleep(pause)
            continue
        with anyio.move_on_after(pause):
            await output.wait()
        if output.is_set():
            await anyio.sleep_until(started + _MIN_GAP)
