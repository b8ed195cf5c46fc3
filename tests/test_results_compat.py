"""The result and error shapes ``subprocess`` users rely on: ``CompletedProcess.check_returncode``
and its generic form, and ``ProcessError.result`` (the whole result of a failed or timed-out run)
beside the seed's stripped ``.stdout``/``.stderr``.
"""

from __future__ import annotations

import signal
from typing import Any

import pytest
from conftest import SyncCall, python

from procfound import (
    CompletedProcess,
    ProcessError,
    ProcessTimeoutError,
    async_run,
    async_shell,
    async_stream,
    run,
    shell,
)

FAILING = ["sh", "-c", "printf '  out\\n\\n'; printf ' err \\n' >&2; exit 3"]
# Prints a partial line and a whole one, then waits for the deadline.
PARTIAL = python(
    """
    import sys, time
    print("first line", flush=True)
    sys.stdout.write("partial")
    sys.stdout.flush()
    sys.stderr.write("warning\\n")
    sys.stderr.flush()
    time.sleep(30)
    """
)


def test_check_returncode_raises_with_the_result_itself() -> None:
    done: CompletedProcess[str] = CompletedProcess(
        args=["false"], returncode=1, stdout=" out \n", stderr="err\n"
    )
    with pytest.raises(ProcessError) as caught:
        done.check_returncode()
    assert caught.value.result is done
    assert caught.value.return_code == 1
    assert (caught.value.stdout, caught.value.stderr) == ("out", "err")
    ok: CompletedProcess[bytes] = CompletedProcess(
        args=["true"], returncode=0, stdout=b"", stderr=b""
    )
    ok.check_returncode()  # returns None, raises nothing


def test_check_returncode_on_real_results(sync_call: SyncCall) -> None:
    failed = sync_call(run, FAILING, check=False)
    with pytest.raises(ProcessError) as caught:
        failed.check_returncode()
    assert caught.value.result is failed
    assert caught.value.return_code == 3
    assert sync_call(run, ["true"]).check_returncode() is None
    killed = sync_call(run, ["sh", "-c", "kill -TERM $$"], check=False)
    assert killed.returncode == -signal.SIGTERM
    with pytest.raises(ProcessError) as caught:
        killed.check_returncode()
    assert caught.value.return_code == -signal.SIGTERM


def test_completed_process_is_subscriptable() -> None:
    assert CompletedProcess[str].__origin__ is CompletedProcess  # type: ignore[attr-defined]
    assert CompletedProcess[bytes].__args__ == (bytes,)  # type: ignore[attr-defined]
    made = CompletedProcess[bytes](args=["x"], returncode=0, stdout=b"1", stderr=b"")
    assert isinstance(made, CompletedProcess)
    assert made.stdout == b"1"


def test_error_result_is_what_run_without_check_returns(sync_call: SyncCall) -> None:
    for text in (True, False):
        unchecked = sync_call(run, FAILING, check=False, text=text)
        with pytest.raises(ProcessError) as caught:
            sync_call(run, FAILING, text=text)
        result = caught.value.result
        assert isinstance(result, CompletedProcess)
        assert (result.args, result.returncode) == (unchecked.args, unchecked.returncode)
        assert (result.stdout, result.stderr) == (unchecked.stdout, unchecked.stderr)
        # The seed's attributes stay as they were: stripped text.
        assert (caught.value.stdout, caught.value.stderr) == ("out", "err")
    assert unchecked.stdout == b"  out\n\n"
    assert unchecked.stderr == b" err \n"


@pytest.mark.anyio
async def test_error_result_is_what_run_without_check_returns_async() -> None:
    with pytest.raises(ProcessError) as caught:
        await async_run(FAILING)
    assert caught.value.result.stdout == "  out\n\n"
    assert caught.value.result.stderr == " err \n"
    assert caught.value.result.returncode == 3
    with pytest.raises(ProcessError) as caught:
        await async_shell("exit 4", text=False)
    assert caught.value.result.stdout == b""
    assert caught.value.result.returncode == 4


def test_timeout_result_holds_the_partial_output(sync_call: SyncCall) -> None:
    with pytest.raises(ProcessTimeoutError) as caught:
        sync_call(run, PARTIAL, timeout=1)
    error = caught.value
    assert error.result.stdout == "first line\npartial"
    assert error.result.stderr == "warning\n"
    assert error.result.returncode == error.return_code == -signal.SIGTERM
    assert (error.stdout, error.stderr) == ("first line\npartial", "warning")


@pytest.mark.anyio
async def test_timeout_result_holds_the_partial_output_async() -> None:
    with pytest.raises(ProcessTimeoutError) as caught:
        await async_run(PARTIAL, timeout=1, text=False)
    assert caught.value.result.stdout == b"first line\npartial"
    assert caught.value.result.returncode == -signal.SIGTERM
    assert caught.value.return_code == -signal.SIGTERM


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [("", None), ("   \n\n", ""), ("\n  value \n", "value")],
)
def test_error_stdout_is_stripped_empty_or_none(
    sync_call: SyncCall, stdout: str, expected: str | None
) -> None:
    with pytest.raises(ProcessError) as caught:
        sync_call(run, ["sh", "-c", f"printf '{stdout}'; printf '{stdout}' >&2; exit 1"])
    assert caught.value.stdout == expected
    assert caught.value.stderr == expected
    assert caught.value.result.stdout == stdout


@pytest.mark.anyio
async def test_error_stdout_is_stripped_empty_or_none_async() -> None:
    cases: dict[str, Any] = {"true": None, "echo '  '": "", "echo ' x '": "x"}
    for command, expected in cases.items():
        with pytest.raises(ProcessError) as caught:
            await async_shell(f"{command}; exit 1", allow_shell_features=True)
        assert caught.value.stdout == expected, command


@pytest.mark.anyio
async def test_errors_of_other_operations_have_no_result() -> None:
    with pytest.raises(ProcessError) as caught:
        async for _ in async_stream(["false"]):
            pass
    assert caught.value.result is None


def test_shell_error_carries_its_result(sync_call: SyncCall) -> None:
    with pytest.raises(ProcessError) as caught:
        sync_call(shell, "false")
    assert caught.value.result.args == ["false"]
    assert caught.value.result.returncode == 1
