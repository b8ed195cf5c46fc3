"""Readiness probes: wait until a ManagedProcess's service accepts connections, answers HTTP or
creates a path, failing fast when it exits first.

A probe is a small object whose ``attempt()`` checks once (a TCP connect, an HTTP GET, a
``stat``). :func:`wait_until_ready` runs probes one after another under one deadline, **in the
child's owner** (procfound's portal loop, see :mod:`procfound.managed`), where it sees the exit
the moment the supervisor notices it: a task watching ``supervisor_done`` cancels the attempt
in flight and the wait ends with a :class:`~procfound.ProcessError` carrying the exit code and
the tails of stdout and stderr. Meanwhile the owner keeps reading the child's output, also past
its 4 MiB high-water mark, so a chatty service never blocks on a full pipe.

Attempts are paced by a pause of 2% of the time waited so far (1 ms to 20 ms), and any output
from the child starts the next attempt at once: a server that logs "listening on ..." is seen
within about a millisecond of the log line, not at the next tick of a polling loop.

The HTTP probe speaks HTTP/1.1 through h11 over an AnyIO TCP stream (docs/design.md says why).
"""

from __future__ import annotations

import math
import os
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Final, Protocol, cast, final
from urllib.parse import urlsplit

import anyio
import h11
from anyio.abc import ByteStream

from procfound.errors import (
    ProcessError,
    ProcessTimeoutError,
    ValidationError,
    describe_returncode,
    shorten,
)
from procfound.request import check_timeout

if TYPE_CHECKING:
    from procfound.managed import ManagedProcess

__all__ = [
    "HttpProbe",
    "PathProbe",
    "PortProbe",
    "Probe",
    "ProbeTarget",
    "check_host",
    "check_port",
    "wait_for_http",
    "wait_for_path",
    "wait_for_port",
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
# A connect that neither succeeds nor fails (SYN dropped: a full backlog, a firewall) is given
# up after this and tried again.
_CONNECT_TIMEOUT: Final = 2.0
# After the status line, the rest of the answer is read (so the server can finish writing it)
# within these bounds; the status is known already.
_BODY_DRAIN_LIMIT: Final = 1024 * 1024
_BODY_DRAIN_TIME: Final = 1.0
_RECEIVE_SIZE: Final = 65536
_DEFAULT_STATUSES: Final = "a status 2xx or 3xx"
_NOT_TRIED: Final = "not tried yet"
_WAITING: Final = "connected, waiting for the answer"


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


class Probe(Protocol):
    """One readiness condition, checked by repeated attempts."""

    #: What is waited for, for messages ("a TCP connection to 127.0.0.1:8080").
    goal: str
    #: Why the last attempt did not succeed ("Connection refused"), for messages.
    problem: str
    #: Whether output from the child should start the next attempt at once. False after an
    #: attempt the service itself answered: its access log line would start the next attempt,
    #: whose log line would start the next, and so on.
    wake_on_output: bool

    async def attempt(self) -> object | None:
        """Check once: a result (ready) or None (not yet; :attr:`problem` says why)."""
        ...


# -- argument checks --------------------------------------------------------------------------


def check_port(port: object) -> int:
    """A TCP port to connect to: an int from 1 to 65535."""
    if isinstance(port, bool) or not isinstance(port, int):
        raise ValidationError(
            f"port must be an int from 1 to 65535, not {type(port).__name__}",
            code="INVALID_ARGUMENT",
        )
    if not 1 <= port <= 65535:
        raise ValidationError(f"port must be from 1 to 65535, got {port}", code="INVALID_ARGUMENT")
    return port


def check_host(host: object) -> str:
    """A host name or IP address (``[::1]`` may keep its brackets)."""
    if not isinstance(host, str):
        raise ValidationError(
            f"host must be a str, not {type(host).__name__}", code="INVALID_ARGUMENT"
        )
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or any(char.isspace() or not char.isprintable() for char in host):
        raise ValidationError(
            f"host must be a host name or an IP address, got {shorten(repr(host))}",
            code="INVALID_ARGUMENT",
        )
    return host


def _check_statuses(status: object) -> frozenset[int] | None:
    if status is None:
        return None
    values: Collection[object]
    if isinstance(status, int) and not isinstance(status, bool):
        values = (status,)
    elif isinstance(status, Collection) and not isinstance(status, str | bytes):
        values = status
    else:
        raise ValidationError(
            f"status must be an int or a collection of ints, not {type(status).__name__}",
            code="INVALID_ARGUMENT",
        )
    checked: set[int] = set()
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
            raise ValidationError(
                f"every status must be an HTTP status code (100-599), got {shorten(repr(value))}",
                code="INVALID_ARGUMENT",
            )
        checked.add(value)
    if not checked:
        raise ValidationError("status must name at least one status code", code="INVALID_ARGUMENT")
    return frozenset(checked)


def _check_path(path: object) -> str:
    if not isinstance(path, str | os.PathLike):
        raise ValidationError(
            f"path must be a str or a path, not {type(path).__name__}", code="INVALID_ARGUMENT"
        )
    text = os.fspath(path)
    if not isinstance(text, str):
        raise ValidationError("path must be a str or a path of str", code="INVALID_ARGUMENT")
    if not text or "\0" in text:
        raise ValidationError(
            f"path must be a non-empty path without NUL, got {shorten(repr(text))}",
            code="INVALID_ARGUMENT",
        )
    # Relative to the caller's working directory now, as every Python path is.
    return os.path.abspath(text)


# -- the probes -------------------------------------------------------------------------------


def _problem(exc: BaseException) -> str:
    """A short reason: ``Connection refused``, not AnyIO's "All connection attempts failed"."""
    cause = exc.__cause__
    if isinstance(cause, BaseExceptionGroup):
        cause = cause.exceptions[0]
    if isinstance(exc, OSError) and not exc.strerror and isinstance(cause, OSError):
        exc = cause
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)  # asyncio's is "Connect call failed ('127.0.0.1', 1)"
    return str(exc) or type(exc).__name__


