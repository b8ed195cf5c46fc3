"""``procfound run --pty``: the command on a terminal of its own, its output passed through live.

The CLI runs as a real subprocess; its own stdout is a pipe, or a pseudo-terminal of a chosen
size (as when a person runs it), read here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import PY, python
from test_cli import cli_env

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith(("linux", "darwin")), reason="pseudo-terminals: Linux, macOS"
)

COLOUR = python(
    """
    import sys
    print("\\033[31mred\\033[0m" if sys.stdout.isatty() else "plain")
    """
)


def cli_bytes(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [PY, "-m", "procfound", *args],
        capture_output=True,
        timeout=timeout,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
    )


def cli_on_a_terminal(*args: str, rows: int, cols: int) -> tuple[int, bytes]:
    """Run the CLI with a terminal of ``rows`` x ``cols`` as its stdout and stderr."""
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        child = subprocess.Popen(
            [PY, "-m", "procfound", *args],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave,
            env=cli_env(),
        )
        os.close(slave)
        slave = -1
        output = b""
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every holder of the terminal has closed it
                break
            if not data:
                break
            output += data
        return child.wait(timeout=30), output
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


def test_the_command_sees_a_terminal() -> None:
    done = cli_bytes("run", "--pty", "--", *python("import sys; print(sys.stdout.isatty())"))
    assert (done.returncode, done.stdout) == (0, b"True\r\n"), done.stderr
    assert cli_bytes("run", "--", "tty").stdout == b"not a tty\n"
    name = cli_bytes("run", "--pty", "--", "tty").stdout
    assert name.startswith(b"/dev/"), name


def test_the_size_is_ours_when_our_stdout_is_a_terminal() -> None:
    assert cli_bytes("run", "--pty", "--", "stty", "size").stdout == b"24 80\r\n"
    code, output = cli_on_a_terminal("run", "--pty", "--", "stty", "size", rows=33, cols=101)
    assert code == 0
    assert output.replace(b"\r", b"") == b"33 101\n"


def test_colours_and_bytes_pass_through() -> None:
    assert cli_bytes("run", "--", *COLOUR).stdout == b"plain\n"
    assert cli_bytes("run", "--pty", "--", *COLOUR).stdout == b"\x1b[31mred\x1b[0m\r\n"
    raw = cli_bytes("run", "--pty", "--", "printf", "\\377\\000x")
    assert raw.stdout == b"\xff\x00x"


def test_the_output_is_shown_live() -> None:
    code = "import time; print('first', flush=True); time.sleep(30)"
    started = time.monotonic()
    child = subprocess.Popen(
        [PY, "-m", "procfound", "run", "--pty", "--timeout", "4", "--", *python(code)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
    )
    try:
        assert child.stdout is not None
        first = child.stdout.read(7)
        seen = time.monotonic() - started
        assert first == b"first\r\n"
        assert child.wait(timeout=30) == 124  # the timeout, as timeout(1)
        assert seen < time.monotonic() - started - 1, "the line came only at the end"
    finally:
        child.kill()
        child.wait()
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()


def test_exit_code_and_json() -> None:
    done = cli_bytes("run", "--pty", "--", "sh", "-c", "echo out; echo err >&2; exit 5")
    assert (done.returncode, done.stdout) == (5, b"out\r\nerr\r\n")
    as_json = cli_bytes("run", "--pty", "--json", "--", "sh", "-c", "echo out; echo err >&2")
    document = json.loads(as_json.stdout)
    assert (document["stdout"], document["stderr"]) == ("out\nerr\n", "")


@pytest.mark.parametrize(
    "args",
    [
        ["--tag", "--", "true"],
        ["--timestamps", "--", "true"],
        ["--foreground", "--", "true"],
        ["--", "echo", "a", "--pipe", "cat"],
    ],
)
def test_what_cannot_apply_to_a_terminal_is_refused(args: list[str]) -> None:
    done = cli_bytes("run", "--pty", *args)
    assert done.returncode == 2
    assert done.stderr.startswith(b"procfound run: --pty ")
