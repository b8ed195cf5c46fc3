"""Observing commands: the log records, the verbose lines and the spans of each child.

One :class:`CommandObserver` per command watches the owner's events (the session calls
:meth:`CommandObserver.started` once the child runs and :meth:`CommandObserver.ended` once it
is reaped); it never reads a pipe itself. What it does is chosen per call, at no cost when
nothing is on:

- **Log records** on the stdlib logger ``procfound`` (the library adds only a
  :class:`logging.NullHandler`): DEBUG when a child starts; when it ends INFO on success,
  WARNING on a failure, a timeout or a kill. Structured fields go in ``extra``; each record is
  built only after ``isEnabledFor`` said someone listens.
- **Verbose lines** for people, ``PROCFOUND_VERBOSE=1`` (``full``: every output line too,
  tagged with its stream), written to whatever ``sys.stderr`` is at that moment, so pytest's
  capture sees them per test.
- **Spans**, when ``opentelemetry`` has been imported by the application and a tracer provider
  is set: one per command, with the semantic-convention process attributes. Nothing is
  imported here: a process that never imported ``opentelemetry.trace`` pays one dict lookup.

Arguments are redacted before they reach any of them (:func:`redacted_args`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final, NamedTuple, Protocol

from procfound.errors import command_display, signal_name

__all__ = [
    "CommandObserver",
    "Line",
    "LineTee",
    "caller_trace_context",
    "enter_trace_context",
    "exit_trace_context",
    "observer_for",
    "redacted_args",
    "verbose_mode",
]

logger: Final = logging.getLogger("procfound")
logger.addHandler(logging.NullHandler())  # nothing prints unless the application says so

VERBOSE_ENV: Final = "PROCFOUND_VERBOSE"
_TAGS: Final = {"stdout": "out│", "stderr": "err│"}


class Line(NamedTuple):
    """One line of a command's output, tagged with its stream (``tagged=True`` streams).

    Attributes:
        stream: ``"stdout"`` or ``"stderr"``.
        text: The line without its ending.
        time: Seconds since the child started (monotonic) when the line was read whole.

    Example:
        >>> Line("stderr", "warning: x", 0.25)
        Line(stream='stderr', text='warning: x', time=0.25)
    """

    stream: str
    text: str
    time: float


# -- redaction --------------------------------------------------------------------------------

_SECRET_NAME: Final = re.compile(
    r"pass(word|wd|phrase)?|secret|token|api[-_]?key|access[-_]?key|private[-_]?key"
    r"|credential|auth",
    re.IGNORECASE,
)
_OPTION_VALUE: Final = re.compile(r"^(-{1,2}[\w.-]+)=(.+)$", re.DOTALL)
_ASSIGNMENT: Final = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.+)$", re.DOTALL)
_URL_PASSWORD: Final = re.compile(r"(\w[\w+.-]*://[^/\s:@]*):[^/\s@]+@")
_HEADER: Final = re.compile(r"^((?:proxy-)?authorization|x-api-key|cookie)\s*:.+$", re.IGNORECASE)
_MASK: Final = "***"


def redacted_args(argv: Sequence[str]) -> list[str]:
    """The arguments as logs, verbose lines and spans show them: secrets replaced by ``***``.

    Hidden: the value of an option whose name looks secret (``--password=x``,
    ``--token x``), of a ``NAME=value`` whose name does (``API_KEY=x``), the password of a URL
    (``https://user:***@host``) and credential headers (``Authorization: ***``).

    Example:
        >>> redacted_args(["curl", "-u", "me", "--token", "abc", "https://me:pw@host/x"])
        ['curl', '-u', 'me', '--token', '***', 'https://me:***@host/x']
    """
    shown: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            shown.append(_MASK)
            hide_next = False
            continue
        if arg.startswith("-") and "=" not in arg:
            hide_next = bool(_SECRET_NAME.search(arg)) and not arg.startswith("---")
            shown.append(arg)
            continue
        match = _OPTION_VALUE.match(arg) or _ASSIGNMENT.match(arg)
        if match is not None and _SECRET_NAME.search(match.group(1)):
            shown.append(f"{match.group(1)}={_MASK}")
            continue
        header = _HEADER.match(arg)
        if header is not None:
            shown.append(f"{header.group(1)}: {_MASK}")
            continue
        shown.append(_URL_PASSWORD.sub(rf"\1:{_MASK}@", arg) if "@" in arg else arg)
    return shown


# -- the observer -----------------------------------------------------------------------------


class Session(Protocol):
    """What an observer reads of the session it watches (a ChildSession)."""

    @property
    def pid(self) -> int: ...

    @property
    def duration(self) -> float | None: ...

    returncode: int | None
    killed: bool
    started_at: float


def verbose_mode() -> str | None:
    """``PROCFOUND_VERBOSE``, read at each call: None (off), ``"1"`` or ``"full"``."""
    value = os.environ.get(VERBOSE_ENV)
    if not value or value.strip().lower() in ("0", "false", "no", "off"):
        return None
    return "full" if value.strip().lower() == "full" else "1"


def _tracer() -> Any:
    """A tracer when the application imported OpenTelemetry and set a provider, else None."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    try:
        provider = trace.get_tracer_provider()
        if type(provider).__name__ == "ProxyTracerProvider":  # nothing configured
            return None
        return provider.get_tracer("procfound")
    except Exception:  # an instrumentation problem must never stop a command
        return None


def observer_for(
    argv: Sequence[str],
    contain: str,
    *,
    shown: str | list[str] | None = None,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
) -> CommandObserver | None:
    """The observer of a command about to start, or None when nobody would see anything.

    Args:
        argv: What is executed (argv[0] is the program).
        contain: The containment level of its stop policy.
        shown: The command as the caller gave it, for messages (a shell string); ``argv``
            if None.
        cwd: Its working directory (for the start record).
        env: The caller's environment overrides (the start record shows their names only).
    """
    verbose = verbose_mode()
    tracer = _tracer()
    if verbose is None and tracer is None and not logger.isEnabledFor(logging.WARNING):
        return None
    observer = CommandObserver(argv, contain, shown, verbose, tracer)
    observer.cwd, observer.env = cwd, env
    return observer


def _duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 1.0:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


class CommandObserver:
    """The log records, verbose lines and span of one command (see the module docstring).

    The caller says how the command was stopped, if it stopped it, with :meth:`timed_out` or
    :meth:`idled`, before the session is finished.
    """

    __slots__ = (
        "_args",
        "_argv",
        "_idle",
        "_shown",
        "_span",
        "_timeout",
        "_tracer",
        "contain",
        "cwd",
        "env",
        "verbose",
    )

    def __init__(
        self,
        argv: Sequence[str],
        contain: str,
        shown: str | list[str] | None,
        verbose: str | None,
        tracer: Any,
    ) -> None:
        self._argv = argv
        self._shown = shown
        self._args: list[str] | None = None
        self.contain = contain
        self.verbose = verbose
        self._tracer = tracer
        self._span: Any = None
        self._timeout: float | None = None
        self._idle: float | None = None
        self.cwd: str | None = None
        self.env: Mapping[str, str] | None = None

    def timed_out(self, seconds: float) -> None:
        """The command's deadline passed and the caller stopped it."""
        self._timeout = seconds

    def idled(self, seconds: float) -> None:
        """The command wrote nothing for ``seconds`` and the caller stopped it."""
        self._idle = seconds

    @property
    def args(self) -> list[str]:
        """The command, redacted (computed once)."""
        if self._args is None:
            shown = self._shown
            if isinstance(shown, str):  # a shell command: redacted word by word, kept whole
                self._args = [" ".join(redacted_args(shown.split(" ")))]
            else:
                self._args = redacted_args(self._argv if shown is None else shown)
        return self._args

    def _text(self) -> str:
        return command_display(self.args)

    # -- events ---------------------------------------------------------------------------

    def started(self, session: Session) -> None:
        """The child runs (called by the session right after the spawn)."""
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s started (pid %s)",
                self._text(),
                session.pid,
                extra={
                    "procfound.args": self.args,
                    "pid": session.pid,
                    "contain": self.contain,
                    "cwd": self.cwd,
                    # Never the values: overrides are often credentials.
                    "env": None if self.env is None else dict.fromkeys(self.env, _MASK),
                },
            )
        if self.verbose is not None:
            _say(f"procfound: + {self._text()}  (pid {session.pid})")
        if self._tracer is not None:
            self._start_span(session)

    def ended(self, session: Session) -> None:
        """The child was reaped, or given up on (called once, by the session's finish)."""
        returncode = session.returncode
        stopped = self._timeout is not None or self._idle is not None
        killed_by = signal_name(-returncode) if returncode is not None and returncode < 0 else None
        failed = stopped or returncode != 0
        level = logging.WARNING if failed else logging.INFO
        outcome: str | None = None
        if logger.isEnabledFor(level):
            outcome = self._outcome(returncode, killed_by)
            logger.log(
                level,
                "%s → %s in %s",
                self._text(),
                outcome,
                _duration_text(session.duration),
                extra={
                    "procfound.args": self.args,
                    "pid": session.pid,
                    "returncode": returncode,
                    "duration": session.duration,
                    "timed_out": stopped,
                    "killed_by": killed_by,
                    "contain": self.contain,
                },
            )
        if self.verbose is not None:
            outcome = outcome or self._outcome(returncode, killed_by)
            _say(
                f"procfound: {'✗' if failed else '✓'} {self._text()} → {outcome} "
                f"in {_duration_text(session.duration)}"
            )
        if self._span is not None:
            self._end_span(session, returncode, failed)

    def _outcome(self, returncode: int | None, killed_by: str | None) -> str:
        if self._idle is not None:
            head = f"no output for {self._idle:g} s"
        elif self._timeout is not None:
            head = f"timed out after {self._timeout:g} s"
        else:
            head = ""
        if returncode is None:
            tail = "not reaped"
        elif killed_by is not None:
            tail = f"killed by {killed_by}"
        else:
            tail = str(returncode)
        return f"{head}, {tail}" if head else tail

    # -- tracing --------------------------------------------------------------------------

    def _start_span(self, session: Session) -> None:
        try:
            program = os.path.basename(self._argv[0]) if self._argv else "?"
            self._span = self._tracer.start_span(
                f"procfound {program}",
                attributes={
                    "process.executable.name": program,
                    "process.command_args": self.args,
                    "process.pid": session.pid,
                },
            )
        except Exception:  # never let a tracing problem stop the command
            self._span = None

    def _end_span(self, session: Session, returncode: int | None, failed: bool) -> None:
        span, self._span = self._span, None
        try:
            if returncode is not None:
                span.set_attribute("process.exit.code", returncode)
            if failed:
                from opentelemetry.trace import Status, StatusCode

                if self._idle is not None:
                    description = f"no output for {self._idle:g} s"
                    span.set_attribute("error.type", "timeout")
                elif self._timeout is not None:
                    description = f"timed out after {self._timeout:g} s"
                    span.set_attribute("error.type", "timeout")
                else:
                    description = self._outcome(returncode, None)
                    span.set_attribute("error.type", str(returncode))
                span.set_status(Status(StatusCode.ERROR, description))
        finally:
            span.end()


