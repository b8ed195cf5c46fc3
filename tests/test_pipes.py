"""Pipelines (`pipe`), streamed inputs, trimmed environments and `ok_codes` (issue #23).

Real programs throughout (coreutils and sh); async tests run under asyncio and trio, sync tests
from plain code and from inside a running asyncio and trio loop (``sync_call``). The autouse
``no_leaks`` fixture checks that no stage, grandchild, pipe or pidfd is left behind.
"""

from __future__ import annotations

import json
import os
import resource
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from pathlib import Path

import anyio
import pytest
from conftest import CHILDREN_OF_ME, PY, SyncCall, Ticker, pid_alive, wait_gone

from procfound import (
    CompletedProcess,
    Pipeline,
    ProcessError,
    ProcessTimeoutError,
    StageResult,
    ValidationError,
    async_run,
    async_stream,
    async_stream_batches,
    pipe,
    run,
    stream,
    stream_batches,
)


def stage(i: int, code: int = 0) -> list[str]:
    """A stage that passes its input on, tags it, says its name on stderr and exits ``code``."""
    return ["sh", "-c", f"sed 's/$/{i}/'; echo s{i} >&2; exit {code}"]


# -- pipe() ------------------------------------------------------------------------------------


def test_pipe_is_a_frozen_pipeline_of_two_or_more_commands() -> None:
    pipeline = pipe(["seq", "3"], [Path("cat")], pipe(["sort"], ["uniq"]))
    assert pipeline.commands == (("seq", "3"), ("cat",), ("sort",), ("uniq",))
    assert pipeline.args == [["seq", "3"], ["cat"], ["sort"], ["uniq"]]
    assert str(pipe(["echo", "a b"], ["cat"])) == "echo 'a b' | cat"
    assert isinstance(pipeline, Pipeline)
    assert hash(pipeline) == hash(pipeline)
    with pytest.raises(AttributeError):
        pipeline.commands = ()  # type: ignore[misc]