async def _connect(probe: PortProbe | HttpProbe) -> ByteStream | None:
    """A TCP connection to the probe's host and port, or None with ``probe.problem`` set."""
    try:
        with anyio.fail_after(_CONNECT_TIMEOUT):
            return await anyio.connect_tcp(probe.host, probe.port)
    except TimeoutError:
        probe.problem = f"no answer to the connect within {_CONNECT_TIMEOUT:g}s"
    except OSError as exc:
        probe.problem = _problem(exc)
    return None


@final
class PortProbe:
    """Ready once a TCP connection to ``host:port`` succeeds; the connection is closed at once."""

    __slots__ = ("goal", "host", "port", "problem", "wake_on_output")

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        shown = f"[{host}]" if ":" in host else host
        self.goal = f"a TCP connection to {shown}:{port}"
        self.problem = _NOT_TRIED
        self.wake_on_output = True  # a refused connect reaches no service: nothing to log

    async def attempt(self) -> object | None:
        stream = await _connect(self)
        if stream is None:
            return None
        await stream.aclose()
        return True


@final
class HttpProbe:
    """Ready once a GET of ``url`` answers with an accepted status; the result is the status."""

    __slots__ = ("_request", "goal", "host", "port", "problem", "statuses", "url", "wake_on_output")

    def __init__(self, url: object, status: object = None) -> None:
        if not isinstance(url, str):
            raise ValidationError(
                f"url must be a str, not {type(url).__name__}", code="INVALID_ARGUMENT"
            )
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ValidationError(
                f"url is not a valid URL ({exc}): {shorten(repr(url))}", code="INVALID_ARGUMENT"
            ) from None
        if parts.scheme.lower() != "http":
            raise ValidationError(
                "url must start with http:// (https and other schemes are not supported: "
                f"probe a TLS service's port instead), got {shorten(repr(url))}",
                code="INVALID_ARGUMENT",
            )
        if not parts.hostname:
            raise ValidationError(f"url has no host: {shorten(repr(url))}", code="INVALID_ARGUMENT")
        self.url = url
        self.host = check_host(parts.hostname)
        self.port = 80 if port is None else check_port(port)
        self.statuses = _check_statuses(status)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            self._request = h11.Request(
                method="GET",
                target=_percent_encode_non_ascii(target),
                headers=[
                    (b"Host", _host_header(self.host, port)),  # never user:password from the URL
                    (b"User-Agent", b"procfound-probe"),
                    (b"Accept", b"*/*"),
                    (b"Connection", b"close"),
                ],
            )
        except (h11.LocalProtocolError, UnicodeError) as exc:
            raise ValidationError(
                f"url cannot be requested ({exc}): {shorten(repr(url))}", code="INVALID_ARGUMENT"
            ) from None
        wanted = (
            _DEFAULT_STATUSES
            if self.statuses is None
            else "status " + " or ".join(map(str, sorted(self.statuses)))
        )
        self.goal = f"GET {shorten(url)} to answer with {wanted}"
        self.problem = _NOT_TRIED
        self.wake_on_output = True

    def accepts(self, status: int) -> bool:
        """True for a status that means ready."""
        return 200 <= status < 400 if self.statuses is None else status in self.statuses

    async def attempt(self) -> object | None:
        self.wake_on_output = True
        stream = await _connect(self)
        if stream is None:
            return None
        self.wake_on_output = False  # the service saw this request (and may log it)
        async with stream:
            try:
                status = await self._exchange(stream)
            except (
                OSError,
                anyio.BrokenResourceError,
                anyio.EndOfStream,
                h11.ProtocolError,
            ) as exc:
                # A server that closes the connection may do so before our request is written
                # (a broken pipe, a reset) or after it (end of stream): both are "closed".
                closed = (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError)
                self.problem = (
                    f"the connection closed before an answer ({_problem(exc)})"
                    if isinstance(exc, closed)
                    else f"the answer was not HTTP/1.x: {_problem(exc)}"
                    if isinstance(exc, h11.ProtocolError)
                    else _problem(exc)
                )
                return None
        if self.accepts(status):
            return status
        self.problem = f"it answered {status}"
        return None

    async def _exchange(self, stream: ByteStream) -> int:
        connection = h11.Connection(h11.CLIENT)
        await stream.send(connection.send(self._request) + connection.send(h11.EndOfMessage()))
        # If the deadline cuts this attempt short, what the one before it found says more.
        before = self.problem.split("; the attempt before: ")[-1]
        self.problem = _WAITING + (
            f"; the attempt before: {before}" if before not in (_NOT_TRIED, _WAITING) else ""
        )
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(await self._receive(stream))
            elif isinstance(event, h11.Response):
                status = event.status_code
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise anyio.EndOfStream
            # an InformationalResponse (100 Continue...): the real answer follows
        # Read the rest of the answer, within bounds, so the server is not cut off mid-write
        # (some log a traceback for that); the status is the result either way.
        received = 0
        with anyio.move_on_after(_BODY_DRAIN_TIME):
            while received < _BODY_DRAIN_LIMIT:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    data = await self._receive(stream)
                    received += len(data)
                    connection.receive_data(data)
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
        return status

    @staticmethod
    async def _receive(stream: ByteStream) -> bytes:
        try:
            return await stream.receive(_RECEIVE_SIZE)
        except anyio.EndOfStream:
            return b""  # h11 turns the end into ConnectionClosed or a protocol error


