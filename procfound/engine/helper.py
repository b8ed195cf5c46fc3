"""The one step between spawn and exec: join the box, drop privileges, parent-death signal, exec.

Two requests need code to run in the child after ``fork`` and before the command: a cgroup box
(the child must be in it before the command can fork) and ``kill_on_parent_death``
(``PR_SET_PDEATHSIG``). ``fork_exec`` cannot do either, and Python code between fork and exec
(``preexec_fn``) is not safe in a process with threads. So the child execs this helper
(``sys.executable -I -S -c HELPER_SOURCE ...``). A third, ``pty=True``, needs the child's
terminal made its controlling terminal (``TIOCSCTTY``) after the spawn's ``setsid``. The helper,
in this order:

0. takes its terminal (the slave on its fd 0) as its controlling terminal (``login_tty``), so
   ``/dev/tty`` opens, the terminal's signals (SIGWINCH, SIGINT from ``^C``) reach its group;
1. joins the box: writes ``0`` (itself) into the box's ``cgroup.procs``, still with the
   privileges it was started with (so ``user=`` cannot stop it from writing a root-owned file);
2. drops privileges as ``fork_exec`` would (``setgroups``, ``setregid``, ``setreuid``): the
   spawn leaves them to the helper when it runs;
3. asks for SIGKILL when its parent dies, then checks that the parent is still the process that
   spawned it (it may have died before the request took effect). After the uid change, not
   before: the kernel clears the parent-death signal whenever the credentials change;
4. puts back what the interpreter's own start-up changed (``SIGPIPE``/``SIGXFSZ`` ignored,
   ``LC_CTYPE`` set by the C-locale coercion of PEP 538), and execs the command as
   ``fork_exec`` does: ``execv`` over the same list of paths (the child's PATH), the first
   significant error kept, no shell fallback for a file the kernel cannot run.

A failure is written to the report pipe in ``fork_exec``'s own format (``OSError:<hex
errno>:<where>``); the pipe is close-on-exec, so the spawner reads it until EOF, which comes at
the command's exec (or the helper's exit): every error is the one a direct spawn gives.

Only builtin modules are used (``posix``, ``_signal``): importing ``os`` or ``signal`` would
cost more than the rest of the helper. ``ctypes`` only when the parent-death signal is asked.

Where nothing else is asked, a ``/bin/sh`` line joins the box and takes the terminal instead
(``engine/spawn.py``'s ``_sh_join``), for a file that runs natively (:func:`runs_natively`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Final

__all__ = ["HELPER_SOURCE", "Credentials", "helper_argv", "runs_natively"]

# argv after "-c": report_fd tty cgroup_procs groups gid uid parent signals lc_ctype n paths...
#   argv...
#   tty: the terminal's path ("" for none); cgroup_procs "" for none; groups/gid/uid "-" to
#   keep ("" groups: setgroups([])); parent "0" for no parent-death signal; signals: numbers
#   set back to SIG_DFL, comma separated; lc_ctype "-" if the environment had none, else "=" +
#   its value; n: how many paths follow.
HELPER_SOURCE: Final = """\
import posix, sys, _signal
a = sys.argv
w = int(a[1])
posix.set_inheritable(w, False)
def fail(report):
    try:
        posix.write(w, report)
    finally:
        posix._exit(255)
def take_terminal(tty):
    try:
        if hasattr(posix, "login_tty"):
            posix.login_tty(0)
        else:  # opened without O_NOCTTY by a session leader without one: it becomes its own
            posix.close(posix.open(tty, posix.O_RDWR))
    except OSError as e:
        fail(b"OSError:0:cannot make the terminal its controlling terminal (errno %d)" % e.errno)
def main():
    tty = a.pop(2)  # the rest of the arguments keep their places
    if tty:
        take_terminal(tty)
    if a[2]:
        try:
            f = posix.open(a[2], posix.O_WRONLY | posix.O_CLOEXEC)
            try:
                posix.write(f, b"0")
            finally:
                posix.close(f)
        except OSError as e:
            fail(b"OSError:%x:cgroup" % (e.errno or 22))
    if a[6] != "0":  # imported while the interpreter's files are still ours to read
        import ctypes
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    try:
        if a[3] != "-":
            posix.setgroups([int(g) for g in a[3].split(",") if g])
        if a[4] != "-":
            posix.setregid(int(a[4]), int(a[4]))
        if a[5] != "-":
            posix.setreuid(int(a[5]), int(a[5]))
    except OSError as e:
        fail(b"OSError:%x:noexec" % (e.errno or 22))
    if a[6] != "0":
        if prctl(1, 9, 0, 0, 0):
            fail(b"OSError:%x:noexec" % (ctypes.get_errno() or 22))
        if posix.getppid() != int(a[6]):
            posix.kill(posix.getpid(), 9)
    for s in a[7].split(","):
        if s:
            _signal.signal(int(s), _signal.SIG_DFL)
    if a[8] == "-":
        posix.unsetenv("LC_CTYPE")
    else:
        posix.putenv("LC_CTYPE", a[8][1:])
    n = int(a[9])
    paths, argv = a[10:10 + n], a[10 + n:]
    first = last = 0
    for path in paths:
        try:
            posix.execv(path, argv)
        except OSError as e:
            last = e.errno
            if not first and e.errno not in (2, 20):
                first = e.errno
        except ValueError:
            last = 22
    fail(b"OSError:%x:" % (first or last or 22))
