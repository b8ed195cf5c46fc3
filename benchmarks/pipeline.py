"""Workload ``pipeline``: ``head -c N /dev/zero | cat | wc -c`` without a shell, as throughput.

The bytes between the stages never pass through Python (issue #23), so procfound's pipeline
should cost what the shell's costs: the rows are the shell (``sh -c`` with the same pipeline,
the baseline), procfound's ``run(pipe(...))`` from sync code and under both backends, and
plumbum's pipeline (``pip install plumbum`` for that row; it is n/a without it).

A second part measures what a *stream* of a pipeline costs: the last stage's output does come
through Python there, and each read waits on every stage (one epoll holding each stage's
readiness set). ``stream_batches(pipe(yes, head -c M))`` against ``stream_batches(sh -c 'yes |
head -c M')``, which streams the same bytes from one child.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

from benchmarks.harness import (
    MIB,
    Contender,
    Unavailable,
    Workload,
    in_loop,
    procfound_attr,
    timed,
)


def _check(text: str | bytes, size: int) -> None:
    count = int(text.strip() or 0)
    if count != size:
        raise AssertionError(f"wc -c counted {count} bytes, expected {size}")


def workload(quick: bool) -> Workload:
    size = (128 if quick else 1024) * MIB
    head = [shutil.which("head") or "head", "-c", str(size), "/dev/zero"]
    cat = [shutil.which("cat") or "cat"]
    wc = [shutil.which("wc") or "wc", "-c"]
    script = f"{' '.join(head)} | {cat[0]} | {' '.join(wc)}"

    def shell() -> float:
        return timed(
            lambda: _check(
                subprocess.run(["sh", "-c", script], capture_output=True, check=True).stdout, size
            )
        )

    def procfound_sync() -> float:
        run, pipe = procfound_attr("run"), procfound_attr("pipe")
        return timed(lambda: _check(run(pipe(head, cat, wc)).stdout, size))

    def procfound_async(how: Any) -> float:
        async_run, pipe = procfound_attr("async_run"), procfound_attr("pipe")

        async def work() -> None:
            _check((await async_run(pipe(head, cat, wc))).stdout, size)

        return in_loop(how, work)

    def plumbum() -> float:
        try:
            from plumbum import local
        except ImportError as exc:
            raise Unavailable("plumbum is not installed (pip install plumbum)") from exc
        chain = local[head[0]][head[1:]] | local[cat[0]] | local[wc[0]][wc[1:]]
        return timed(lambda: _check(chain(), size))

    return Workload(
        name="pipeline",
        title=f"pipeline: head -c {size // MIB}M /dev/zero, cat, wc -c (3 stages), throughput",
        unit="MB/s",
        work=size,
        contenders=[
            Contender("sh -c (same pipeline) via subprocess.run", "shell", shell, "baseline"),
            Contender("procfound.run(pipe(head, cat, wc))", "procfound sync", procfound_sync),
            Contender(
                "procfound.async_run(pipe(head, cat, wc))",
                "procfound[asyncio]",
                lambda: procfound_async("anyio[asyncio]"),
            ),
            Contender(
                "procfound.async_run(pipe(head, cat, wc))",
                "procfound[trio]",
                lambda: procfound_async("anyio[trio]"),
            ),
            Contender("plumbum: local[head] \\| local[cat] \\| local[wc]", "plumbum", plumbum),
        ],
        note="The bytes go from stage to stage through OS pipes; only `wc`'s count is read.",
    )


def stream_workload(quick: bool) -> Workload:
    size = (64 if quick else 256) * MIB
    yes = [shutil.which("yes") or "yes"]
    head = [shutil.which("head") or "head", "-c", str(size)]

    def count(batches: Any) -> int:
        total = 0
        for batch in batches:
            total += sum(map(len, batch)) + len(batch)
        return total

    def single() -> float:
        stream_batches = procfound_attr("stream_batches")
        script = f"{yes[0]} | {' '.join(head)}"
        return timed(lambda: _expect(count(stream_batches(["sh", "-c", script])), size))

    def piped() -> float:
        stream_batches, pipe = procfound_attr("stream_batches"), procfound_attr("pipe")
        return timed(lambda: _expect(count(stream_batches(pipe(yes, head))), size))

    return Workload(
        name="pipeline-stream",
        title=f"pipeline stream: {size // MIB} MiB of yes, head -c lines read, throughput",
        unit="MB/s",
        work=size,
        contenders=[
            Contender(
                "stream_batches(['sh', '-c', 'yes \\| head -c'])",
                "procfound sync",
                single,
                "baseline",
            ),
            Contender("stream_batches(pipe(yes, head -c))", "procfound sync", piped),
        ],
        note="Each read of a pipeline waits on one epoll holding every stage's readiness set.",
    )


def _expect(total: int, size: int) -> None:
    if total != size:
        raise AssertionError(f"streamed {total} bytes, expected {size}")
