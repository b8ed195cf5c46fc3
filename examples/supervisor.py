"""A supervisor: keep a worker running, restarting it with backoff when it crashes.

The worker is a long-running child started with :class:`procfound.ManagedProcess`. The
supervisor relays its stdout, waits for it to report "ready", and when it crashes (exits
before that), restarts it after an exponentially growing pause, up to ``max_restarts`` times.
Once the worker is up, the supervisor runs it for a while and then stops it gracefully
(SIGTERM to its process group; SIGKILL only if it ignores that). The worker's stderr is relayed
to ours as it arrives (``stderr_relay=True``, the default), including what it says on SIGTERM.

Two runs: a worker that crashes twice and then comes up, and one that always crashes, which
the supervisor gives up on. Both use asyncio here; pass ``trio`` as the first argument to run
the same code under trio.

Run: ``python examples/supervisor.py [asyncio|trio]``
"""

from __future__ import annotations

import sys

import anyio

from procfound import ManagedProcess

# The worker crashes (exit 3) on attempts below CRASH_UNTIL, then serves until SIGTERM.
WORKER = """
import os, signal, sys, time
attempt, crash_until = int(os.environ["ATTEMPT"]), int(os.environ["CRASH_UNTIL"])
print(f"worker: starting (attempt {attempt})", flush=True)
time.sleep(0.05)
if attempt < crash_until:
    print("worker: cannot open the database, crashing", flush=True)
    sys.exit(3)
def stop(signum, frame):
    print("worker: got SIGTERM, finishing the current job", file=sys.stderr, flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("worker: ready", flush=True)
while True:
    time.sleep(0.1)
"""


async def run_once(attempt: int, crash_until: int) -> bool:
    """Run the worker until it is ready (then stop it after a while) or crashes. True if ready."""
    env = {"ATTEMPT": str(attempt), "CRASH_UNTIL": str(crash_until)}
    async with ManagedProcess([sys.executable, "-c", WORKER], env=env) as worker:
        while True:
            line = await worker.read_line_async(timeout=10)
            if not line:  # the end of its output (this worker never prints an empty line)
                break
            print(f"  | {line}")
            if line == "worker: ready":
                await anyio.sleep(0.3)  # the worker does its job...
                stopped = await worker.aterminate_gracefully(timeout=5)
                print(f"supervisor: stopped the worker (graceful: {stopped})")
                return True
        with anyio.fail_after(5):  # its stdout closes a moment before it has exited
            while worker.is_running():
                await anyio.sleep(0.01)
        print(f"supervisor: worker crashed with exit code {worker.returncode}")
        return False


async def supervise(crash_until: int, max_restarts: int = 3, backoff: float = 0.1) -> bool:
    """Start the worker, restarting it up to ``max_restarts`` times. True if it came up."""
    for attempt in range(1, max_restarts + 2):
        if await run_once(attempt, crash_until):
            return True
        if attempt > max_restarts:
            break
        delay = backoff * 2 ** (attempt - 1)
        print(f"supervisor: restart {attempt}/{max_restarts} in {delay:.1f}s")
        await anyio.sleep(delay)
    print(f"supervisor: giving up after {max_restarts} restarts")
    return False


async def main() -> None:
    print("== a worker that crashes twice, then comes up")
    assert await supervise(crash_until=3)
    print("== a worker that always crashes")
    assert not await supervise(crash_until=99, max_restarts=2)


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
