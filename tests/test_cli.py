"""The `procfound` command line, run as a real subprocess (`python -m procfound`)."""

from __future__ import annotations

import json
import os
import re
import selectors
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import IO

import pytest
from conftest import PY, python, wait_gone

import procfound

PROCFOUND_ROOT = str(Path(procfound.__file__).resolve().parent.parent)
ARGV_PROBE = python("import json, sys; print(json.dumps(sys.argv[1:]))")


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PROCFOUND_ROOT, env.get("PYTHONPATH")]))
    return env


def cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "procfound", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
    )


def test_run_echo_prints_hi_and_exits_0() -> None:
    done = cli("run", "--", "echo", "hi")
    assert done.stdout == "hi\n"
    assert done.returncode == 0, done.stderr


def test_run_passes_the_exit_code_through() -> None:
    for code in (1, 7, 42):
        done = cli("run", "--", "sh", "-c", f"echo out; echo err >&2; exit {code}")
        assert done.returncode == code, done.stderr
        # Live mode streams stderr merged into stdout, in the child's own order.
        assert done.stdout.splitlines() == ["out", "err"]


def test_run_passes_arguments_after_double_dash_unchanged() -> None:
    args = ["", "a b", "--json", "--timeout", "1", "$HOME", "ü", "back\\slash", "--"]
    done = cli("run", "--", *ARGV_PROBE, *args)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == args


def test_run_the_first_word_that_is_not_an_option_starts_the_command() -> None:
    done = cli("run", "echo", "hello", "--", "echo", "SURPRISE")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello -- echo SURPRISE\n"


def test_run_options_after_the_command_are_the_commands() -> None:
    words = ["--timeout", "nan", "--json", "--", "--env", "X", "--"]
    done = cli("run", "--timeout", "20", *ARGV_PROBE, *words)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == words


def test_run_only_the_first_double_dash_before_the_command_is_a_separator() -> None:
    done = cli("run", "--timeout", "20", "--", "echo", "a", "--", "b")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "a -- b\n"


def cli_into_closed_pipe(*args: str) -> tuple[str, str, int]:
    """Run the CLI piped into `head -c 8`; return (stdout, stderr, the CLI's exit code)."""
    command = shlex.join([PY, "-m", "procfound", *args])
    done = subprocess.run(
        ["sh", "-c", f'{{ {command}; echo "procfound-exit=$?" >&2; }} | head -c 8'],
        capture_output=True,
        text=True,
        timeout=30,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
    )
    found = re.search(r"^procfound-exit=(\d+)$", done.stderr, re.M)
    assert found, done.stderr
    return done.stdout, done.stderr[: found.start()], int(found.group(1))


def test_run_into_a_closed_pipe_ends_quietly_and_stops_the_child() -> None:
    # `yes` never ends by itself: procfound has to stop it once nobody reads any more.
    out, err, code = cli_into_closed_pipe("run", "--", "sh", "-c", 'echo "$$"; exec yes')
    assert "Traceback" not in err
    assert "BrokenPipe" not in err
    assert err == ""
    assert code == 128 + signal.SIGPIPE  # as if procfound had been killed by SIGPIPE
    assert wait_gone(int(out.split()[0]), 3.0), "the child outlived the closed pipe"


def test_run_json_into_a_closed_pipe_ends_quietly() -> None:
    _out, err, code = cli_into_closed_pipe("run", "--json", "--", "seq", "200000")
    assert err == ""
    assert code == 128 + signal.SIGPIPE


@pytest.mark.parametrize(
    ("words", "mentions"),
    [
        (["--timeout", "nan"], "nan"),
        (["--timeout", "-1"], "-1"),
        (["--timeout", "abc"], "abc"),
        (["--timeout", ""], "--timeout"),
        (["--timeout"], "--timeout"),
        (["--env", "NOEQUALS"], "NOEQUALS"),
        (["--env", "=value"], "=value"),
        (["--cwd", ""], "--cwd"),
        (["--bogus"], "--bogus"),
        (["--time", "5"], "--time"),
    ],
)
def test_run_bad_option_values_are_one_line_usage_errors(words: list[str], mentions: str) -> None:
    done = cli("run", *words, "--", "echo", "ran")
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""  # the command did not run
    assert "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert mentions in done.stderr


def test_run_env_without_equals_names_the_expected_form() -> None:
    done = cli("run", "--env", "NOEQUALS", "--", "true")
    assert done.returncode == 2
    assert "KEY=VALUE" in done.stderr
    assert "NOEQUALS" in done.stderr