def _percent_encode_non_ascii(target: str) -> bytes:
    """The request target with every non-ASCII byte (UTF-8; a lone surrogate as the byte it
    stands for) percent-encoded, as a browser sends it; ASCII is left for h11 to check."""
    raw = target.encode("utf-8", "surrogateescape")
    return b"".join(bytes((byte,)) if byte < 0x80 else b"%%%02X" % byte for byte in raw)


def _host_header(host: str, port: int | None) -> bytes:
    """``Host:`` for ``host`` (IDNA for a non-ASCII name, brackets for IPv6), with its port."""
    name = host.encode("ascii") if host.isascii() else host.encode("idna")
    if b":" in name:
        name = b"[" + name + b"]"
    return name if port is None else name + b":%d" % port


@final
class PathProbe:
    """Ready once ``path`` exists (a file, a unix socket, a directory...)."""

    __slots__ = ("goal", "path", "problem", "wake_on_output")

    def __init__(self, path: str) -> None:
        self.path = path
        self.goal = f"{shorten(path)} to exist"
        self.problem = _NOT_TRIED
        self.wake_on_output = True

    async def attempt(self) -> object | None:
        try:
            os.stat(self.path)
        except OSError as exc:
            self.problem = _problem(exc)
            return None
        return True


def port_probe(port: object, host: object = "127.0.0.1") -> PortProbe:
    """A :class:`PortProbe` from unchecked arguments (``port`` may be a ``(host, port)`` pair)."""
    if isinstance(port, tuple):
        if len(port) != 2:
            raise ValidationError(
                "port must be an int or a (host, port) pair", code="INVALID_ARGUMENT"
            )
        host, port = port
    return PortProbe(check_host(host), check_port(port))