@pytest.mark.parametrize(
    ("commands", "words"),
    [
        ((["seq", "3"],), "two or more"),
        ((), "two or more"),
        (("seq 3", ["cat"]), "is a str"),
        ((["seq", "3"], []), "non-empty list"),
        ((["seq", "3"], ["cat", 3]), "must be a str"),
    ],
)
def test_pipe_refuses_what_is_not_a_pipeline(commands: tuple[object, ...], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        pipe(*commands)  # type: ignore[arg-type]


# -- stages, codes, stderr ---------------------------------------------------------------------


@pytest.mark.parametrize("stages", [2, 3, 5])
def test_every_stage_runs_with_its_own_stderr_and_code(sync_call: SyncCall, stages: int) -> None:
    commands = [["sh", "-c", "seq 2; echo s0 >&2"]] + [stage(i) for i in range(1, stages)]
    result = sync_call(run, pipe(*commands))
    tags = "".join(str(i) for i in range(1, stages))
    assert result.stdout == f"1{tags}\n2{tags}\n"
    assert result.returncode == 0
    assert result.args == commands
    assert result.stages == tuple(
        StageResult(command, 0, f"s{i}\n") for i, command in enumerate(commands)
    )
    assert result.stderr == "".join(f"s{i}\n" for i in range(stages))
    assert result.duration is not None
    assert result.duration > 0
    assert result.rusage is not None


def test_a_plain_result_has_no_stages() -> None:
    assert run(["true"]).stages is None
    assert CompletedProcess(["x"], 0, "", "").stages is None


@pytest.mark.anyio
async def test_the_rightmost_failure_wins_and_check_names_the_stage() -> None:
    commands = [stage(0, 3), stage(1), stage(2, 5), stage(3)]
    result = await async_run(pipe(*commands), input="x\n", check=False)
    assert [s.returncode for s in result.stages or ()] == [3, 0, 5, 0]
    assert result.returncode == 5
    with pytest.raises(ProcessError) as caught:
        await async_run(pipe(*commands), input="x\n")
    error = caught.value
    assert error.return_code == 5
    assert "stages[2]" in error.message
    assert "exit 5" in error.message
    assert error.stderr == "s2"  # that stage's own stderr
    assert error.result.stages[0].returncode == 3
    assert error.result.stdout == "x0123\n"


def test_strict_decoding_of_a_pipeline_keeps_the_bytes(sync_call: SyncCall) -> None:
    with pytest.raises(ProcessError, match="Cannot decode stdout") as caught:
        sync_call(run, pipe(["printf", "a\\377b"], ["cat"]), errors="strict")
    assert caught.value.result.stdout == b"a\xffb"
    assert caught.value.result.stages is not None


def test_check_returncode_of_a_pipeline_names_the_stage() -> None:
    result = run(pipe(["true"], ["sh", "-c", "echo bad >&2; exit 3"], ["cat"]), check=False)
    with pytest.raises(ProcessError, match=r"stages\[1\]") as caught:
        result.check_returncode()
    assert caught.value.stderr == "bad"
    assert caught.value.result is result
    run(pipe(["yes"], ["head", "-1"])).check_returncode()  # SIGPIPE upstream: no error


def test_sigpipe_upstream_is_success(sync_call: SyncCall) -> None:
    result = sync_call(run, pipe(["yes"], ["head", "-1"]))
    assert (result.stdout, result.returncode) == ("y\n", 0)
    assert result.stages[0].returncode == -13
    shell_style = sync_call(run, pipe(["sh", "-c", "exit 141"], ["cat"]))
    assert shell_style.returncode == 0
    # The last stage has no reader to lose: its SIGPIPE-like code is a failure.
    with pytest.raises(ProcessError):
        sync_call(run, pipe(["true"], ["sh", "-c", "exit 141"]))


@pytest.mark.anyio
async def test_a_stage_that_exits_early_while_the_next_still_reads() -> None:
    # The first stage is gone long before the second reads; its background grandchild (which
    # holds the pipe to the second stage) is swept when it exits, so the second gets EOF.
    started = time.monotonic()
    result = await async_run(
        pipe(["sh", "-c", "echo hi; sleep 30 &"], ["sh", "-c", "sleep 0.3; cat; echo end"])
    )
    assert result.stdout == "hi\nend\n"
    assert time.monotonic() - started < 5


def test_without_pidfds_a_stream_races_the_stages(
    sync_call: SyncCall, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kernels before 5.3: exit is polled, so there is no fd per stage for one outer epoll.
    from procfound.engine import spawn

    monkeypatch.setattr(spawn, "_open_pidfd", lambda pid: None)
    lines = sync_call(lambda: list(stream(pipe(["seq", "12"], ["grep", "1"], ["cat"]))))
    assert lines == ["1", "10", "11", "12"]
    assert sync_call(run, pipe(["yes"], ["head", "-1"])).returncode == 0


# -- stopping ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_timeout_stops_every_stage_and_a_grandchild_in_the_middle(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild"
    middle = ["sh", "-c", f"sleep 30 & echo $! > {pidfile}; cat"]
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError) as caught:
        await async_run(pipe(["sh", "-c", "echo a; sleep 30"], middle, ["cat"]), timeout=0.5)
    assert time.monotonic() - started < 4
    assert caught.value.result.stages is not None
    assert wait_gone(int(pidfile.read_text()), 2)


@pytest.mark.anyio
async def test_a_stop_takes_one_grace_for_all_stages() -> None:
    # Every stage ignores SIGTERM: each is SIGKILLed after the grace, all at the same time.
    stubborn = ["sh", "-c", "trap '' TERM; sleep 30"]
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError):
        await async_run(pipe(stubborn, stubborn, stubborn), timeout=0.3, kill_grace=1.0)
    assert time.monotonic() - started < 0.3 + 2.0  # three graces in a row would be 3.3 s


