"""Input a user will pass (EDGES.md): every bad value ends in procfound's own error, readable.

Never a raw ValueError/OverflowError/UnicodeError, never megabytes of message; a missing
interpreter, a missing program under ``kill_on_parent_death`` and an env PATH override are
reported as what they are. Every entry point is attacked: run/async_run, stream/async_stream
and ManagedProcess, sync calls from plain code and from inside asyncio and trio loops.
"""

from __future__ import annotations

import decimal
import fractions
import inspect
import math
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import PY, SyncCall, python

import procfound.engine.spawn
from procfound import (
    ManagedProcess,
    ProcessError,
    ProcessTimeoutError,
    ValidationError,
    async_run,
    async_stream,
    run,
    shell,
    stream,
)

LINUX = sys.platform.startswith("linux")
needs_pdeathsig = pytest.mark.skipif(
    not LINUX or shutil.which("setpriv") is None, reason="kill_on_parent_death: Linux + setpriv"
)
# Far above anything readable, far below the megabytes the E2BIG case used to produce.
MESSAGE_BOUND = 2000


def _stream_all(cmd: Any, **kwargs: Any) -> list[str]:
    return list(stream(cmd, **kwargs))


async def _astream_all(cmd: Any, **kwargs: Any) -> list[str]:
    return [line async for line in async_stream(cmd, **kwargs)]


def _launch(cmd: Any, **kwargs: Any) -> None:
    proc = ManagedProcess(cmd, **kwargs)
    try:
        proc.launch()
    finally:
        proc.cleanup()


def _printable(message: str) -> None:
    message.encode("utf-8")  # raises on a lone surrogate: print() and logging would too
    assert len(message) < MESSAGE_BOUND, f"{len(message)} characters"


# Every sync entry point that takes a command, as (name, call).
SYNC_ENTRIES: list[tuple[str, Callable[..., Any]]] = [
    ("run", run),
    ("stream", _stream_all),
    ("ManagedProcess", _launch),
]
SYNC_IDS = [name for name, _ in SYNC_ENTRIES]
SYNC_CALLS = [call for _, call in SYNC_ENTRIES]


# --------------------------------------------------------------------------------------------
# Bad commands: ValidationError before anything runs
# --------------------------------------------------------------------------------------------

BAD_COMMANDS = {
    "empty program": [""],
    "empty program with args": ["", "x"],
    "None": [None],
    "int": [1],
    "bytes": [b"true"],
    "NUL": ["echo", "a\0b"],
    "unencodable surrogate": ["echo", "\ud800"],
}


@pytest.mark.parametrize("entry", SYNC_CALLS, ids=SYNC_IDS)
@pytest.mark.parametrize("cmd", BAD_COMMANDS.values(), ids=BAD_COMMANDS.keys())
def test_bad_command_is_a_validation_error(
    sync_call: SyncCall, entry: Callable[..., Any], cmd: list[Any]
) -> None:
    with pytest.raises(ValidationError) as info:
        sync_call(entry, cmd)
    _printable(str(info.value))


@pytest.mark.anyio
@pytest.mark.parametrize("cmd", BAD_COMMANDS.values(), ids=BAD_COMMANDS.keys())
async def test_async_bad_command_is_a_validation_error(cmd: list[Any]) -> None:
    with pytest.raises(ValidationError):
        await async_run(cmd)
    with pytest.raises(ValidationError):
        await _astream_all(cmd)
    with pytest.raises(ValidationError):
        await ManagedProcess(cmd).alaunch()


def test_empty_program_message_says_what_is_wrong() -> None:
    with pytest.raises(ValidationError, match="empty") as info:
        run([""])
    assert info.value.code == "INVALID_ARGUMENT"


def test_empty_arguments_after_the_program_are_passed_on(sync_call: SyncCall) -> None:
    result = sync_call(run, [*python("import sys; print(sys.argv[1:])"), "", "x"])
    assert result.stdout == "['', 'x']\n"


def test_surrogate_escaped_argument_reaches_the_child_as_its_byte(sync_call: SyncCall) -> None:
    # "\udc80" is how Python spells the undecodable byte 0x80 (os.fsdecode): valid on POSIX.
    code = "import sys, os; sys.stdout.buffer.write(os.fsencode(sys.argv[1]))"
    result = sync_call(run, [PY, "-c", code, "a\udc80"], text=False)
    assert result.stdout == b"a\x80"