def path_probe(path: object) -> PathProbe:
    """A :class:`PathProbe` from an unchecked path."""
    return PathProbe(_check_path(path))


# -- the wait ---------------------------------------------------------------------------------


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
        ProcessError: The child exited first (code ``PROCESS_EXITED_EARLY``).
        ProcessTimeoutError: The deadline passed first (code ``PROCESS_WAIT_TIMEOUT``).
    """
    results: list[object] = []
    with anyio.CancelScope(deadline=deadline):
        async with anyio.create_task_group() as group:
            group.start_soon(_cancel_on_exit, target, group.cancel_scope)
            for probe in probes:
                results.append(await _until_ready(target, probe))
            group.cancel_scope.cancel()
    if len(results) == len(probes) and not (probes and target.supervisor_done.is_set()):
        return results
    # Ready, but the child exited meanwhile: something else answered (another server on that
    # port, a file left by an earlier run). Not ready.
    probe = probes[min(len(results), len(probes) - 1)]
    if target.supervisor_done.is_set():
        code = await target.exit_code()
        status = "" if code is None else f" with code {describe_returncode(code)}"
        raise ProcessError(
            f"Process exited{status} while waiting for {probe.goal}",
            command=command,
            return_code=code,
            stdout=target.stdout_text() or None,
            stderr=target.stderr_text() or None,
            code="PROCESS_EXITED_EARLY",
        )
    raise ProcessTimeoutError(
        f"Not ready within {math.inf if seconds is None else seconds:g}s: waiting for "
        f"{probe.goal}; last attempt: {probe.problem}",
        command=command,
        timeout_seconds=seconds,
        stdout=target.stdout_text() or None,
        stderr=target.stderr_text() or None,
        code="PROCESS_WAIT_TIMEOUT",
    )


async def _cancel_on_exit(target: ProbeTarget, scope: anyio.CancelScope) -> None:
    await target.supervisor_done.wait()
    scope.cancel()


async def _until_ready(target: ProbeTarget, probe: Probe) -> object:
    began = anyio.current_time()
    while True:
        output = target.activity()  # taken first: output during the attempt counts
        started = anyio.current_time()
        result = await probe.attempt()
        if result is not None:
            return result
        pause = min(_LAST_PAUSE, max(_FIRST_PAUSE, (started - began) * _PAUSE_SHARE))
        if not probe.wake_on_output:
            await anyio.sleep(pause)
            continue
        with anyio.move_on_after(pause):
            await output.wait()
        if output.is_set():
            await anyio.sleep_until(started + _MIN_GAP)


# -- the public functions ---------------------------------------------------------------------


def _process(process: object) -> ManagedProcess:
    from procfound.managed import ManagedProcess

    if not isinstance(process, ManagedProcess):
        raise ValidationError(
            f"process must be a ManagedProcess, not {type(process).__name__}",
            code="INVALID_ARGUMENT",
        )
    return process


async def wait_for_port(
    process: ManagedProcess,
    port: int,
    *,
    host: str = "127.0.0.1",
    timeout: float = DEFAULT_PROBE_TIMEOUT,
) -> None:
    """Wait until the process's service accepts a TCP connection on ``host:port``.

    Each attempt connects and closes the connection at once. After a refused attempt the next
    one follows after 2% of the time waited so far (1 ms at first, at most 20 ms), or at once
    when the child writes output (a "listening on" log line). Works under
    asyncio and trio; the waiting happens in the child's owner, which keeps reading its output
    meanwhile (also past the 4 MiB of unread stdout it normally buffers: see
    :class:`ManagedProcess`), so a chatty service never blocks on a full pipe.

    Args:
        process: The launched process that will listen.
        port: The TCP port, 1 to 65535.
        host: The address to connect to: an IPv4 or IPv6 address (``"::1"``) or a host name.
        timeout: Seconds to wait (None: no limit).

    Raises:
        ValidationError: If ``port``, ``host`` or ``timeout`` is not acceptable.
        ProcessError: If the process exits first (code ``PROCESS_EXITED_EARLY``), at once, with
            its return code and the last 64 KiB of its stdout and stderr; or if it was not
            launched or is already stopped.
        ProcessTimeoutError: If no connection succeeded in time (a ``TimeoutError``; code
            ``PROCESS_WAIT_TIMEOUT``), with the same output tails and the last connect error.

    Example:
        >>> import anyio, sys
        >>> from procfound import ManagedProcess
        >>> code = "import socket, time; s = socket.create_server(('127.0.0.1', 0)); "
        >>> code += "print(s.getsockname()[1], flush=True); time.sleep(30)"
        >>> with ManagedProcess([sys.executable, "-c", code]) as server:
        ...     port = int(anyio.run(server.read_line_async))
        ...     anyio.run(wait_for_port, server, port)
    """
    probe = port_probe(port, host)
    seconds = check_timeout(timeout)
    await _process(process)._await_probes([probe], seconds)


async def wait_for_http(
    process: ManagedProcess,
    url: str,
    *,
    timeout: float = DEFAULT_PROBE_TIMEOUT,
    status: int | Collection[int] | None = None,
) -> int:
    """Wait until a GET of ``url`` is answered with an accepted status; return that status.

    Each attempt connects, sends ``GET`` (HTTP/1.1, ``Connection: close``), reads the status
    line and the rest of the answer (up to 1 MiB, 1 s), and closes. Refused connections,
    closed connections, answers that are not HTTP and other statuses are retried, with the
    same pacing and fail-fast as :func:`wait_for_port`. An IPv6 host is written in brackets:
    ``http://[::1]:8080/``.

    Args:
        process: The launched process that serves the URL.
        url: An ``http://`` URL (https is not supported: probe a TLS port with
            :func:`wait_for_port`).
        timeout: Seconds to wait (None: no limit).
        status: The accepted status code, or a collection of them; None accepts any 2xx or 3xx.

    Returns:
        The status code of the answer that was accepted.

    Raises:
        ValidationError: If ``url``, ``status`` or ``timeout`` is not acceptable.
        ProcessError: If the process exits first (code ``PROCESS_EXITED_EARLY``), at once, with
            its return code and output tails; or if it was not launched or is already stopped.
        ProcessTimeoutError: If no accepted answer came in time (a ``TimeoutError``), naming
            the last status or error.

    Example:
        >>> import anyio, functools, socket, sys
        >>> from procfound import ManagedProcess
        >>> with socket.create_server(("127.0.0.1", 0)) as free:
        ...     port = free.getsockname()[1]
        >>> server = [sys.executable, "-m", "http.server", "-b", "127.0.0.1", str(port)]
        >>> with ManagedProcess(server, stderr_relay=False) as web:
        ...     probe = functools.partial(wait_for_http, web, f"http://127.0.0.1:{port}/")
        ...     anyio.run(probe)
        200
    """
    probe = HttpProbe(url, status)
    seconds = check_timeout(timeout)
    (result,) = await _process(process)._await_probes([probe], seconds)
    return cast(int, result)


async def wait_for_path(
    process: ManagedProcess, path: str | os.PathLike[str], *, timeout: float = DEFAULT_PROBE_TIMEOUT
) -> None:
    """Wait until ``path`` exists: a unix socket, a pid file, any file or directory.

    A relative path is taken relative to the caller's working directory at the call (not the
    process's ``cwd``). A path left over from an earlier run counts as ready: remove it first.
    Pacing and fail-fast are those of :func:`wait_for_port`.

    Args:
        process: The launched process that will create the path.
        path: The path to wait for.
        timeout: Seconds to wait (None: no limit).

    Raises:
        ValidationError: If ``path`` is empty, contains NUL or is not a path, or ``timeout`` is
            not acceptable.
        ProcessError: If the process exits first (code ``PROCESS_EXITED_EARLY``), at once, with
            its return code and output tails; or if it was not launched or is already stopped.
        ProcessTimeoutError: If the path did not appear in time (a ``TimeoutError``).

    Example:
        >>> import anyio, functools, os, tempfile
        >>> from procfound import ManagedProcess
        >>> flag = os.path.join(tempfile.mkdtemp(), "ready")
        >>> with ManagedProcess(["sh", "-c", f"sleep 0.1; touch {flag}; exec sleep 30"]) as p:
        ...     anyio.run(functools.partial(wait_for_path, p, flag, timeout=5))
        >>> os.remove(flag)
    """
    probe = path_probe(path)
    seconds = check_timeout(timeout)
    await _process(process)._await_probes([probe], seconds)
