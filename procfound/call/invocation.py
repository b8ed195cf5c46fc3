"""One call's arguments, validated once: what every operation turns into a child session.

``run``, ``shell``, ``stream`` and ``ManagedProcess`` each build an :class:`Invocation` from their
arguments (:meth:`Invocation.from_call`) and ask it for the engine's
:class:`~procfound.engine.spawn.SpawnRequest` (:meth:`Invocation.request`), giving only their own
defaults: where stdin, stdout and stderr go unless the caller chose, and the containment level
of its stop policy (:meth:`Invocation.stop_policy`, handed whole to the engine's session).
Adding an option touches :class:`~procfound.call.options.RunOptions` (its check), this module
(how it shapes the request) and the engine's request; no operation.
"""

from __future__ import annotations

import contextvars
import os
import shutil
from collections.abc import AsyncIterable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, cast

from procfound.call.observe import CommandObserver, observer_for
from procfound.call.options import (
    UNSET,
    RunOptions,
    StdioTarget,
    check_cwd,
    check_env,
    check_timeout,
    command_list,
    stdio_fd,
    stop_policy_of,
    to_input_bytes,
)
from procfound.engine.helper import Credentials
from procfound.engine.kill import StopPolicy
from procfound.engine.spawn import SpawnRequest, Stdio
from procfound.errors import ValidationError, command_text

__all__ = ["CALLED_AS", "Invocation", "is_input_stream"]

# The public function a call came through, for messages: async_shell runs async_run under
# "shell()", so an ignored keyword is reported where the caller passed it.
CALLED_AS: Final[contextvars.ContextVar[str]] = contextvars.ContextVar(
    "procfound_called_as", default="run()"
)