# --------------------------------------------------------------------------------------------
# cwd
# --------------------------------------------------------------------------------------------

BAD_CWDS = {
    "NUL str": "/tmp\0x",
    "NUL Path": Path("/tmp\0x"),
    "NUL bytes": b"/tmp\0x",
    "bytes": b"/tmp",
    "empty": "",
    "unencodable surrogate": "/tmp/\ud800",
    "unencodable surrogate Path": Path("/tmp/\ud800"),
    "int": 3,
}


@pytest.mark.parametrize("entry", SYNC_CALLS, ids=SYNC_IDS)
@pytest.mark.parametrize("cwd", BAD_CWDS.values(), ids=BAD_CWDS.keys())
def test_bad_cwd_is_a_validation_error(
    sync_call: SyncCall, entry: Callable[..., Any], cwd: Any
) -> None:
    with pytest.raises(ValidationError) as info:
        sync_call(entry, ["true"], cwd=cwd)
    assert "cwd" in str(info.value)
    _printable(str(info.value))


@pytest.mark.anyio
@pytest.mark.parametrize("cwd", BAD_CWDS.values(), ids=BAD_CWDS.keys())
async def test_async_bad_cwd_is_a_validation_error(cwd: Any) -> None:
    with pytest.raises(ValidationError):
        await async_run(["true"], cwd=cwd)
    with pytest.raises(ValidationError):
        await _astream_all(["true"], cwd=cwd)


@pytest.mark.parametrize("as_type", [str, Path], ids=["str", "Path"])
def test_missing_cwd_with_undecodable_byte_gives_a_printable_error(
    sync_call: SyncCall, tmp_path: Path, as_type: Callable[[str], Any]
) -> None:
    missing = str(tmp_path) + "/gone-\udc80"  # the byte 0x80 in the name: a valid POSIX path
    with pytest.raises(ProcessError) as info:
        sync_call(run, ["true"], cwd=as_type(missing))
    message = str(info.value)
    _printable(message)
    assert "working directory not found" in message
    assert f"{tmp_path}/gone-\\x80" in message
    assert info.value.context["path"] == missing


def test_cwd_with_undecodable_byte_is_used(sync_call: SyncCall, tmp_path: Path) -> None:
    directory = os.path.join(os.fsencode(tmp_path), b"d\x80")
    os.mkdir(directory)
    code = "import os, sys; sys.stdout.buffer.write(os.getcwdb())"
    result = sync_call(run, [PY, "-c", code], cwd=os.fsdecode(directory), text=False)
    assert result.stdout == directory


# --------------------------------------------------------------------------------------------
# Timeouts
# --------------------------------------------------------------------------------------------

FOREVER = {
    "10**400": 10**400,
    "inf": math.inf,
    "1e308": 1e308,
    "10**300": 10**300,
    "Fraction": fractions.Fraction(10**400, 3),
}


@pytest.mark.parametrize("timeout", FOREVER.values(), ids=FOREVER.keys())
def test_huge_and_infinite_timeouts_mean_no_deadline(sync_call: SyncCall, timeout: Any) -> None:
    assert sync_call(run, ["echo", "hi"], timeout=timeout).stdout == "hi\n"
    assert sync_call(_stream_all, ["echo", "hi"], timeout=timeout) == ["hi"]
    assert sync_call(shell, "echo hi", timeout=timeout).stdout == "hi\n"


@pytest.mark.anyio
@pytest.mark.parametrize("timeout", FOREVER.values(), ids=FOREVER.keys())
async def test_async_huge_and_infinite_timeouts_mean_no_deadline(timeout: Any) -> None:
    assert (await async_run(["echo", "hi"], timeout=timeout)).stdout == "hi\n"
    assert await _astream_all(["echo", "hi"], timeout=timeout) == ["hi"]


@pytest.mark.anyio
@pytest.mark.parametrize("timeout", [10**400, math.inf], ids=["10**400", "inf"])
async def test_managed_process_reads_accept_huge_timeouts(timeout: Any) -> None:
    async with ManagedProcess(python("print('ready', flush=True)")) as proc:
        assert await proc.read_line_async(timeout=timeout) == "ready"


