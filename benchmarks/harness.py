"""The benchmark core: contenders, interleaved rounds, statistics, tables and JSON."""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import importlib
import os
import random
import signal
import statistics
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import anyio

Role = Literal["baseline", "contender", "reference"]
Backend = Literal["asyncio", "trio"]
#: How a workload's result is shown: time per operation, or a throughput.
Unit = Literal["op", "MB/s", "lines/s"]

MIB: Final = 1024 * 1024


class Unavailable(Exception):
    """A contender that cannot run here (a procfound function not written yet): shown as n/a."""


def procfound_attr(name: str) -> Any:
    """Return ``procfound.<name>``, or raise `Unavailable` if procfound does not have it yet."""
    try:
        module = importlib.import_module("procfound")
    except ImportError as exc:
        raise Unavailable(f"procfound not importable: {exc}") from exc
    try:
        return getattr(module, name)
    except AttributeError as exc:
        raise Unavailable(f"procfound.{name} does not exist yet") from exc


def timed(work: Callable[[], object]) -> float:
    """Run ``work`` once and return the seconds it took."""
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


async def atimed(work: Callable[[], Awaitable[object]]) -> float:
    """Await ``work()`` once and return the seconds it took (inside an already running loop)."""
    start = time.perf_counter()
    await work()
    return time.perf_counter() - start


LoopKind = Literal["asyncio", "trio", "anyio[asyncio]", "anyio[trio]"]


def in_loop_self_timed(how: LoopKind, work: Callable[[], Awaitable[float]]) -> float:
    """Start an event loop, run ``work`` (which times itself) in it, and return its seconds.

    ``asyncio``/``trio`` use the raw ``asyncio.run``/``trio.run``; the ``anyio[...]`` forms
    use ``anyio.run`` with that backend.
    """
    if how == "asyncio":

        async def main() -> float:
            return await work()

        return asyncio.run(main())
    if how == "trio":
        import trio

        return trio.run(work)
    return anyio.run(work, backend="asyncio" if how == "anyio[asyncio]" else "trio")


def in_loop(how: LoopKind, work: Callable[[], Awaitable[object]]) -> float:
    """Start an event loop, time only ``await work()`` inside it (not loop start-up/shutdown)."""
    return in_loop_self_timed(how, lambda: atimed(work))


@dataclass
class Contender:
    """One way of doing a workload's unit of work.

    ``measure`` performs one sample (set-up outside the clock is allowed) and returns the
    measured seconds. It raises `Unavailable` for n/a; any other exception is an error.
    """

    name: str
    group: str
    measure: Callable[[], float]
    role: Role = "contender"


@dataclass
class Workload:
    """A named set of contenders doing the same ``work`` (ops, bytes or lines) per sample."""

    name: str
    title: str
    unit: Unit
    work: int
    contenders: list[Contender]
    note: str = ""


@dataclass
class Row:
    """The samples and outcome of one contender."""

    contender: Contender
    samples: list[float] = field(default_factory=list)
    status: Literal["ok", "n/a", "error"] = "ok"
    detail: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def best(self) -> float | None:
        return min(self.samples) if self.samples else None


@dataclass
class Result:
    workload: Workload
    rows: list[Row]

    @property
    def baseline(self) -> Row | None:
        return next((r for r in self.rows if r.contender.role == "baseline"), None)

    @property
    def failed(self) -> bool:
        return any(r.status == "error" for r in self.rows)


def _arm_watchdog(seconds: float) -> None:
    """Arm a hard deadline for one sample: a hung contender dumps stacks and ends the run."""
    faulthandler.dump_traceback_later(seconds, exit=True)


def run_workload(
    workload: Workload, rounds: int, warmup: int, seed: int, sample_timeout: float
) -> Result:
    """Run every contender once per round, in a different order each round; warm-up is dropped.

    Round 0 uses the declared order; later rounds are shuffled with a seeded RNG so no
    contender always runs right after the same neighbour (page cache, CPU frequency, GC).
    """
    rows = [Row(c) for c in workload.contenders]
    rng = random.Random(seed)
    for index in range(warmup + rounds):
        order = list(rows)
        if index > 0:
            rng.shuffle(order)
        for row in order:
            if row.status != "ok":
                continue
            gc.collect()
            _arm_watchdog(sample_timeout)
            try:
                seconds = row.contender.measure()
            except Unavailable as exc:
                row.status, row.detail = "n/a", str(exc)
                continue
            except Exception as exc:
                row.status, row.detail = "error", f"{type(exc).__name__}: {exc}"[:200]
                print(f"\n[{workload.name}] {row.contender.name} failed:", file=sys.stderr)
                traceback.print_exc(file=sys.stderr)
                continue
            finally:
                faulthandler.cancel_dump_traceback_later()
                leaked = reap_leftovers()
            if leaked:
                row.status, row.detail = "error", f"left {len(leaked)} children: {leaked[:3]}"
                print(f"\n[{workload.name}] {row.contender.name}: {row.detail}", file=sys.stderr)
                continue
            if index >= warmup:
                row.samples.append(seconds)
        print(".", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return Result(workload, rows)


def _seconds(value: float) -> str:
    if value >= 1.0:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.1f} ms"
    return f"{value * 1e6:.0f} µs"


