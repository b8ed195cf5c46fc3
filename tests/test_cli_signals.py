"""SIGTERM, SIGHUP and SIGQUIT end the CLI as Ctrl-C does: tree stopped, cgroup removed, 128+N.

Each scenario runs a fresh CLI in a session of its own (so only it gets the signal), whose
command starts a tree: a background sleep, a sleep that left with ``setsid`` (only containment
finds it) and the shell itself. Every process of the tree carries a marker argument unique to
the test, so that afterwards a scan of /proc proves none is left, whichever pids were seen.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from conftest import PY, pid_alive, wait_gone
from test_cli import cli_env

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

# The kill grace where the grace is not what is tested: the tree's sleeps die on SIGTERM anyway.
GRACE = "0.2"
MODES = {
    "run": ["run", "--kill-grace", GRACE],
    "wait-for": ["wait-for", "never-printed", "--timeout", "60", "--kill-grace", GRACE],
    "wait-for --keep": ["wait-for", "ready", "--keep", "--kill-grace", GRACE],
}


def cgroup2_root() -> Path | None:
    """Where cgroup2 is mounted (this machine: /sys/fs/cgroup/unified), or None."""
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if fields[2] == "cgroup2":
                return Path(fields[1])
    return None


def cgroups_of(cli_pid: int) -> list[str]:
    """The per-call cgroup directories the CLI process ``cli_pid`` made that are still there."""
    root = cgroup2_root()
    if root is None:
        return []
    prefix = f"procfound-{cli_pid}-"
    # os.walk, not rglob: other tests running at the same time make and remove their own
    # cgroups, and a directory that vanishes between its listing and its scan is not an error.
    return [
        os.path.join(parent, name)
        for parent, names, _ in os.walk(root)
        for name in names
        if name.startswith(prefix)
    ]


def marked(marker: str) -> list[int]:
    """Pids of live processes with ``marker`` in their command line."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if marker.encode() in cmdline and pid_alive(int(entry)):
            found.append(int(entry))
    return found


def wait_none_marked(marker: str, timeout: float = 5.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := marked(marker)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


@pytest.fixture
def marker(tmp_path: Path) -> Iterator[str]:
    """A ``sleep`` duration unique to this test (``60.<pid><n>``); kills what is left of it."""
    value = f"60.{os.getpid()}{abs(hash(tmp_path)) % 100000}"
    yield value
    for pid in marked(value):
        os.kill(pid, signal.SIGKILL)


def tree_script(directory: Path, marker: str, then: str = "", *, deaf: bool = False) -> list[str]:
    """sh: start a sleep and a setsid sleep, write the three pids, ``then``, sleep.

    ``deaf``: the shell records SIGINT and SIGTERM in ``got`` and lives on (until SIGKILL).
    """
    trap = "trap 'echo stop-signal >> \"$0/got\"' INT TERM; " if deaf else ""
    # A deaf shell must stay itself (an exec'd sleep would die of the signal it ignores).
    rest = "while :; do sleep 0.1; done" if deaf else f"exec sleep {marker}"
    script = (
        f"{trap}sleep {marker} & a=$!; setsid sleep {marker} & b=$!; "
        f'echo "$$ $a $b" > "$0/pids.tmp"; mv "$0/pids.tmp" "$0/pids"; {then}{rest}'
    )
    return ["sh", "-c", script, str(directory)]


def wait_for_file(path: Path, proc: subprocess.Popen[str], timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"the CLI ended first: {proc.communicate()}"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)
    return path.read_text()


def start_cli(words: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PY, "-m", "procfound", *words],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        start_new_session=True,  # the signal goes to the CLI only, never to the test's group
    )