def test_fractional_timeout_still_times_out() -> None:
    with pytest.raises(ProcessTimeoutError):
        run(["sleep", "30"], timeout=fractions.Fraction(1, 5))


BAD_TIMEOUTS = {
    "NaN": math.nan,
    "str": "1",
    "negative": -1,
    "-10**400": -(10**400),
    "-inf": -math.inf,
    "Decimal": decimal.Decimal("1"),
    "bool": True,
}


@pytest.mark.parametrize("entry", SYNC_CALLS[:2], ids=SYNC_IDS[:2])
@pytest.mark.parametrize("timeout", BAD_TIMEOUTS.values(), ids=BAD_TIMEOUTS.keys())
def test_bad_timeout_is_a_validation_error(
    sync_call: SyncCall, entry: Callable[..., Any], timeout: Any
) -> None:
    with pytest.raises(ValidationError) as info:
        sync_call(entry, ["true"], timeout=timeout)
    assert info.value.code == "INVALID_TIMEOUT"
    assert str(info.value).startswith("timeout must")


@pytest.mark.anyio
@pytest.mark.parametrize("timeout", BAD_TIMEOUTS.values(), ids=BAD_TIMEOUTS.keys())
async def test_async_bad_timeout_is_a_validation_error(timeout: Any) -> None:
    with pytest.raises(ValidationError):
        await async_run(["true"], timeout=timeout)
    with pytest.raises(ValidationError):
        await _astream_all(["true"], timeout=timeout)


# --------------------------------------------------------------------------------------------
# input and encodings
# --------------------------------------------------------------------------------------------

UNENCODABLE_INPUT = {
    "é in ascii": ("é", "ascii"),
    "€ in latin-1": ("a€", "latin-1"),
    "lone surrogate in utf-8": ("x\udc80", "utf-8"),
    "high surrogate in utf-8": ("\ud800", "utf-8"),
}


@pytest.mark.parametrize(("data", "encoding"), UNENCODABLE_INPUT.values(), ids=UNENCODABLE_INPUT)
def test_unencodable_input_is_a_validation_error_naming_the_encoding(
    sync_call: SyncCall, data: str, encoding: str
) -> None:
    with pytest.raises(ValidationError) as info:
        sync_call(run, ["cat"], input=data, encoding=encoding)
    assert encoding in str(info.value)
    assert "input" in str(info.value)
    _printable(str(info.value))
    with pytest.raises(ValidationError):
        sync_call(shell, "cat", input=data, encoding=encoding)


@pytest.mark.anyio
@pytest.mark.parametrize(("data", "encoding"), UNENCODABLE_INPUT.values(), ids=UNENCODABLE_INPUT)
async def test_async_unencodable_input_is_a_validation_error(data: str, encoding: str) -> None:
    with pytest.raises(ValidationError, match=encoding):
        await async_run(["cat"], input=data, encoding=encoding)


def test_input_that_the_encoding_can_encode_is_written(sync_call: SyncCall) -> None:
    result = sync_call(run, ["cat"], input="é", encoding="latin-1", text=False)
    assert result.stdout == b"\xe9"


# Not text codecs (bytes to bytes, str to str), and text codecs that cannot decode output cut
# at any byte (idna refuses errors="replace"; punycode fails on any non-ASCII byte even with
# it; utf-16/utf-32 need the BOM at the start, which a tail does not have).
UNUSABLE_CODECS = ["hex", "zlib", "base64", "bz2", "rot13", "idna", "punycode", "utf-16", "utf-32"]


