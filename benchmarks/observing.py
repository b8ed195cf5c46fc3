"""Workloads ``observing`` and ``observing-cost`` (#24): what seeing every command costs.

``observing``: ``seq N`` line by line, untagged against ``tagged=True`` (which reads stderr as
its own stream too and builds a :class:`procfound.Line` per line), sync and asyncio.

``observing-cost``: sequential ``run(["true"])`` with the logger ``procfound`` at ERROR (no
observer is built at all: the baseline), with no logging configuration (Python's default: the
end record of a success is INFO, so none is made), with ``basicConfig(level=WARNING)``, with
DEBUG records going to a NullHandler (every record built: a reference), and with an
OpenTelemetry no-op tracer provider against OpenTelemetry absent. "Absent" hides the already
imported ``opentelemetry`` modules from ``sys.modules`` for the sample, which is exactly what
procfound looks at. A last row times the observer alone (built, started and ended on a
finished session's numbers, no child) to show its cost in microseconds.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
from collections.abc import Callable, Iterator
from itertools import repeat
from typing import Any

from benchmarks.harness import Contender, Unavailable, Workload, in_loop, procfound_attr, timed


def workload(quick: bool) -> Workload:
    n = 200_000 if quick else 1_000_000
    cmd = [shutil.which("seq") or "seq", str(n)]
    last_text = str(n)

    def check(count: int, last: str) -> None:
        if count != n or last != last_text:
            raise AssertionError(f"got {count} lines ending with {last!r}, expected {n}")

    def sync(tagged: bool) -> float:
        stream = procfound_attr("stream")
        if tagged:
            procfound_attr("Line")

        def work() -> None:
            count, last = 0, ""
            for line in stream(cmd, tagged=True) if tagged else stream(cmd):
                count += 1
                last = line
            check(count, last.text if tagged else last)

        return timed(work)

    def asyncio_stream(tagged: bool) -> float:
        async_stream = procfound_attr("async_stream")
        if tagged:
            procfound_attr("Line")

        async def work() -> None:
            count, last = 0, ""
            async for line in async_stream(cmd, tagged=True) if tagged else async_stream(cmd):
                count += 1
                last = line
            check(count, last.text if tagged else last)

        return in_loop("anyio[asyncio]", work)

    def reference(tagged: bool) -> float:
        # The floor of tagging, no process: the same N lines iterated as they are, or with one
        # Line built per line exactly as the library builds them (tuple.__new__ over zip).
        line_type = procfound_attr("Line")
        lines = [str(i) for i in range(1, n + 1)]

        def work() -> None:
            count, last = 0, ""
            items = (
                map(tuple.__new__, repeat(line_type), zip(repeat("stdout"), lines, repeat(0.0)))
                if tagged
                else lines
            )
            for line in items:
                count += 1
                last = line
            check(count, last.text if tagged else last)

        return timed(work)

    return Workload(
        name="observing",
        title=f"observing: `seq {n}` line by line, untagged vs tagged=True",
        unit="lines/s",
        work=n,
        contenders=[
            Contender("procfound.stream", "sync", lambda: sync(False), "baseline"),
            Contender("procfound.stream(tagged=True)", "sync", lambda: sync(True)),
            Contender("procfound.async_stream", "asyncio", lambda: asyncio_stream(False)),
            Contender(
                "procfound.async_stream(tagged=True)", "asyncio", lambda: asyncio_stream(True)
            ),
            Contender("reference: N str, iterated (no process)", "sync", lambda: reference(False)),
            Contender(
                "reference: a Line built per str, iterated (no process)",
                "sync",
                lambda: reference(True),
            ),
        ],
        note=(
            "Goal (#24): tagged within 10 % of untagged in the same mode. The two reference rows "
            "measure, with no process, what building one Line per line costs by itself: the "
            "floor of the gap between the tagged and untagged rows."
        ),
    )


@contextlib.contextmanager
def _logger_level(level: int | None, handler: logging.Handler | None = None) -> Iterator[None]:
    log = logging.getLogger("procfound")
    saved = log.level
    if level is not None:
        log.setLevel(level)
    root = logging.getLogger()
    if handler is not None:
        root.addHandler(handler)
    try:
        yield
    finally:
        log.setLevel(saved)
        if handler is not None:
            root.removeHandler(handler)


@contextlib.contextmanager
def _tracing(provider: str) -> Iterator[None]:
    """``"noop"``: OpenTelemetry's no-op provider is the global one; ``"absent"``: the
    opentelemetry modules are hidden from ``sys.modules`` (procfound's only look at them)."""
    try:
        from opentelemetry import trace
    except ImportError as exc:
        raise Unavailable("opentelemetry-api is not installed") from exc
    if provider == "noop":
        saved = trace._TRACER_PROVIDER
        trace._TRACER_PROVIDER = trace.NoOpTracerProvider()
        try:
            yield
        finally:
            trace._TRACER_PROVIDER = saved
        return
    hidden = {name: mod for name, mod in sys.modules.items() if name.startswith("opentelemetry")}
    for name in hidden:
        del sys.modules[name]
    try:
        yield
    finally:
        sys.modules.update(hidden)


def cost_workload(quick: bool) -> Workload:
    n = 100 if quick else 400
    true = [shutil.which("true") or "/bin/true"]

    def runs(setting: Callable[[], contextlib.AbstractContextManager[Any]]) -> float:
        run = procfound_attr("run")
        run(true)  # the portal is warm before the clock starts

        def work() -> None:
            for _ in range(n):
                run(true)

        with setting():
            return timed(work)

    def observer_alone() -> float:
        from procfound.call.observe import observer_for

        class Done:
            pid, returncode, killed, started_at, duration = 1, 0, False, 0.0, 0.001

        def work() -> None:
            for _ in range(n):
                observer = observer_for(true, "group", shown=true)
                if observer is not None:
                    observer.started(Done)  # type: ignore[arg-type]
                    observer.ended(Done)  # type: ignore[arg-type]

        return timed(work)

    return Workload(
        name="observing-cost",
        title=f"observing-cost: {n} sequential run(['true']), per run",
        unit="op",
        work=n,
        contenders=[
            Contender(
                "logger procfound at ERROR (no observer built)",
                "logging",
                lambda: runs(lambda: _logger_level(logging.ERROR)),
                "baseline",
            ),
            Contender(
                "no logging configuration (Python's default)",
                "logging",
                lambda: runs(lambda: _logger_level(None)),
            ),
            Contender(
                "basicConfig-like root handler, level WARNING",
                "logging",
                lambda: runs(
                    lambda: _logger_level(logging.WARNING, logging.StreamHandler(sys.stderr))
                ),
            ),
            Contender(
                "DEBUG records to a NullHandler (every record built)",
                "logging",
                lambda: runs(lambda: _logger_level(logging.DEBUG)),
                "reference",
            ),
            Contender("OpenTelemetry absent", "tracing", lambda: runs(lambda: _tracing("absent"))),
            Contender(
                "OpenTelemetry no-op tracer provider",
                "tracing",
                lambda: runs(lambda: _tracing("noop")),
            ),
            Contender(
                "the observer alone, default logging (no child)",
                "observer",
                observer_alone,
                "reference",
            ),
        ],
        note="A success's end record is INFO: at WARNING nothing is formatted; the observer "
        "itself is still built (a failure would be logged). Ratios vs the ERROR row.",
    )
