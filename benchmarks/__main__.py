"""Command line of the benchmark suite: pick workloads, run them in rounds, print and save."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from benchmarks import (
    capped,
    capture,
    concurrency,
    containment,
    handshake,
    latency,
    observing,
    pipeline,
    portal,
    portal_ab,
    probes,
    streaming,
    terminal,
)
from benchmarks.harness import (
    Workload,
    markdown,
    run_workload,
    to_json,
)

WORKLOADS: Final[dict[str, Callable[[bool], Workload]]] = {
    "latency": latency.workload,
    "concurrency": concurrency.workload,
    "capture": capture.workload,
    "capped": capped.workload,
    "streaming": streaming.workload,
    "handshake": handshake.workload,
    "portal": portal.workload,
    "portal-ab": portal_ab.workload,
    "probes": probes.workload,
    "containment": containment.workload,
    "sweep": containment.sweep_workload,
    "observing": observing.workload,
    "observing-cost": observing.cost_workload,
    "pipeline": pipeline.workload,
    "pipeline-stream": pipeline.stream_workload,
    "terminal-spawn": terminal.workload,
    "terminal-capture": terminal.capture_workload,
    "terminal-talk": terminal.talk_workload,
}
# Names that stand for several workloads in --only.
GROUPS: Final[dict[str, list[str]]] = {
    "terminal": ["terminal-spawn", "terminal-capture", "terminal-talk"],
}
DEFAULT_JSON: Final = Path(__file__).parent / "results.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run procfound and its peers interleaved in rounds; print ratios. "
        "Only ratios within one run are meaningful.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, whole run < 60 s")
    parser.add_argument(
        "--only",
        metavar="NAME[,NAME]",
        help=f"workloads to run, of: {', '.join([*WORKLOADS, *GROUPS])}",
    )
    parser.add_argument("--rounds", type=int, help="measured rounds (default 5 quick, 7 full)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured rounds first (1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the round order shuffle")
    parser.add_argument(
        "--sample-timeout",
        type=float,
        help="seconds one sample may take before the run is aborted (default 20 quick, 120)",
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, metavar="PATH")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(WORKLOADS)
    names = [each for name in names for each in GROUPS.get(name, [name])]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(WORKLOADS)}")
    args.names = names
    if args.rounds is None:
        args.rounds = 5 if args.quick else 7
    if args.rounds < 1 or args.warmup < 0:
        parser.error("--rounds must be >= 1 and --warmup >= 0")
    if args.sample_timeout is None:
        args.sample_timeout = 20.0 if args.quick else 120.0
    return args


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, Any]:
    procfound_origin = "not importable"
    try:
        module = importlib.import_module("procfound")
        procfound_origin = str(getattr(module, "__file__", None) or list(module.__path__))
    except ImportError:
        pass
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "anyio": version("anyio"),
        "trio": version("trio"),
        "procfound": version("procfound"),
        "procfound_from": procfound_origin,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    meta = machine() | {
        "quick": args.quick,
        "rounds": args.rounds,
        "warmup": args.warmup,
        "seed": args.seed,
    }
    report: dict[str, Any] = {"meta": meta, "workloads": {}}
    print(
        f"# procfound benchmarks ({'quick' if args.quick else 'full'}; {args.rounds} rounds "
        f"after {args.warmup} warm-up)\n\nPython {meta['python']}, anyio {meta['anyio']}, "
        f"trio {meta['trio']}, {meta['cpus']} CPUs, {meta['platform']}. Ratio = median time / "
        "baseline median time (lower is faster); only ratios from one run count.\n",
        flush=True,
    )
    failed = False
    for index, name in enumerate(args.names):
        print(f"[{name}] ", end="", file=sys.stderr, flush=True)
        result = run_workload(
            WORKLOADS[name](args.quick),
            args.rounds,
            args.warmup,
            args.seed + index,
            args.sample_timeout,
        )
        print(markdown(result) + "\n", flush=True)
        report["workloads"][name] = to_json(result)
        failed = failed or result.failed
        # Written after every workload, so an aborted run keeps what it measured.
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    elapsed = time.perf_counter() - started
    report["meta"]["elapsed_s"] = elapsed
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"Done in {elapsed:.1f} s; JSON in {args.json}.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