try:
    main()
except Exception as e:
    fail(b"SubprocessError:0:the spawn helper failed: " + repr(e).encode("ascii", "replace"))
"""


@dataclass(frozen=True, slots=True)
class Credentials:
    """Who the child runs as (``user=``, ``group=``, ``extra_groups=``, resolved to ids).

    Built once by the call; the spawn hands it to ``fork_exec`` (or ``Popen``), or, when the
    helper runs, to the helper, which drops the privileges after joining the box.
    """

    user: int | None = None
    group: int | None = None
    extra_groups: tuple[int, ...] | None = None  # None: keep ours; (): none

    @classmethod
    def given(
        cls, user: int | None, group: int | None, extra_groups: tuple[int, ...] | None
    ) -> Credentials | None:
        """The credentials asked for, or None when nothing is (the child keeps ours)."""
        if user is None and group is None and extra_groups is None:
            return None
        return cls(user, group, extra_groups)


def helper_argv(
    python: str,
    report_fd: int,
    *,
    terminal: str | None = None,
    join: str | None,
    credentials: Credentials | None,
    parent: int | None,
    default_signals: tuple[int, ...],
    lc_ctype: str | None,
    paths: list[str],
    argv: list[str],
) -> list[str]:
    """The argv that runs the helper with ``python`` (see the module docstring).

    Args:
        python: The interpreter (``sys.executable``).
        report_fd: The write end of the report pipe, inherited by the child (pass_fds).
        terminal: The path of the child's terminal (its fd 0), to take as its controlling
            terminal; None for none.
        join: The box's ``cgroup.procs``, or None.
        credentials: The user, group and supplementary groups to switch to (None: keep).
        parent: The spawner's pid for the parent-death signal, or None for none.
        default_signals: Signals the helper sets back to SIG_DFL before the exec.
        lc_ctype: ``LC_CTYPE`` of the command's environment (None: it has none).
        paths: The files to try, in order (the program looked up in the child's PATH).
        argv: The command's argv (argv[0] as the command should see it).

    Returns:
        The argv to spawn (its program is ``python``).
    """
    ids = credentials or Credentials()
    groups = ids.extra_groups
    return [
        python,
        "-I",
        "-S",
        "-c",
        HELPER_SOURCE,
        str(report_fd),
        terminal or "",
        join or "",
        "-" if groups is None else ",".join(map(str, groups)),
        "-" if ids.group is None else str(ids.group),
        "-" if ids.user is None else str(ids.user),
        str(parent or 0),
        ",".join(map(str, default_signals)),
        "-" if lc_ctype is None else "=" + lc_ctype,
        str(len(paths)),
        *paths,
        *argv,
    ]


def runs_natively(path: str, cwd: str, script: bool = True) -> bool:
    """True if the kernel runs ``path`` as is: an executable native ELF, or (``script``) a
    ``#!`` script whose interpreter is one."""
    try:
        if not os.path.isfile(path) or not os.access(path, os.X_OK):
            return False
        if os.statvfs(path).f_flag & os.ST_NOEXEC:
            return False
        with open(path, "rb") as file:
            head = file.read(256)
    except OSError:
        return False
    if head.startswith(b"#!"):
        if not script:
            return False
        name = head[2:].split(b"\n", 1)[0].strip(b" \t").replace(b"\t", b" ").split(b" ", 1)[0]
        return name.startswith(b"/") and runs_natively(os.fsdecode(name), cwd, script=False)
    ours = _native_elf()
    # Magic, class, byte order and version as ours (the OS ABI byte varies), an executable or
    # shared object (ET_EXEC, ET_DYN, either byte order), and our machine.
    return (
        ours is not None
        and head[:7] == ours[:7]
        and head[16:18] in (b"\x02\x00", b"\x03\x00", b"\x00\x02", b"\x00\x03")
        and head[18:20] == ours[18:20]
    )


_native_header: bytes | None = None


def _native_elf() -> bytes | None:
    """The first 20 bytes of our own interpreter's ELF header (class, byte order, machine)."""
    global _native_header
    if _native_header is None:
        try:
            with open(os.path.realpath(sys.executable), "rb") as file:
                head = file.read(20)
        except OSError:
            return None
        if not head.startswith(b"\x7fELF"):
            return None
        _native_header = head
    return _native_header
