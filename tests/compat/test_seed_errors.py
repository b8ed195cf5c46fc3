# ruff: noqa: E501  (docstrings name seed tests by their full, greppable node ids)
"""Seed compatibility: ProcessError, ProcessTimeoutError and ShellFeatureError.

Each test re-expresses one behavioural test of provide-foundation (the seed library) against
procfound; its docstring names the seed test. Where SPEC.md deliberately differs from the seed,
the test asserts procfound's behaviour and says so.
"""

from __future__ import annotations

from procfound import ProcessError, ProcessTimeoutError, ShellFeatureError

# Not ported: tests/errors/test_process_coverage.py::TestCommandNotFoundError::* — CommandNotFoundError is not in the process API (the seed's process module never raises it; SPEC has no such name).
# Not ported: `error._default_code()` calls — a private seed method; the same value is checked through `.code`.

# --------------------------------------------------------------------------------------------
# tests/errors/test_process_coverage.py
# --------------------------------------------------------------------------------------------


class TestProcessError:
    def test_basic_process_error(self) -> None:
        """Seed: tests/errors/test_process_coverage.py::TestProcessError::test_basic_process_error"""
        error = ProcessError("Process failed")
        assert str(error) == "Process failed"
        assert error.message == "Process failed"
        assert error.command is None
        assert error.return_code is None
        assert error.stdout is None
        assert error.stderr is None
        assert error.timeout is False
        assert error.code == "PROCESS_ERROR"

    def test_process_error_with_command_string(self) -> None:
        """Seed: tests/errors/test_process_coverage.py::TestProcessError::test_process_error_with_command_string"""
        error = ProcessError("Command failed", command="ls -la", return_code=1)
        assert str(error) == "Command failed\nCommand: ls -la\nReturn code: 1"
        assert error.command == "ls -la"
        assert error.return_code == 1

    def test_process_error_with_command_list(self) -> None:
        """Seed: tests/errors/test_process_coverage.py::TestProcessError::test_process_error_with_command_list"""
        error = ProcessError("Command failed", command=["ls", "-la", "/nonexistent"], return_code=2)
        assert str(error) == "Command failed\nCommand: ls -la /nonexistent\nReturn code: 2"
        assert error.command == ["ls", "-la", "/nonexistent"]
        assert error.return_code == 2

    def test_process_error_with_timeout(self) -> None:
        """Seed: tests/errors/test_process_coverage.py::TestProcessError::test_process_error_with_timeout"""
        error = ProcessError("Process timed out", command="sleep 10", timeout=True)
        assert str(error) == "Process timed out\nCommand: sleep 10\nProcess timed out"
        assert error.timeout is True

    def test_process_error_with_stdout_string(self) -> None:
        """Seed: tests/errors/test_process_coverage.py::TestProcessError::test_process_error_with_stdout_string"""
        error = ProcessError("Command output", command="echo hello", stdout="hello world\n")
        assert str(error) == "Command output\nCommand: echo hello\n--- STDOUT ---\nhello world"
        assert error.stdout == "hello world"

    def test_process_error_with_stdout_bytes(self) -> None:
        """Seed: tests/errors/test_process_coverage.py::TestProcessError::test_process_error_with_stdout_bytes"""
        error = ProcessError("Command output", command="cat file.txt", stdout=b"binary content\n")
        assert str(error) == "Command output\nCommand: cat file.txt\n--- STDOUT ---\nbinary content"
        assert error.stdout == "binary content"

    def test_process_error_with_stderr_string(self) -> None:
        """Seed: tests/errors/test_process_coverage.py::TestProcessError::test_process_error_with_stderr_string"""
        message = "cat: /nonexistent: No such file or directory"
        error = ProcessError("Command failed", command="cat /nonexistent", stderr=message + "\n")
        assert str(error) == f"Command failed\nCommand: cat /nonexistent\n--- STDERR ---\n{message}"
        assert error.stderr == message

    def test_process_error_with_stderr_bytes(self) -> None:
        """Seed: tests/errors/test_process_coverage.py::TestProcessError::test_process_error_with_stderr_bytes"""
        error = ProcessError(
            "Command failed", command="invalid_command", stderr=b"command not found\n"
        )
        assert (
            str(error)
            == "Command failed\nCommand: invalid_command\n--- STDERR ---\ncommand not found"
        )
        assert error.stderr == "command not found"

    def test_process_error_with_both_outputs(self) -> None:
        """Seed: tests/errors/test_process_coverage.py::TestProcessError::test_process_error_with_both_outputs"""
        error = ProcessError(
            "Mixed output",
            command="test_cmd",
            stdout="successful part\n",
            stderr="warning message\n",
        )
        assert str(error) == (
            "Mixed output\nCommand: test_cmd\n--- STDOUT ---\nsuccessful part"
            "\n--- STDERR ---\nwarning message"
        )
        assert error.stdout == "successful part"
        assert error.stderr == "warning message"

    def test_process_error_with_empty_stdout(self) -> None:
        """Seed: tests/errors/test_process_coverage.py::TestProcessError::test_process_error_with_empty_stdout"""
        error = ProcessError("No output", command="silent_cmd", stdout="")
        assert str(error) == "No output\nCommand: silent_cmd"
        assert error.stdout is None

    def test_process_error_with_empty_stderr(self) -> None:
        """Seed: tests/errors/test_process_coverage.py::TestProcessError::test_process_error_with_empty_stderr"""
        error = ProcessError("No errors", command="clean_cmd", stderr="")
        assert str(error) == "No errors\nCommand: clean_cmd"
        assert error.stderr is None

    def test_process_error_with_whitespace_only_stdout_message(self) -> None:
        """Seed: tests/errors/test_process_coverage.py::TestProcessError::test_process_error_with_whitespace_only_stdout (message half)"""
        error = ProcessError("Whitespace output", command="space_cmd", stdout="   \n\t  \n   ")
        assert str(error) == "Whitespace output\nCommand: space_cmd"

    def test_process_error_with_whitespace_only_stdout(self) -> None:
        """Seed: tests/errors/test_process_coverage.py::TestProcessError::test_process_error_with_whitespace_only_stdout"""
        error = ProcessError("Whitespace output", command="space_cmd", stdout="   \n\t  \n   ")
        assert error.stdout == ""

    def test_process_error_with_whitespace_only_stderr_message(self) -> None:
        """Seed: tests/errors/test_process_coverage.py::TestProcessError::test_process_error_with_whitespace_only_stderr (message half)"""
        error = ProcessError("Whitespace errors", command="space_cmd", stderr="   \n\t  \n   ")
        assert str(error) == "Whitespace errors\nCommand: space_cmd"

    def test_process_error_with_whitespace_only_stderr(self) -> None:
        """Seed: tests/errors/test_process_coverage.py::TestProcessError::test_process_error_with_whitespace_only_stderr"""
        error = ProcessError("Whitespace errors", command="space_cmd", stderr="   \n\t  \n   ")
        assert error.stderr == ""

    def test_process_error_with_extra_context(self) -> None:
        """Seed: tests/errors/test_process_coverage.py::TestProcessError::test_process_error_with_extra_context"""
        error = ProcessError(
            "Context test",
            command="test_cmd",
            return_code=42,
            custom_field="custom_value",
            another_field=123,
        )
        assert error.context["custom_field"] == "custom_value"
        assert error.context["another_field"] == 123
        assert error.context["process.command"] == "test_cmd"
        assert error.context["process.return_code"] == 42
        assert error.context["process.timeout"] is False

    def test_process_error_comprehensive_scenario(self) -> None:
        """Seed: tests/errors/test_process_coverage.py::TestProcessError::test_process_error_comprehensive_scenario"""
        error = ProcessError(
            "Full test",
            command=["complex", "command", "--flag"],
            return_code=127,
            stdout=b"output data\n",
            stderr=b"error data\n",
            timeout=True,
            env_var="TEST_ENV",
            working_dir="/tmp",
        )
        assert str(error) == (
            "Full test\nCommand: complex command --flag\n"
            "Return code: 127\nProcess timed out\n"
            "--- STDOUT ---\noutput data\n"
            "--- STDERR ---\nerror data"
        )
        assert error.command == ["complex", "command", "--flag"]
        assert error.return_code == 127
        assert error.stdout == "output data"
        assert error.stderr == "error data"
        assert error.timeout is True
        assert error.context["env_var"] == "TEST_ENV"
        assert error.context["working_dir"] == "/tmp"

    def test_process_error_output_in_message_is_a_tail(self) -> None:
        """Seed: tests/errors/test_process_coverage.py (exact-message tests; SPEC wins for long output)

        Differs from the seed: the seed puts all of stdout/stderr in the message; SPEC keeps
        only a readable tail in the message while the attributes keep everything.
        """
        big = "".join(f"line {i}\n" for i in range(5000))
        error = ProcessError("Command failed", command="big", stdout=big, stderr=big)
        assert error.stdout == big.strip()
        assert error.stderr == big.strip()
        assert len(str(error)) < len(big)
        assert str(error).startswith("Command failed\nCommand: big\n--- STDOUT ---\n")
        assert str(error).endswith("line 4999")


