"""Errors: message layout, seed-compatible codes and context, truncation, signals, pickling."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
from conftest import SyncCall, python

from procfound import (
    ManagedProcess,
    PlatformError,
    ProcessError,
    ProcessTimeoutError,
    ShellFeatureError,
    StateError,
    ValidationError,
    async_run,
    async_shell,
    run,
    shell,
)

# --------------------------------------------------------------------------------------------
# Layout (the seed's exact strings)
# --------------------------------------------------------------------------------------------


def test_message_layout_matches_the_seed() -> None:
    error = ProcessError("Command failed", command=["ls", "-la"], return_code=1)
    assert str(error) == "Command failed\nCommand: ls -la\nReturn code: 1"
    assert error.message == str(error)


def test_message_has_every_section_in_order() -> None:
    error = ProcessError(
        "Boom", command="make all", return_code=2, stdout="out\n", stderr="err\n", timeout=True
    )
    assert str(error) == (
        "Boom\nCommand: make all\nReturn code: 2\nProcess timed out\n"
        "--- STDOUT ---\nout\n--- STDERR ---\nerr"
    )


def test_sections_are_omitted_when_absent_or_blank() -> None:
    error = ProcessError("Only this", stdout="  \n", stderr="")
    assert str(error) == "Only this"
    assert error.stdout == ""  # whitespace only: "" (the seed strips a truthy value)
    assert error.stderr is None  # empty: None
    assert error.return_code is None
    assert error.timeout is False


def test_bytes_output_is_decoded_with_replacement() -> None:
    error = ProcessError("x", stdout=b"a\xffb", stderr=b"\xc3\xa9t\xc3")
    assert error.stdout == "a\ufffdb"
    assert error.stderr == "\u00e9t\ufffd"
    assert "a\ufffdb" in str(error)


def test_context_holds_extra_context_and_process_keys() -> None:
    error = ProcessError("x", command=["a", "b"], return_code=7, code="MY_CODE", request_id="r1")
    assert error.code == "MY_CODE"
    assert error.context == {
        "request_id": "r1",
        "process.command": ["a", "b"],
        "process.return_code": 7,
        "process.timeout": False,
    }
    assert error.command == ["a", "b"]


def test_default_codes() -> None:
    assert ProcessError("x").code == "PROCESS_ERROR"
    assert ProcessTimeoutError("x").code == "PROCESS_TIMEOUT"
    assert ShellFeatureError("x", pattern=";", command="a;b").code == "SHELL_FEATURE_NOT_ALLOWED"


def test_timeout_error_is_a_timeout_error_with_seconds() -> None:
    error = ProcessTimeoutError("Command timed out after 1.5s: sleep 9", timeout_seconds=1.5)
    assert isinstance(error, ProcessError)
    assert isinstance(error, TimeoutError)
    assert error.timeout is True
    assert error.timeout_seconds == 1.5
    assert error.context["process.timeout_seconds"] == 1.5
    assert error.context["process.timeout"] is True
    assert str(ProcessTimeoutError("Process timed out")) == "Process timed out\nProcess timed out"


def test_shell_feature_error_carries_pattern_and_cut_command() -> None:
    command = "echo " + "x" * 300 + " | cat"
    error = ShellFeatureError("Shell feature '|' detected", pattern="|", command=command)
    assert error.pattern == "|"
    assert error.command == command[:100]
    assert set(error.context) == {
        "pattern",
        "process.command",
        "process.return_code",
        "process.timeout",
    }


# --------------------------------------------------------------------------------------------
# Truncation and signals
# --------------------------------------------------------------------------------------------


def test_long_output_is_cut_in_the_message_but_kept_in_the_attributes() -> None:
    stdout = "HEAD-MARKER\n" + "o" * 500_000 + "\nTAIL-OUT"
    stderr = "HEAD-ERR\n" + "e" * 500_000 + "\nTAIL-ERR"
    error = ProcessError("failed", return_code=1, stdout=stdout, stderr=stderr)
    assert error.stdout == stdout
    assert error.stderr == stderr
    message = str(error)
    assert len(message) < 50_000
    assert "TAIL-OUT" in message
    assert "TAIL-ERR" in message
    assert "HEAD-MARKER" not in message
    assert "HEAD-ERR" not in message


LOUD_FAILURE = python(
    """
    import sys
    sys.stdout.write("HEAD-MARKER\\n" + "o" * 300_000 + "\\nTAIL-MARKER\\n")
    sys.exit(1)
    """
)


def test_run_error_cuts_long_output_in_message_but_keeps_attribute(sync_call: SyncCall) -> None:
    with pytest.raises(ProcessError) as info:
        sync_call(run, LOUD_FAILURE)
    assert info.value.stdout is not None
    assert info.value.stdout.startswith("HEAD-MARKER")
    assert info.value.stdout.endswith("TAIL-MARKER")
    assert len(info.value.stdout) > 300_000
    assert len(str(info.value)) < 50_000
    assert "TAIL-MARKER" in str(info.value)


@pytest.mark.parametrize(
    ("returncode", "name"), [(-9, "SIGKILL"), (-15, "SIGTERM"), (-2, "SIGINT"), (-11, "SIGSEGV")]
)
def test_negative_return_code_names_the_signal(returncode: int, name: str) -> None:
    error = ProcessError("Command failed", command=["x"], return_code=returncode)
    assert name in str(error)
    assert str(returncode) in str(error)
    assert error.return_code == returncode


def test_unknown_signal_number_still_renders() -> None:
    error = ProcessError("Command failed", return_code=-200)
    assert "-200" in str(error)


# --------------------------------------------------------------------------------------------
# Pickling
# --------------------------------------------------------------------------------------------

ERRORS = [
    ProcessError(
        "boom",
        command=["ls", "-la"],
        return_code=-9,
        stdout="out",
        stderr=b"err\xff",
        code="X_CODE",
        extra="context",
    ),
    ProcessTimeoutError(
        "Command timed out after 1.5s: sleep 9",
        command=["sleep", "9"],
        timeout_seconds=1.5,
        stdout="partial",
        code="PROCESS_ASYNC_TIMEOUT",
    ),
    ShellFeatureError("Shell feature ';' detected", pattern=";", command="a; b"),
    ValidationError("Command must be a list", code="INVALID_COMMAND_TYPE"),
    StateError("Process has already been started", code="PROCESS_ALREADY_STARTED"),
    PlatformError("prctl is not available"),
]


def same_error(copy: Any, original: Any) -> None:
    assert type(copy) is type(original)
    assert str(copy) == str(original)
    assert copy.args == original.args
    assert vars(copy) == vars(original)


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_errors_survive_a_pickle_round_trip(error: Exception) -> None:
    same_error(pickle.loads(pickle.dumps(error)), error)


def test_errors_raised_by_run_survive_a_pickle_round_trip() -> None:
    with pytest.raises(ProcessError) as failed:
        run(["sh", "-c", "echo out; exit 3"])
    with pytest.raises(ProcessTimeoutError) as timed_out:
        run(["sh", "-c", "echo partial; sleep 30"], timeout=0.5)
    for error in (failed.value, timed_out.value):
        same_error(pickle.loads(pickle.dumps(error)), error)


# --------------------------------------------------------------------------------------------
# Codes and first words of messages from real calls (seed compatibility)
# --------------------------------------------------------------------------------------------


def test_sync_run_failure_code_and_message(sync_call: SyncCall) -> None:
    with pytest.raises(ProcessError) as info:
        sync_call(run, ["sh", "-c", "exit 3"])
    error = info.value
    assert error.code == "PROCESS_COMMAND_FAILED"
    assert str(error).startswith("Command failed with exit code 3: sh -c exit 3")
    assert error.context["process.return_code"] == 3
    assert error.context["process.timeout"] is False
    assert "process.command" in error.context


@pytest.mark.anyio
async def test_async_run_failure_code_and_message() -> None:
    with pytest.raises(ProcessError) as info:
        await async_run(["sh", "-c", "exit 3"])
    error = info.value
    assert error.code == "PROCESS_ASYNC_FAILED"
    assert str(error).startswith("Command failed with exit code 3: sh -c exit 3")
    assert error.context["process.return_code"] == 3
    assert error.context["process.timeout"] is False


def test_sync_run_timeout_code_and_message(sync_call: SyncCall) -> None:
    with pytest.raises(ProcessTimeoutError) as info:
        sync_call(run, ["sleep", "30"], timeout=0.5)
    assert info.value.code == "PROCESS_TIMEOUT"
    assert str(info.value).startswith("Command timed out after 0.5s: sleep 30")
    assert info.value.context["process.timeout"] is True
    assert info.value.context["process.timeout_seconds"] == 0.5


@pytest.mark.anyio
async def test_async_run_timeout_code_and_message() -> None:
    with pytest.raises(ProcessTimeoutError) as info:
        await async_run(["sleep", "30"], timeout=0.5)
    assert info.value.code == "PROCESS_ASYNC_TIMEOUT"
    assert str(info.value).startswith("Command timed out after 0.5s: sleep 30")
    assert info.value.context["process.timeout_seconds"] == 0.5


def test_sync_run_start_failure_code_and_message(sync_call: SyncCall, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing-program")
    with pytest.raises(ProcessError) as info:
        sync_call(run, [missing])
    assert not isinstance(info.value, ProcessTimeoutError)
    assert info.value.code == "PROCESS_EXECUTION_FAILED"
    assert str(info.value).startswith("Failed to execute command")
    assert missing in str(info.value)


@pytest.mark.anyio
async def test_async_run_start_failure_code_and_message(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing-program")
    with pytest.raises(ProcessError) as info:
        await async_run([missing])
    assert info.value.code == "PROCESS_ASYNC_EXECUTION_FAILED"
    assert str(info.value).startswith("Failed to execute async command")
    assert missing in str(info.value)


def test_str_command_without_shell_has_code_invalid_command_type(sync_call: SyncCall) -> None:
    with pytest.raises(ValidationError) as info:
        sync_call(run, "echo hi")
    assert info.value.code == "INVALID_COMMAND_TYPE"


@pytest.mark.anyio
async def test_async_str_command_without_shell_has_code_invalid_command_type() -> None:
    with pytest.raises(ValidationError) as info:
        await async_run("echo hi")
    assert info.value.code == "INVALID_COMMAND_TYPE"


def test_shell_non_str_command_has_code_invalid_shell_command(sync_call: SyncCall) -> None:
    with pytest.raises(ValidationError) as info:
        sync_call(shell, ["echo", "hi"])
    assert info.value.code == "INVALID_SHELL_COMMAND"


@pytest.mark.anyio
async def test_async_shell_refusal_has_code_and_pattern() -> None:
    with pytest.raises(ShellFeatureError) as info:
        await async_shell("a && b")
    assert info.value.code == "SHELL_FEATURE_NOT_ALLOWED"
    assert info.value.pattern == "&&"
    assert info.value.context["pattern"] == "&&"


BAD_CODECS = {
    "unknown-encoding": {"encoding": "no-such-codec"},
    "unknown-errors-handler": {"errors": "no-such-handler"},
}


@pytest.mark.parametrize("options", list(BAD_CODECS.values()), ids=list(BAD_CODECS))
def test_unknown_codec_is_refused_before_the_command_runs(
    sync_call: SyncCall, tmp_path: Path, options: dict[str, str]
) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(ValidationError) as info:
        sync_call(run, ["touch", str(marker)], **options)
    assert info.value.code == "INVALID_ARGUMENT"
    assert not marker.exists()


@pytest.mark.anyio
@pytest.mark.parametrize("options", list(BAD_CODECS.values()), ids=list(BAD_CODECS))
async def test_async_unknown_codec_is_refused_before_the_command_runs(
    tmp_path: Path, options: dict[str, str]
) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(ValidationError) as info:
        await async_run(["touch", str(marker)], **options)
    assert info.value.code == "INVALID_ARGUMENT"
    assert not marker.exists()
    with pytest.raises(ValidationError):
        ManagedProcess(["touch", str(marker)], **options)
    assert not marker.exists()
