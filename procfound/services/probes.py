"""Readiness probes: wait until a ManagedProcess's service accepts connections, answers HTTP or
creates a path, failing fast when it exits first.

A probe is a small object whose ``attempt()`` checks once (a TCP connect, an HTTP GET, a
``stat``). :func:`wait_until_ready` runs probes one after another under one deadline, **in the
child's owner** (procfound's portal loop, see :mod:`procfound.services.managed`), where it sees
the exit the moment the supervisor notices it: a task watching ``supervisor_done`` cancels
the attempt in flight and the wait ends with a :class:`~procfound.ProcessError` carrying the
exit code and
the tails of stdout and stderr. Meanwhile the owner keeps reading the child's output, also past
its 4 MiB high-water mark, so a chatty service never blocks on a full pipe.

Attempts are paced by a pause of 2% of the time waited so far (1 ms to 20 ms), and any output
from the child starts the next attempt at once: a server that logs "listening on ..." is seen
within about a millisecond of the log line, not at the next tick of a polling loop.

**Who answers.** A connection that succeeds proves only that something listens. When a probe
succeeds, the listening socket behind it is looked up in /proc (Linux,
:mod:`procfound.engine.listeners`); if a process outside the child's tree holds it (another
server on that port), the wait fails at once naming that process, code
``PROBE_ANSWERED_BY_OTHER``. Where the holder cannot be told (another platform, a remote host),
the answer is accepted; :func:`refuse_answered`, which the pytest plugin and the CLI run before
they start the child, refuses a port or socket that answers before the child exists.

The HTTP probe speaks HTTP/1.1 through h11 over an AnyIO TCP stream (docs/design.md says why).
"""

from __future__ import annotations

import errno
import math
import os
import socket
import stat
from collections.abc import Collection, Sequence
from typing import Final, NamedTuple, Protocol, final
from urllib.parse import urlsplit

import anyio
import h11
from anyio.abc import ByteStream, SocketAttribute

from procfound.bridge.sync import call_in_portal
from procfound.engine.listeners import (
    Holder,
    Listener,
    Tree,
    descendant_holds,
    is_local_address,
    outside_holder,
    tcp_listeners,
    unix_listeners,
)
from procfound.engine.owner import ChildOwner
from procfound.errors import (
    ProcessError,
    ProcessTimeoutError,
    StateError,
    ValidationError,
    command_display,
    describe_returncode,
    shorten,
)

