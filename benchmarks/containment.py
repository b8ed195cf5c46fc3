"""Workloads ``containment`` and ``sweep``: what contain="tree" costs.

``containment``: `true` run sequentially with each containment level and mechanism available
here, against ``subprocess.run``. ``sweep``: one environment-marker sweep of /proc (what
contain="tree" does where no cgroup is writable) with 0, 200 and 1,000 extra processes of our
uid on the machine.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

from benchmarks.harness import Contender, Unavailable, Workload, in_loop, procfound_attr, timed


@contextlib.contextmanager
def _mechanism(name: str) -> Iterator[None]:
    """Force the tree mechanism: "cgroup" (n/a where none is writable) or "marker"."""
    try:
        import procfound.engine.contain as contain
    except ImportError as exc:
        raise Unavailable(f"procfound has no containment: {exc}") from exc
    if name == "cgroup" and contain.cgroup_root() is None:
        raise Unavailable("no writable cgroup v2 with cgroup.kill here")
    saved = contain._cgroup_root
    if name == "marker":
        contain._cgroup_root = None
    try:
        yield
    finally:
        contain._cgroup_root = saved


def workload(quick: bool) -> Workload:
    cmd = [shutil.which("true") or "/bin/true"]
    n = 30 if quick else 200

    def stdlib() -> float:
        return timed(lambda: [subprocess.run(cmd, capture_output=True) for _ in range(n)])

    def sync(contain: str, mechanism: str | None = None) -> Callable[[], float]:
        def measure() -> float:
            run = procfound_attr("run")
            with _mechanism(mechanism) if mechanism else contextlib.nullcontext():
                return timed(lambda: [run(cmd, contain=contain) for _ in range(n)])

        return measure

    def in_async(how: Any, contain: str, mechanism: str) -> Callable[[], float]:
        def measure() -> float:
            async_run = procfound_attr("async_run")

            async def work() -> None:
                for _ in range(n):
                    await async_run(cmd, contain=contain)

            with _mechanism(mechanism):
                return in_loop(how, work)

        return measure

    contenders = [
        Contender("subprocess.run(capture_output=True)", "stdlib", stdlib, "baseline"),
        Contender("procfound.run, contain='group' (default)", "procfound sync", sync("group")),
        Contender(
            "procfound.run, contain='tree' by cgroup", "procfound sync", sync("tree", "cgroup")
        ),
        Contender(
            "procfound.run, contain='tree' by marker", "procfound sync", sync("tree", "marker")
        ),
    ]
    for how, group in (
        ("anyio[asyncio]", "procfound[asyncio]"),
        ("anyio[trio]", "procfound[trio]"),
    ):
        contenders += [
            Contender(
                "procfound.async_run, contain='tree' by cgroup",
                group,
                in_async(how, "tree", "cgroup"),
            ),
            Contender(
                "procfound.async_run, contain='tree' by marker",
                group,
                in_async(how, "tree", "marker"),
            ),
        ]
    return Workload(
        name="containment",
        title=f"containment: `true` run sequentially ({n} runs per sample), time per run",
        unit="op",
        work=n,
        contenders=contenders,
        note=(
            "The cgroup rows start the command through a /bin/sh trampoline (one extra exec) and "
            "make and remove a cgroup directory per call; the marker rows copy the environment "
            "and sweep /proc once at the end of each call."
        ),
    )


def sweep_workload(quick: bool) -> Workload:
    n = 10 if quick else 50

    def scan_only() -> float:
        import os

        return timed(lambda: [list(os.scandir("/proc")) for _ in range(n)])

    def sweep(extra: int) -> Callable[[], float]:
        def measure() -> float:
            try:
                from procfound.engine.contain import MarkerBox
            except ImportError as exc:
                raise Unavailable(f"procfound has no marker sweep: {exc}") from exc
            sleepers = [subprocess.Popen(["sleep", "60"]) for _ in range(extra)]
            try:
                box = MarkerBox()
                return timed(lambda: [box.members() for _ in range(n)])
            finally:
                for proc in sleepers:
                    proc.kill()
                for proc in sleepers:
                    proc.wait()

        return measure

    return Workload(
        name="sweep",
        title=f"sweep: one contain='tree' marker sweep of /proc ({n} per sample), time per sweep",
        unit="op",
        work=n,
        contenders=[
            Contender("os.scandir('/proc') alone", "reference", scan_only, "baseline"),
            Contender("marker sweep, processes already here", "procfound", sweep(0)),
            Contender("marker sweep, 200 more processes", "procfound", sweep(200)),
            Contender("marker sweep, 1,000 more processes", "procfound", sweep(1000)),
        ],
        note="Each sweep reads /proc/<pid>/environ of every process of our uid (root here: all).",
    )