@pytest.mark.anyio
async def test_cancellation_mid_stream_and_break_stop_every_stage() -> None:
    with anyio.move_on_after(0.5):
        async for _ in async_stream(pipe(["sh", "-c", "echo a; sleep 30"], ["cat"], ["cat"])):
            pass
    async with aclosing(async_stream(pipe(["yes"], ["cat"], ["cat"]))) as lines:
        async for line in lines:
            assert line == "y"
            break
    with anyio.move_on_after(0.5):
        await async_run(pipe(["sleep", "30"], ["cat"]))


def test_break_and_timeout_in_a_sync_stream(sync_call: SyncCall) -> None:
    def first_line() -> str:
        with stream(pipe(["yes"], ["cat"])) as lines:
            return next(lines)

    assert sync_call(first_line) == "y"

    def until_timeout() -> list[str]:
        return list(stream(pipe(["sh", "-c", "echo a; sleep 30"], ["cat"]), timeout=0.5))

    with pytest.raises(ProcessTimeoutError):
        sync_call(until_timeout)


def test_ctrl_c_stops_every_stage(tmp_path: Path) -> None:
    code = f"""
        import os, signal, threading, time
        from procfound import run, pipe
        threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            run(pipe(["sh", "-c", "echo $$ > {tmp_path}/a; sleep 30"],
                     ["sh", "-c", "echo $$ > {tmp_path}/b; sleep 30 & cat"]))
        except KeyboardInterrupt:
            print("interrupted")
    """
    done = subprocess.run(
        [PY, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=20
    )
    assert done.stdout.strip() == "interrupted", done.stderr
    for name in "ab":
        assert not pid_alive(int((tmp_path / name).read_text()))


# -- programs that cannot start ------------------------------------------------------------------


@pytest.mark.parametrize("where", [0, 1, 2])
def test_a_missing_program_in_any_stage_names_it_and_starts_nothing(
    sync_call: SyncCall, tmp_path: Path, where: int
) -> None:
    marker = tmp_path / "started"
    commands = [["sh", "-c", f"touch {marker}; cat"] for _ in range(3)]
    commands[where] = ["no-such-program-23", "x"]
    with pytest.raises(ProcessError) as caught:
        sync_call(run, pipe(*commands))
    assert f"stages[{where}]" in caught.value.message
    assert "no-such-program-23" in caught.value.message
    assert not marker.exists()  # checked before any stage started


@pytest.mark.anyio
async def test_a_spawn_failure_midway_kills_the_stages_already_started(tmp_path: Path) -> None:
    # Executable, no #! line, not a binary: found by the check, refused by exec (ENOEXEC).
    bad = tmp_path / "not-a-binary"
    bad.write_bytes(b"\x7fELF not really")
    bad.chmod(bad.stat().st_mode | stat.S_IXUSR)
    pidfile = tmp_path / "first"
    with pytest.raises(ProcessError, match=r"stages\[1\]"):
        await async_run(pipe(["sh", "-c", f"echo $$ > {pidfile}; exec sleep 30"], [str(bad)]))
    # The first stage may not have written its pid yet when it was killed.
    if pidfile.exists() and pidfile.read_text().strip():
        assert wait_gone(int(pidfile.read_text()), 2)


def test_running_out_of_fds_midway_leaves_nothing_behind() -> None:
    # Each limit lets the pipeline get a little further before a pipe or a spawn fails.
    code = CHILDREN_OF_ME + textwrap.dedent("""
        import json, os, resource, time
        from procfound import ProcessError, pipe, run
        run(["true"])  # the portal's own fds first
        base = len(os.listdir("/proc/self/fd"))
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        report = []
        for extra in range(2, 24, 3):
            resource.setrlimit(resource.RLIMIT_NOFILE, (base + extra, hard))
            try:
                outcome = run(pipe(*[["cat"]] * 5), input="x").stdout
            except ProcessError as error:
                outcome = error.message.splitlines()[0]
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            time.sleep(0.05)
            report.append([outcome, len(os.listdir("/proc/self/fd")) - base, children()])
        print(json.dumps(report))
    """)
    done = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=30)
    report = json.loads(done.stdout)
    assert any("out of file descriptors" in outcome for outcome, _, _ in report), report
    assert any(outcome == "x" for outcome, _, _ in report), report
    for _, fds, children in report:
        assert (fds, children) == (0, [])


