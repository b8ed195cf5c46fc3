"""Exit helpers: the exit code each one raises, and what it logs first."""

from __future__ import annotations

import logging

import pytest

from procfound.errors import ValidationError
from procfound.exit import (
    EXIT_ERROR,
    EXIT_SIGINT,
    EXIT_SUCCESS,
    exit_error,
    exit_interrupted,
    exit_success,
)


def logged(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "procfound"]


def test_exit_codes_follow_shell_conventions() -> None:
    assert (EXIT_SUCCESS, EXIT_ERROR, EXIT_SIGINT) == (0, 1, 130)


def test_exit_success_exits_0_and_logs_the_message(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="procfound"), pytest.raises(SystemExit) as exited:
        exit_success("all done")
    assert exited.value.code == 0
    assert logged(caplog) == [("INFO", "Exiting successfully: all done")]


def test_exit_success_without_message_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="procfound"), pytest.raises(SystemExit) as exited:
        exit_success()
    assert exited.value.code == 0
    assert logged(caplog) == []


def test_exit_error_exits_1_and_logs_the_message(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="procfound"), pytest.raises(SystemExit) as exited:
        exit_error("config missing")
    assert exited.value.code == 1
    assert logged(caplog) == [("ERROR", "Exiting with error: config missing")]


def test_exit_error_exits_with_the_given_code(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="procfound"), pytest.raises(SystemExit) as exited:
        exit_error("bad input", code=7)
    assert exited.value.code == 7
    assert logged(caplog) == [("ERROR", "Exiting with error: bad input")]
    assert caplog.records[0].exit_code == 7


def test_exit_error_without_message_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="procfound"), pytest.raises(SystemExit) as exited:
        exit_error(code=7)
    assert exited.value.code == 7
    assert logged(caplog) == []


def test_exit_interrupted_exits_130_and_always_logs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="procfound"), pytest.raises(SystemExit) as exited:
        exit_interrupted()
    assert exited.value.code == 130
    assert logged(caplog) == [("WARNING", "Exiting due to interrupt: Process interrupted")]


def test_exit_interrupted_logs_a_given_message(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="procfound"), pytest.raises(SystemExit) as exited:
        exit_interrupted("Ctrl-C during upload")
    assert exited.value.code == 130
    assert logged(caplog) == [("WARNING", "Exiting due to interrupt: Ctrl-C during upload")]


@pytest.mark.parametrize("code", [-1, 256, 2**64, 1.5, float("nan"), "2", None, True])
def test_an_exit_code_the_os_cannot_carry_is_a_validation_error(
    caplog: pytest.LogCaptureFixture, code: object
) -> None:
    # sys.exit() takes anything: 256 would exit 0, "2" would exit 1 after printing "2".
    with caplog.at_level(logging.DEBUG, logger="procfound"), pytest.raises(ValidationError) as info:
        exit_error("boom", code=code)  # type: ignore[arg-type]
    assert info.value.code == "INVALID_ARGUMENT"
    assert "0 to 255" in str(info.value)
    assert logged(caplog) == []
