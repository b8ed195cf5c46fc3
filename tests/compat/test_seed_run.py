# ruff: noqa: E501  (docstrings name seed tests by their full, greppable node ids)
"""Seed compatibility: the run family (`run`, `run_simple`, `async_run`) and `CompletedProcess`.

Each test re-expresses one behavioural test of provide-foundation (the seed library) against
procfound; its docstring names the seed test. Where SPEC.md deliberately differs from the seed,
the test asserts procfound's behaviour and says so.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import anyio
import pytest
from conftest import python

from procfound import (
    CompletedProcess,
    IgnoredArgumentWarning,
    ProcessError,
    ProcessTimeoutError,
    ValidationError,
    async_run,
    async_shell,
    run,
    run_simple,
)

# Not ported: tests/process/test_runner_coverage.py::test_generic_subprocess_exception, ::test_reraise_process_error, test_process_runner_coverage.py::test_run_handles_subprocess_error — mock subprocess.run; the real missing-executable case is ported.
# Not ported: tests/process/test_async_run.py::test_timeout_error_is_wrapped, ::test_mock_process_creation_failure, ::test_mock_communicate_timeout — patch asyncio/create_subprocess and count kill()/wait() calls (the __cause__ and decode halves are ported with real children).
# Not ported: tests/process/test_async_runner_coverage.py::test_async_reraise_process_error — patches asyncio.create_subprocess_exec to raise a prepared error.
# Not ported: tests/process/test_process_runner_coverage.py::test_run_disables_foundation_telemetry_by_default, ::test_run_preserves_existing_telemetry_setting, test_async_run.py::test_telemetry_* — PROVIDE_TELEMETRY_DISABLED is a provide-foundation default, not procfound's contract.
# Not ported: tests/process/test_env.py allowlist/sensitive-pattern/scrub/mask/prepare tests and ::test_subprocess_gets_scrubbed_env — the seed's env-scrubbing helpers; SPEC merges overrides onto os.environ.
# Not ported: tests/process/test_process_runner.py (old layout, all mocked subprocess.run/Popen) except its CompletedProcess and run_simple-failure tests.
# Not ported: tests/process/test_async_runner_comprehensive_coverage.py — old `async_runner` module layout; it duplicates test_async_run.py / test_async_stream.py / test_async_shell.py.

PRINT_TEST_VAR = python("import os; print(os.environ.get('TEST_VAR', 'not set'))")


# --------------------------------------------------------------------------------------------
# tests/process/test_runner.py
# --------------------------------------------------------------------------------------------


class TestRunnerRunCommand:
    def test_simple_command(self) -> None:
        """Seed: tests/process/test_runner.py::TestRunCommand::test_simple_command"""
        result = run(["echo", "hello"])
        assert result.returncode == 0
        assert "hello" in result.stdout
        assert result.stderr == ""

    def test_command_with_args(self) -> None:
        """Seed: tests/process/test_runner.py::TestRunCommand::test_command_with_args"""
        result = run(["echo", "hello", "world"])
        assert result.returncode == 0
        assert "hello world" in result.stdout

    def test_command_failure(self) -> None:
        """Seed: tests/process/test_runner.py::TestRunCommand::test_command_failure"""
        with pytest.raises(ProcessError) as exc_info:
            run(["false"], check=True)
        assert exc_info.value.return_code != 0

    def test_command_failure_no_check(self) -> None:
        """Seed: tests/process/test_runner.py::TestRunCommand::test_command_failure_no_check"""
        result = run(["false"], check=False)
        assert result.returncode != 0

    def test_command_with_cwd(self, tmp_path: Path) -> None:
        """Seed: tests/process/test_runner.py::TestRunCommand::test_command_with_cwd"""
        result = run(["pwd"], cwd=tmp_path)
        assert str(tmp_path) in result.stdout

    def test_command_with_env(self) -> None:
        """Seed: tests/process/test_runner.py::TestRunCommand::test_command_with_env"""
        result = run(PRINT_TEST_VAR, env={"TEST_VAR": "test_value", "PATH": "/usr/bin:/bin"})
        assert "test_value" in result.stdout

    def test_command_with_input(self) -> None:
        """Seed: tests/process/test_runner.py::TestRunCommand::test_command_with_input"""
        result = run(["cat"], input=b"test input")
        assert "test input" in result.stdout

    def test_command_timeout(self) -> None:
        """Seed: tests/process/test_runner.py::TestRunCommand::test_command_timeout"""
        with pytest.raises(ProcessTimeoutError):
            run(["sleep", "1"], timeout=0.1)

    def test_capture_output_false(self) -> None:
        """Seed: tests/process/test_runner.py::TestRunCommand::test_capture_output_false"""
        result = run(["echo", "hello"], capture_output=False)
        assert result.stdout == ""
        assert result.stderr == ""

    def test_command_as_string(self) -> None:
        """Seed: tests/process/test_runner.py::TestRunCommand::test_command_as_string"""
        result = run("echo hello", shell=True)
        assert result.returncode == 0
        assert "hello" in result.stdout


# --------------------------------------------------------------------------------------------
# tests/process/test_runner_coverage.py
# --------------------------------------------------------------------------------------------


class TestRunnerCoverageInputHandling:
    def test_bytes_input_with_text_mode(self) -> None:
        """Seed: tests/process/test_runner_coverage.py::TestInputHandling::test_bytes_input_with_text_mode"""
        result = run(["cat"], input=b"hello world", text=True, capture_output=True)
        assert result.returncode == 0
        assert "hello world" in result.stdout

    def test_string_input_with_binary_mode(self) -> None:
        """Seed: tests/process/test_runner_coverage.py::TestInputHandling::test_string_input_with_binary_mode"""
        result = run(["cat"], input="hello world", text=False, capture_output=True)
        assert result.returncode == 0
        assert isinstance(result.stdout, bytes)
        assert b"hello world" in result.stdout

    def test_matching_input_types(self) -> None:
        """Seed: tests/process/test_runner_coverage.py::TestInputHandling::test_matching_input_types"""
        text_result = run(["cat"], input="hello world", text=True, capture_output=True)
        assert text_result.returncode == 0
        assert "hello world" in text_result.stdout
        bytes_result = run(["cat"], input=b"hello world", text=False, capture_output=True)
        assert bytes_result.returncode == 0
        assert b"hello world" in bytes_result.stdout

    def test_none_input(self) -> None:
        """Seed: tests/process/test_runner_coverage.py::TestInputHandling::test_none_input"""
        assert run(["echo", "test"], input=None).returncode == 0

    def test_text_mode_decodes_non_utf8_bytes_safely(self) -> None:
        """Seed: tests/process/test_runner_coverage.py::TestInputHandling::test_text_mode_decodes_non_utf8_bytes_safely"""
        result = run(
            python("import sys; sys.stdout.buffer.write(b'pre\\x90post\\n')"),
            text=True,
            capture_output=True,
        )
        assert result.returncode == 0
        assert "pre" in result.stdout
        assert "post" in result.stdout


class TestRunnerCoverageErrorHandling:
    def test_subprocess_timeout_error(self) -> None:
        """Seed: tests/process/test_runner_coverage.py::TestErrorHandling::test_subprocess_timeout_error"""
        with pytest.raises(ProcessTimeoutError) as exc_info:
            run(["sleep", "1"], timeout=0.01, check=True)
        assert "timed out" in str(exc_info.value).lower()
        assert exc_info.value.code == "PROCESS_TIMEOUT"
        assert str(exc_info.value).startswith("Command timed out after")

    def test_generic_subprocess_exception(self) -> None:
        """Seed: tests/process/test_runner_coverage.py::TestErrorHandling::test_generic_subprocess_exception

        The seed mocks subprocess.run to raise OSError; here a real missing executable fails
        to start. SPEC adds that the message names the path.
        """
        with pytest.raises(ProcessError) as exc_info:
            run(["/nonexistent/command_12345"], check=True)
        assert "Failed to execute command" in str(exc_info.value)
        assert exc_info.value.code == "PROCESS_EXECUTION_FAILED"
        assert "/nonexistent/command_12345" in str(exc_info.value)

    def test_command_failure_with_check_false(self) -> None:
        """Seed: tests/process/test_runner_coverage.py::TestErrorHandling::test_command_failure_with_check_false"""
        assert run(["false"], check=False).returncode != 0

    def test_command_failure_with_check_true(self) -> None:
        """Seed: tests/process/test_runner_coverage.py::TestErrorHandling::test_command_failure_with_check_true"""
        with pytest.raises(ProcessError) as exc_info:
            run(["false"], check=True)
        assert exc_info.value.return_code != 0
        assert exc_info.value.code == "PROCESS_COMMAND_FAILED"
        assert str(exc_info.value).startswith("Command failed with exit code 1: false")


class TestRunnerCoverageWorkingDirectory:
    def test_cwd_as_string(self, tmp_path: Path) -> None:
        """Seed: tests/process/test_runner_coverage.py::TestWorkingDirectory::test_cwd_as_string"""
        (tmp_path / "test.txt").write_text("test content")
        result = run(["cat", "test.txt"], cwd=str(tmp_path))
        assert result.returncode == 0
        assert "test content" in result.stdout

    def test_cwd_as_path_object(self, tmp_path: Path) -> None:
        """Seed: tests/process/test_runner_coverage.py::TestWorkingDirectory::test_cwd_as_path_object"""
        (tmp_path / "test.txt").write_text("test content")
        result = run(["cat", "test.txt"], cwd=tmp_path)
        assert result.returncode == 0
        assert "test content" in result.stdout


class TestRunnerCoverageEnvironmentHandling:
    def test_env_dict_conversion(self) -> None:
        """Seed: tests/process/test_runner_coverage.py::TestEnvironmentHandling::test_env_dict_conversion"""
        result = run(["env"], env={"TEST_VAR": "test_value"}, capture_output=True)
        assert result.returncode == 0
        assert "TEST_VAR=test_value" in result.stdout

    def test_env_none(self) -> None:
        """Seed: tests/process/test_runner_coverage.py::TestEnvironmentHandling::test_env_none"""
        assert run(["echo", "test"], env=None).returncode == 0


class TestRunnerCoverageCompletedProcessConstruction:
    def test_completed_process_with_list_cmd(self) -> None:
        """Seed: tests/process/test_runner_coverage.py::TestCompletedProcessConstruction::test_completed_process_with_list_cmd"""
        result = run(["echo", "hello"], capture_output=True)
        assert isinstance(result.args, list)
        assert result.args == ["echo", "hello"]

    def test_completed_process_without_capture(self) -> None:
        """Seed: tests/process/test_runner_coverage.py::TestCompletedProcessConstruction::test_completed_process_without_capture"""
        result = run(["echo", "hello"], capture_output=False)
        assert result.stdout == ""
        assert result.stderr == ""

    def test_completed_process_env_handling(self) -> None:
        """Seed: tests/process/test_runner_coverage.py::TestCompletedProcessConstruction::test_completed_process_env_handling"""
        result = run(["echo", "test"], env={"TEST_VAR": "value"}, capture_output=True)
        assert result.env is not None
        assert "TEST_VAR" in result.env
        assert run(["echo", "test"], env=None, capture_output=True).env is None


# --------------------------------------------------------------------------------------------
# tests/process/test_process_runner_coverage.py
# --------------------------------------------------------------------------------------------


class TestProcessRunnerCoverage:
    def test_run_with_path_cwd(self) -> None:
        """Seed: tests/process/test_process_runner_coverage.py::TestProcessRunnerCoverage::test_run_with_path_cwd"""
        with tempfile.TemporaryDirectory() as tmpdir:
            result = run(["pwd"], cwd=Path(tmpdir), capture_output=True, check=True)
            assert tmpdir in result.stdout
            assert result.cwd == tmpdir

    def test_run_env_variable_update(self) -> None:
        """Seed: tests/process/test_process_runner_coverage.py::TestProcessRunnerCoverage::test_run_env_variable_update"""
        result = run(PRINT_TEST_VAR, env={"TEST_VAR": "test_value"}, capture_output=True)
        assert "test_value" in result.stdout

    def test_run_simple_strips_whitespace(self) -> None:
        """Seed: tests/process/test_process_runner_coverage.py::TestProcessRunnerCoverage::test_run_simple_strips_whitespace"""
        assert run_simple(["echo", "  test  "]) == "test"

    def test_run_handles_timeout(self) -> None:
        """Seed: tests/process/test_process_runner_coverage.py::TestProcessRunnerCoverage::test_run_handles_timeout"""
        with pytest.raises(ProcessTimeoutError) as exc_info:
            run(["sleep", "1"], timeout=0.1, check=True)
        assert "timed out" in str(exc_info.value)


# --------------------------------------------------------------------------------------------
# tests/process/test_process_runner.py (older layout; only the non-mocked tests)
# --------------------------------------------------------------------------------------------


class TestProcessRunnerCompletedProcess:
    def test_completed_process_creation(self) -> None:
        """Seed: tests/process/test_process_runner.py::TestCompletedProcess::test_completed_process_creation"""
        proc = CompletedProcess(
            args=["echo", "hello"],
            returncode=0,
            stdout="hello",
            stderr="",
            cwd="/tmp",
            env={"FOO": "bar"},
        )
        assert proc.args == ["echo", "hello"]
        assert proc.returncode == 0
        assert proc.stdout == "hello"
        assert proc.stderr == ""
        assert proc.cwd == "/tmp"
        assert proc.env == {"FOO": "bar"}

    def test_completed_process_minimal(self) -> None:
        """Seed: tests/process/test_process_runner.py::TestCompletedProcess::test_completed_process_minimal"""
        proc = CompletedProcess(args=["ls"], returncode=0, stdout="", stderr="")
        assert proc.args == ["ls"]
        assert proc.returncode == 0
        assert proc.cwd is None
        assert proc.env is None

    def test_run_command_simple_failure(self) -> None:
        """Seed: tests/process/test_process_runner.py::TestRunCommandSimple::test_run_command_simple_failure"""
        with pytest.raises(ProcessError):
            run_simple(["false"])


# --------------------------------------------------------------------------------------------
# tests/process/test_env.py (only the CompletedProcess / child-environment tests)
# --------------------------------------------------------------------------------------------


class TestEnvIntegrationWithProcessExecution:
    def test_caller_overrides_reach_subprocess(self) -> None:
        """Seed: tests/process/test_env.py::TestIntegrationWithProcessExecution::test_caller_overrides_reach_subprocess"""
        result = run(["env"], env={"MY_CUSTOM_VAR": "test_value_12345"}, capture_output=True)
        assert "MY_CUSTOM_VAR=test_value_12345" in result.stdout

    def test_completed_process_only_stores_overrides(self) -> None:
        """Seed: tests/process/test_env.py::TestIntegrationWithProcessExecution::test_completed_process_only_stores_overrides"""
        result = run(["echo", "test"], env={"MY_VAR": "value"}, capture_output=True)
        assert result.env == {"MY_VAR": "value"}
        assert "PATH" not in result.env

    def test_completed_process_no_env_when_none_provided(self) -> None:
        """Seed: tests/process/test_env.py::TestIntegrationWithProcessExecution::test_completed_process_no_env_when_none_provided"""
        assert run(["echo", "test"], capture_output=True).env is None


# --------------------------------------------------------------------------------------------
# tests/process/test_async_run.py
# --------------------------------------------------------------------------------------------


class TestAsyncRunCommand:
    @pytest.mark.anyio
    async def test_basic_command_success(self) -> None:
        """Seed: tests/process/test_async_run.py::TestAsyncRunCommand::test_basic_command_success"""
        result = await async_run(["echo", "hello world"])
        assert isinstance(result, CompletedProcess)
        assert result.returncode == 0
        assert "hello world" in result.stdout
        assert result.stderr == ""
        assert result.args == ["echo", "hello world"]

    @pytest.mark.anyio
    async def test_command_with_string_cmd(self) -> None:
        """Seed: tests/process/test_async_run.py::TestAsyncRunCommand::test_command_with_string_cmd"""
        result = await async_run("echo hello", shell=True)
        assert isinstance(result, CompletedProcess)
        assert result.returncode == 0
        assert "hello" in result.stdout
        assert result.args == ["echo hello"]

    @pytest.mark.anyio
    async def test_command_with_cwd_string(self) -> None:
        """Seed: tests/process/test_async_run.py::TestAsyncRunCommand::test_command_with_cwd_string"""
        with tempfile.TemporaryDirectory() as tmpdir:
            result = await async_run(["pwd"], cwd=tmpdir)
            assert tmpdir in result.stdout

    @pytest.mark.anyio
    async def test_command_with_cwd_path(self) -> None:
        """Seed: tests/process/test_async_run.py::TestAsyncRunCommand::test_command_with_cwd_path"""
        with tempfile.TemporaryDirectory() as tmpdir:
            result = await async_run(["pwd"], cwd=Path(tmpdir))
            assert tmpdir in result.stdout
            assert result.cwd == tmpdir

    @pytest.mark.anyio
    async def test_command_with_custom_env(self) -> None:
        """Seed: tests/process/test_async_run.py::TestAsyncRunCommand::test_command_with_custom_env"""
        result = await async_run(
            python("import os; print('VAR=' + os.environ.get('TEST_ASYNC_VAR', 'NOT_FOUND'))"),
            env={"TEST_ASYNC_VAR": "test_value_async"},
        )
        assert "VAR=test_value_async" in result.stdout
        assert result.env is not None
        assert "TEST_ASYNC_VAR" in result.env

    @pytest.mark.anyio
    async def test_command_env_none(self) -> None:
        """Seed: tests/process/test_async_run.py::TestAsyncRunCommand::test_command_env_none"""
        assert (await async_run(["echo", "test"], env=None)).env is None

    @pytest.mark.anyio
    async def test_command_with_input(self) -> None:
        """Seed: tests/process/test_async_run.py::TestAsyncRunCommand::test_command_with_input"""
        result = await async_run(
            python("import sys; print('INPUT: ' + sys.stdin.read().strip())"),
            input=b"test input",
        )
        assert "INPUT: test input" in result.stdout

    @pytest.mark.anyio
    async def test_command_no_capture_output(self) -> None:
        """Seed: tests/process/test_async_run.py::TestAsyncRunCommand::test_command_no_capture_output"""
        result = await async_run(["echo", "test"], capture_output=False)
        assert result.stdout == ""
        assert result.stderr == ""
        assert result.returncode == 0

    @pytest.mark.anyio
    async def test_command_check_false_with_failure(self) -> None:
        """Seed: tests/process/test_async_run.py::TestAsyncRunCommand::test_command_check_false_with_failure"""
        result = await async_run(python("import sys; sys.exit(1)"), check=False)
        assert result.returncode == 1

    @pytest.mark.anyio
    async def test_command_check_true_with_failure(self) -> None:
        """Seed: tests/process/test_async_run.py::TestAsyncRunCommand::test_command_check_true_with_failure"""
        with pytest.raises(ProcessError, match="Command failed with exit code 1") as exc_info:
            await async_run(python("import sys; sys.exit(1)"), check=True)
        assert exc_info.value.return_code == 1

    @pytest.mark.anyio
    async def test_command_with_timeout_success(self) -> None:
        """Seed: tests/process/test_async_run.py::TestAsyncRunCommand::test_command_with_timeout_success"""
        result = await async_run(["echo", "fast"], timeout=5.0)
        assert result.returncode == 0
        assert "fast" in result.stdout

    @pytest.mark.anyio
    async def test_command_with_timeout_exceeded(self) -> None:
        """Seed: tests/process/test_async_run.py::TestAsyncRunCommand::test_command_with_timeout_exceeded"""
        with pytest.raises(ProcessTimeoutError, match="Command timed out after") as exc_info:
            await async_run(python("import time; time.sleep(2)"), timeout=0.5)
        assert exc_info.value.code == "PROCESS_ASYNC_TIMEOUT"
        assert exc_info.value.timeout is True

    @pytest.mark.anyio
    async def test_command_shell_true(self) -> None:
        """Seed: tests/process/test_async_run.py::TestAsyncRunCommand::test_command_shell_true"""
        result = await async_run("echo 'shell command'", shell=True)
        assert result.returncode == 0
        assert "shell command" in result.stdout

    @pytest.mark.anyio
    async def test_command_shell_false_list_cmd(self) -> None:
        """Seed: tests/process/test_async_run.py::TestAsyncRunCommand::test_command_shell_false_list_cmd"""
        result = await async_run(["echo", "no shell"])
        assert result.returncode == 0
        assert "no shell" in result.stdout

    @pytest.mark.anyio
    async def test_command_with_kwargs(self) -> None:
        """Seed: tests/process/test_async_run.py::TestAsyncRunCommand::test_command_with_kwargs

        As the seed, the unknown keyword argument is dropped; procfound says so with an
        IgnoredArgumentWarning (the seed was silent).
        """
        with pytest.warns(IgnoredArgumentWarning, match="some_kwarg"):
            result = await async_run(["echo", "test"], shell=False, some_kwarg="value")
        assert result.stdout == "test\n"

    @pytest.mark.anyio
    async def test_command_execution_exception(self) -> None:
        """Seed: tests/process/test_async_run.py::TestAsyncRunCommand::test_command_execution_exception"""
        with pytest.raises(ProcessError, match="Failed to execute async command") as exc_info:
            await async_run(["/nonexistent/command"])
        assert exc_info.value.code == "PROCESS_ASYNC_EXECUTION_FAILED"
        assert "/nonexistent/command" in str(exc_info.value)

    @pytest.mark.anyio
    async def test_process_error_is_wrapped(self) -> None:
        """Seed: tests/process/test_async_run.py::TestAsyncRunCommand::test_process_error_is_wrapped

        The seed patches create_subprocess to raise OSError and checks the ProcessError's
        __cause__; here a real missing executable makes the spawn fail.
        """
        with pytest.raises(ProcessError) as exc_info:
            await async_run(["/nonexistent/command"])
        assert isinstance(exc_info.value.__cause__, OSError)

    @pytest.mark.anyio
    async def test_decode_error_handling(self) -> None:
        """Seed: tests/process/test_async_run.py::TestAsyncRunEdgeCases::test_decode_error_handling

        The seed mocks communicate() to return invalid UTF-8; here a real child writes it.
        """
        result = await async_run(python("import sys; sys.stdout.buffer.write(b'\\xff\\xfe')"))
        assert result.returncode == 0
        assert result.stdout == "\ufffd\ufffd"


class TestAsyncRunEdgeCases:
    @pytest.mark.anyio
    async def test_empty_command_list(self) -> None:
        """Seed: tests/process/test_async_run.py::TestAsyncRunEdgeCases::test_empty_command_list

        Differs from the seed: SPEC makes bad arguments a ValidationError, not a ProcessError.
        """
        with pytest.raises(ValidationError):
            await async_run([])

    @pytest.mark.anyio
    async def test_none_command(self) -> None:
        """Seed: tests/process/test_async_run.py::TestAsyncRunEdgeCases::test_none_command

        Differs from the seed: SPEC makes bad arguments a ValidationError, not a ProcessError.
        """
        with pytest.raises(ValidationError):
            await async_run(None)  # type: ignore[arg-type]

    @pytest.mark.anyio
    async def test_shell_command_kwargs_filtering(self) -> None:
        """Seed: tests/process/test_async_run.py::TestAsyncRunEdgeCases::test_shell_command_kwargs_filtering

        ``encoding`` is accepted; the unknown ``extra_kwarg`` is dropped, as by the seed, with an
        IgnoredArgumentWarning.
        """
        result = await async_run("echo test", shell=True, encoding="utf-8")
        assert result.stdout == "test\n"
        with pytest.warns(IgnoredArgumentWarning, match="extra_kwarg"):
            result = await async_run("echo test", shell=True, extra_kwarg="value", encoding="utf-8")
        assert result.stdout == "test\n"


# --------------------------------------------------------------------------------------------
# tests/process/test_async_runner.py
# --------------------------------------------------------------------------------------------


class TestAsyncRunnerRunCommand:
    @pytest.mark.anyio
    async def test_simple_command(self) -> None:
        """Seed: tests/process/test_async_runner.py::TestAsyncRunCommand::test_simple_command"""
        result = await async_run(["echo", "hello"])
        assert result.returncode == 0
        assert "hello" in result.stdout
        assert result.stderr == ""

    @pytest.mark.anyio
    async def test_command_with_args(self) -> None:
        """Seed: tests/process/test_async_runner.py::TestAsyncRunCommand::test_command_with_args"""
        result = await async_run(["echo", "hello", "world"])
        assert result.returncode == 0
        assert "hello world" in result.stdout

    @pytest.mark.anyio
    async def test_command_failure(self) -> None:
        """Seed: tests/process/test_async_runner.py::TestAsyncRunCommand::test_command_failure"""
        with pytest.raises(ProcessError) as exc_info:
            await async_run(["false"], check=True)
        assert exc_info.value.return_code != 0

    @pytest.mark.anyio
    async def test_command_failure_no_check(self) -> None:
        """Seed: tests/process/test_async_runner.py::TestAsyncRunCommand::test_command_failure_no_check"""
        assert (await async_run(["false"], check=False)).returncode != 0

    @pytest.mark.anyio
    async def test_command_with_cwd(self, tmp_path: Path) -> None:
        """Seed: tests/process/test_async_runner.py::TestAsyncRunCommand::test_command_with_cwd"""
        result = await async_run(["pwd"], cwd=tmp_path)
        assert str(tmp_path) in result.stdout

    @pytest.mark.anyio
    async def test_command_with_env(self) -> None:
        """Seed: tests/process/test_async_runner.py::TestAsyncRunCommand::test_command_with_env"""
        result = await async_run(
            PRINT_TEST_VAR, env={"TEST_VAR": "test_value", "PATH": "/usr/bin:/bin"}
        )
        assert "test_value" in result.stdout

    @pytest.mark.anyio
    async def test_command_with_input(self) -> None:
        """Seed: tests/process/test_async_runner.py::TestAsyncRunCommand::test_command_with_input"""
        result = await async_run(["cat"], input=b"test input")
        assert "test input" in result.stdout

    @pytest.mark.anyio
    async def test_command_timeout(self) -> None:
        """Seed: tests/process/test_async_runner.py::TestAsyncRunCommand::test_command_timeout"""
        with pytest.raises(ProcessTimeoutError):
            await async_run(["sleep", "1"], timeout=0.1)

    @pytest.mark.anyio
    async def test_capture_output_false(self) -> None:
        """Seed: tests/process/test_async_runner.py::TestAsyncRunCommand::test_capture_output_false"""
        result = await async_run(["echo", "hello"], capture_output=False)
        assert result.stdout == ""
        assert result.stderr == ""


# --------------------------------------------------------------------------------------------
# tests/process/test_async_runner_coverage.py
# --------------------------------------------------------------------------------------------


class TestAsyncRunnerCoverage:
    @pytest.mark.anyio
    async def test_none_input(self) -> None:
        """Seed: tests/process/test_async_runner_coverage.py::TestAsyncInputHandling::test_none_input"""
        assert (await async_run(["echo", "test"], input=None)).returncode == 0

    @pytest.mark.anyio
    async def test_async_subprocess_timeout_error(self) -> None:
        """Seed: tests/process/test_async_runner_coverage.py::TestAsyncErrorHandling::test_async_subprocess_timeout_error"""
        with pytest.raises(ProcessTimeoutError) as exc_info:
            await async_run(["sleep", "1"], timeout=0.01, check=True)
        assert "timed out" in str(exc_info.value).lower()

    @pytest.mark.anyio
    async def test_async_generic_subprocess_exception(self) -> None:
        """Seed: tests/process/test_async_runner_coverage.py::TestAsyncErrorHandling::test_async_generic_subprocess_exception

        The seed mocks create_subprocess_exec to raise OSError; here a real missing executable.
        """
        with pytest.raises(ProcessError) as exc_info:
            await async_run(["nonexistent_command_12345"], check=True)
        assert "Failed to execute async command" in str(exc_info.value)
        assert exc_info.value.code == "PROCESS_ASYNC_EXECUTION_FAILED"

    @pytest.mark.anyio
    async def test_async_command_failure_with_check_false(self) -> None:
        """Seed: tests/process/test_async_runner_coverage.py::TestAsyncErrorHandling::test_async_command_failure_with_check_false"""
        assert (await async_run(["false"], check=False)).returncode != 0

    @pytest.mark.anyio
    async def test_async_command_failure_with_check_true(self) -> None:
        """Seed: tests/process/test_async_runner_coverage.py::TestAsyncErrorHandling::test_async_command_failure_with_check_true"""
        with pytest.raises(ProcessError) as exc_info:
            await async_run(["false"], check=True)
        assert exc_info.value.return_code != 0
        assert exc_info.value.code == "PROCESS_ASYNC_FAILED"

    @pytest.mark.anyio
    async def test_async_cwd_as_string(self, tmp_path: Path) -> None:
        """Seed: tests/process/test_async_runner_coverage.py::TestAsyncWorkingDirectory::test_async_cwd_as_string"""
        (tmp_path / "test.txt").write_text("test content")
        result = await async_run(["cat", "test.txt"], cwd=str(tmp_path))
        assert result.returncode == 0
        assert "test content" in result.stdout

    @pytest.mark.anyio
    async def test_async_cwd_as_path_object(self, tmp_path: Path) -> None:
        """Seed: tests/process/test_async_runner_coverage.py::TestAsyncWorkingDirectory::test_async_cwd_as_path_object"""
        (tmp_path / "test.txt").write_text("test content")
        result = await async_run(["cat", "test.txt"], cwd=tmp_path)
        assert result.returncode == 0
        assert "test content" in result.stdout

    @pytest.mark.anyio
    async def test_async_env_dict_conversion(self) -> None:
        """Seed: tests/process/test_async_runner_coverage.py::TestAsyncEnvironmentHandling::test_async_env_dict_conversion"""
        result = await async_run(["env"], env={"TEST_VAR": "test_value"}, capture_output=True)
        assert result.returncode == 0
        assert "TEST_VAR=test_value" in result.stdout

    @pytest.mark.anyio
    async def test_async_env_none(self) -> None:
        """Seed: tests/process/test_async_runner_coverage.py::TestAsyncEnvironmentHandling::test_async_env_none"""
        assert (await async_run(["echo", "test"], env=None)).returncode == 0

    @pytest.mark.anyio
    async def test_async_completed_process_with_list_cmd(self) -> None:
        """Seed: tests/process/test_async_runner_coverage.py::TestAsyncCompletedProcessConstruction::test_async_completed_process_with_list_cmd"""
        result = await async_run(["echo", "hello"], capture_output=True)
        assert result.args == ["echo", "hello"]

    @pytest.mark.anyio
    async def test_async_completed_process_with_string_cmd(self) -> None:
        """Seed: tests/process/test_async_runner_coverage.py::TestAsyncCompletedProcessConstruction::test_async_completed_process_with_string_cmd"""
        result = await async_shell("echo hello", capture_output=True)
        assert "echo hello" in str(result.args)

    @pytest.mark.anyio
    async def test_async_completed_process_without_capture(self) -> None:
        """Seed: tests/process/test_async_runner_coverage.py::TestAsyncCompletedProcessConstruction::test_async_completed_process_without_capture"""
        result = await async_run(["echo", "hello"], capture_output=False)
        assert result.stdout == ""
        assert result.stderr == ""

    @pytest.mark.anyio
    async def test_async_completed_process_env_handling(self) -> None:
        """Seed: tests/process/test_async_runner_coverage.py::TestAsyncCompletedProcessConstruction::test_async_completed_process_env_handling"""
        result = await async_run(["echo", "test"], env={"TEST_VAR": "value"}, capture_output=True)
        assert result.env is not None
        assert "TEST_VAR" in result.env
        assert (await async_run(["echo", "test"], env=None, capture_output=True)).env is None

    @pytest.mark.anyio
    async def test_async_cancel_during_execution(self) -> None:
        """Seed: tests/process/test_async_runner_coverage.py::TestAsyncContextualBehavior::test_async_cancel_during_execution

        The seed cancels an asyncio task; here an AnyIO cancel scope does the same on both
        backends. The cancellation must take effect quickly (the seed allows 2 s) and leave no
        child behind (the autouse leak check).
        """
        started = anyio.current_time()
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(async_run, ["sleep", "10"])
                await anyio.sleep(0.1)
                scope.cancel()
        assert scope.cancelled_caught
        assert anyio.current_time() - started < 2.0

    @pytest.mark.anyio
    async def test_async_concurrent_commands(self) -> None:
        """Seed: tests/process/test_async_runner_coverage.py::TestAsyncContextualBehavior::test_async_concurrent_commands"""
        results: dict[int, CompletedProcess] = {}

        async def one(i: int) -> None:
            results[i] = await async_run(["echo", f"hello{i}"])

        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(one, i)
        assert len(results) == 3
        for i, result in results.items():
            assert result.returncode == 0
            assert f"hello{i}" in result.stdout