@dataclass(frozen=True, slots=True)
class Invocation:
    """A validated call: the command, where it runs, its deadline and its keyword controls."""

    where: str  # the public function, for messages ("run()")
    command: str | list[str]  # as given (a shell string stays a string), for results and errors
    argv: list[str]  # what is executed: argv[0] is the program (the shell for shell=True)
    cwd: str | None
    env: dict[str, str | None] | None  # the caller's overrides only (None: removed)
    timeout: float | None
    text: bool
    input: bytes | None
    kill_on_parent_death: bool
    options: RunOptions
    executable: str | None  # the program, when argv[0] is only the name shown
    # input= as an iterable of bytes/str or an async iterable: written as it is produced
    # (engine/feed.py); ``input`` is then None and stdin a pipe.
    input_stream: Iterable[Any] | AsyncIterable[Any] | None = None

    @classmethod
    def from_call(
        cls,
        where: str,
        cmd: object,
        kwargs: Mapping[str, Any],
        *,
        shell: bool = False,
        cwd: str | Path | None = None,
        env: Mapping[str, str | None] | None = None,
        timeout: object = None,
        text: bool = True,
        input: object = None,
        kill_on_parent_death: bool = False,
    ) -> Invocation:
        """Check every argument of a call before anything runs.

        Raises:
            ValidationError: Naming the argument that is not acceptable.
        """
        argv = command_list(cmd, shell=shell)
        options = RunOptions.from_kwargs(kwargs, where)
        if options.universal_newlines is not None:
            if not text and options.universal_newlines:
                raise ValidationError(
                    "text=False and universal_newlines=True contradict each other",
                    code="INVALID_ARGUMENT",
                )
            text = options.universal_newlines
        if options.text is not None:
            text = options.text
        executable = options.executable
        if shell and executable is not None:
            argv, executable = [executable, *argv[1:]], None  # as subprocess: the shell
        streamed = (
            cast("Iterable[Any] | AsyncIterable[Any]", input) if is_input_stream(input) else None
        )
        data = None if streamed is not None else to_input_bytes(input, options.encoding)
        if (data is not None or streamed is not None) and options.stdin not in (
            UNSET,
            Stdio.INHERIT,
        ):
            # As subprocess.run: stdin=None (its default) may come with input; input wins.
            raise ValidationError(
                "stdin and input cannot both be given (input is written to a pipe on stdin)",
                code="INVALID_ARGUMENT",
            )
        if streamed is not None and options.pty:
            raise ValidationError(
                "pty=True writes input= (bytes or str) and then the terminal's end of file; "
                "an iterable input cannot be written to a terminal yet: join it first",
                code="INVALID_ARGUMENT",
            )
        if data is not None or streamed is not None:
            options = replace(options, stdin=UNSET)
        return cls(
            where=where,
            command=cmd if isinstance(cmd, str) else argv,
            argv=argv,
            cwd=check_cwd(cwd),
            env=check_env(env),
            timeout=check_timeout(timeout),
            text=bool(text),
            input=data,
            kill_on_parent_death=bool(kill_on_parent_death),
            options=options,
            executable=executable,
            input_stream=streamed,
        )

    @property
    def shown(self) -> str:
        """The command as messages show it."""
        return command_text(self.command)

    @property
    def args(self) -> list[str]:
        """The command as a result's ``args`` (a shell string is a one-element list)."""
        return [self.command] if isinstance(self.command, str) else self.argv

    def child_env(self) -> dict[str, str] | None:
        """The child's whole environment (None: ours as it is): ``os.environ`` (or nothing,
        with ``inherit_env=False``) with the caller's overrides; a None value removes one."""
        if self.env is None and self.options.inherit_env:
            return None
        env = dict(os.environ) if self.options.inherit_env else {}
        for key, value in (self.env or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def target(self, name: str) -> StdioTarget | None:
        """The caller's own target for ``name`` (``"stdin"``/``"stdout"``/``"stderr"``), if any."""
        value = getattr(self.options, name)
        return None if value is UNSET else value

    def stop_policy(self, default_contain: str = "group") -> StopPolicy:
        """How the call's tree is stopped, whole (its level defaults to ``default_contain``,
        the operation's own, where neither the call nor ``PROCFOUND_CONTAIN`` chose one)."""
        return stop_policy_of(self.options, default_contain)

    def observer(self, policy: StopPolicy) -> CommandObserver | None:
        """The log records, verbose lines and span of this call's child (None: nobody
        listens). Its start record replaces the old debug line."""
        return observer_for(
            self.argv,
            policy.contain,
            shown=self.command,
            cwd=self.cwd,
            # only the names are shown (a removed variable, None, too)
            env=cast("Mapping[str, str] | None", self.env),
        )

    @property
    def session_input(self) -> bytes | None:
        """What the session writes to the child: ``input``, or for a terminal without one its
        end of file (a child reading a terminal would otherwise wait, where /dev/null ends)."""
        if self.input is None and self.options.pty:
            return b""
        return self.input

    def request(
        self,
        *,
        stdin: Stdio,
        stdout: Stdio,
        stderr: Stdio,
    ) -> SpawnRequest:
        """The engine request; ``stdin``/``stdout``/``stderr`` apply where the caller chose none.

        A file object given as a target is turned into its fd here, just before the spawn.
        With ``pty=True`` the terminal is all three (and the session's).
        """
        options = self.options
        if options.foreground and stdin is Stdio.DEVNULL:
            stdin = Stdio.INHERIT  # the terminal is what foreground asks for
        targets = [
            stdio_fd(target) if (target := self.target(name)) is not None else default
            for name, default in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr))
        ]
        argv, executable = self.argv, self.executable
        env = self.child_env()
        if (
            env is not None
            and not options.inherit_env
            and "PATH" not in env
            and executable is None
            and "/" not in argv[0]
        ):
            # An environment without PATH would make exec look in os.defpath only: the program
            # is looked up in our own PATH instead (the child still sees argv[0] as given).
            executable = shutil.which(argv[0])
        if options.process_title is not None:
            executable = executable or argv[0]
            argv = [options.process_title, *argv[1:]]
        return SpawnRequest(
            argv=argv,
            cwd=self.cwd,
            env=env,
            stdin=targets[0],
            stdout=targets[1],
            stderr=targets[2],
            new_group=not options.foreground,
            kill_on_parent_death=self.kill_on_parent_death,
            executable=executable,
            pass_fds=options.pass_fds,
            start_new_session=options.start_new_session,
            process_group=options.process_group,
            credentials=Credentials.given(options.user, options.group, options.extra_groups),
            umask=options.umask,
            restore_signals=options.restore_signals,
            pipesize=options.pipesize,
            terminal=options.pty_size if options.pty else None,
        )


def is_input_stream(value: object) -> bool:
    """True for an ``input=`` that is produced as the child runs: an async iterable, or an
    iterable that is not itself bytes or str (a list or generator of chunks)."""
    if isinstance(value, str | bytes | bytearray | memoryview):
        return False
    return isinstance(value, AsyncIterable | Iterable)
