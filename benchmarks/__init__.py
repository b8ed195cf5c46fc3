"""Side-by-side benchmarks of procfound against subprocess, asyncio, anyio and trio.

Run ``python -m benchmarks`` (or ``--quick``); see ``benchmarks/README.md``.
"""
