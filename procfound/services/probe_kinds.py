"""The readiness probes' kinds but HTTP (:mod:`procfound.services.http_probe`): a TCP port
that accepts a connection, a path that exists (a unix socket must accept one), and the checks of
their arguments. Each probe's ``attempt()`` checks once; :mod:`procfound.services.probes` runs
the attempts.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from typing import Final, Protocol, final

import anyio
from anyio.abc import ByteStream, SocketAttribute

from procfound.engine.listeners import Listener, is_local_address, tcp_listeners, unix_listeners
from procfound.errors import ValidationError, shorten

__all__ = [
    "NOT_TRIED",
    "PathProbe",
    "PortProbe",
    "Probe",
    "ascii_host",
    "check_host",
    "check_path",
    "check_port",
    "connect",
    "path_probe",
    "port_probe",
    "problem_of",
    "shown_host",
    "tcp_sockets",
]

# A connect that neither succeeds nor fails (SYN dropped: a full backlog, a firewall) is given
# up after this and tried again.
_CONNECT_TIMEOUT: Final = 2.0
# The longest path a unix socket can be connected by (sun_path holds 108 bytes with the NUL).
_UNIX_PATH_MAX: Final = 107
# DNS limits (RFC 1035): a longer name can never resolve, so it is refused up front.
_DNS_LABEL_MAX: Final = 63
_DNS_NAME_MAX: Final = 253
NOT_TRIED: Final = "not tried yet"


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


class Connecting(Protocol):
    """A probe that connects over TCP (a port or an HTTP probe), as :func:`connect` uses it."""

    host: str
    address: str
    port: int
    peer: tuple[str, int] | None
    problem: str


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
    ascii_host(host)
    return host


def ascii_host(host: str) -> str:
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


def check_path(path: object) -> str:
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


def problem_of(exc: BaseException) -> str:
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


def shown_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def connect(probe: Connecting) -> ByteStream | None:
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
        probe.problem = f"{probe.host} could not be resolved: {problem_of(exc)}"
        return None
    except OSError as exc:
        probe.problem = problem_of(exc)
        return None
    address = stream.extra(SocketAttribute.remote_address, None)
    if isinstance(address, tuple) and len(address) >= 2:
        probe.peer = (str(address[0]), int(address[1]))
    return stream


def tcp_sockets(peer: tuple[str, int] | None) -> list[Listener] | None:
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
        self.address = ascii_host(host)
        self.port = port
        self.where = f"{shown_host(host)}:{port}"
        self.goal = f"a TCP connection to {self.where}"
        self.problem = NOT_TRIED
        self.peer: tuple[str, int] | None = None
        self.wake_on_output = True  # a refused connect reaches no service: nothing to log

    async def attempt(self) -> object | None:
        stream = await connect(self)
        if stream is None:
            return None
        await stream.aclose()
        return True

    async def answers(self) -> bool:
        return await self.attempt() is not None

    def listeners(self) -> list[Listener] | None:
        return tcp_sockets(self.peer)


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
                    return problem_of(exc)  # removed since the stat
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
        self.problem = NOT_TRIED
        self.answered_socket = False
        self.wake_on_output = True

    async def attempt(self) -> object | None:
        self.answered_socket = False
        try:
            mode = os.stat(self.path).st_mode
        except OSError as exc:
            self.problem = problem_of(exc)
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
    return PathProbe(check_path(path))
