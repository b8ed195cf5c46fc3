"""The shared portal: both backends, from plain code and from inside running loops."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import python, wait_gone

import procfound
from procfound.bridge.sync import make_sync

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import asyncio, trio, anyio, procfound

def exercise():
    assert procfound.run(["echo", "hi"]).stdout == "hi\\n"
    assert list(procfound.stream(["printf", "a\\\\nb\\\\n"])) == ["a", "b"]
    with procfound.ManagedProcess(["sh", "-c", "exec sleep 30"]) as proc:
        assert proc.is_running()
    assert not proc.is_running()
    return True

async def inside():
    return exercise()

assert exercise()
assert asyncio.run(inside())
assert trio.run(inside)
print("ok", procfound.bridge.portal._backend())
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_sync_calls_work_on_either_portal_backend_from_any_context(backend: str) -> None:
    env = {**os.environ, "PROCFOUND_BACKEND": backend, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(python(SCRIPT), env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", backend]


def test_an_unknown_backend_is_a_clear_error() -> None:
    env = {**os.environ, "PROCFOUND_BACKEND": "curio", "PYTHONPATH": str(ROOT)}
    code = "import procfound; procfound.run(['true'])"
    done = subprocess.run(python(code), env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "PROCFOUND_BACKEND must be one of asyncio, trio" in done.stderr


def test_a_sync_call_from_the_portal_thread_is_a_state_error_not_a_deadlock() -> None:
    async def nested() -> object:
        # Runs in the portal thread; a sync call there would wait on its own loop.
        with pytest.raises(procfound.StateError, match="portal thread"):
            procfound.run(["true"])
        return "refused"

    assert make_sync(nested, "nested")() == "refused"


def test_sync_twins_keep_the_coroutines_signatures() -> None:
    import inspect

    pairs = [
        (procfound.run, procfound.async_run),
        (procfound.shell, procfound.async_shell),
    ]
    for twin, coroutine in pairs:
        assert inspect.signature(twin) == inspect.signature(coroutine)
        assert not inspect.iscoroutinefunction(twin)
        assert twin.__doc__
        assert "await" not in twin.__doc__
    stream_params = list(inspect.signature(procfound.stream).parameters)
    assert stream_params == list(inspect.signature(procfound.async_stream).parameters)


def test_a_forked_child_gets_its_own_portal() -> None:
    code = """
    import os, procfound
    procfound.run(["true"])
    pid = os.fork()
    if pid == 0:
        ok = procfound.run(["echo", "child"]).stdout == "child\\n"
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    print("child exit", os.waitstatus_to_exitcode(status))
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(python(code), env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "child exit 0"


def test_interpreter_exit_with_the_portal_running_does_not_hang() -> None:
    code = "import procfound; procfound.run(['true']); print('bye')"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(python(code), env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "bye\n"


STOP_WHILE_CALLING = """
import threading, time, procfound
from procfound.bridge import portal

async def noop():
    return None

outcomes = {"ok": 0, "refused": 0}
lock = threading.Lock()

def caller():
    for _ in range(2000):
        try:
            procfound.bridge.sync.call_in_portal(noop)
            kind = "ok"
        except RuntimeError:
            kind = "refused"
        with lock:
            outcomes[kind] += 1

threads = [threading.Thread(target=caller) for _ in range(4)]
for thread in threads:
    thread.start()
time.sleep(0.05)
portal.shutdown()  # calls keep arriving while it stops: each must end, none may hang
for thread in threads:
    thread.join(20)
print("alive", sum(thread.is_alive() for thread in threads), "calls", sum(outcomes.values()))
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_calls_racing_a_portal_shutdown_all_end(backend: str) -> None:
    # Jobs are handed to idle worker tasks; one handed over as the portal stops must still run
    # (and fail), or its caller would wait for ever.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROCFOUND_BACKEND": backend}
    done = subprocess.run(
        python(STOP_WHILE_CALLING), env=env, capture_output=True, text=True, timeout=50
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "alive 0 calls 8000"


SUBMITTED_AS_THE_PORTAL_STOPS = """
import anyio, procfound
from procfound.bridge import portal
from procfound.bridge.sync import _Call, _run_linked

async def noop():
    return None

async def slow():
    await anyio.sleep(30)

procfound.bridge.sync.call_in_portal(noop)  # its worker is now idle
assert len(portal._workers.idle) == 1
call = _Call()

def stop_then_submit():
    # In the portal thread: the portal starts stopping (its idle worker is being cancelled),
    # and a job is submitted in the same moment.
    portal._workers.tasks.cancel_scope.cancel()
    portal.submit(_run_linked, call, slow, (), {}, on_error=call.fail)

portal._call_soon(stop_then_submit)
released = call.done.acquire(timeout=10)
print("released", released, "error", type(call.error).__name__)
portal.shutdown()
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_job_submitted_as_the_portal_stops_still_answers(backend: str) -> None:
    # Jobs go to idle worker tasks; one submitted once stopping has begun must not be handed to
    # a worker that is being cancelled (its caller would wait for ever), but fail and say so.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROCFOUND_BACKEND": backend}
    done = subprocess.run(
        python(SUBMITTED_AS_THE_PORTAL_STOPS),
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("released True error "), done.stdout


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_the_portal_is_one_thread_shared_by_all_sync_calls() -> None:
    import threading

    procfound.run(["true"])
    before = {t.name for t in threading.enumerate()}
    for _ in range(20):
        procfound.run(["true"])
    after = [t.name for t in threading.enumerate()]
    assert after.count("procfound-portal") == 1
    assert set(after) == before


BLOCKED_AT_EXIT = """
import atexit, os, sys, threading, time

reported = threading.Event()
# Registered before procfound's own exit hook, so it runs after it: it gives the worker, woken
# by procfound's shutdown, time to report before the interpreter freezes daemon threads.
atexit.register(reported.wait, 10)

import procfound

def worker():
    try:
        if sys.argv[1] == "run":
            procfound.run(["sh", "-c", "echo $$ > " + sys.argv[2] + "; exec sleep 30"])
        else:
            for _ in procfound.stream(["sh", "-c", "echo $$ > " + sys.argv[2] + "; exec sleep 30"]):
                pass
    except BaseException as exc:  # what the blocked thread gets when the interpreter exits
        line = f"{type(exc).__module__} {type(exc).__name__} {getattr(exc, 'code', None)}\\n"
        os.write(2, line.encode())
        reported.set()

threading.Thread(target=worker, daemon=True).start()
for _ in range(500):
    try:
        if open(sys.argv[2]).read().strip():
            break
    except OSError:
        pass
    time.sleep(0.01)
print("exiting", flush=True)  # the main thread ends: the worker is still in its sync call
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("kind", ["run", "stream"])
def test_a_thread_blocked_in_a_sync_call_at_exit_gets_procfounds_error(
    backend: str, kind: str, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROCFOUND_BACKEND": backend}
    done = subprocess.run(
        [*python(BLOCKED_AT_EXIT), kind, str(pid_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "exiting\n"
    # Not a bare RuntimeError: the library's StateError, which says why.
    assert done.stderr.strip() == "procfound.errors StateError INTERPRETER_EXITING", done.stderr
    assert wait_gone(int(pid_file.read_text()))  # and the call's child was stopped


def test_ctrl_c_delivered_to_the_portal_thread_still_interrupts_the_sync_call() -> None:
    # The kernel may give a process-directed SIGINT to any thread; Python runs the handler in
    # the main thread, but only once that thread runs bytecode again.
    script = textwrap.dedent(
        """
        import signal, sys, threading, time
        import procfound
        def interrupt_portal():
            time.sleep(1.0)
            portal = next(t for t in threading.enumerate() if "procfound-portal" in t.name)
            signal.pthread_kill(portal.ident, signal.SIGINT)
        threading.Thread(target=interrupt_portal, daemon=True).start()
        started = time.monotonic()
        try:
            procfound.run(["sleep", "30"])
        except KeyboardInterrupt:
            print("interrupted after %.1f" % (time.monotonic() - started))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.startswith("interrupted after"), (done.stdout, done.stderr)
    assert float(done.stdout.split()[-1]) < 10


def test_the_bridge_and_the_engine_do_not_import_each_other() -> None:
    # The bridge sits above the call layer and the engine below it; exit order goes through
    # procfound.lifecycle, so neither needs the other (#25).
    import ast

    def imported(folder: str) -> set[str]:
        names: set[str] = set()
        for path in (ROOT / "procfound" / folder).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module:
                    names.add(node.module)
                elif isinstance(node, ast.Import):
                    names.update(alias.name for alias in node.names)
        return names

    bridge = {name for name in imported("bridge") if name.startswith("procfound.")}
    assert not {name for name in bridge if name.startswith("procfound.engine")}, bridge
    allowed = ("procfound.bridge", "procfound.call", "procfound.errors", "procfound.lifecycle")
    assert {name for name in bridge if not name.startswith(allowed)} == set(), bridge
    engine = imported("engine")
    assert not {name for name in engine if name.startswith("procfound.bridge")}, engine


def test_ctrl_c_before_a_call_started_returns_at_once_and_the_call_never_runs() -> None:
    # A Ctrl-C that lands before the job reached the portal: the caller takes the job's ticket,
    # so it need not wait to see whether the job starts after all (it never will).
    import threading
    import time

    from procfound.bridge import portal
    from procfound.bridge.sync import _Call, _run_linked, _stop_and_wait

    ran = threading.Event()

    async def job() -> None:
        ran.set()

    call = _Call()
    started = time.monotonic()
    _stop_and_wait(call)  # what call_in_portal does on a KeyboardInterrupt
    assert time.monotonic() - started < 0.5
    portal.submit(_run_linked, call, job, (), {}, on_error=call.fail)  # arrives late
    assert call.done.acquire(timeout=10)
    assert type(call.error).__name__ == "_Interrupted"
    assert not ran.is_set()


SUBMIT_AS_THE_LOOP_CLOSES = """
import sys, threading
import procfound
from procfound.bridge import portal
from procfound.bridge.sync import _Call, _run_linked, call_in_portal

async def job():
    return 1

call_in_portal(job)  # the portal runs
loop = portal._token.native_token
real_close = type(loop).close
call = _Call()

def close(self):
    # The loop has made its last pass: a job handed over now is dropped with it, unrun.
    if self is loop:
        submitter = threading.Thread(
            target=portal.submit,
            args=(_run_linked, call, job, (), {}),
            kwargs={"on_error": call.fail},
        )
        submitter.start()
        submitter.join()
    real_close(self)

type(loop).close = close
portal._call_soon(portal._workers.tasks.cancel_scope.cancel)  # the loop ends, not by shutdown()
released = call.done.acquire(timeout=5)
print("released", released, getattr(call.error, "code", call.error))
"""


def test_a_job_handed_over_after_the_loops_last_pass_fails_instead_of_hanging() -> None:
    # The loop thread ends (here its task group is cancelled; a crash does the same) between a
    # caller's hand-over and the loop's close: asyncio drops the start callback unrun, so its
    # caller waited for ever. The ended loop now fails every job that never started.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROCFOUND_BACKEND": "asyncio"}
    done = subprocess.run(
        python(SUBMIT_AS_THE_LOOP_CLOSES), env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "released True PORTAL_STOPPED", done.stdout + done.stderr
