"""Scaling: how procfound's cost grows with output size and with the number of children.

``python -m benchmarks.scaling [--quick]`` prints two Markdown tables, procfound beside the
stdlib at each step, from one run:

* capture: time and peak RSS growth of capturing N bytes (1 KiB ... 1 GiB), each sample in a fresh
  interpreter so its peak RSS is its own; the output itself is one copy, so memory should track N.
* concurrency: time for N concurrent ``true`` children (1 ... 1,000) with ``procfound.async_run``
  in one task group, beside a 32-thread pool of ``subprocess.run``.

Medians of a few samples; only ratios within one run count.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Final

import anyio

KIB: Final = 1024
MIB: Final = 1024 * KIB

_CAPTURE = textwrap.dedent(
    """
    import json, resource, subprocess, sys, time
    import procfound
    how, size, head = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    cmd = [head, "-c", str(size), "/dev/zero"]
    procfound.run(["true"]) if how == "procfound" else None  # warm the portal off the clock
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if how == "procfound":
        out = procfound.run(cmd, text=False).stdout
    else:
        out = subprocess.run(cmd, capture_output=True, check=True).stdout
    elapsed = time.perf_counter() - start
    assert len(out) == size
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
    print(json.dumps({"elapsed": elapsed, "grew_kib": grew}))
    """
)


def _capture_sample(how: str, size: int) -> tuple[float, float]:
    head = shutil.which("head") or "head"
    done = subprocess.run(
        [sys.executable, "-c", _CAPTURE, how, str(size), head],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    figures = json.loads(done.stdout)
    return float(figures["elapsed"]), figures["grew_kib"] / 1024


def _size_name(size: int) -> str:
    return f"{size // MIB} MiB" if size >= MIB else f"{size // KIB} KiB"


def capture_table(sizes: list[int], rounds: int) -> str:
    lines = [
        "### capture as output grows (procfound.run vs subprocess.run, fresh interpreter each)",
        "",
        "| output | subprocess.run | procfound.run | ratio | RSS growth subprocess | "
        "RSS growth procfound |",
        "|---|---|---|---|---|---|",
    ]
    for size in sizes:
        samples: dict[str, list[tuple[float, float]]] = {"stdlib": [], "procfound": []}
        for _ in range(rounds):
            for how in samples:  # interleaved
                samples[how].append(_capture_sample(how, size))
        t_std = statistics.median(s[0] for s in samples["stdlib"])
        t_pf = statistics.median(s[0] for s in samples["procfound"])
        m_std = statistics.median(s[1] for s in samples["stdlib"])
        m_pf = statistics.median(s[1] for s in samples["procfound"])
        lines.append(
            f"| {_size_name(size)} | {t_std * 1e3:,.2f} ms | {t_pf * 1e3:,.2f} ms | "
            f"{t_pf / t_std:.2f} | {m_std:,.0f} MiB | {m_pf:,.0f} MiB |"
        )
    return "\n".join(lines)


def _stdlib_batch(n: int) -> float:
    true = shutil.which("true") or "true"
    start = time.perf_counter()
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda _: subprocess.run([true], capture_output=True), range(n)))
    return time.perf_counter() - start


def _procfound_batch(n: int) -> float:
    import procfound

    true = shutil.which("true") or "true"

    async def batch() -> float:
        start = time.perf_counter()
        async with anyio.create_task_group() as tasks:
            for _ in range(n):
                tasks.start_soon(procfound.async_run, [true])
        return time.perf_counter() - start

    return anyio.run(batch)


def concurrency_table(counts: list[int], rounds: int) -> str:
    lines = [
        "### concurrency as children grow (`true`; procfound.async_run in one task group "
        "vs a 32-thread pool of subprocess.run)",
        "",
        "| children | subprocess.run pool | procfound.async_run | ratio | per child (procfound) |",
        "|---|---|---|---|---|",
    ]
    for n in counts:
        std, pf = [], []
        for _ in range(rounds):
            std.append(_stdlib_batch(n))
            pf.append(_procfound_batch(n))
        t_std, t_pf = statistics.median(std), statistics.median(pf)
        lines.append(
            f"| {n:,} | {t_std * 1e3:,.1f} ms | {t_pf * 1e3:,.1f} ms | {t_pf / t_std:.2f} | "
            f"{t_pf / n * 1e6:,.0f} µs |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    args = parser.parse_args(argv)
    if args.quick:
        sizes, counts, rounds = [KIB, MIB, 64 * MIB], [1, 10, 100], 3
    else:
        sizes, counts, rounds = [KIB, MIB, 16 * MIB, 256 * MIB, 1024 * MIB], [1, 10, 100, 1000], 5
    print(capture_table(sizes, rounds), end="\n\n", flush=True)
    print(concurrency_table(counts, rounds), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