def test_stream_names_a_missing_stage(sync_call: SyncCall) -> None:
    with pytest.raises(ProcessError, match=r"stages\[1\] \(nope-23\)"):
        sync_call(lambda: list(stream(pipe(["seq", "3"], ["nope-23"]))))


# -- keywords ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("executable", "/bin/cat"),
        ("process_title", "x"),
        ("process_group", 0),
        ("start_new_session", True),
        ("foreground", True),
        ("stderr", subprocess.DEVNULL),
    ],
)
def test_per_stage_keywords_are_refused(keyword: str, value: object) -> None:
    with pytest.raises(ValidationError, match=keyword):
        run(pipe(["seq", "3"], ["cat"]), **{keyword: value})  # type: ignore[arg-type]


def test_stream_stderr_is_refused_for_a_pipeline() -> None:
    with pytest.raises(ValidationError, match="stream_stderr"):
        list(stream(pipe(["seq", "3"], ["cat"]), stream_stderr=True))


def test_whole_pipeline_keywords_apply_to_every_stage(tmp_path: Path) -> None:
    result = run(
        pipe(["sh", "-c", "pwd; echo $GREETING"], ["sh", "-c", "cat; echo $GREETING"]),
        cwd=tmp_path,
        env={"GREETING": "hi"},
        text=False,
    )
    assert result.stdout == f"{tmp_path}\nhi\nhi\n".encode()
    assert result.stages is not None
    assert result.stages[0].stderr == b""


# -- input ---------------------------------------------------------------------------------------


def chunks() -> Iterator[bytes]:
    yield b"b\n"
    yield "a\n"  # type: ignore[misc]  # str items are encoded
    yield b"c\n"


async def achunks() -> AsyncIterator[str]:
    for item in ("b\n", "a\n", "c\n"):
        await anyio.sleep(0.01)
        yield item


class Boom(Exception):
    pass


def failing() -> Iterator[bytes]:
    yield b"one\n"
    raise Boom("the source failed")


@pytest.mark.parametrize(
    "source",
    [b"b\na\nc\n", "b\na\nc\n", [b"b\n", b"a\n", b"c\n"], chunks],
    ids=["bytes", "str", "list", "generator"],
)
@pytest.mark.parametrize("piped", [False, True], ids=["command", "pipeline"])
def test_input_of_every_kind(sync_call: SyncCall, source: object, piped: bool) -> None:
    data = source() if callable(source) else source
    cmd = pipe(["cat"], ["sort"]) if piped else ["sort"]
    assert sync_call(run, cmd, input=data).stdout == "a\nb\nc\n"
    data = source() if callable(source) else source
    assert sync_call(lambda: list(stream(cmd, input=data))) == ["a", "b", "c"]


@pytest.mark.anyio
@pytest.mark.parametrize("piped", [False, True], ids=["command", "pipeline"])
async def test_async_iterable_input(piped: bool) -> None:
    cmd = pipe(["cat"], ["sort"]) if piped else ["sort"]
    assert (await async_run(cmd, input=achunks())).stdout == "a\nb\nc\n"
    lines = [line async for line in async_stream(cmd, input=achunks())]
    assert lines == ["a", "b", "c"]
    batches = [b async for b in async_stream_batches(cmd, input=(x for x in ["b\n", "a\n"]))]
    assert batches == [["a", "b"]]


