"""Observing commands (#24): tagged lines, log records, verbose mode, spans, the idle timeout,
and the CLI's --tag, --timestamps and --idle-timeout. Real children throughout."""

from __future__ import annotations

import json
import logging
import os
import re
import resource
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import PY, SyncCall, python, wait_gone

import procfound
from procfound import Line, ProcessError, ProcessTimeoutError, ValidationError
from procfound.call.observe import observer_for, redacted_args

PROCFOUND_ROOT = str(Path(procfound.__file__).resolve().parent.parent)

# stdout and stderr take turns, each line flushed and followed by a pause, so the order in
# which they arrive is known; both end with a line that has no newline.
INTERLEAVED = python(
    """
    import sys, time
    for i in range(3):
        print(f"out {i}", flush=True)
        time.sleep(0.03)
        print(f"err {i}", file=sys.stderr, flush=True)
        time.sleep(0.03)
    sys.stdout.write("out tail"); sys.stdout.flush()
    time.sleep(0.03)
    sys.stderr.write("err tail"); sys.stderr.flush()
    """
)
EXPECTED = [
    ("stdout", "out 0"),
    ("stderr", "err 0"),
    ("stdout", "out 1"),
    ("stderr", "err 1"),
    ("stdout", "out 2"),
    ("stderr", "err 2"),
    ("stdout", "out tail"),
    ("stderr", "err tail"),
]


async def _collect(lines: AsyncIterator[Any], into: list[Any]) -> None:
    async for line in lines:
        into.append(line)


def _check_lines(lines: list[Any]) -> None:
    assert all(type(line) is Line for line in lines)
    assert [(line.stream, line.text) for line in lines] == EXPECTED
    times = [line.time for line in lines]
    assert times == sorted(times)
    assert 0 <= times[0] < 5


# -- tagged lines -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_stream_tagged_yields_both_streams_in_arrival_order() -> None:
    lines = [line async for line in procfound.async_stream(INTERLEAVED, tagged=True)]
    _check_lines(lines)


@pytest.mark.anyio
async def test_async_stream_batches_tagged_yields_lists_of_lines() -> None:
    batches = [b async for b in procfound.async_stream_batches(INTERLEAVED, tagged=True)]
    assert all(batch for batch in batches)
    _check_lines([line for batch in batches for line in batch])


def test_stream_tagged_from_sync_code(sync_call: SyncCall) -> None:
    _check_lines(sync_call(lambda: list(procfound.stream(INTERLEAVED, tagged=True))))
    batches = sync_call(lambda: list(procfound.stream_batches(INTERLEAVED, tagged=True)))
    _check_lines([line for batch in batches for line in batch])


def test_tagged_with_stream_stderr_or_stderr_elsewhere_is_refused() -> None:
    with pytest.raises(ValidationError, match="stream_stderr=True would merge"):
        list(procfound.stream(["true"], tagged=True, stream_stderr=True))
    with pytest.raises(ValidationError, match="stderr= cannot send it elsewhere"):
        list(procfound.stream(["true"], tagged=True, stderr=subprocess.DEVNULL))


def test_tagged_decodes_each_stream_apart_and_cuts_lines_per_stream() -> None:
    # "é" is split across two reads of stderr, with a stdout read in between; max_line cuts
    # each stream's own long line.
    code = python(
        """
        import os, time
        os.write(2, b"caf\\xc3"); time.sleep(0.05)
        os.write(1, b"x" * 50 + b"\\n"); time.sleep(0.05)
        os.write(2, b"\\xa9\\n"); os.write(1, b"short\\n")
        """
    )
    lines = list(procfound.stream(code, tagged=True, max_line=10))
    assert [(line.stream, line.text) for line in lines] == [
        ("stdout", "x" * 10),
        ("stderr", "café"),
        ("stdout", "short"),
    ]
    assert lines[0].text.dropped == 40


@pytest.mark.anyio
async def test_tagged_error_comes_after_every_line_with_the_stderr_tail() -> None:
    code = python("import sys; print('a'); print('boom', file=sys.stderr); sys.exit(3)")
    seen: list[Line] = []
    with pytest.raises(ProcessError) as caught:
        await _collect(procfound.async_stream(code, tagged=True), seen)
    assert sorted((line.stream, line.text) for line in seen) == [
        ("stderr", "boom"),
        ("stdout", "a"),
    ]
    assert caught.value.return_code == 3
    assert caught.value.stderr == "boom"