def describe(workload: Workload, seconds: float) -> str:
    """Format one sample time in the workload's unit (time per op, or throughput)."""
    if workload.unit == "op":
        return _seconds(seconds / workload.work)
    rate = workload.work / seconds
    if workload.unit == "MB/s":
        return f"{rate / 1e6:,.0f} MB/s"
    return f"{rate / 1e6:.2f} M lines/s"


def markdown(result: Result) -> str:
    """One Markdown table: contender | group | median | best | ratio vs baseline (time)."""
    wl = result.workload
    base = result.baseline
    base_median = base.median if base is not None else None
    lines = [
        f"### {wl.title}",
        "",
        "| contender | group | median | best | ratio vs baseline |",
        "|---|---|---|---|---|",
    ]
    for row in result.rows:
        c = row.contender
        name = f"**{c.name}** (baseline)" if c.role == "baseline" else c.name
        median, best = row.median, row.best
        if row.status != "ok" or median is None or best is None:
            text = "n/a" if row.status == "n/a" else f"error: {row.detail}"
            lines.append(f"| {name} | {c.group} | {text} | | |")
            continue
        ratio = f"{median / base_median:.2f}" if base_median else "—"
        lines.append(
            f"| {name} | {c.group} | {describe(wl, median)} | {describe(wl, best)} | {ratio} |"
        )
    if wl.note:
        lines += ["", wl.note]
    return "\n".join(lines)


def to_json(result: Result) -> dict[str, Any]:
    wl = result.workload
    base = result.baseline
    base_median = base.median if base is not None else None
    out_rows = []
    for row in result.rows:
        median = row.median
        out_rows.append(
            {
                "name": row.contender.name,
                "group": row.contender.group,
                "role": row.contender.role,
                "status": row.status,
                "detail": row.detail,
                "samples_s": row.samples,
                "median_s": median,
                "best_s": row.best,
                "median_display": describe(wl, median) if median else None,
                "ratio": median / base_median if median and base_median else None,
            }
        )
    return {"title": wl.title, "unit": wl.unit, "work_per_sample": wl.work, "rows": out_rows}


def leftover_children() -> list[tuple[int, str]]:
    """Our direct children still present (running or zombie), found by scanning /proc."""
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces; fields follow the last ")".
        head, _, rest = stat.rpartition(")")
        fields = rest.split()
        if len(fields) > 1 and int(fields[1]) == me:
            found.append((int(entry), f"{head.partition('(')[2]} [{fields[0]}]"))
    return found


def reap_leftovers(grace: float = 0.5) -> list[str]:
    """Kill and reap children a contender left behind, after a grace for asynchronous reapers."""
    deadline = time.monotonic() + grace
    while (children := leftover_children()) and time.monotonic() < deadline:
        time.sleep(0.02)
    for pid, _ in children:
        kill_and_reap(pid)
    return [f"{pid} {what}" for pid, what in children]


def kill_and_reap(pid: int) -> None:
    """Last-resort cleanup of a child some contender left behind."""
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


# The environment as the plain dict os.environ keeps it in (CPython), as procfound passes it:
# handing posix_spawn the os.environ mapping costs tens of microseconds of Python per spawn,
# which would make the physical floor look slower than it is.
_ENVIRON: Final = getattr(os.environ, "_data", os.environ)


class RawChild:
    """A child started by bare ``os.posix_spawn``, for the physical reference rows.

    It runs in its own process group with stdin on ``/dev/null`` and stdout and stderr on fresh
    pipes (``stdout``, ``stderr``: the read ends). ``with`` closes both read ends on the way out
    and, unless `wait` has reaped the child, kills and reaps it first: no process or fd is left
    behind, also on error or cancellation. Raises `Unavailable` without ``os.posix_spawn``.
    """

    def __init__(self, argv: list[str]) -> None:
        if not hasattr(os, "posix_spawn"):
            raise Unavailable("os.posix_spawn is not available here")
        opened: list[int] = []
        try:
            out_r, out_w = os.pipe()
            opened += (out_r, out_w)
            err_r, err_w = os.pipe()
            opened += (err_r, err_w)
            self.pid = os.posix_spawn(
                argv[0],
                argv,
                _ENVIRON,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, out_w, 1),
                    (os.POSIX_SPAWN_DUP2, err_w, 2),
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                ],
                setpgroup=0,
            )
        except BaseException:
            for fd in opened:
                os.close(fd)
            raise
        os.close(out_w)
        os.close(err_w)
        self.stdout, self.stderr = out_r, err_r
        self.reaped = False

    def drain(self) -> int:
        """Read stdout and then stderr to end of file; return the number of bytes read."""
        total = 0
        for fd in (self.stdout, self.stderr):
            while chunk := os.read(fd, 65536):
                total += len(chunk)
        return total

    def wait(self) -> None:
        """Reap the child with ``os.wait4`` (blocking); raise if it did not exit with 0."""
        _, status, _ = os.wait4(self.pid, 0)
        self.reaped = True
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise AssertionError(f"raw child {self.pid} exited with {code}")

    def __enter__(self) -> RawChild:
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if not self.reaped:
                self.reaped = True
                kill_and_reap(self.pid)
        finally:
            os.close(self.stdout)
            os.close(self.stderr)