@pytest.mark.anyio
async def test_a_stream_whose_async_input_waits_can_still_be_cancelled_and_times_out() -> None:
    # The next item is awaited within a read (never cancelled half-way by the read's race), but
    # the caller's cancellation and the deadline reach it: no hang, and the tree is stopped.
    async def waits_for_ever() -> AsyncIterator[bytes]:
        yield b"first\n"
        await anyio.sleep(0.2)
        yield b"second\n"
        await anyio.sleep_forever()
        yield b"never"

    lines: list[str] = []
    started = time.monotonic()
    with anyio.move_on_after(1.0):
        async for line in async_stream(pipe(["cat"], ["cat"]), input=waits_for_ever()):
            lines.append(line)
    assert lines[:1] == ["first"]
    assert time.monotonic() - started < 3
    with pytest.raises(ProcessTimeoutError):
        async for _ in async_stream(["cat"], input=waits_for_ever(), timeout=0.5):
            pass


@pytest.mark.anyio
@pytest.mark.parametrize("piped", [False, True], ids=["command", "pipeline"])
async def test_an_input_that_raises_stops_the_tree_and_propagates(piped: bool) -> None:
    cmd = pipe(["cat"], ["cat"]) if piped else ["cat"]
    with pytest.raises(Boom):
        await async_run(cmd, input=failing())

    async def afailing() -> AsyncIterator[bytes]:
        yield b"one\n"
        raise Boom("async source failed")

    with pytest.raises(Boom):
        await async_run(cmd, input=afailing())
    with pytest.raises(Boom):
        async for _ in async_stream(cmd, input=failing()):
            pass


def test_an_input_that_raises_in_a_sync_stream(sync_call: SyncCall) -> None:
    with pytest.raises(Boom):
        sync_call(lambda: list(stream(pipe(["cat"], ["cat"]), input=failing())))


@pytest.mark.anyio
async def test_a_slow_sync_iterable_does_not_block_the_event_loop() -> None:
    def slow() -> Iterator[bytes]:
        for i in range(3):
            time.sleep(0.2)
            yield f"{i}\n".encode()

    ticker = Ticker()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(ticker.run)
        result = await async_run(["cat"], input=slow())
        tasks.cancel_scope.cancel()
    assert result.stdout == "0\n1\n2\n"
    assert ticker.ticks > 20  # 0.6 s of sleeps in the iterable, the loop ran all along


def test_input_is_written_while_output_is_read_with_flat_memory() -> None:
    # 64 MiB in, 64 MiB through a pipe to the next stage, and 64 MiB read into the stream:
    # neither side waits for the other, and only a chunk at a time is held.
    block = b"x" * 65535 + b"\n"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    total = 0
    for batch in stream_batches(pipe(["cat"], ["cat"]), input=(block for _ in range(1024))):
        total += sum(len(line) + 1 for line in batch)
    assert total == 64 * 1024 * 1024
    result = run(pipe(["head", "-c", "100000000", "/dev/zero"], ["cat"], ["wc", "-c"]))
    assert result.stdout.strip() == "100000000"
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 40 * 1024, f"peak memory grew by {grown_kib} KiB"


def test_input_keeps_its_rules(sync_call: SyncCall) -> None:
    with pytest.raises(ValidationError, match="stdin and input"):
        sync_call(run, ["cat"], input=[b"x"], stdin=subprocess.DEVNULL)
    with pytest.raises(ValidationError, match="each item of input= must be bytes or str"):
        sync_call(run, ["cat"], input=[1, 2])
    # A consumer that stops reading early is not an error (as subprocess): the rest is dropped.
    endless = (b"y\n" for _ in iter(int, 1))
    assert sync_call(run, ["head", "-1"], input=endless).stdout == "y\n"


# -- environment ---------------------------------------------------------------------------------