def test_tagged_break_kills_the_tree_and_timeout_holds() -> None:
    code = python("import os, time; print(os.getpid(), flush=True); time.sleep(30)")
    with procfound.stream(code, tagged=True) as lines:
        pid = int(next(lines).text)
    assert wait_gone(pid)
    with pytest.raises(ProcessTimeoutError):
        list(procfound.stream(["sleep", "30"], tagged=True, timeout=0.3))


def test_tagged_large_stderr_only_keeps_memory_flat() -> None:
    size = 64 * 1024 * 1024
    cmd = ["sh", "-c", f"yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c {size} >&2"]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    count = total = 0
    for line in procfound.stream(cmd, tagged=True):
        assert line.stream == "stderr"
        count += 1
        total += len(line.text) + 1
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    # The last line has no newline (64 MiB is no multiple of 37): it counts one "\n" too many.
    assert total == size + 1
    assert count == -(-size // 37)
    assert grown_mib < 32, f"peak memory grew by {grown_mib:.0f} MiB for 64 MiB of stderr"


# -- log records ----------------------------------------------------------------------------


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="procfound")
    return caplog


def _ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "procfound" and hasattr(r, "procfound.args")]


def test_library_adds_only_a_null_handler() -> None:
    handlers = logging.getLogger("procfound").handlers
    assert handlers
    assert all(type(h) is logging.NullHandler for h in handlers)


def test_success_logs_debug_at_start_and_info_at_end(
    records: pytest.LogCaptureFixture, sync_call: SyncCall
) -> None:
    sync_call(procfound.run, ["sh", "-c", "exit 0", "--short"])
    start, end = _ours(records)
    assert start.levelno == logging.DEBUG
    assert start.pid > 0
    assert end.levelno == logging.INFO
    fields = {k: getattr(end, k) for k in ("pid", "returncode", "timed_out", "killed_by")}
    assert fields == {"pid": start.pid, "returncode": 0, "timed_out": False, "killed_by": None}  # type: ignore[attr-defined]
    assert getattr(end, "procfound.args") == ["sh", "-c", "exit 0", "--short"]
    assert end.contain == "group"
    assert 0 < end.duration < 5
    assert re.fullmatch(r"sh -c exit 0 --short → 0 in \d+\.\d ms", end.getMessage())


@pytest.mark.anyio
async def test_failure_timeout_and_kill_log_warnings(records: pytest.LogCaptureFixture) -> None:
    await procfound.async_run(["sh", "-c", "exit 3"], check=False)
    with pytest.raises(ProcessTimeoutError):
        await procfound.async_run(["sleep", "30"], timeout=0.2)
    await procfound.async_run(["sh", "-c", "kill -9 $$"], check=False)
    ends = [r for r in _ours(records) if r.levelno > logging.DEBUG]
    assert [r.levelno for r in ends] == [logging.WARNING] * 3
    failed, timed_out, killed = ends
    assert failed.returncode == 3
    assert not failed.timed_out
    assert timed_out.timed_out
    assert timed_out.killed_by == "SIGTERM"
    assert "timed out after 0.2 s, killed by SIGTERM" in timed_out.getMessage()
    assert killed.returncode == -9
    assert killed.killed_by == "SIGKILL"


def test_streams_and_managed_processes_log_too(records: pytest.LogCaptureFixture) -> None:
    list(procfound.stream(["echo", "hi"]))
    with procfound.ManagedProcess(["sleep", "30"], stderr_relay=False):
        pass
    ends = [r for r in _ours(records) if r.levelno > logging.DEBUG]
    assert [getattr(r, "procfound.args")[0] for r in ends] == ["echo", "sleep"]
    assert ends[1].levelno == logging.WARNING
    assert ends[1].contain == "tree"


def test_records_redact_secrets(records: pytest.LogCaptureFixture) -> None:
    secrets = ["--password=hunter2", "--token", "s3cr3t", "https://me:pw123@example.com/x"]
    procfound.run(["true", *secrets], env={"API_KEY": "k3y"})
    text = " ".join(f"{r.getMessage()} {r.__dict__}" for r in _ours(records))
    for secret in ("hunter2", "s3cr3t", "pw123", "k3y"):
        assert secret not in text
    assert "--password=***" in text
    assert "https://me:***@example.com/x" in text


def test_redacted_args_hides_values_not_names() -> None:
    assert redacted_args(["x", "API_KEY=1", "Authorization: Bearer t", "--user", "me"]) == [
        "x",
        "API_KEY=***",
        "Authorization: ***",
        "--user",
        "me",
    ]