def finish(proc: subprocess.Popen[str], timeout: float = 20) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def assert_nothing_left(cli_pid: int, marker: str, pids: Sequence[int] = ()) -> None:
    for pid in pids:
        assert wait_gone(pid, 5), f"pid {pid} of the command's tree outlived the CLI"
    assert wait_none_marked(marker) == [], "a process of the command's tree was left"
    assert cgroups_of(cli_pid) == [], "the command's cgroup was left"


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT])
def test_stop_signal_stops_the_tree_and_exits_128_plus_n(
    mode: str, signum: signal.Signals, tmp_path: Path, marker: str
) -> None:
    then = "echo ready; " if mode == "wait-for --keep" else ""
    proc = start_cli([*MODES[mode], "--", *tree_script(tmp_path, marker, then)])
    try:
        pids = [int(pid) for pid in wait_for_file(tmp_path / "pids", proc).split()]
        if mode == "wait-for --keep":
            assert proc.stdout is not None
            assert proc.stdout.readline() == "ready\n"  # relaying: the state being tested
        proc.send_signal(signum)
        _out, err = finish(proc)
    finally:
        finish(proc)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    assert f"ended by {signum.name}" in err
    assert_nothing_left(proc.pid, marker, pids)


def test_a_stop_signal_ends_keep_while_it_waits_for_the_exit(tmp_path: Path, marker: str) -> None:
    # The command closes its stdout and runs on: --keep waits for its exit, and a stop signal
    # must end that wait at once, stop the tree and exit 128+N as it does while relaying.
    tree = (
        f"echo ready; exec >/dev/null; sleep {marker} & a=$!; setsid sleep {marker} & b=$!; "
        f'echo "$$ $a $b" > "$0/pids.tmp"; mv "$0/pids.tmp" "$0/pids"; exec sleep {marker}'
    )
    proc = start_cli([*MODES["wait-for --keep"], "--", "sh", "-c", tree, str(tmp_path)])
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        pids = [int(pid) for pid in wait_for_file(tmp_path / "pids", proc).split()]
        time.sleep(0.5)  # the relay has seen the end of the output: the CLI waits for the exit
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _out, err = finish(proc)
        elapsed = time.monotonic() - started
    finally:
        finish(proc)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert "ended by SIGTERM" in err
    assert elapsed < 5, f"the exit wait held the signal for {elapsed:.1f}s"
    assert_nothing_left(proc.pid, marker, pids)


@pytest.mark.parametrize("mode", ["run", "wait-for --keep"])
def test_the_stop_policy_is_used_and_a_second_signal_does_not_cut_it_short(
    mode: str, tmp_path: Path, marker: str
) -> None:
    # The command ignores the stop signal (INT here), so only SIGKILL after the 1.5 s grace
    # ends it. A second SIGTERM during that grace must neither end the CLI early (leaving the
    # tree) nor skip the cleanup.
    words = MODES[mode][: MODES[mode].index("--kill-grace")]
    then = "echo ready; " if mode == "wait-for --keep" else ""
    script = tree_script(tmp_path, marker, then, deaf=True)
    proc = start_cli([*words, "--stop-signal", "INT", "--kill-grace", "1.5", "--", *script])
    try:
        pids = [int(pid) for pid in wait_for_file(tmp_path / "pids", proc).split()]
        if mode == "wait-for --keep":
            assert proc.stdout is not None
            assert proc.stdout.readline() == "ready\n"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.4)
        assert proc.poll() is None, "the CLI did not wait for the kill grace"
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGINT)
        _out, err = finish(proc)
        elapsed = time.monotonic() - started
    finally:
        finish(proc)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert (tmp_path / "got").read_text().split() == ["stop-signal"]  # SIGINT, as asked, once
    assert elapsed >= 1.4, "the second signal cut the kill grace short"
    assert_nothing_left(proc.pid, marker, pids)


