"""``async_run``: run a command to completion and capture its output (``run``/``run_simple``
are its generated sync twins)."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Mapping
from pathlib import Path
from typing import Any

from procfound.bridge.sync import make_sync
from procfound.call.captured import Undecodable, captured_output, decode_failure, raise_failure
from procfound.call.failures import ASYNC_RUN
from procfound.call.invocation import CALLED_AS, Invocation
from procfound.call.observe import LineTee
from procfound.call.options import check_max_bytes
from procfound.call.sessions import check_idle, run_to_end, start_child
from procfound.engine.buffers import OutputBuffer
from procfound.engine.echo import Echo, Feedable
from procfound.engine.spawn import Stdio
from procfound.errors import ProcessError, ValidationError
from procfound.pipes import Pipeline, run_pipeline
from procfound.result import CompletedProcess
from procfound.usage import ResourceUsage

__all__ = ["async_run", "run", "run_simple"]


async def async_run(
    cmd: list[str] | str | Pipeline,
    cwd: str | Path | None = None,
    env: Mapping[str, str | None] | None = None,
    capture_output: bool = True,
    check: bool = True,
    timeout: float | None = None,
    text: bool = True,
    input: str | bytes | Iterable[str | bytes] | AsyncIterable[str | bytes] | None = None,
    shell: bool = False,
    *,
    kill_on_parent_death: bool = False,
    max_output: int | None = None,
    **kwargs: Any,
) -> CompletedProcess[Any]:
    """Run a command to completion and return its result, under asyncio or trio.

    The child starts in its own process group with ``/dev/null`` as stdin (unless ``input`` is
    given), so it can never stop on the terminal, and so its whole tree can be stopped at once.

    **Output:** with ``capture_output=True`` (the default) stdout and stderr are read as they
    arrive (no pipe can fill up and block the child) and returned decoded as UTF-8, invalid bytes
    replaced (``text=False``: bytes). The direct child's exit ends the call: a background
    grandchild that keeps the pipes open cannot make it hang; it is killed with the rest of the
    process group once the command has exited.

    **Timeouts and cancellation:** ``timeout`` is a deadline for the whole call. When it passes,
    the process group gets SIGTERM (``stop_signal``), then SIGKILL half a second
    (``kill_grace``) later, and
    :class:`ProcessTimeoutError` is raised with the output read so far. Cancelling the calling
    task (a cancel scope, a failing task group, Ctrl-C) stops the tree the same way before the
    cancellation propagates.

    **Differences from subprocess.run:** ``check=True`` by default; the child gets a new process
    group; stdin is ``/dev/null`` by default, not inherited; a stream sent elsewhere
    (``stdout=a_file``) is ``""`` on the result, not None; unknown keyword arguments are
    ignored with an :class:`~procfound.IgnoredArgumentWarning` rather than a ``TypeError``.

    Args:
        cmd: The command and its arguments as a list, passed to the child exactly. A string
            needs ``shell=True``. A :class:`~procfound.Pipeline` (:func:`~procfound.pipe`)
            runs its stages joined by OS pipes, with every keyword applying to the whole
            pipeline (docs/pipelines.md).
        cwd: Working directory for the command.
        env: Environment variables to set on top of the current environment; a None value
            removes that variable. Only these overrides are stored on the result, never the
            merged environment.
        capture_output: Capture stdout and stderr (otherwise they go to ours).
        check: Raise :class:`ProcessError` when the command exits with a code not in
            ``ok_codes`` (``0`` only, by default).
        timeout: Seconds the whole call may take; None waits for ever.
        text: Decode output as text (``encoding``/``errors`` keyword options, default UTF-8
            with replacement), with universal newlines (``\\r\\n`` and a lone ``\\r`` become
            ``\\n``); False returns the bytes untouched.
        input: Bytes (or str, encoded) to write to the child's stdin, which is then closed;
            or an iterable of bytes/str (fetched in a helper thread, never blocking the event
            loop) or an async iterable, written as it is produced while the output is read.
            An exception raised by the iterable stops the tree and propagates.
        shell: Run ``cmd`` (a string) through ``/bin/sh -c``. See :func:`async_shell` for the
            safer form.
        kill_on_parent_death: Linux: SIGKILL the child if this process dies (see the docs:
            one extra exec of ``setpriv``).
        max_output: Keep at most this many bytes of each of stdout and stderr: the *last*
            ones. Output past the cap is still read (the child never blocks) but let go, and
            ``stdout_dropped``/``stderr_dropped`` on the result (and the error) say how much.
        **kwargs: ``encoding``, ``errors``; ``foreground`` (keep our process group and
            stdin so the child may use the terminal; only the child itself is then stopped);
            ``contain`` (``"group"``, the default, ``"tree"`` or ``"cgroup"``: what is stopped
            when the call ends, see the cleanup docs), ``stop_signal`` (sent first, SIGTERM
            by default) and ``kill_grace`` (seconds from it to SIGKILL, 0.5 by default);
            ``process_title`` (the child's ``argv[0]``, what ``ps`` shows) and
            ``print_output`` (echo the output to ``sys.stdout`` as it arrives, and still
            capture it); and subprocess's ``stdin``, ``stdout``, ``stderr``, ``pass_fds``,
            ``start_new_session``, ``process_group``, ``user``, ``group``, ``extra_groups``,
            ``umask``, ``restore_signals``, ``pipesize``, ``executable`` and
            ``universal_newlines``, with their usual meaning (docs/migrate/from-subprocess.md);
            ``inherit_env=False`` (the child's environment is exactly ``env``; a program
            named without ``/`` is looked up in our PATH when ``env`` has none) and
            ``ok_codes`` (any iterable of ints: the exit codes ``check`` accepts, e.g.
            ``(0, 1)`` for grep).
            ``pty=True`` runs the command on a new pseudo-terminal (Linux; elsewhere
            :class:`~procfound.PlatformError`): in a session of its own whose controlling
            terminal it is, as its stdin, stdout and stderr, echo off. What it writes is
            ``stdout`` (stderr merged into it, as on a terminal; ``stderr`` is ``''``; bytes
            with ``text=False`` come as the terminal gives them, ``\n`` as ``\r\n``);
            ``input`` is written and followed by the terminal's end of file (``^D``), which
            is also all the child reads without ``input``; with ``capture_output=False`` the
            output is shown on our stdout as it comes (once that is a closed pipe, the tree
            is stopped and ``BrokenPipeError`` raised, as ``print`` would: a child on a
            terminal never gets SIGPIPE itself). ``pty_size=(rows, columns)`` sets the
            terminal's size (default ``(24, 80)``). Cannot be combined with ``stdin``,
            ``stdout`` or ``stderr`` targets (but ``stdout=PIPE`` and ``stderr=STDOUT``,
            which it does anyway), ``foreground``, ``process_group``, a pipeline or an
            iterable ``input``.

    Returns:
        CompletedProcess with ``args``, ``returncode``, ``stdout``, ``stderr``, ``cwd``,
        ``env`` (the overrides only), ``duration`` (spawn to reap, in seconds), ``rusage`` (CPU
        time and peak memory of the child) and the bytes dropped by ``max_output``; for a
        pipeline also ``stages`` (each stage's ``args``, ``returncode`` and ``stderr``), with
        ``returncode`` by pipefail (the rightmost failing stage's; an upstream stage ended by
        SIGPIPE is not a failure).

    Raises:
        ValidationError: If the arguments are wrong (a string command without ``shell=True``,
            a negative timeout, ``stdout=`` something that is not a file...).
        ProcessError: If the command cannot start (the message names the missing path, and
            the stage of a pipeline), or exits with a code not in ``ok_codes`` and ``check`` is
            True (a pipeline's message names the failing stage; ``stderr`` is its stderr);
            ``.result`` holds the whole result.
        ProcessTimeoutError: If ``timeout`` passes; it carries the partial output (and
            ``.result`` the partial result).
        DecodeError: If the output does not decode with ``encoding``/``errors`` (possible with
            ``errors="strict"``); ``.result`` holds it as bytes.

    Example:
        >>> import anyio
        >>> anyio.run(async_run, ["echo", "hello"]).stdout
        'hello\\n'
    """
    pipeline = cmd if isinstance(cmd, Pipeline) else None
    call = Invocation.from_call(
        CALLED_AS.get(),
        cmd if pipeline is None else pipeline.args[0],  # the keywords are checked once
        kwargs,
        shell=shell,
        cwd=cwd,
        env=env,
        timeout=timeout,
        text=text,
        input=input,
        kill_on_parent_death=kill_on_parent_death,
    )
    if pipeline is not None or call.input_stream is not None:  # pipes.py: N stages, or a feed
        return await run_pipeline(
            call, pipeline, capture_output=capture_output, check=check, max_output=max_output
        )
    cap = check_max_bytes(max_output, "max_output")
    piped = Stdio.PIPE if capture_output else Stdio.INHERIT
    request = call.request(
        stdin=Stdio.DEVNULL if call.input is None else Stdio.PIPE, stdout=piped, stderr=piped
    )
    terminal = call.options.pty
    check_idle(call, capture_output or terminal)
    out, err = OutputBuffer(cap), OutputBuffer(cap)
    echo = call.options.print_output
    policy = call.stop_policy()
    observer = call.observer(policy)
    seen = out  # what reads the output (idle_timeout watches it)
    relay = terminal and not capture_output
    if relay:  # the terminal's output is shown as it comes, not kept
        echo, seen = True, OutputBuffer(0)
    shown_out: Feedable = seen
    shown_err: Feedable = err
    if observer is not None and observer.verbose == "full":  # each line on stderr, tagged
        shown_out, shown_err = LineTee(shown_out, "stdout"), LineTee(err, "stderr")
    session = start_child(
        request,
        policy,
        lambda exc: ASYNC_RUN.spawn_failed(call.shown, exc),
        stdout=Echo(shown_out, relay=relay) if echo else shown_out,
        stderr=Echo(shown_err) if echo else shown_err,
        input=call.session_input,
        observer=observer,
    )
    ending = await run_to_end(session, call, ASYNC_RUN, (seen, err), observer)

    assert session.returncode is not None  # finish() reaped it, or raised
    failed: Undecodable | None = None
    try:  # (before the dropped counts are read: cutting to max_output counts the drop)
        stdout, stderr = captured_output(out, call, "stdout"), captured_output(err, call, "stderr")
    except Undecodable as exc:
        # errors="strict" (or a handler that refuses): the output stays, as bytes, on .result.
        failed, stdout, stderr = exc, out.getvalue(), err.getvalue()
    result: CompletedProcess[Any] = CompletedProcess(
        args=call.args,
        returncode=session.returncode,
        stdout=stdout,
        stderr=stderr,
        cwd=call.cwd,
        env=call.env,
        duration=session.duration,
        rusage=None if session.rusage is None else ResourceUsage.from_rusage(session.rusage),
        stdout_dropped=out.dropped,
        stderr_dropped=err.dropped,
    )
    if failed is not None:
        raise decode_failure(failed, call, result, ending != "exit") from failed.error
    refused: ProcessError | None = None
    if check and result.returncode not in call.options.ok_codes:
        refused = ASYNC_RUN.exit_failed(
            call.shown, result.returncode, result.stdout, result.stderr, (out.dropped, err.dropped)
        )
    raise_failure(ASYNC_RUN, call, result, ending, call.shown, refused)
    return result


run = make_sync(async_run, "run")


def run_simple(cmd: list[str], cwd: str | Path | None = None, **kwargs: Any) -> str:
    """Run a command and return its stdout, stripped.

    Args:
        cmd: Command and arguments as a list.
        cwd: Working directory for the command.
        **kwargs: Any other argument of :func:`run`.

    Returns:
        Stdout as a stripped string.

    Raises:
        ValidationError: If an argument is wrong (``capture_output=False`` among them).
        ProcessError: If the command fails.

    Example:
        >>> run_simple(["echo", "  hello  "])
        'hello'
    """
    if not kwargs.pop("capture_output", True):
        raise ValidationError(
            "run_simple() returns the captured stdout: capture_output cannot be false; "
            "use run() for output that is not captured",
            code="INVALID_ARGUMENT",
        )
    result = run(cmd, cwd=cwd, capture_output=True, **kwargs)
    stdout = result.stdout
    if isinstance(stdout, bytes):
        stdout = stdout.decode("utf-8", errors="replace")
    return str(stdout).strip()