__all__ = [
    "HttpProbe",
    "PathProbe",
    "PortProbe",
    "Probe",
    "ProbeArguments",
    "ProbeTarget",
    "check_host",
    "check_port",
    "check_probes",
    "probes_for",
    "ready_in_owner",
    "redact_url",
    "refuse_answered",
    "refuse_answered_sync",
    "refuse_if_answered",
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
# Before the child starts, one connect per probe, bounded by this.
_ANSWER_CHECK_TIME: Final = 1.0
# The longest path a unix socket can be connected by (sun_path holds 108 bytes with the NUL).
_UNIX_PATH_MAX: Final = 107
# DNS limits (RFC 1035): a longer name can never resolve, so it is refused up front.
_DNS_LABEL_MAX: Final = 63
_DNS_NAME_MAX: Final = 253
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

    def tree(self) -> Tree | None:
        """The child's process tree, to tell whether it is what answered (None: not started)."""
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

    #: What a connection reaches, for messages ("127.0.0.1:8080", "the unix socket /run/x").
    where: str

    async def attempt(self) -> object | None:
        """Check once: a result (ready) or None (not yet; :attr:`problem` says why)."""
        ...

    async def answers(self) -> bool:
        """Whether something accepts a connection now (no HTTP exchange, no waiting)."""
        ...

    def listeners(self) -> list[Listener] | None:
        """The sockets the last successful attempt or :meth:`answers` reached, from /proc
        (blocking reads); None where that cannot be told (not a socket, not Linux, remote)."""
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
    _ascii_host(host)
    return host


def _ascii_host(host: str) -> str:
    """``host`` as it is resolved and sent: an internationalised name in IDNA 2008 (UTS #46),
    as AnyIO's connect encodes it; ValidationError for a name that can never resolve."""
    if host.isascii():
        name = host
    else:
        # AnyIO encodes a non-ASCII name with the idna package (one of its dependencies) in the
        # middle of the connect, where its UnicodeError would escape as an ExceptionGroup.
        import idna

        try:
            name = idna.encode(host, uts46=True).decode("ascii")
        except UnicodeError as exc:
            raise ValidationError(
                f"host {shorten(repr(host))} is not a valid host name ({exc})",
                code="INVALID_ARGUMENT",
            ) from None
    if ":" not in name:  # an IPv6 address has no labels
        label = max(name.rstrip(".").split("."), key=len)
        if len(label) > _DNS_LABEL_MAX or len(name) > _DNS_NAME_MAX:
            raise ValidationError(
                f"host {shorten(repr(host))} is not a valid host name (a DNS name has at most "
                f"{_DNS_NAME_MAX} characters, in labels of at most {_DNS_LABEL_MAX})",
                code="INVALID_ARGUMENT",
            )
    return name


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
    try:
        os.fsencode(text)
    except UnicodeError:
        raise ValidationError(
            f"path cannot be encoded for the file system, got {shorten(repr(text))}",
            code="INVALID_ARGUMENT",
        ) from None
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
    if isinstance(exc, socket.gaierror) and exc.strerror:
        return exc.strerror  # os.strerror(-2) would read "Unknown error -2"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)  # asyncio's is "Connect call failed ('127.0.0.1', 1)"
    return str(exc) or type(exc).__name__


def _shown_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def _connect(probe: PortProbe | HttpProbe) -> ByteStream | None:
    """A TCP connection to the probe's host and port, or None with ``probe.problem`` set.

    On success ``probe.peer`` is the address it reached, for the check of who answered.
    """
    probe.peer = None
    try:
        with anyio.fail_after(_CONNECT_TIMEOUT):
            stream = await anyio.connect_tcp(probe.address, probe.port)
    except TimeoutError:
        probe.problem = f"no answer to the connect within {_CONNECT_TIMEOUT:g}s"
        return None
    except socket.gaierror as exc:
        probe.problem = f"{probe.host} could not be resolved: {_problem(exc)}"
        return None
    except OSError as exc:
        probe.problem = _problem(exc)
        return None
    address = stream.extra(SocketAttribute.remote_address, None)
    if isinstance(address, tuple) and len(address) >= 2:
        probe.peer = (str(address[0]), int(address[1]))
    return stream


def _tcp_sockets(peer: tuple[str, int] | None) -> list[Listener] | None:
    """The listening sockets behind a TCP connection to ``peer``, if this machine has them."""
    if peer is None or not is_local_address(peer[0]):
        return None  # a remote host's listeners are not in our /proc
    return tcp_listeners(*peer)


@final
class PortProbe:
    """Ready once a TCP connection to ``host:port`` succeeds; the connection is closed at once."""

    __slots__ = ("address", "goal", "host", "peer", "port", "problem", "wake_on_output", "where")

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.address = _ascii_host(host)
        self.port = port
        self.where = f"{_shown_host(host)}:{port}"
        self.goal = f"a TCP connection to {self.where}"
        self.problem = _NOT_TRIED
        self.peer: tuple[str, int] | None = None
        self.wake_on_output = True  # a refused connect reaches no service: nothing to log

    async def attempt(self) -> object | None:
        stream = await _connect(self)
        if stream is None:
            return None
        await stream.aclose()
        return True

    async def answers(self) -> bool:
        return await self.attempt() is not None

    def listeners(self) -> list[Listener] | None:
        return _tcp_sockets(self.peer)


def redact_url(url: str) -> str:
    """``url`` with the password in it, if any, shown as ``***`` (``http://user:***@host/``).

    Works on any text, also one that is not a valid URL, so every message can use it.
    """
    start = url.find("//")
    if start < 0:
        return url
    start += 2
    ends = [index for index in (url.find(char, start) for char in "/?#") if index >= 0]
    userinfo, at, _ = url[start : min(ends, default=len(url))].rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.partition(":")[0]
    return f"{url[:start]}{user}:***@{url[start + len(userinfo) + 1 :]}"


@final
class HttpProbe:
    """Ready once a GET of ``url`` answers with an accepted status; the result is the status."""

    __slots__ = (
        "_request",
        "address",
        "goal",
        "host",
        "peer",
        "port",
        "problem",
        "statuses",
        "url",
        "wake_on_output",
        "where",
    )

    def __init__(self, url: object, status: object = None) -> None:
        if not isinstance(url, str):
            raise ValidationError(
                f"url must be a str, not {type(url).__name__}", code="INVALID_ARGUMENT"
            )
        shown = shorten(repr(redact_url(url)))  # a password in the URL is never shown
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ValidationError(
                f"url is not a valid URL ({redact_url(str(exc))}): {shown}",
                code="INVALID_ARGUMENT",
            ) from None
        if parts.scheme.lower() != "http":
            raise ValidationError(
                "url must start with http:// (https and other schemes are not supported: "
                f"probe a TLS service's port instead), got {shown}",
                code="INVALID_ARGUMENT",
            )
        if not parts.hostname:
            raise ValidationError(f"url has no host: {shown}", code="INVALID_ARGUMENT")
        self.url = url
        self.host = check_host(parts.hostname)
        self.address = _ascii_host(self.host)
        self.port = 80 if port is None else check_port(port)
        self.statuses = _check_statuses(status)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            self._request = h11.Request(
                method="GET",
                target=_percent_encode_non_ascii(target),
                headers=[
                    # never user:password from the URL
                    (b"Host", _host_header(self.address, port)),
                    (b"User-Agent", b"procfound-probe"),
                    (b"Accept", b"*/*"),
                    (b"Connection", b"close"),
                ],
            )
        except (h11.LocalProtocolError, UnicodeError) as exc:
            raise ValidationError(
                f"url cannot be requested ({exc}): {shown}", code="INVALID_ARGUMENT"
            ) from None
        wanted = (
            _DEFAULT_STATUSES
            if self.statuses is None
            else "status " + " or ".join(map(str, sorted(self.statuses)))
        )
        self.where = f"{_shown_host(self.host)}:{self.port}"
        self.goal = f"GET {shorten(redact_url(url))} to answer with {wanted}"
        self.problem = _NOT_TRIED
        self.peer: tuple[str, int] | None = None
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
                if isinstance(exc, anyio.EndOfStream | anyio.BrokenResourceError | ConnectionError):
                    cause = exc if isinstance(exc, OSError) else exc.__cause__
                    known = isinstance(cause, OSError) and cause.errno
                    reason = f" ({_problem(cause)})" if cause is not None and known else ""
                    self.problem = f"the server closed the connection without an answer{reason}"
                elif isinstance(exc, h11.ProtocolError):
                    self.problem = f"the answer was not HTTP/1.x: {_problem(exc)}"
                else:
                    self.problem = _problem(exc)
                return None
        if self.accepts(status):
            return status
        self.problem = f"it answered {status}"
        return None

    async def answers(self) -> bool:
        stream = await _connect(self)
        if stream is None:
            return False
        await stream.aclose()
        return True

    def listeners(self) -> list[Listener] | None:
        return _tcp_sockets(self.peer)

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
                data = await self._receive(stream)
                if not data:
                    # Closed before any answer: h11 would call that a protocol error ("can't
                    # handle event type ConnectionClosed"), but it is the server hanging up.
                    raise anyio.EndOfStream
                connection.receive_data(data)
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


def _host_header(address: str, port: int | None) -> bytes:
    """``Host:`` for ``address`` (the ASCII form of the host), brackets for IPv6, its port."""
    name = address.encode("ascii")
    if b":" in name:
        name = b"[" + name + b"]"
    return name if port is None else name + b":%d" % port


def _unix_refusal(path: str) -> str | None:
    """Why the unix socket ``path`` is not ready (nobody listens: a socket left by an earlier
    run); None if something accepts a connection, "" if that cannot be told (we may not
    connect, or the path is too long to connect to): then its existence counts, as for a file.
    """
    if len(os.fsencode(path)) > _UNIX_PATH_MAX:
        return ""
    # The socket's type is not known: a stream connect to a datagram socket is EPROTOTYPE.
    for kind in (socket.SOCK_STREAM, socket.SOCK_SEQPACKET, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_UNIX, kind) as client:
            client.setblocking(False)  # a full backlog must not block the owner's loop
            try:
                client.connect(path)
            except BlockingIOError:
                return None  # EAGAIN: its backlog is full, but it listens
            except OSError as exc:
                if exc.errno == errno.EPROTOTYPE:
                    continue
                if exc.errno == errno.ECONNREFUSED:
                    return "it is a unix socket nobody listens on (yet)"
                if exc.errno == errno.ENOENT:
                    return _problem(exc)  # removed since the stat
                return ""  # EACCES and the like
            return None
    return ""


@final
class PathProbe:
    """Ready once ``path`` exists (a file, a directory...); a unix socket must also accept a
    connection, so a socket file left by an earlier run is not taken for the service."""

    __slots__ = ("answered_socket", "goal", "path", "problem", "wake_on_output", "where")

    def __init__(self, path: str) -> None:
        self.path = path
        self.where = f"the unix socket {shorten(path)}"
        self.goal = f"{shorten(path)} to exist"
        self.problem = _NOT_TRIED
        self.answered_socket = False
        self.wake_on_output = True

    async def attempt(self) -> object | None:
        self.answered_socket = False
        try:
            mode = os.stat(self.path).st_mode
        except OSError as exc:
            self.problem = _problem(exc)
            return None
        if not stat.S_ISSOCK(mode):
            return True
        refusal = _unix_refusal(self.path)
        if refusal:
            self.problem = refusal
            return None
        self.answered_socket = refusal is None
        return True

    async def answers(self) -> bool:
        return await self.attempt() is not None and self.answered_socket

    def listeners(self) -> list[Listener] | None:
        return unix_listeners(self.path) if self.answered_socket else None


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
            stdout=target.stdout_text() or None,
            stderr=target.stderr_text() or None,
            code="PROBE_ANSWERED_BY_OTHER",
        )
    # Ready, but the child exited meanwhile: something else answered (another server on that
    # port, a file left by an earlier run). Not ready.
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
