"""Where containment meets the other features (#22): sub-cgroups, nesting, users, exec semantics.

* the cgroup box is the whole subtree: a descendant that moves into a sub-cgroup is stopped, and
  every directory is removed;
* procfound inside procfound: the outer call's containment covers what the inner one starts,
  by cgroup and by marker;
* ``user=``/``group=`` and a file without ``#!``: every containment level (and
  ``kill_on_parent_death``) runs the command as a direct spawn does, with the same errors,
  through ``fork_exec`` and through the Popen fallback (the ``spawn_path`` fixture);
* the marker sweep reaches a descendant under another uid;
* ``contain="tree"`` falls back to the marker when the call's cgroup cannot be made.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import PY, pid_alive, wait_gone
from test_contain import assert_stopped, escapee_pid

import procfound
import procfound.engine.contain as contain_module
from procfound import ManagedProcess, ProcessError, ProcessTimeoutError, run
from procfound.engine.helper import Credentials

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

ROOT = str(Path(procfound.__file__).resolve().parent.parent)
IS_ROOT = os.geteuid() == 0
NOBODY = 65534


def needs_cgroup() -> str:
    root = contain_module.cgroup_root()
    if root is None:
        pytest.skip("no writable cgroup v2 with cgroup.kill on this machine")
    return root


def our_boxes() -> list[str]:
    """The cgroup directories of this process's calls still present (none once calls end)."""
    root = contain_module.cgroup_root()
    if root is None:
        return []
    return [name for name in os.listdir(root) if name.startswith(f"procfound-{os.getpid()}-")]