def test_run_timeout_inf_means_no_limit_like_coreutils() -> None:
    done = cli("run", "--timeout", "inf", "--", "echo", "hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hi\n"


def test_run_json_prints_one_parsable_document() -> None:
    done = cli("run", "--json", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    result = json.loads(done.stdout)
    assert result["args"] == ["sh", "-c", "echo out; echo err >&2; exit 3"]
    assert result["returncode"] == 3
    assert result["stdout"] == "out\n"
    assert result["stderr"] == "err\n"
    assert isinstance(result["duration"], int | float)
    assert 0 <= result["duration"] < 20
    assert done.returncode == 3, done.stderr


def test_run_json_handles_invalid_utf8_output() -> None:
    done = cli("run", "--json", "--", *python("import sys; sys.stdout.buffer.write(b'a\\xffb')"))
    assert json.loads(done.stdout)["stdout"] == "a\ufffdb"
    assert done.returncode == 0, done.stderr


def test_run_timeout_exits_124_with_a_message_and_kills_the_tree() -> None:
    started = time.monotonic()
    done = cli(
        "run",
        "--timeout",
        "1",
        "--",
        "sh",
        "-c",
        'sleep 30 & echo "grandchild=$!"; echo "child=$$"; sleep 30',
        timeout=20,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 124, (done.stdout, done.stderr)
    assert re.search(r"time[ds]? ?out", done.stderr, re.I), done.stderr
    assert elapsed < 6.0
    pids = dict(re.findall(r"^(\w+)=(\d+)$", done.stdout, re.M))
    assert wait_gone(int(pids["child"]), 1.0)
    assert wait_gone(int(pids["grandchild"]), 1.0)


def test_run_cwd_and_env_reach_the_child(tmp_path: Path) -> None:
    probe = python(
        """
        import json, os
        print(json.dumps([os.getcwd(), os.environ["A"], os.environ["B"], "PATH" in os.environ]))
        """
    )
    done = cli("run", "--cwd", str(tmp_path), "--env", "A=1", "--env", "B=x=y", "--", *probe)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [str(tmp_path), "1", "x=y", True]


def test_run_missing_program_fails_with_a_clear_message(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-program")
    done = cli("run", "--", missing)
    assert done.returncode == 127
    assert missing in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("mode", [[], ["--json"]])
def test_run_program_that_cannot_be_executed_exits_126_like_coreutils(
    tmp_path: Path, mode: list[str]
) -> None:
    not_executable = tmp_path / "not-executable"
    not_executable.write_text("#!/bin/sh\necho ran\n")
    done = cli("run", *mode, "--", str(not_executable))
    assert done.returncode == 126, done.stderr
    assert str(not_executable) in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr


def read_line_within(stream: IO[bytes] | None, seconds: float) -> str:
    """Read one line from a pipe, failing if none arrives in time."""
    assert stream is not None
    fd = stream.fileno()
    buffer = b""
    deadline = time.monotonic() + seconds
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise AssertionError(f"no complete line within {seconds}s (got {buffer!r})")
            chunk = os.read(fd, 4096)
            if not chunk:
                raise AssertionError(f"EOF before a complete line (got {buffer!r})")
            buffer += chunk
    return buffer.decode()


def test_run_shows_output_live_and_ctrl_c_stops_the_child() -> None:
    probe = python(
        """
        import os, time
        print(f"child={os.getpid()}", flush=True)
        time.sleep(30)
        """
    )
    with subprocess.Popen(
        [PY, "-m", "procfound", "run", "--", *probe],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=cli_env(),
    ) as proc:
        try:
            line = read_line_within(proc.stdout, 20)
            child = int(line.strip().split("=")[1])
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode != 0
    assert wait_gone(child, 2.0), "Ctrl-C on the CLI left its child running"


def test_help_is_useful() -> None:
    top = cli("--help")
    assert top.returncode == 0
    assert "run" in top.stdout
    sub = cli("run", "--help")
    assert sub.returncode == 0
    for option in ("--timeout", "--cwd", "--env", "--json"):
        assert option in sub.stdout


@pytest.mark.skipif(shutil.which("procfound") is None, reason="console script not installed")
def test_console_script_runs_a_command() -> None:
    done = subprocess.run(
        ["procfound", "run", "--", "echo", "hi"],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert done.stdout == "hi\n"
    assert done.returncode == 0