class TestProcessTimeoutError:
    def test_process_timeout_basic(self) -> None:
        """Seed: tests/errors/test_process_coverage.py::TestProcessTimeoutError::test_process_timeout_basic"""
        error = ProcessTimeoutError("Process timed out")
        assert str(error) == "Process timed out\nProcess timed out"
        assert error.code == "PROCESS_TIMEOUT"
        assert error.timeout is True
        assert isinstance(error, ProcessError)

    def test_process_timeout_with_command(self) -> None:
        """Seed: tests/errors/test_process_coverage.py::TestProcessTimeoutError::test_process_timeout_with_command"""
        error = ProcessTimeoutError(
            "Timeout occurred", command="long_running_cmd", timeout_seconds=30.0
        )
        assert str(error) == "Timeout occurred\nCommand: long_running_cmd\nProcess timed out"
        assert error.command == "long_running_cmd"
        assert error.timeout is True
        assert error.context["process.timeout_seconds"] == 30.0

    def test_process_timeout_with_outputs(self) -> None:
        """Seed: tests/errors/test_process_coverage.py::TestProcessTimeoutError::test_process_timeout_with_outputs"""
        error = ProcessTimeoutError(
            "Timeout with output",
            command=["slow_process", "--verbose"],
            timeout_seconds=60.0,
            stdout="Partial output before timeout\n",
            stderr="Warning: slow operation\n",
        )
        assert str(error) == (
            "Timeout with output\nCommand: slow_process --verbose\n"
            "Process timed out\n--- STDOUT ---\nPartial output before timeout\n"
            "--- STDERR ---\nWarning: slow operation"
        )
        assert error.stdout == "Partial output before timeout"
        assert error.stderr == "Warning: slow operation"
        assert error.context["process.timeout_seconds"] == 60.0
        assert error.timeout is True

    def test_process_timeout_with_bytes_outputs(self) -> None:
        """Seed: tests/errors/test_process_coverage.py::TestProcessTimeoutError::test_process_timeout_with_bytes_outputs"""
        error = ProcessTimeoutError(
            "Timeout with bytes",
            command="binary_process",
            timeout_seconds=45.0,
            stdout=b"binary stdout\n",
            stderr=b"binary stderr\n",
        )
        assert str(error) == (
            "Timeout with bytes\nCommand: binary_process\n"
            "Process timed out\n--- STDOUT ---\nbinary stdout\n"
            "--- STDERR ---\nbinary stderr"
        )
        assert error.stdout == "binary stdout"
        assert error.stderr == "binary stderr"

    def test_process_timeout_with_extra_context(self) -> None:
        """Seed: tests/errors/test_process_coverage.py::TestProcessTimeoutError::test_process_timeout_with_extra_context"""
        error = ProcessTimeoutError(
            "Context timeout",
            command="context_cmd",
            timeout_seconds=120.0,
            process_id=12345,
            signal_used="SIGTERM",
        )
        assert error.context["process.timeout_seconds"] == 120.0
        assert error.context["process_id"] == 12345
        assert error.context["signal_used"] == "SIGTERM"
        assert error.timeout is True

    def test_process_timeout_is_a_builtin_timeout_error(self) -> None:
        """Seed: tests/errors/test_process_coverage.py::TestProcessTimeoutError (SPEC addition)

        Differs from the seed: SPEC makes ProcessTimeoutError also a builtin TimeoutError.
        """
        error = ProcessTimeoutError("t", timeout_seconds=1.0)
        assert isinstance(error, TimeoutError)
        assert error.timeout_seconds == 1.0


