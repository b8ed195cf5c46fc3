"""The shell guard of `shell` / `async_shell`: metacharacters refused before anything runs."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from conftest import SyncCall, wait_gone

from procfound import (
    ProcessError,
    ProcessTimeoutError,
    ShellFeatureError,
    ValidationError,
    async_shell,
    shell,
)

# Each command contains its pattern and no pattern that comes earlier in the SPEC's list (the
# guard reports the first hit in list order), and each would create a file in its cwd if run.
REFUSED = [
    (";", "touch ran; true"),
    ("&&", "true && touch ran"),
    ("||", "false || touch ran"),
    ("|", "touch ran | cat"),
    (">", "echo x > ran"),
    ("<", "touch ran < /dev/null"),
    ("&", "touch ran & wait"),
    ("$", "touch ran$PROCFOUND_UNSET_VARIABLE"),
    ("`", "touch ran`true`"),
    ("(", "(touch ran)"),
    (")", "case x in x) touch ran\nesac"),
    ("{", "{ touch ran\n}"),
    ("}", "touch ran }"),
    ("*", "touch ran *"),
    ("?", "touch ran ?"),
    ("~", "touch ran~"),
    ("\n", "true\ntouch ran"),
    ("\r", "touch ran\r"),
]
REFUSED_IDS = [
    "semicolon",
    "and",
    "or",
    "pipe",
    "redirect-out",
    "redirect-in",
    "background",
    "dollar",
    "backtick",
    "open-paren",
    "close-paren",
    "open-brace",
    "close-brace",
    "star",
    "question",
    "tilde",
    "newline",
    "carriage-return",
]

SAFE = [
    "echo 'hi there'",
    'echo "double quoted" plain',
    "echo a=b 100% [x] ../up !bang #hash",
    "echo back\\\\slash 'tab\there'",
]


def test_the_pattern_table_covers_all_18_spec_patterns() -> None:
    spec_order = [";", "&&", "||", "|", ">", "<", "&", "$", "`", "(", ")", "{", "}", "*", "?", "~"]
    assert [pattern for pattern, _ in REFUSED] == [*spec_order, "\n", "\r"]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def check_refusal(error: ShellFeatureError, pattern: str, workdir: Path) -> None:
    assert isinstance(error, ProcessError)
    assert error.pattern == pattern
    assert error.code == "SHELL_FEATURE_NOT_ALLOWED"
    assert "allow_shell_features" in str(error)
    assert list(workdir.iterdir()) == [], "the command ran although it was refused"


@pytest.mark.parametrize(("pattern", "command"), REFUSED, ids=REFUSED_IDS)
def test_shell_refuses_each_spec_pattern_before_anything_runs(
    sync_call: SyncCall, workdir: Path, pattern: str, command: str
) -> None:
    with pytest.raises(ShellFeatureError) as info:
        sync_call(shell, command, cwd=workdir)
    check_refusal(info.value, pattern, workdir)


@pytest.mark.anyio
@pytest.mark.parametrize(("pattern", "command"), REFUSED, ids=REFUSED_IDS)
async def test_async_shell_refuses_each_spec_pattern_before_anything_runs(
    workdir: Path, pattern: str, command: str
) -> None:
    with pytest.raises(ShellFeatureError) as info:
        await async_shell(command, cwd=workdir)
    check_refusal(info.value, pattern, workdir)


@pytest.mark.parametrize(("pattern", "command"), REFUSED, ids=REFUSED_IDS)
def test_refused_commands_do_run_with_allow_shell_features(
    workdir: Path, pattern: str, command: str
) -> None:
    # Proves each refused command would really have created a file.
    result = shell(command, cwd=workdir, allow_shell_features=True, check=False, timeout=20)
    assert list(workdir.iterdir()) != [], (result.stdout, result.stderr)


@pytest.mark.parametrize(
    ("command", "pattern"),
    [
        ("make && make install", "&&"),
        ("true || false", "||"),
        ("echo $(id)", "$"),
        ("echo `id`", "`"),
        ("a; b && c | d", ";"),
        ("cat x | sort > y", "|"),
        ("echo (x)", "("),
        ("ls *.py ?", "*"),
        ("cmd >&2", ">"),
    ],
)
def test_shell_reports_the_first_pattern_in_list_order(
    sync_call: SyncCall, command: str, pattern: str
) -> None:
    with pytest.raises(ShellFeatureError) as info:
        sync_call(shell, command)
    assert info.value.pattern == pattern


def test_shell_feature_error_command_is_cut_to_100_characters(sync_call: SyncCall) -> None:
    command = "echo " + "a" * 200 + "; true"
    with pytest.raises(ShellFeatureError) as info:
        sync_call(shell, command)
    assert info.value.command == command[:100]


@pytest.mark.parametrize("command", SAFE)
def test_safe_commands_pass_the_guard_and_run_through_sh(sync_call: SyncCall, command: str) -> None:
    expected = subprocess.run(
        ["/bin/sh", "-c", command], capture_output=True, text=True, check=True, timeout=10
    ).stdout
    assert sync_call(shell, command).stdout == expected


@pytest.mark.anyio
@pytest.mark.parametrize("command", SAFE)
async def test_async_safe_commands_pass_the_guard(command: str) -> None:
    expected = subprocess.run(
        ["/bin/sh", "-c", command], capture_output=True, text=True, check=True, timeout=10
    ).stdout
    assert (await async_shell(command)).stdout == expected


def test_echo_hi_there_is_allowed(sync_call: SyncCall) -> None:
    assert sync_call(shell, "echo 'hi there'").stdout == "hi there\n"


def test_allow_shell_features_runs_a_pipe(sync_call: SyncCall) -> None:
    result = sync_call(shell, "printf 'b\\na\\n' | sort", allow_shell_features=True)
    assert result.stdout == "a\nb\n"


@pytest.mark.anyio
async def test_async_allow_shell_features_runs_a_pipe() -> None:
    result = await async_shell("printf 'b\\na\\n' | sort", allow_shell_features=True)
    assert result.stdout == "a\nb\n"


def test_shell_rejects_a_non_str_command(sync_call: SyncCall, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(ValidationError) as info:
        sync_call(shell, ["touch", str(marker)])
    assert info.value.code == "INVALID_SHELL_COMMAND"
    assert not marker.exists()


@pytest.mark.anyio
async def test_async_shell_rejects_a_non_str_command(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(ValidationError) as info:
        await async_shell(["touch", str(marker)])
    assert info.value.code == "INVALID_SHELL_COMMAND"
    assert not marker.exists()


def test_shell_passes_env_cwd_and_check(sync_call: SyncCall, tmp_path: Path) -> None:
    result = sync_call(shell, "printenv PROCFOUND_T_SHELL", env={"PROCFOUND_T_SHELL": "v a l"})
    assert result.stdout == "v a l\n"
    assert result.env == {"PROCFOUND_T_SHELL": "v a l"}
    assert sync_call(shell, "pwd", cwd=tmp_path).stdout == f"{tmp_path}\n"
    assert sync_call(shell, "exit 4", check=False).returncode == 4
    with pytest.raises(ProcessError) as info:
        sync_call(shell, "exit 4")
    assert info.value.return_code == 4


def test_shell_timeout_kills_the_whole_tree(sync_call: SyncCall) -> None:
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError) as info:
        sync_call(
            shell,
            'sleep 30 & echo "grandchild=$!"; sleep 30',
            allow_shell_features=True,
            timeout=1.0,
        )
    assert time.monotonic() - started < 3.5
    grandchild = int((info.value.stdout or "").split("=")[1])
    assert wait_gone(grandchild, 1.0)


@pytest.mark.anyio
async def test_async_shell_timeout_kills_the_whole_tree() -> None:
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError) as info:
        await async_shell(
            'sleep 30 & echo "grandchild=$!"; sleep 30', allow_shell_features=True, timeout=1.0
        )
    assert time.monotonic() - started < 3.5
    grandchild = int((info.value.stdout or "").split("=")[1])
    assert wait_gone(grandchild, 1.0)