@pytest.mark.parametrize("encoding", UNUSABLE_CODECS)
def test_a_codec_that_is_no_text_encoding_is_refused_before_running(
    sync_call: SyncCall, encoding: str, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(ValidationError, match=encoding) as info:
        sync_call(run, ["touch", str(marker)], encoding=encoding)
    assert not marker.exists()
    _printable(str(info.value))


@pytest.mark.parametrize("entry", SYNC_CALLS, ids=SYNC_IDS)
def test_an_unusable_codec_is_refused_by_every_entry_point(entry: Callable[..., Any]) -> None:
    for encoding in ("idna", "punycode", "utf-16"):
        with pytest.raises(ValidationError, match=encoding):
            entry(["echo", "x"], encoding=encoding)


def test_an_encode_only_error_handler_is_refused_before_running(
    sync_call: SyncCall, tmp_path: Path
) -> None:
    # xmlcharrefreplace cannot decode: it would raise TypeError on the first bad byte.
    marker = tmp_path / "ran"
    with pytest.raises(ValidationError, match="xmlcharrefreplace"):
        sync_call(run, ["touch", str(marker)], errors="xmlcharrefreplace")
    assert not marker.exists()


# A NUL or a lone surrogate reaches C (codecs.lookup, getpwnam) as ValueError /
# UnicodeEncodeError unless the option's check refuses it first.
UNNAMEABLE = {"NUL": "a\x00b", "lone surrogate": "\ud800"}


@pytest.mark.parametrize("entry", SYNC_CALLS, ids=SYNC_IDS)
@pytest.mark.parametrize("option", ["encoding", "errors", "user", "group", "extra_groups"])
@pytest.mark.parametrize("value", UNNAMEABLE.values(), ids=UNNAMEABLE.keys())
def test_nul_or_lone_surrogate_in_a_name_option_is_a_validation_error(
    entry: Callable[..., Any], option: str, value: str
) -> None:
    given: object = [value] if option == "extra_groups" else value
    with pytest.raises(ValidationError, match=option) as info:
        entry(["true"], **{option: given})
    _printable(str(info.value))
    assert len(str(info.value)) < 200


# --------------------------------------------------------------------------------------------
# env
# --------------------------------------------------------------------------------------------

BAD_ENVS = {
    "surrogate value": {"PF_T": "\ud800"},
    "surrogate name": {"PF_\ud800": "x"},
    "NUL value": {"PF_T": "a\0b"},
    "NUL name": {"PF\0T": "x"},
    "bytes value": {"PF_T": b"x"},
    # {"PF_T": None} removes PF_T (#23): tests/test_pipes.py::test_env_none_removes_a_variable
    "empty name": {"": "x"},
    "= in name": {"A=B": "x"},
}


@pytest.mark.parametrize("entry", SYNC_CALLS, ids=SYNC_IDS)
@pytest.mark.parametrize("env", BAD_ENVS.values(), ids=BAD_ENVS.keys())
def test_bad_env_is_a_validation_error(
    sync_call: SyncCall, entry: Callable[..., Any], env: dict[Any, Any]
) -> None:
    with pytest.raises(ValidationError) as info:
        sync_call(entry, ["true"], env=env)
    _printable(str(info.value))


def test_surrogate_escaped_env_value_reaches_the_child_as_its_byte(sync_call: SyncCall) -> None:
    code = "import os, sys; sys.stdout.buffer.write(os.environb[b'PF_T'])"
    result = sync_call(run, [PY, "-c", code], env={"PF_T": "a\udc80"}, text=False)
    assert result.stdout == b"a\x80"


# --------------------------------------------------------------------------------------------
# E2BIG and long commands: the cause first, the command cut
# --------------------------------------------------------------------------------------------

HUGE = {
    "one huge argument": ["true", "x" * 3_000_000],
    "many arguments": ["true"] + ["y" * 100] * 40_000,
}


def _check_e2big(error: ProcessError, cmd: list[str], words: str) -> None:
    message = str(error)
    _printable(message)
    first = message.splitlines()[0]
    assert first.startswith(f"{words}: argument list too long (E2BIG)")
    total = sum(len(arg) + 1 for arg in cmd)
    assert f"{total:,} bytes" in first
    assert "more characters)" in message  # the command is shown, cut
    assert error.command == " ".join(cmd)  # the attribute keeps it whole


@pytest.mark.parametrize("cmd", HUGE.values(), ids=HUGE.keys())
@pytest.mark.parametrize("kill_on_parent_death", [False, pytest.param(True, marks=needs_pdeathsig)])
def test_e2big_leads_with_the_cause_and_cuts_the_command(
    sync_call: SyncCall, cmd: list[str], kill_on_parent_death: bool, tmp_path: Path
) -> None:
    for cwd in (None, tmp_path):  # both spawn paths
        with pytest.raises(ProcessError) as info:
            sync_call(run, cmd, cwd=cwd, kill_on_parent_death=kill_on_parent_death)
        assert info.value.code == "PROCESS_EXECUTION_FAILED"
        if not kill_on_parent_death:  # the trampoline adds a few arguments to the count
            _check_e2big(info.value, cmd, "Failed to execute command")
        else:
            _printable(str(info.value))
            assert "argument list too long (E2BIG)" in str(info.value)


@pytest.mark.anyio
@pytest.mark.parametrize("cmd", HUGE.values(), ids=HUGE.keys())
async def test_async_e2big_leads_with_the_cause(cmd: list[str]) -> None:
    with pytest.raises(ProcessError) as info:
        await async_run(cmd)
    _check_e2big(info.value, cmd, "Failed to execute async command")
    with pytest.raises(ProcessError) as info:
        await _astream_all(cmd)
    _check_e2big(info.value, cmd, "Failed to stream async command")


def test_e2big_from_stream_and_managed_process(sync_call: SyncCall) -> None:
    cmd = HUGE["one huge argument"]
    with pytest.raises(ProcessError) as info:
        sync_call(_stream_all, cmd)
    _check_e2big(info.value, cmd, "Failed to stream command")
    with pytest.raises(ProcessError) as info:
        sync_call(_launch, cmd)
    assert str(info.value).startswith("Failed to launch process: argument list too long")
    _printable(str(info.value))


def test_failure_and_timeout_messages_cut_a_long_command(sync_call: SyncCall) -> None:
    long_arg = "z" * 100_000
    with pytest.raises(ProcessError) as info:
        sync_call(run, [*python("raise SystemExit(3)"), long_arg])
    assert str(info.value).startswith("Command failed with exit code 3: ")
    _printable(str(info.value))
    assert long_arg in info.value.command
    with pytest.raises(ProcessTimeoutError) as timeout_info:
        sync_call(run, [*python("import time; time.sleep(30)"), long_arg], timeout=0.2)
    assert str(timeout_info.value).startswith("Command timed out after 0.2s: ")
    _printable(str(timeout_info.value))
    with pytest.raises(ProcessError) as shell_info:
        sync_call(shell, f"false {long_arg}")
    _printable(str(shell_info.value))


def test_a_huge_program_name_is_cut_in_the_message(sync_call: SyncCall) -> None:
    with pytest.raises(ProcessError) as info:
        sync_call(run, ["p" * 1_000_000])
    _printable(str(info.value))


def test_error_constructed_by_hand_cuts_the_command_line_too() -> None:
    error = ProcessError("Boom", command=["echo", "q" * 10_000])
    _printable(str(error))
    assert error.command == ["echo", "q" * 10_000]
    assert error.context["process.command"] == ["echo", "q" * 10_000]


# --------------------------------------------------------------------------------------------
# A script whose interpreter is missing
# --------------------------------------------------------------------------------------------


def _script(directory: Path, first_line: bytes, name: str = "script") -> Path:
    path = directory / name
    path.write_bytes(first_line + b"\necho hi\n")
    path.chmod(0o755)
    return path


SHEBANGS = {
    "absolute": b"#!/nonexistent/interp",
    "with argument": b"#! /nonexistent/interp -x -y",
    "tab": b"#!\t/nonexistent/interp\t-e",
}


@pytest.mark.parametrize("line", SHEBANGS.values(), ids=SHEBANGS.keys())
@pytest.mark.parametrize("kill_on_parent_death", [False, pytest.param(True, marks=needs_pdeathsig)])
def test_missing_interpreter_is_named(
    sync_call: SyncCall, tmp_path: Path, line: bytes, kill_on_parent_death: bool
) -> None:
    script = _script(tmp_path, line)
    for cwd in (None, tmp_path):  # both spawn paths
        with pytest.raises(ProcessError) as info:
            sync_call(run, [str(script)], cwd=cwd, kill_on_parent_death=kill_on_parent_death)
        message = str(info.value)
        assert info.value.code == "PROCESS_EXECUTION_FAILED"
        assert message.startswith("Failed to execute command: interpreter not found")
        assert "/nonexistent/interp" in message
        assert str(script) in message
        assert "executable not found" not in message
        assert info.value.context["path"] == "/nonexistent/interp"


def test_missing_interpreter_of_a_script_found_on_the_path(
    sync_call: SyncCall, tmp_path: Path
) -> None:
    _script(tmp_path, b"#!/nonexistent/interp", name="pf-script")
    path = f"{tmp_path}{os.pathsep}{os.environ.get('PATH', os.defpath)}"
    with pytest.raises(ProcessError, match="interpreter not found: '/nonexistent/interp'"):
        sync_call(run, ["pf-script"], env={"PATH": path})


def test_missing_interpreter_relative_to_cwd(sync_call: SyncCall, tmp_path: Path) -> None:
    _script(tmp_path, b"#!/nonexistent/interp")
    with pytest.raises(ProcessError, match="interpreter not found"):
        sync_call(run, ["./script"], cwd=tmp_path)


def test_crlf_shebang_says_windows_line_endings(sync_call: SyncCall, tmp_path: Path) -> None:
    script = _script(tmp_path, b"#!/bin/sh\r")
    with pytest.raises(ProcessError) as info:
        sync_call(run, [str(script)])
    message = str(info.value)
    assert "interpreter not found: '/bin/sh\\r'" in message
    assert "CRLF" in message
    _printable(message)


def test_missing_interpreter_from_stream_and_managed_process(
    sync_call: SyncCall, tmp_path: Path
) -> None:
    script = str(_script(tmp_path, b"#!/nonexistent/interp"))
    with pytest.raises(ProcessError, match="interpreter not found: '/nonexistent/interp'"):
        sync_call(_stream_all, [script])
    with pytest.raises(ProcessError, match="Failed to launch process: interpreter not found"):
        sync_call(_launch, [script])


@pytest.mark.anyio
async def test_async_missing_interpreter_is_named(tmp_path: Path) -> None:
    script = str(_script(tmp_path, b"#!/nonexistent/interp"))
    with pytest.raises(ProcessError, match="interpreter not found: '/nonexistent/interp'"):
        await async_run([script])
    with pytest.raises(ProcessError, match="interpreter not found: '/nonexistent/interp'"):
        await _astream_all([script])


def test_a_script_with_an_existing_interpreter_runs(sync_call: SyncCall, tmp_path: Path) -> None:
    script = _script(tmp_path, b"#!/bin/sh")
    assert sync_call(run, [str(script)]).stdout == "hi\n"


# --------------------------------------------------------------------------------------------
# kill_on_parent_death: a program that cannot start fails as it does without the option
# --------------------------------------------------------------------------------------------


def _not_startable(tmp_path: Path) -> dict[str, tuple[list[str], dict[str, Any]]]:
    plain = tmp_path / "plain.txt"
    plain.write_text("not a program\n")
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    return {
        "missing absolute": ([str(tmp_path / "missing")], {}),
        "missing name": (["pf-no-such-program-4d1c"], {}),
        "missing relative": (["./missing"], {"cwd": tmp_path}),
        "not on the child's PATH": (["true"], {"env": {"PATH": str(empty_dir)}}),
        "not executable": ([str(plain)], {}),
        "a directory": ([str(tmp_path)], {}),
        "missing cwd": (["true"], {"cwd": tmp_path / "gone"}),
        "missing interpreter": ([str(_script(tmp_path, b"#!/nonexistent/interp"))], {}),
    }


CASES = [
    "missing absolute",
    "missing name",
    "missing relative",
    "not on the child's PATH",
    "not executable",
    "a directory",
    "missing cwd",
    "missing interpreter",
]


@needs_pdeathsig
@pytest.mark.parametrize("case", CASES)
def test_kill_on_parent_death_reports_start_failures_like_without_it(
    sync_call: SyncCall, tmp_path: Path, case: str
) -> None:
    cmd, kwargs = _not_startable(tmp_path)[case]
    with pytest.raises(ProcessError) as plain:
        sync_call(run, cmd, **kwargs)
    with pytest.raises(ProcessError) as wrapped:
        sync_call(run, cmd, kill_on_parent_death=True, **kwargs)
    assert plain.value.code == wrapped.value.code == "PROCESS_EXECUTION_FAILED"
    assert str(wrapped.value) == str(plain.value)
    assert wrapped.value.return_code is None
    assert wrapped.value.context["path"] == plain.value.context["path"]


@needs_pdeathsig
@pytest.mark.anyio
async def test_async_kill_on_parent_death_missing_program(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    with pytest.raises(ProcessError) as info:
        await async_run([missing], kill_on_parent_death=True)
    assert info.value.code == "PROCESS_ASYNC_EXECUTION_FAILED"
    assert f"executable not found: {missing}" in str(info.value)
    with pytest.raises(ProcessError, match="executable not found"):
        await _astream_all([missing], kill_on_parent_death=True)
    with pytest.raises(ProcessError, match="Failed to launch process: executable not found"):
        await ManagedProcess([missing], kill_on_parent_death=True).alaunch()


# --------------------------------------------------------------------------------------------
# The program is looked up in the child's PATH
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kill_on_parent_death", [False, pytest.param(True, marks=needs_pdeathsig)])
def test_program_is_found_on_the_env_path_override(
    sync_call: SyncCall, tmp_path: Path, kill_on_parent_death: bool
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _script(bin_dir, b"#!/bin/sh", name="pf-only-here")
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', os.defpath)}"}
    for cwd in (None, tmp_path):  # both spawn paths
        result = sync_call(
            run, ["pf-only-here"], env=env, cwd=cwd, kill_on_parent_death=kill_on_parent_death
        )
        assert result.stdout == "hi\n"
        assert sync_call(_stream_all, ["pf-only-here"], env=env, cwd=cwd) == ["hi"]


@pytest.mark.anyio
async def test_async_program_is_found_on_the_env_path_override(tmp_path: Path) -> None:
    _script(tmp_path, b"#!/bin/sh", name="pf-only-here")
    env = {"PATH": str(tmp_path)}
    assert (await async_run(["pf-only-here"], env=env)).stdout == "hi\n"
    assert await _astream_all(["pf-only-here"], env=env) == ["hi"]
    async with ManagedProcess(["pf-only-here"], env=env) as proc:
        assert await proc.read_line_async(timeout=10) == "hi"


def test_program_only_on_our_path_is_not_found_with_another_child_path(
    sync_call: SyncCall, tmp_path: Path
) -> None:
    with pytest.raises(ProcessError, match="executable not found: true") as info:
        sync_call(run, ["true"], env={"PATH": str(tmp_path)})
    assert info.value.code == "PROCESS_EXECUTION_FAILED"


def test_non_executable_file_on_the_child_path_is_permission_denied(
    sync_call: SyncCall, tmp_path: Path
) -> None:
    (tmp_path / "pf-not-exec").write_text("#!/bin/sh\n")
    with pytest.raises(ProcessError, match="permission denied: pf-not-exec"):
        sync_call(run, ["pf-not-exec"], env={"PATH": str(tmp_path)})


# --------------------------------------------------------------------------------------------
# The inherited environment (no os.environ._data)
# --------------------------------------------------------------------------------------------


def test_spawn_uses_no_private_os_environ_attribute() -> None:
    source = inspect.getsource(procfound.engine.spawn)
    assert "_data" not in source


def test_inherited_environment_follows_os_environ(
    sync_call: SyncCall, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = "import os, sys; sys.stdout.buffer.write(os.environb.get(b'PF_T', b'<unset>'))"
    monkeypatch.setenv("PF_T", "one")
    assert sync_call(run, [PY, "-c", code], text=False).stdout == b"one"
    monkeypatch.setitem(os.environb, b"PF_T", b"raw \xff byte")
    assert sync_call(run, [PY, "-c", code], text=False).stdout == b"raw \xff byte"
    monkeypatch.delenv("PF_T")
    assert sync_call(run, [PY, "-c", code], text=False).stdout == b"<unset>"


def test_program_is_found_on_our_path_after_it_changed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _script(tmp_path, b"#!/bin/sh", name="pf-ours-now")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', os.defpath)}")
    assert run(["pf-ours-now"]).stdout == "hi\n"
    assert anyio.run(_astream_all, ["pf-ours-now"]) == ["hi"]