class TestProcessErrorInheritance:
    def test_all_are_process_errors(self) -> None:
        """Seed: tests/errors/test_process_coverage.py::TestProcessErrorInheritance::test_all_are_process_errors"""
        assert isinstance(ProcessTimeoutError("timeout error"), ProcessError)
        assert isinstance(ShellFeatureError("s", pattern="|", command="a|b"), ProcessError)

    def test_unique_error_codes(self) -> None:
        """Seed: tests/errors/test_process_coverage.py::TestProcessErrorInheritance::test_unique_error_codes"""
        codes = {
            ProcessError("base").code,
            ProcessTimeoutError("timeout").code,
            ShellFeatureError("shell", pattern="|", command="a|b").code,
        }
        assert codes == {"PROCESS_ERROR", "PROCESS_TIMEOUT", "SHELL_FEATURE_NOT_ALLOWED"}

    def test_polymorphic_behavior(self) -> None:
        """Seed: tests/errors/test_process_coverage.py::TestProcessErrorInheritance::test_polymorphic_behavior"""
        errors = [
            ProcessError("base error", return_code=1),
            ProcessTimeoutError("timeout", timeout_seconds=30.0),
        ]
        for error in errors:
            for attribute in ("command", "return_code", "stdout", "stderr", "timeout", "code"):
                assert hasattr(error, attribute)
        assert not errors[0].timeout
        assert errors[1].timeout


