"""The HTTP readiness probe: ready once a GET of a URL answers with an accepted status.

It speaks HTTP/1.1 through h11 over an AnyIO TCP stream (docs/design.md says why), one request
per attempt, ``Connection: close``; the status is the result. A password in the URL is never
shown (:func:`redact_url`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final, final
from urllib.parse import urlsplit

import anyio
import h11
from anyio.abc import ByteStream

from procfound.engine.listeners import Listener
from procfound.errors import ValidationError, shorten
from procfound.services.probe_kinds import (
    NOT_TRIED,
    ascii_host,
    check_host,
    check_port,
    connect,
    problem_of,
    shown_host,
    tcp_sockets,
)

__all__ = ["HttpProbe", "redact_url"]

# After the status line, the rest of the answer is read (so the server can finish writing it)
# within these bounds; the status is known already.
_BODY_DRAIN_LIMIT: Final = 1024 * 1024
_BODY_DRAIN_TIME: Final = 1.0
_RECEIVE_SIZE: Final = 65536
_DEFAULT_STATUSES: Final = "a status 2xx or 3xx"
_WAITING: Final = "connected, waiting for the answer"


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
        self.address = ascii_host(self.host)
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
        self.where = f"{shown_host(self.host)}:{self.port}"
        self.goal = f"GET {shorten(redact_url(url))} to answer with {wanted}"
        self.problem = NOT_TRIED
        self.peer: tuple[str, int] | None = None
        self.wake_on_output = True

    def accepts(self, status: int) -> bool:
        """True for a status that means ready."""
        return 200 <= status < 400 if self.statuses is None else status in self.statuses

    async def attempt(self) -> object | None:
        self.wake_on_output = True
        stream = await connect(self)
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
                    reason = f" ({problem_of(cause)})" if cause is not None and known else ""
                    self.problem = f"the server closed the connection without an answer{reason}"
                elif isinstance(exc, h11.ProtocolError):
                    self.problem = f"the answer was not HTTP/1.x: {problem_of(exc)}"
                else:
                    self.problem = problem_of(exc)
                return None
        if self.accepts(status):
            return status
        self.problem = f"it answered {status}"
        return None

    async def answers(self) -> bool:
        stream = await connect(self)
        if stream is None:
            return False
        await stream.aclose()
        return True

    def listeners(self) -> list[Listener] | None:
        return tcp_sockets(self.peer)

    async def _exchange(self, stream: ByteStream) -> int:
        connection = h11.Connection(h11.CLIENT)
        await stream.send(connection.send(self._request) + connection.send(h11.EndOfMessage()))
        # If the deadline cuts this attempt short, what the one before it found says more.
        before = self.problem.split("; the attempt before: ")[-1]
        self.problem = _WAITING + (
            f"; the attempt before: {before}" if before not in (NOT_TRIED, _WAITING) else ""
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