def spawn_and_wait_blocking(argv: list[str]) -> None:
    """Physical floor of one run, no event loop: spawn, ``os.wait4``, read both pipes to EOF."""
    with RawChild(argv) as child:
        child.wait()
        child.drain()


def require_pidfd() -> None:
    """Raise `Unavailable` unless this is Linux with ``os.pidfd_open``."""
    if not sys.platform.startswith("linux") or not hasattr(os, "pidfd_open"):
        raise Unavailable("needs Linux with os.pidfd_open")


async def spawn_and_await_pidfd(argv: list[str]) -> None:
    """Physical floor of one run in an event loop, no library: spawn, await the pidfd readable.

    Then read both pipes to EOF (the child has exited, so this does not block) and reap it
    with ``os.wait4``, which returns at once. Call `require_pidfd` first.
    """
    with RawChild(argv) as child:
        pidfd = os.pidfd_open(child.pid)
        try:
            await anyio.wait_readable(pidfd)
        finally:
            os.close(pidfd)
        child.drain()
        child.wait()


def bridge_backend() -> Backend:
    """The backend of procfound's portal, as procfound picks it (env ``PROCFOUND_BACKEND``)."""
    backend = os.environ.get("PROCFOUND_BACKEND", "asyncio").strip().lower() or "asyncio"
    return "trio" if backend == "trio" else "asyncio"


class LoopThread:
    """A bare event loop on a daemon thread, reached the way procfound's bridge reaches its own.

    In: the loop's own thread-safe, non-blocking call (``loop.call_soon_threadsafe`` on asyncio,
    ``TrioToken.run_sync_soon`` on trio). Out: a ``threading.Lock`` the loop releases and the
    caller waits on. No AnyIO portal, no worker, no cancel scope: the physical floor of one
    sync call through an event-loop thread (``procfound.bridge.sync.call_in_portal`` uses the same
    primitives). Use as a context manager; ``close`` stops the loop and joins its thread.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._done = threading.Lock()
        self._done.acquire()
        self._ready = threading.Event()
        self._call_soon: Callable[..., object] | None = None
        self._start_task: Callable[[Callable[[], Awaitable[object]]], object] | None = None
        self._stop: Callable[[], object] | None = None
        self._failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._main, name="bench-loop", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._call_soon is None:
            self._thread.join()
            raise RuntimeError(f"the {backend} loop thread did not start: {self._failure}")

    def _main(self) -> None:
        try:
            if self.backend == "trio":
                import trio

                async def serve() -> None:
                    async with trio.open_nursery() as nursery:
                        self._call_soon = trio.lowlevel.current_trio_token().run_sync_soon
                        self._start_task = nursery.start_soon
                        self._stop = nursery.cancel_scope.cancel
                        self._ready.set()
                        await trio.sleep_forever()

                trio.run(serve)
            else:
                loop = asyncio.new_event_loop()
                self._call_soon = loop.call_soon_threadsafe
                self._start_task = lambda fn: loop.create_task(fn())  # type: ignore[arg-type]
                self._stop = loop.stop
                self._ready.set()
                try:
                    loop.run_forever()
                finally:
                    loop.close()
        except BaseException as exc:
            self._failure.append(exc)
        finally:
            self._ready.set()

    def round_trip(self) -> None:
        """Hand a token to the loop thread and wait until it hands it back."""
        assert self._call_soon is not None
        self._call_soon(self._done.release)
        self._done.acquire()

    def call(self, work: Callable[[], Awaitable[object]]) -> None:
        """Run ``await work()`` as a task of the loop and wait for it; re-raise its error."""
        assert self._call_soon is not None
        assert self._start_task is not None
        failure: list[BaseException] = []

        async def task() -> None:
            try:
                await work()
            except BaseException as exc:
                failure.append(exc)
            finally:
                self._done.release()

        self._call_soon(self._start_task, task)
        self._done.acquire()
        if failure:
            raise failure[0]

    def close(self) -> None:
        """Stop the loop and join its thread."""
        if self._stop is not None and self._thread.is_alive():
            assert self._call_soon is not None
            self._call_soon(self._stop)
        self._thread.join(10)

    def __enter__(self) -> LoopThread:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