def test_env_none_removes_a_variable(sync_call: SyncCall, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF23_GONE", "here")
    result = sync_call(run, ["sh", "-c", "echo ${PF23_GONE-unset}"], env={"PF23_GONE": None})
    assert result.stdout == "unset\n"
    assert result.env == {"PF23_GONE": None}
    lines = sync_call(
        lambda: list(stream(["sh", "-c", "echo ${PF23_GONE-unset}"], env={"PF23_GONE": None}))
    )
    assert lines == ["unset"]


def test_inherit_env_false_starts_with_exactly_env(
    sync_call: SyncCall, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PF23_SECRET", "s")
    result = sync_call(run, ["env"], inherit_env=False, env={"A": "1"})
    assert result.stdout == "A=1\n"
    assert sync_call(run, ["env"], inherit_env=False).stdout == ""
    # No PATH in env: the program is looked up in our PATH (here a directory only we have).
    tool = tmp_path / "pf23-tool"
    tool.write_text('#!/bin/sh\necho "tool ${PF23_SECRET-clean} ${B-none}"\n')
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert sync_call(run, ["pf23-tool"], inherit_env=False).stdout == "tool clean none\n"
    piped = sync_call(run, pipe(["pf23-tool"], ["cat"]), inherit_env=False, env={"B": "2"})
    assert piped.stdout == "tool clean 2\n"


def test_env_values_are_still_checked() -> None:
    with pytest.raises(ValidationError, match="or None to remove it"):
        run(["true"], env={"A": 1})  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match="inherit_env"):
        run(["true"], inherit_env="no")


# -- ok_codes ------------------------------------------------------------------------------------


def test_ok_codes_on_run_and_stream(sync_call: SyncCall) -> None:
    grep = ["grep", "nothing"]
    result = sync_call(run, grep, input="a\n", ok_codes=(0, 1))
    assert result.returncode == 1
    with pytest.raises(ProcessError):
        sync_call(run, grep, input="a\n", ok_codes=[0])
    with pytest.raises(ProcessError):  # 0 is not implied
        sync_call(run, ["true"], ok_codes={1})
    assert sync_call(lambda: list(stream(["sh", "-c", "echo a; exit 3"], ok_codes=range(4)))) == [
        "a"
    ]
    with pytest.raises(ProcessError):
        sync_call(lambda: list(stream(["sh", "-c", "exit 1"], ok_codes=(0, 2))))


@pytest.mark.anyio
async def test_ok_codes_on_pipelines() -> None:
    no_match = pipe(["seq", "3"], ["grep", "nothing"], ["cat"])
    result = await async_run(no_match, ok_codes=(0, 1))
    assert result.returncode == 1
    assert result.stages[1].returncode == 1
    with pytest.raises(ProcessError, match=r"stages\[1\]"):
        await async_run(no_match)
    # An upstream failure is not hidden behind an accepted code downstream.
    with pytest.raises(ProcessError, match=r"stages\[0\]"):
        await async_run(pipe(["sh", "-c", "exit 2"], ["grep", "x"]), ok_codes=(0, 1))
    assert [x async for x in async_stream(no_match, ok_codes=(0, 1))] == []
    with pytest.raises(ProcessError, match=r"stages\[1\]"):
        async for _ in async_stream(no_match):
            pass


@pytest.mark.parametrize("value", ["01", 1, [], [True], [300], None])
def test_ok_codes_are_checked(value: object) -> None:
    with pytest.raises(ValidationError, match=r"ok_codes|exit code"):
        run(["true"], ok_codes=value)


# -- one portal, both backends --------------------------------------------------------------------


def test_sync_stream_of_a_pipeline_under_trio_backend() -> None:
    code = """
        import os
        os.environ["PROCFOUND_BACKEND"] = "trio"
        from procfound import stream, pipe, run
        print(list(stream(pipe(["seq", "12"], ["grep", "1"]), input=None)))
        print(run(pipe(["cat"], ["wc", "-l"]), input=iter([b"a\\n", b"b\\n"])).stdout.strip())
    """
    done = subprocess.run(
        [PY, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=20
    )
    assert done.stdout.split("\n")[:2] == ["['1', '10', '11', '12']", "2"], done.stderr


def test_sys_executable_is_usable_as_a_stage() -> None:
    result = run(pipe([sys.executable, "-c", "print('x' * 3)"], ["tr", "x", "y"]))
    assert result.stdout == "yyy\n"


# -- the CLI -------------------------------------------------------------------------------------


def cli(*words: str) -> subprocess.CompletedProcess[str]:
    root = str(Path(__file__).resolve().parent.parent)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [PY, "-m", "procfound", *words],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def test_cli_runs_a_pipeline_with_pipefail_exit_codes() -> None:
    done = cli(
        "run", "--timeout", "5", "--", "seq", "100", "--pipe", "grep", "7", "--pipe", "wc", "-l"
    )
    assert (done.stdout, done.returncode) == ("19\n", 0), done.stderr
    failed = cli("run", "--", "sh", "-c", "echo e >&2; exit 3", "--pipe", "cat", "--pipe", "true")
    assert failed.returncode == 3
    assert failed.stderr == "e\n"  # every stage's stderr comes through as it is
    assert cli("run", "--", "yes", "--pipe", "head", "-1").returncode == 0  # SIGPIPE upstream
    missing = cli("run", "--", "seq", "3", "--pipe", "no-such-program-23")
    assert missing.returncode == 127
    assert "stages[1]" in missing.stderr
    timed_out = cli("run", "--timeout", "0.5", "--", "sleep", "30", "--pipe", "cat")
    assert timed_out.returncode == 124


def test_cli_json_shows_every_stage() -> None:
    done = cli("run", "--json", "--", "seq", "3", "--pipe", "sh", "-c", "cat; echo x >&2; exit 2")
    document = json.loads(done.stdout)
    assert done.returncode == 2
    assert document["args"] == [["seq", "3"], ["sh", "-c", "cat; echo x >&2; exit 2"]]
    assert document["stdout"] == "1\n2\n3\n"
    assert document["stages"] == [
        {"args": ["seq", "3"], "returncode": 0, "stderr": ""},
        {"args": ["sh", "-c", "cat; echo x >&2; exit 2"], "returncode": 2, "stderr": "x\n"},
    ]


def test_cli_literal_pipe_word_and_usage_errors() -> None:
    assert cli("run", "--", "echo", "---pipe", "----pipe").stdout == "--pipe ---pipe\n"
    assert cli("run", "--no-pipe", "--", "echo", "--pipe").stdout == "--pipe\n"
    empty = cli("run", "--", "echo", "--pipe")
    assert empty.returncode == 2
    assert "empty command" in empty.stderr
    assert cli("run", "--foreground", "--", "true", "--pipe", "true").returncode == 2


# -- observation (#24) ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_idle_timeout_covers_the_whole_pipeline() -> None:
    quiet = pipe(["sh", "-c", "echo a; sleep 30"], ["cat"])
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError, match=r"no output|idle") as caught:
        await async_run(quiet, idle_timeout=0.4)
    assert caught.value.result.stages is not None
    lines: list[str] = []

    async def collect() -> None:
        async for line in async_stream(quiet, idle_timeout=0.4):
            lines.append(line)

    with pytest.raises(ProcessTimeoutError):
        await collect()
    assert lines == ["a"]
    assert time.monotonic() - started < 5
    # Talking stages are not idle.
    talking = pipe(["sh", "-c", "for i in 1 2 3 4; do echo $i; sleep 0.2; done"], ["cat"])
    assert (await async_run(talking, idle_timeout=0.5)).stdout == "1\n2\n3\n4\n"


def test_each_stage_is_logged_as_a_command(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("DEBUG", logger="procfound"):
        run(pipe(["seq", "3"], ["sh", "-c", "cat >/dev/null; exit 0"]))
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith("seq 3 started") for m in messages), messages
    assert any(m.startswith("sh -c") and "started" in m for m in messages), messages
    assert sum("→" in m for m in messages) == 2, messages


def test_tagged_lines_are_refused_for_a_pipeline() -> None:
    with pytest.raises(ValidationError, match="tagged"):
        list(stream(pipe(["seq", "3"], ["cat"]), tagged=True))


def test_cli_pipeline_refuses_line_options() -> None:
    done = cli("run", "--tag", "--", "seq", "3", "--pipe", "cat")
    assert done.returncode == 2
    assert "--tag" in done.stderr
