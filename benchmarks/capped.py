"""Workload ``capped``: a huge output through ``max_output``, throughput and peak memory.

Each sample runs in a fresh interpreter, so the peak RSS it reports (``ru_maxrss``) is that
contender's alone: ``subprocess.run`` must hold the whole output, ``max_output`` only its tail.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import textwrap

from benchmarks.harness import MIB, Contender, Workload

_SCRIPT = """
import json, resource, sys, time
import anyio, subprocess, procfound
how, size = sys.argv[1], int(sys.argv[2])
cmd = [{head!r}, "-c", str(size), "/dev/zero"]
cap = 1 << 20
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
if how == "stdlib":
    out = subprocess.run(cmd, capture_output=True, check=True).stdout
    kept, dropped = len(out), 0
elif how == "sync":
    r = procfound.run(cmd, text=False, max_output=cap)
    kept, dropped = len(r.stdout), r.stdout_dropped
else:
    async def main():
        return await procfound.async_run(cmd, text=False, max_output=cap)
    r = anyio.run(main, backend=how)
    kept, dropped = len(r.stdout), r.stdout_dropped
elapsed = time.perf_counter() - start
assert kept + dropped == size, (kept, dropped, size)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"elapsed": elapsed, "grew_kib": peak - base}}))
"""


def workload(quick: bool) -> Workload:
    size = (256 if quick else 1024) * MIB
    script = textwrap.dedent(_SCRIPT.format(head=shutil.which("head") or "head"))
    grew: dict[str, list[int]] = {}

    def sample(how: str) -> float:
        done = subprocess.run(
            [sys.executable, "-c", script, how, str(size)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(done.stderr.strip().splitlines()[-1:])
        figures = json.loads(done.stdout)
        grew.setdefault(how, []).append(figures["grew_kib"])
        wl.note = _memory_note(grew)
        return float(figures["elapsed"])

    wl = Workload(
        name="capped",
        title=f"capped capture: {size // MIB} MiB of stdout, procfound keeping the last MiB",
        unit="MB/s",
        work=size,
        contenders=[
            Contender(
                "subprocess.run(capture_output=True), all of it",
                "stdlib",
                lambda: sample("stdlib"),
                "baseline",
            ),
            Contender("procfound.run(max_output=1 MiB)", "procfound sync", lambda: sample("sync")),
            Contender(
                "procfound.async_run(max_output=1 MiB)",
                "procfound[asyncio]",
                lambda: sample("asyncio"),
            ),
            Contender(
                "procfound.async_run(max_output=1 MiB)", "procfound[trio]", lambda: sample("trio")
            ),
        ],
    )
    return wl


def _memory_note(grew: dict[str, list[int]]) -> str:
    names = {"stdlib": "subprocess.run", "sync": "procfound sync", "asyncio": "procfound[asyncio]"}
    names["trio"] = "procfound[trio]"
    parts = [
        f"{names[how]} {statistics.median(values) / 1024:,.0f} MiB" for how, values in grew.items()
    ]
    return "Peak RSS growth of the capturing interpreter (median): " + "; ".join(parts) + "."