# --------------------------------------------------------------------------------------------
# tests/process/test_shell_validation.py::TestShellFeatureError
# --------------------------------------------------------------------------------------------


class TestShellFeatureError:
    def test_shell_feature_error_creation(self) -> None:
        """Seed: tests/process/test_shell_validation.py::TestShellFeatureError::test_shell_feature_error_creation"""
        error = ShellFeatureError(
            "Shell feature not allowed", pattern="|", command="cat file | grep pattern"
        )
        assert error.pattern == "|"
        assert error.command == "cat file | grep pattern"
        assert "Shell feature not allowed" in str(error)
        assert error.code == "SHELL_FEATURE_NOT_ALLOWED"
        assert error.context["pattern"] == "|"
        assert {"pattern", "process.command", "process.return_code", "process.timeout"} <= set(
            error.context
        )

    def test_shell_feature_error_inherits_process_error(self) -> None:
        """Seed: tests/process/test_shell_validation.py::TestShellFeatureError::test_shell_feature_error_inherits_process_error"""
        assert isinstance(ShellFeatureError("test", pattern="|", command="test"), ProcessError)

    def test_shell_feature_error_truncates_long_command(self) -> None:
        """Seed: tests/process/test_shell_validation.py::TestShellFeatureError::test_shell_feature_error_truncates_long_command"""
        error = ShellFeatureError("test", pattern="|", command="a" * 200)
        assert len(error.command) == 100
        assert str(error) == "test\nCommand: " + "a" * 100