@pytest.fixture(params=["cgroup", "marker"])
def mechanism(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with the cgroup (where writable) and with the environment marker."""
    if request.param == "cgroup":
        needs_cgroup()
    else:
        monkeypatch.setattr(contain_module, "_cgroup_root", None)
    return str(request.param)


def fresh(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run(
        [PY, "-c", code, *args], env=env, capture_output=True, text=True, timeout=timeout
    )


# --------------------------------------------------------------------------------------------
# The box is the subtree (item 4)
# --------------------------------------------------------------------------------------------


def sub_cgroup_escapee(directory: Path, then: str) -> list[str]:
    """A command whose background child makes a sub-cgroup of the box and moves into it."""
    mount = contain_module._find_mount()
    script = (
        f'cg="{mount}$(sed -n "s/^0:://p" /proc/self/cgroup)"; mkdir "$cg/sub" || exit 9; '
        'sh -c \'echo 0 > "$0/sub/cgroup.procs" || exit 9; echo $$ > "$1/esc.tmp"; '
        'mv "$1/esc.tmp" "$1/esc"; exec sleep 300\' "$cg" "$0" & '
        f"{then}"
    )
    return ["sh", "-c", script, str(directory)]


@pytest.mark.parametrize("end", ["normal", "timeout", "managed"])
def test_a_descendant_in_a_sub_cgroup_of_the_box_is_stopped(tmp_path: Path, end: str) -> None:
    needs_cgroup()
    if end == "normal":
        run(sub_cgroup_escapee(tmp_path, "sleep 0.5"), contain="tree")
    elif end == "timeout":
        with pytest.raises(ProcessTimeoutError):
            run(sub_cgroup_escapee(tmp_path, "sleep 30"), contain="tree", timeout=1)
    else:
        with ManagedProcess(sub_cgroup_escapee(tmp_path, "exec sleep 60")) as proc:
            escapee_pid(tmp_path)
            assert proc.is_running()
    assert_stopped(escapee_pid(tmp_path))
    assert our_boxes() == []  # the box and its sub-cgroup, removed bottom-up


@pytest.mark.anyio
async def test_the_stop_signal_reaches_a_descendant_in_a_sub_cgroup(tmp_path: Path) -> None:
    needs_cgroup()
    log = tmp_path / "signals"
    mount = contain_module._find_mount()
    reporter = (
        "import signal, sys, time\n"
        "def report(sig, frame):\n"
        "    open(sys.argv[1], 'a').write(signal.Signals(sig).name + '\\n'); sys.exit(0)\n"
        "signal.signal(signal.SIGHUP, report)\n"
        "open(sys.argv[1] + '.ready', 'w').close()\n"
        "while True: time.sleep(0.05)\n"
    )
    script = (
        f'cg="{mount}$(sed -n "s/^0:://p" /proc/self/cgroup)"; mkdir "$cg/sub"; '
        'sh -c \'echo 0 > "$0/sub/cgroup.procs"; exec setsid "$1" -c "$2" "$3"\' '
        f'"$cg" {PY} "$0" "$1" & '
        'while [ ! -e "$1.ready" ]; do sleep 0.02; done; sleep 30'
    )
    with pytest.raises(ProcessTimeoutError):
        await procfound.async_run(
            ["sh", "-c", script, reporter, str(log)],
            contain="tree",
            timeout=5,
            stop_signal="SIGHUP",
        )
    assert log.read_text().split() == ["SIGHUP"]  # the polite signal, before any SIGKILL
    assert our_boxes() == []


def test_waiting_for_an_empty_box_wakes_on_the_change(tmp_path: Path) -> None:
    root = needs_cgroup()
    box = contain_module.CgroupBox(root)
    try:
        sleeper = subprocess.Popen(["sh", "-c", 'echo 0 > "$0"; exec sleep 0.4', box.join_file])
        try:
            deadline = time.monotonic() + 5
            while box.is_empty() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert not box.is_empty()
            started = time.monotonic()
            assert box.wait_empty_now(10)
            assert time.monotonic() - started < 3
        finally:
            sleeper.kill()
            sleeper.wait()
    finally:
        box.close()
    assert not os.path.exists(box.path)


# --------------------------------------------------------------------------------------------
# procfound inside procfound (item 5)
# --------------------------------------------------------------------------------------------

INNER = """
import sys, time
import procfound
import procfound.engine.contain as contain
if sys.argv[2] == "marker":
    contain._cgroup_root = None  # as on a machine without a writable cgroup
proc = procfound.ManagedProcess(["sh", "-c", 'echo $$ > "$0.tmp"; mv "$0.tmp" "$0"; exec sleep 60',
                                 sys.argv[1]])
proc.launch()
time.sleep(60)
"""


def test_procfound_inside_procfound_is_contained_by_the_outer_call(
    tmp_path: Path, mechanism: str
) -> None:
    pidfile = tmp_path / "inner-child"
    env = {**os.environ, "PYTHONPATH": ROOT}
    inner = [PY, "-c", INNER, str(pidfile), mechanism]
    with pytest.raises(ProcessTimeoutError):
        run(inner, contain="tree", timeout=5, env=env)
    child = int(pidfile.read_text())
    if not wait_gone(child, 3.0):
        os.kill(child, signal.SIGKILL)
        raise AssertionError(f"the inner procfound's child {child} outlived the outer call")
    assert our_boxes() == []


def test_procfound_run_timeout_contains_a_program_that_uses_managed_process(
    tmp_path: Path,
) -> None:
    needs_cgroup()
    pidfile = tmp_path / "inner-child"
    cli = [PY, "-m", "procfound", "run", "--timeout", "5", PY, "-c", INNER, str(pidfile), "cgroup"]
    done = fresh_cli(cli)
    assert done.returncode == 124, done.stderr
    child = int(pidfile.read_text())
    if not wait_gone(child, 3.0):
        os.kill(child, signal.SIGKILL)
        raise AssertionError(f"the inner procfound's child {child} outlived procfound run")
    root = contain_module.cgroup_root()
    assert root is not None
    assert [name for name in os.listdir(root) if name.startswith(f"procfound-{done.pid}-")] == []


def fresh_cli(argv: list[str]) -> Any:
    """Run ``argv`` (a procfound CLI) in a fresh process; the result carries its pid."""
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = proc.communicate(timeout=60)
    done = subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)
    done.pid = proc.pid  # type: ignore[attr-defined]
    return done


def test_an_inner_marker_is_added_next_to_the_outer_one() -> None:
    outer, inner = contain_module.MarkerBox(), contain_module.MarkerBox()
    _, env = outer.prepare(["true"], {"PATH": "/bin"})
    _, env = inner.prepare(["true"], env)
    assert env is not None
    assert env[outer.variable] == outer.value
    assert env[inner.variable] == inner.value
    assert outer.variable.startswith("PROCFOUND_TREE_")
    assert outer.variable.isidentifier()  # no shell on the way drops it


# --------------------------------------------------------------------------------------------
# One exec semantics at every level (items 6 and 9)
# --------------------------------------------------------------------------------------------

LEVELS = ["group", "tree-cgroup", "tree-marker", "cgroup", "group+pdeathsig", "tree+pdeathsig"]


def level_options(level: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The call options of ``level``, forcing the tree's mechanism where it names one."""
    if level in ("tree-cgroup", "cgroup", "tree+pdeathsig"):
        needs_cgroup()
    if level == "tree-marker":
        monkeypatch.setattr(contain_module, "_cgroup_root", None)
    contain = level.split("-")[0].split("+")[0]
    options: dict[str, Any] = {"contain": contain}
    if level.endswith("+pdeathsig"):
        options["kill_on_parent_death"] = True
    return options


@pytest.mark.skipif(not IS_ROOT, reason="switching users needs root")
@pytest.mark.parametrize("level", LEVELS)
def test_user_and_group_work_at_every_level(
    level: str, monkeypatch: pytest.MonkeyPatch, spawn_path: str
) -> None:
    options = level_options(level, monkeypatch)
    ids = ["sh", "-c", "id -u; id -g; id -G"]
    assert run(ids, user=NOBODY, **options).stdout.split() == [str(NOBODY), "0", "0"]
    assert run(ids, user=NOBODY, group=NOBODY, extra_groups=[], **options).stdout.split() == [
        str(NOBODY),
        str(NOBODY),
        str(NOBODY),
    ]
    with ManagedProcess(["id", "-u"], user=NOBODY, **options) as proc:
        assert proc.process is not None
        assert proc.process.wait(timeout=10) == 0
    assert proc.stdout_tail == f"{NOBODY}\n"  # all read once the process is cleaned up


@pytest.mark.skipif(not IS_ROOT, reason="switching users needs root")
@pytest.mark.parametrize("contain", ["group", "tree"])
def test_a_child_under_another_user_still_dies_with_its_parent(contain: str) -> None:
    if contain == "tree":
        needs_cgroup()
    code = (
        "import sys, time, procfound\n"
        "p = procfound.ManagedProcess(['sh', '-c', 'id -u; exec sleep 60'], "
        f"user={NOBODY}, contain={contain!r}, kill_on_parent_death=True)\n"
        f"p.launch(); p.wait_ready(output='{NOBODY}', timeout=10)\n"
        "print(p.pid, flush=True); time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [PY, "-c", code], env={**os.environ, "PYTHONPATH": ROOT}, stdout=subprocess.PIPE
    )
    child = 0
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert pid_alive(child)
        parent.kill()
        parent.wait(10)
        assert wait_gone(child, 2.0), "a child under another uid outlived its SIGKILLed parent"
    finally:
        parent.kill()
        parent.wait(10)
        if parent.stdout is not None:
            parent.stdout.close()
        if child and pid_alive(child):
            os.kill(child, signal.SIGKILL)


@pytest.fixture
def no_shebang(tmp_path: Path) -> Path:
    """An executable text file without a #! line: exec fails with ENOEXEC."""
    path = tmp_path / "no-shebang"
    path.write_text(f"echo ran as a shell script > {tmp_path}/ran\n")
    path.chmod(0o755)
    return path


def failure(cmd: list[str], **options: Any) -> tuple[str, int | None]:
    with pytest.raises(ProcessError) as caught:
        run(cmd, **options)
    cause = caught.value.__cause__
    assert isinstance(cause, OSError)
    return str(caught.value), cause.errno


@pytest.mark.parametrize("level", LEVELS)
def test_a_file_without_a_shebang_fails_alike_at_every_level(
    level: str, no_shebang: Path, monkeypatch: pytest.MonkeyPatch, spawn_path: str
) -> None:
    direct = failure([str(no_shebang)])
    assert "Exec format error" in direct[0]
    assert failure([str(no_shebang)], **level_options(level, monkeypatch)) == direct
    assert not (no_shebang.parent / "ran").exists()


FAILURES: list[tuple[list[str], dict[str, Any]]] = [
    (["procfound-no-such-program"], {}),
    (["/procfound/no/such/program"], {}),
    (["true"], {"cwd": "/procfound/no/such/dir"}),
    (["/etc/passwd"], {}),
    (["true"], {"cwd": "/etc/passwd"}),
    (["procfound-no-such-program"], {"env": {"PATH": "/procfound/none"}}),
    (["true"], {"executable": "/procfound/no/such/program"}),
]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize(("cmd", "kwargs"), FAILURES)
def test_spawn_errors_are_the_same_at_every_level(
    level: str,
    cmd: list[str],
    kwargs: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    spawn_path: str,
) -> None:
    direct = failure(cmd, **kwargs)
    assert failure(cmd, **kwargs, **level_options(level, monkeypatch)) == direct


@pytest.mark.parametrize("level", LEVELS)
def test_the_environment_argv0_and_signals_are_a_direct_spawns(
    level: str, monkeypatch: pytest.MonkeyPatch, spawn_path: str
) -> None:
    # Names a shell would drop, a PWD that is not the cwd (a shell corrects it), IFS and PPID
    # (a shell resets them), no LC_CTYPE (Python's C-locale coercion adds one): the command
    # sees exactly what a direct spawn sees.
    env = {"a-b": "1", "é": "2", "IFS": ":", "PPID": "7", "PWD": "/procfound/elsewhere"}
    monkeypatch.delenv("LC_CTYPE", raising=False)
    monkeypatch.setenv("LC_ALL", "")
    monkeypatch.delenv("LC_ALL")
    monkeypatch.setenv("LANG", "C")
    direct = run(["env"], env=env, cwd="/").stdout.splitlines()
    assert {"a-b=1", "é=2", "PWD=/procfound/elsewhere"} <= set(direct)
    assert not any(line.startswith("LC_CTYPE=") for line in direct)
    options = level_options(level, monkeypatch)
    lines = run(["env"], env=env, cwd="/", **options).stdout.splitlines()
    assert [line for line in lines if not line.startswith("PROCFOUND_TREE_")] == direct
    shown = run(["sh", "-c", "echo $0"], process_title="custom-title", **options).stdout
    assert shown == "custom-title\n"
    sigign = ["grep", "SigIgn", "/proc/self/status"]
    for restore in (True, False):
        assert (
            run(sigign, restore_signals=restore, **options).stdout
            == run(sigign, restore_signals=restore).stdout
        )


# --------------------------------------------------------------------------------------------
# The marker sweep covers every uid we may signal (item 7)
# --------------------------------------------------------------------------------------------


@pytest.mark.skipif(not IS_ROOT, reason="only root may signal another uid")
def test_the_marker_sweep_stops_a_descendant_under_another_uid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(contain_module, "_cgroup_root", None)
    script = (
        f"setsid setpriv --reuid {NOBODY} --regid {NOBODY} --clear-groups sleep 300 & "
        'echo $! > "$0/esc.tmp"; mv "$0/esc.tmp" "$0/esc"; sleep 0.5'
    )
    run(["sh", "-c", script, str(tmp_path)], contain="tree")
    pid = escapee_pid(tmp_path)
    assert_stopped(pid)


# --------------------------------------------------------------------------------------------
# A cgroup that cannot be made (item 10)
# --------------------------------------------------------------------------------------------

CANNOT_MAKE = """
import os, sys
import procfound
import procfound.engine.contain as contain
parent, esc = sys.argv[1], sys.argv[2]
with open(os.path.join(parent, "cgroup.procs"), "w") as procs:
    procs.write("0")  # this interpreter, its threads and its children now live in `parent`
assert contain.cgroup_root() == parent, contain.cgroup_root()
with open(os.path.join(parent, "cgroup.max.descendants"), "w") as limit:
    limit.write("0")  # from now on no cgroup can be made below it: mkdir fails with EAGAIN
script = 'setsid sh -c \\'echo $$ > "$0.tmp"; mv "$0.tmp" "$0"; exec sleep 300\\' "$0" & sleep 0.3'
result = procfound.run(["sh", "-c", script, esc], contain="tree")
print("tree:", result.returncode)
try:
    procfound.run(["true"], contain="cgroup")
except procfound.ProcessError as exc:
    print("cgroup:", str(exc).splitlines()[0])
"""


def test_tree_falls_back_to_the_marker_when_the_cgroup_cannot_be_made(tmp_path: Path) -> None:
    root = needs_cgroup()
    parent = Path(root) / f"pftest-cannot-make-{os.getpid()}"
    parent.mkdir()
    try:
        done = fresh(CANNOT_MAKE, str(parent), str(tmp_path / "esc"))
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0] == "tree: 0"
        assert lines[1].startswith("cgroup: ")
        assert "cgroup.max.descendants" in lines[1]
        assert_stopped(escapee_pid(tmp_path))  # the marker stopped it
        assert [p.name for p in parent.iterdir() if p.is_dir()] == []
    finally:
        deadline = time.monotonic() + 10
        while True:
            try:
                parent.rmdir()
                break
            except OSError:  # the fresh interpreter's last threads are still leaving
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