def _say(text: str) -> None:
    """One verbose line on the current ``sys.stderr`` (pytest's capture sees it)."""
    stream = sys.stderr
    if stream is None:
        return
    try:
        stream.write(text + "\n")
        stream.flush()
    except Exception:  # a closed stderr must not break the command
        pass


# -- PROCFOUND_VERBOSE=full: each output line, tagged ----------------------------------------


class _Feedable(Protocol):
    size: int

    def fill_from(self, fd: int) -> bool: ...

    def feed(self, data: bytes) -> None: ...


class LineTee:
    """A sink that reads a pipe, prints each complete line to stderr tagged with its stream,
    and feeds the bytes to ``inner`` (``PROCFOUND_VERBOSE=full``)."""

    __slots__ = ("_pending", "_started", "_tag", "inner", "size")

    def __init__(self, inner: _Feedable, stream: str, started: float | None = None) -> None:
        self.inner = inner
        self.size = 0
        self._tag = _TAGS[stream]
        self._pending = b""
        self._started = time.monotonic() if started is None else started

    def fill_from(self, fd: int) -> bool:
        try:
            data = os.read(fd, 1024 * 1024)
        except BlockingIOError:
            return False
        self.feed(data)
        return not data

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        text = self._pending + data
        if data:
            *lines, self._pending = text.split(b"\n")
        else:  # end of file: the last line, without newline
            lines, self._pending = ([text] if text else []), b""
        if lines:
            elapsed = time.monotonic() - self._started
            _say(
                "\n".join(
                    f"procfound: {elapsed:8.3f} {self._tag} "
                    + line.rstrip(b"\r").decode("utf-8", "replace")
                    for line in lines
                )
            )
        self.inner.feed(data)


# -- carrying the caller's trace context into the portal ---------------------------------------


def caller_trace_context() -> object | None:
    """The caller's OpenTelemetry context, to be the parent of spans made in the portal.

    A sync call runs its coroutine in procfound's portal thread, whose context is not the
    caller's; OpenTelemetry keeps the current span in a context variable, so it is taken here
    (in the caller's thread) and set around the job. None when OpenTelemetry is not in use.
    """
    context = sys.modules.get("opentelemetry.context")
    if context is None:
        return None
    try:
        current: object = context.get_current()
    except Exception:
        return None
    return current


def enter_trace_context(captured: object | None) -> object | None:
    """Make ``captured`` current in the portal job; returns the token for
    :func:`exit_trace_context`."""
    if captured is None:
        return None
    context = sys.modules.get("opentelemetry.context")
    if context is None:
        return None
    try:
        token: object = context.attach(captured)
    except Exception:
        return None
    return token


def exit_trace_context(token: object | None) -> None:
    """Undo :func:`enter_trace_context`."""
    if token is None:
        return
    context = sys.modules.get("opentelemetry.context")
    if context is not None:
        with contextlib.suppress(Exception):
            context.detach(token)
