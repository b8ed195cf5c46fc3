"""The waits on a launched ManagedProcess that are functions, not methods:
``wait_for_process_output`` (its handshake) and ``wait_for_port``, ``wait_for_http`` and
``wait_for_path`` (its readiness probes, :mod:`procfound.services.probes`).

Each checks its arguments, then runs in the child's owner through the portal, like
:meth:`ManagedProcess.await_ready <procfound.ManagedProcess.await_ready>`.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from typing import cast

from procfound.bridge.sync import acall_in_portal
from procfound.call.options import check_timeout
from procfound.errors import ValidationError
from procfound.services.managed import ManagedProcess
from procfound.services.probes import DEFAULT_PROBE_TIMEOUT, HttpProbe, path_probe, port_probe
from procfound.services.reading import DEFAULT_PROCESS_WAIT_TIMEOUT, await_probes, owner_of
from procfound.services.wording import expected_parts as _expected_parts

__all__ = ["wait_for_http", "wait_for_path", "wait_for_port", "wait_for_process_output"]


def _process(process: object) -> ManagedProcess:
    if not isinstance(process, ManagedProcess):
        raise ValidationError(
            f"process must be a ManagedProcess, not {type(process).__name__}",
            code="INVALID_ARGUMENT",
        )
    return process


async def wait_for_process_output(
    process: ManagedProcess,
    expected_parts: list[str],
    timeout: float = DEFAULT_PROCESS_WAIT_TIMEOUT,
    buffer_size: int = 1024,
) -> str:
    """Wait until every string in ``expected_parts`` has appeared in the process's stdout.

    Reads stdout until each part occurs somewhere in what was read, in any order, e.g. the parts
    of a go-plugin handshake ``1|6|tcp|127.0.0.1:4242|grpc``. Works under asyncio and trio; the
    waiting happens in the child's owner, which keeps reading the child's output meanwhile.

    Args:
        process: The launched process to read from.
        expected_parts: Strings that must all appear (an empty list matches at once).
        timeout: Seconds to wait for them (None: no limit).
        buffer_size: Bytes per read.

    Returns:
        The output read while waiting, through the end of the line that completed the match;
        what came after it stays buffered for :meth:`ManagedProcess.read_line_async`.

    Raises:
        ValidationError: If ``process`` is not a ManagedProcess, ``expected_parts`` is not a list
            of strings, or ``timeout`` or ``buffer_size`` is not a number.
        ProcessTimeoutError: If the parts did not all appear in time (it is a ``TimeoutError``);
            it carries what was read.
        ProcessError: If the process ended its output (exited) before they appeared.

    Example:
        >>> import anyio
        >>> from procfound import ManagedProcess
        >>> with ManagedProcess(["sh", "-c", "echo '1|6|tcp|x|grpc'; exec sleep 30"]) as p:
        ...     anyio.run(wait_for_process_output, p, ["tcp", "grpc"])
        '1|6|tcp|x|grpc\\n'
    """
    _process(process)
    parts = _expected_parts(expected_parts)
    seconds = check_timeout(timeout)
    if isinstance(buffer_size, bool) or not isinstance(buffer_size, int):
        raise ValidationError("buffer_size must be a number of bytes", code="INVALID_ARGUMENT")
    owner = owner_of(process)
    return await acall_in_portal(owner.wait_for_output, parts, seconds, max(1, buffer_size))


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

    Ready means the service's own tree answers: on Linux, once a connection succeeds, the
    listening socket's holder is looked up, and a process outside the tree (another server on
    that port) ends the wait at once with an error naming it. Where that cannot be told (another
    platform, a remote host) any answer counts.

    Args:
        process: The launched process that will listen.
        port: The TCP port, 1 to 65535.
        host: The address to connect to: an IPv4 or IPv6 address (``"::1"``) or a host name.
        timeout: Seconds to wait (None: no limit).

    Raises:
        ValidationError: If ``port``, ``host`` or ``timeout`` is not acceptable.
        ProcessError: If the process exits first (code ``PROCESS_EXITED_EARLY``), at once, with
            its return code and the last 64 KiB of its stdout and stderr; if a process outside
            its tree answers (code ``PROBE_ANSWERED_BY_OTHER``), naming it; or if it was not
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
    await await_probes(_process(process), [probe], seconds)


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
            its return code and output tails; if a process outside its tree answers (code
            ``PROBE_ANSWERED_BY_OTHER``); or if it was not launched or is already stopped.
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
    (result,) = await await_probes(_process(process), [probe], seconds)
    return cast(int, result)


async def wait_for_path(
    process: ManagedProcess, path: str | os.PathLike[str], *, timeout: float = DEFAULT_PROBE_TIMEOUT
) -> None:
    """Wait until ``path`` exists: a pid file, any file or directory, or a unix socket that
    accepts a connection.

    A relative path is taken relative to the caller's working directory at the call (not the
    process's ``cwd``). A unix socket must accept a connection, and (on Linux) be held by the
    process's tree, so a socket left by an earlier run or held by another server is not taken
    for the service; any other file left over from an earlier run counts as ready: remove it
    first. Pacing and fail-fast are those of :func:`wait_for_port`.

    Args:
        process: The launched process that will create the path.
        path: The path to wait for.
        timeout: Seconds to wait (None: no limit).

    Raises:
        ValidationError: If ``path`` is empty, contains NUL, cannot be encoded for the file
            system or is not a path, or ``timeout`` is not acceptable.
        ProcessError: If the process exits first (code ``PROCESS_EXITED_EARLY``), at once, with
            its return code and output tails; if a process outside its tree answers (code
            ``PROBE_ANSWERED_BY_OTHER``); or if it was not launched or is already stopped.
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
    await await_probes(_process(process), [probe], seconds)