def test_nothing_is_built_when_nobody_listens() -> None:
    log = logging.getLogger("procfound")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        assert observer_for(["true"], "group") is None
    finally:
        log.setLevel(level)


# -- verbose mode -----------------------------------------------------------------------------


def _verbose_run(mode: str) -> str:
    code = (
        "import procfound\n"
        "procfound.run(['sh', '-c', 'echo hi; echo oops >&2; exit 2'], check=False)"
    )
    env = {**os.environ, "PROCFOUND_VERBOSE": mode, "PYTHONPATH": PROCFOUND_ROOT}
    done = subprocess.run([PY, "-c", code], capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 0
    assert done.stdout == ""
    return done.stderr


def test_verbose_prints_a_line_at_start_and_end() -> None:
    err = _verbose_run("1")
    assert re.search(r"procfound: \+ sh -c echo hi; echo oops >&2; exit 2  \(pid \d+\)", err)
    assert re.search(r"procfound: ✗ sh -c .* → 2 in \d+\.\d ms", err)
    assert "out│" not in err


def test_verbose_full_prints_each_line_tagged() -> None:
    err = _verbose_run("full")
    assert re.search(r"out│ hi$", err, re.M)
    assert re.search(r"err│ oops$", err, re.M)


def test_verbose_goes_to_the_current_stderr(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCFOUND_VERBOSE", "1")
    procfound.run(["true"])
    err = capsys.readouterr().err
    assert "procfound: + true" in err
    assert "procfound: ✓ true → 0" in err


# -- traces -----------------------------------------------------------------------------------


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Any:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)  # this test only
    return exporter


def _children_of(exporter: Any, parent: str) -> tuple[Any, list[Any]]:
    finished = exporter.get_finished_spans()
    (outer,) = [s for s in finished if s.name == parent]
    return outer, [s for s in finished if s.name.startswith("procfound ")]


def test_spans_are_children_of_the_callers_span_in_sync_code(
    spans: Any, sync_call: SyncCall
) -> None:
    from opentelemetry import trace

    def work() -> None:
        with trace.get_tracer("test").start_as_current_span("outer"):
            procfound.run(["echo", "--token", "abc"])
            list(procfound.stream(["true"]))
            with pytest.raises(ProcessError):
                procfound.run(["false"])

    sync_call(work)
    outer, children = _children_of(spans, "outer")
    assert [s.name for s in children] == ["procfound echo", "procfound true", "procfound false"]
    assert all(s.parent.span_id == outer.context.span_id for s in children)
    echo, _, false = children
    assert echo.attributes["process.executable.name"] == "echo"
    assert list(echo.attributes["process.command_args"]) == ["echo", "--token", "***"]
    assert echo.attributes["process.pid"] > 0
    assert echo.attributes["process.exit.code"] == 0
    assert false.status.status_code.name == "ERROR"
    assert false.attributes["process.exit.code"] == 1


@pytest.mark.anyio
async def test_spans_are_children_of_the_current_span_in_async_code(spans: Any) -> None:
    from opentelemetry import trace

    with trace.get_tracer("test").start_as_current_span("outer"):
        await procfound.async_run(["true"])
        async for _ in procfound.async_stream(["echo", "x"]):
            pass
        with pytest.raises(ProcessTimeoutError):
            await procfound.async_run(["sleep", "30"], timeout=0.2)
    outer, children = _children_of(spans, "outer")
    assert len(children) == 3
    assert all(s.parent.span_id == outer.context.span_id for s in children)
    assert children[2].status.status_code.name == "ERROR"


def test_opentelemetry_is_not_imported_when_the_application_does_not_use_it() -> None:
    code = (
        "import sys, procfound; procfound.run(['true']); "
        "print(any(m.startswith('opentelemetry') for m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": PROCFOUND_ROOT}
    done = subprocess.run([PY, "-c", code], capture_output=True, text=True, env=env, timeout=30)
    assert done.stdout.strip() == "False", done.stderr


# -- idle timeout -----------------------------------------------------------------------------

QUIET_AFTER_A_LINE = python("import time; print('started', flush=True); time.sleep(30)")
TALKING = python(
    """
    import sys, time
    for i in range(8):
        print(i, file=sys.stderr if i % 2 else sys.stdout, flush=True)
        time.sleep(0.1)
    """
)


def _check_idle(error: ProcessTimeoutError, seconds: float) -> None:
    assert f"no output for {seconds:g} s" in error.message
    assert error.context["process.idle_timeout"] == seconds


@pytest.mark.anyio
async def test_idle_timeout_stops_a_quiet_child_and_keeps_its_output() -> None:
    began = time.monotonic()
    with pytest.raises(ProcessTimeoutError) as caught:
        await procfound.async_run(QUIET_AFTER_A_LINE, idle_timeout=0.4)
    assert time.monotonic() - began < 3
    _check_idle(caught.value, 0.4)
    assert caught.value.stdout == "started"
    assert caught.value.result.stdout == "started\n"
    seen: list[str] = []
    with pytest.raises(ProcessTimeoutError) as caught:
        await _collect(procfound.async_stream(QUIET_AFTER_A_LINE, idle_timeout=0.4), seen)
    assert seen == ["started"]
    _check_idle(caught.value, 0.4)


def test_idle_timeout_from_sync_code(sync_call: SyncCall) -> None:
    with pytest.raises(ProcessTimeoutError) as caught:
        sync_call(procfound.run, QUIET_AFTER_A_LINE, idle_timeout=0.3)
    _check_idle(caught.value, 0.3)
    with pytest.raises(ProcessTimeoutError):
        sync_call(lambda: list(procfound.stream(QUIET_AFTER_A_LINE, idle_timeout=0.3)))


@pytest.mark.anyio
async def test_idle_timeout_spares_a_child_that_keeps_talking_on_either_stream() -> None:
    result = await procfound.async_run(TALKING, idle_timeout=0.5)
    assert result.stdout.split() == ["0", "2", "4", "6"]
    assert len([line async for line in procfound.async_stream(TALKING, idle_timeout=0.5)]) == 4


def test_idle_timeout_is_not_defeated_by_a_grandchild_holding_the_pipe() -> None:
    # The child waits for a silent grandchild that holds stdout: the tree is stopped.
    cmd = ["sh", "-c", "sleep 30 & echo $!; wait"]
    began = time.monotonic()
    with pytest.raises(ProcessTimeoutError) as caught:
        procfound.run(cmd, idle_timeout=0.4)
    assert time.monotonic() - began < 3
    assert wait_gone(int(caught.value.stdout or "0"))


def test_idle_timeout_on_a_managed_process() -> None:
    with procfound.ManagedProcess(QUIET_AFTER_A_LINE, idle_timeout=0.4) as proc:
        assert anyio.run(proc.read_line_async) == "started"
        with pytest.raises(ProcessTimeoutError) as caught:
            anyio.run(proc.read_line_async, 10)
        _check_idle(caught.value, 0.4)
        assert proc.returncode == -15
        assert not proc.is_running()


@pytest.mark.parametrize("value", [-1, float("nan"), "1", True])
def test_idle_timeout_is_checked_like_timeout(value: object) -> None:
    with pytest.raises(ValidationError, match="idle_timeout"):
        procfound.run(["true"], idle_timeout=value)


# -- the command line ---------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": PROCFOUND_ROOT}
    return subprocess.run(
        [PY, "-m", "procfound", *args], capture_output=True, text=True, env=env, timeout=30
    )


def test_cli_tag_and_timestamps_keep_the_live_order() -> None:
    done = _cli("run", "--tag", "--", *INTERLEAVED)
    assert done.returncode == 0
    assert done.stdout.splitlines() == [
        f"{'out' if s == 'stdout' else 'err'}│ {t}" for s, t in EXPECTED
    ]
    done = _cli("run", "--timestamps", "--", *INTERLEAVED)
    assert [re.sub(r"^\[ *\d+\.\d{3}\] ", "", x) for x in done.stdout.splitlines()] == [
        t for _, t in EXPECTED
    ]


def test_cli_json_with_tag_lists_the_lines() -> None:
    done = _cli("run", "--json", "--tag", "--", *INTERLEAVED)
    document = json.loads(done.stdout)
    assert [(x["stream"], x["text"]) for x in document["lines"]] == EXPECTED
    assert document["returncode"] == 0
    assert not document["timed_out"]


def test_cli_idle_timeout_exits_124() -> None:
    done = _cli("run", "--idle-timeout", "0.3", "--", *QUIET_AFTER_A_LINE)
    assert done.returncode == 124
    assert done.stdout == "started\n"
    assert "no output for 0.3s" in done.stderr
