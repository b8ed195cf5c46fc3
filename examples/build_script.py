"""A build script: stream each step's output live, with a deadline for each step.

Each step is a command whose output is printed line by line as the command writes it, through
:func:`procfound.stream`. ``timeout=`` is a deadline for the whole step: when it passes, the
step's whole process tree is killed (helpers it started included) and
:class:`procfound.ProcessTimeoutError` is raised after the lines read so far were shown.

The "commands" here are small Python children that print progress, so the example runs
anywhere; a real script would stream ``make``, ``cargo build`` or ``pytest`` the same way. The
last step hangs on purpose, to show the timeout.

Run: ``python examples/build_script.py``
"""

from __future__ import annotations

import os
import sys
import time

from procfound import ProcessError, ProcessTimeoutError, stream

# A step that compiles N "units", printing progress (warnings go to stderr, merged in order).
COMPILE = """
import sys, time
units = int(sys.argv[1])
for i in range(1, units + 1):
    time.sleep(0.05)
    print(f"[{i}/{units}] compiling unit_{i}.c", flush=True)
    if i == 2:
        print("warning: unit_2.c: unused variable 'x'", file=sys.stderr, flush=True)
print("linked app", flush=True)
"""

# A step that starts a helper process, reports it, and then hangs.
HANGING_TESTS = """
import subprocess, sys, time
helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(f"started test server, pid {helper.pid}", flush=True)
print("test_startup ... ok", flush=True)
time.sleep(60)  # a test that never finishes
"""


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): fall back to a signal probe
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def run_step(name: str, cmd: list[str], timeout: float) -> tuple[bool, list[str]]:
    """Run one step, printing its lines as they come; return (succeeded, lines)."""
    print(f"==> {name} (deadline {timeout:g}s)")
    started = time.monotonic()
    lines: list[str] = []
    try:
        for line in stream(cmd, timeout=timeout, stream_stderr=True):
            lines.append(line)
            print(f"    {line}")
    except ProcessTimeoutError as error:
        took = time.monotonic() - started
        print(
            f"<== {name}: timed out after {took:.1f}s ({error.code}); its process tree was killed"
        )
        return False, lines
    except ProcessError as error:
        print(f"<== {name}: failed with exit code {error.return_code}")
        return False, lines
    print(f"<== {name}: ok in {time.monotonic() - started:.1f}s, {len(lines)} lines")
    return True, lines


def main() -> int:
    compiled, _ = run_step("compile", [sys.executable, "-c", COMPILE, "5"], timeout=30)
    if not compiled:
        return 1
    tested, lines = run_step("test", [sys.executable, "-c", HANGING_TESTS], timeout=2)
    if not tested:
        print("build: the tests did not finish; the build is not released")
    # The hung step's test server was in the step's process group, so it was killed with it.
    for line in lines:
        if line.startswith("started test server, pid "):
            pid = int(line.rsplit(" ", 1)[1])
            deadline = time.monotonic() + 2
            while is_running(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            print(f"build: test server {pid} still running: {is_running(pid)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