# The signal lands at a chosen moment of a real CLI run: a profile hook (it changes nothing the
# CLI does) sends it when the named function is entered, in the main thread or, for the spawn,
# in procfound's portal thread just before `_posixsubprocess.fork_exec`. main() runs as the
# program's own (argv from sys.argv), as `python -m procfound` runs it.
AT_MOMENT = textwrap.dedent(
    """
    import _posixsubprocess, _thread, os, signal, sys, threading
    from procfound import cli

    moment, words = sys.argv[1], sys.argv[2:]
    # How threading starts a thread: start_new_thread, or start_joinable_thread on 3.13+.
    THREAD_STARTS = [
        getattr(_thread, name)
        for name in ("start_new_thread", "start_joinable_thread")
        if hasattr(_thread, name)
    ]

    def send(to_this_thread=False):
        sys.setprofile(None)
        threading.setprofile(None)
        if to_this_thread:  # as the kernel may do with a SIGTERM sent to the process
            signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
        else:
            os.kill(os.getpid(), signal.SIGTERM)

    def hook(frame, event, arg):
        if moment == "before-spawn" and event == "c_call" and arg in THREAD_STARTS:
            send()  # the first sync call starts procfound's portal thread: nothing runs yet
        elif moment == "spawning" and event == "c_call" and arg is _posixsubprocess.fork_exec:
            send()
        elif moment == "in-portal-thread" and event == "c_call":
            if arg is _posixsubprocess.fork_exec:
                send(to_this_thread=True)  # while the main thread sleeps on the call's lock
        elif moment == "in-portal-thread-loop" and event == "call":
            if frame.f_code.co_name == "wait_for_output":
                send(to_this_thread=True)  # while the main thread waits in its event loop
        elif moment == "finished" and event == "call" and frame.f_code.co_name == "print_json":
            send()  # the command has ended and been reaped: only its JSON is left to print
        elif moment == "loop-setup" and event == "call" and frame.f_code.co_name == "__init__":
            if frame.f_code.co_filename.endswith("base_events.py"):
                send()  # the CLI's own event loop (wait-for's PART wait) is being built
        elif moment == "timing-out" and event == "call" and frame.f_code.co_name == "__init__":
            if type(frame.f_locals.get("self")).__name__ == "ProcessTimeoutError":
                send()  # the wait is ending in a timeout (exit 124) as the signal lands
        elif moment == "returning" and event == "call" and frame.f_code.co_name == "uninstall":
            send()  # the command has ended and main() is putting the signal handlers back
        elif moment == "exiting" and event == "call":
            if frame.f_code.co_name == "_shutdown_at_exit":
                send()  # main() has returned: the interpreter's exit hooks run

    in_portal = moment in ("spawning", "timing-out", "in-portal-thread", "in-portal-thread-loop")
    (threading.setprofile if in_portal else sys.setprofile)(hook)
    sys.argv = ["procfound", *words]
    sys.exit(cli.main())
    """
)


# Where the command ends by itself (leaving nothing) before the signal comes.
ENDS_BY_ITSELF = ("finished", "returning", "exiting")


@pytest.mark.parametrize(
    ("moment", "mode"),
    [
        ("before-spawn", "run"),
        ("spawning", "run"),
        ("spawning", "wait-for"),
        ("in-portal-thread", "run"),
        ("in-portal-thread-loop", "wait-for"),
        ("finished", "run --json"),
        ("loop-setup", "wait-for"),
        ("timing-out", "wait-for --timeout 0.5"),
        ("returning", "run"),
        ("exiting", "run"),
    ],
)
def test_a_signal_before_the_spawn_during_it_or_after_the_end_exits_143(
    moment: str, mode: str, tmp_path: Path, marker: str
) -> None:
    words = {
        "run --json": ["run", "--json", "--kill-grace", GRACE],
        "wait-for --timeout 0.5": [
            *MODES["wait-for"][:2],
            "--timeout",
            "0.5",
            "--kill-grace",
            GRACE,
        ],
    }.get(mode) or MODES[mode]
    script = tree_script(tmp_path, marker)
    if moment in ENDS_BY_ITSELF:
        script = ["sh", "-c", f"sleep 0.{marker.split('.')[1]} & wait", str(tmp_path)]
    proc = subprocess.Popen(
        [PY, "-c", AT_MOMENT, moment, *words, "--", *script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        start_new_session=True,
    )
    out, err = finish(proc)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    if moment == "finished":
        assert out == ""  # it stopped before printing
    if moment == "exiting":
        assert err == ""  # nothing was stopped: nothing to say
    assert_nothing_left(proc.pid, marker)