# --------------------------------------------------------------------------------------------
# The cheap join: /bin/sh where it runs the command exactly as a direct spawn, Python elsewhere
# --------------------------------------------------------------------------------------------


def sh_join_for(tmp_path: Path, argv: list[str], **fields: Any) -> list[str] | None:
    from procfound.engine import spawn as spawn_module

    request = spawn_module.SpawnRequest(argv=argv, **fields)
    helper = spawn_module._Helper(
        join=str(tmp_path / "cgroup.procs"),
        parent=os.getpid() if request.kill_on_parent_death else None,
        program=request.program,
        argv=request.argv,
    )
    return spawn_module._sh_join(request, helper)


def test_the_sh_join_is_chosen_only_where_nothing_can_differ(
    tmp_path: Path, no_shebang: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PWD", os.getcwd())
    for name in ("IFS", "PPID", "OPTIND"):
        monkeypatch.delenv(name, raising=False)
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    chained = tmp_path / "chained"
    chained.write_text(f"#!{script}\n")
    chained.chmod(0o755)
    plain = {"PATH": os.environ["PATH"], "PWD": os.getcwd()}
    assert sh_join_for(tmp_path, ["true"]) is not None
    assert sh_join_for(tmp_path, [str(script)]) is not None
    assert sh_join_for(tmp_path, ["true"], env=plain) is not None
    assert sh_join_for(tmp_path, ["ls"], cwd="/", env={**plain, "PWD": "/"}) is not None
    refused: list[tuple[list[str], dict[str, Any]]] = [
        (["true"], {"env": {**plain, "a-b": "1"}}),  # a name the shell would drop
        (["true"], {"env": {**plain, "IFS": ":"}}),  # a variable the shell resets
        (["true"], {"env": {"PWD": os.getcwd()}}),  # no PATH: the shell has its own default
        (["true"], {"env": {"PATH": os.environ["PATH"]}}),  # no PWD: the shell adds one
        (["true"], {"cwd": "/"}),  # PWD is not the child's cwd
        (["myname"], {"executable": "/bin/true"}),  # argv[0] is not the program
        (["true"], {"credentials": Credentials(user=NOBODY)}),
        (["true"], {"kill_on_parent_death": True}),
        ([str(no_shebang)], {}),  # ENOEXEC: the shell would run it as a script
        ([str(chained)], {}),  # its interpreter is a script
        (["procfound-no-such-program"], {}),  # the error must be the spawn's
        (["/etc/passwd"], {}),
    ]
    for argv, fields in refused:
        assert sh_join_for(tmp_path, argv, **fields) is None, (argv, fields)


def test_under_the_sh_join_the_command_sees_a_direct_spawns_environment(
    monkeypatch: pytest.MonkeyPatch, spawn_path: str
) -> None:
    needs_cgroup()
    monkeypatch.setenv("PWD", os.getcwd())
    for name in ("IFS", "PPID", "OPTIND"):
        monkeypatch.delenv(name, raising=False)
    env = {"SPACES": "a b", "NEWLINE": "x\ny", "EMPTY": ""}
    direct = run(["env", "-0"], env=env).stdout.split("\0")
    joined = run(["env", "-0"], env=env, contain="tree").stdout.split("\0")
    assert sorted(joined) == sorted(direct)  # dash lists PWD last: only the order may differ
    assert run(["sh", "-c", "echo $0"], contain="tree").stdout == "sh\n"
