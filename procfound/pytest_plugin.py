"""The pytest plugin: services that are ready when a test uses them and leave nothing behind.

Installed with procfound through the ``pytest11`` entry point, so there is nothing to enable.
It provides three fixtures, one factory per scope:

- ``managed_process``: services stopped at the end of the test;
- ``managed_process_module``: shared by the tests of a module, stopped after its last test;
- ``managed_process_session``: shared by the whole session.

``managed_process(cmd, *, output=None, port=None, http=None, path=None, timeout=10.0,
**options)`` starts ``ManagedProcess(cmd, **options)``, waits until it is ready
(:meth:`ManagedProcess.wait_ready`, every given probe under one deadline) and returns it.

**Teardown** stops each service's process tree (``terminate_gracefully``; ManagedProcess
contains the whole tree by default), then looks for anything the service started that is still
running: every service gets an environment variable (``PROCFOUND_PYTEST_SERVICE``) that its
descendants inherit, and ``/proc`` is searched for it (Linux). Survivors, such as a daemon that
left the process group of a service started with ``contain="group"``, are killed and reported as
an error of the test (or of the last test of the module or session).

**Reports:** when a test fails, the recent stdout and stderr of every service it used (its own
and the shared ones) are added to its report, one section per stream.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Collection, Generator, Iterator, Sequence
from typing import Any, Final, final

import pytest

from procfound.engine.contain import MarkerBox
from procfound.errors import command_display, command_text, shorten
from procfound.services.managed import DEFAULT_PROCESS_WAIT_TIMEOUT, ManagedProcess
from procfound.services.probes import refuse_answered_sync

__all__ = ["MARKER_VARIABLE", "ServiceFactory"]

#: The environment variable every service (and whatever it starts) carries.
MARKER_VARIABLE: Final = "PROCFOUND_PYTEST_SERVICE"
# Processes SIGKILLed with the group can still show in /proc for a moment: how long to wait for
# them before calling them survivors.
_SURVIVOR_WAIT: Final = 1.0
# The last characters of each stream shown in a failed test's report.
_REPORT_CHARS: Final = 8000
_LABEL_CHARS: Final = 80

_FACTORIES: Final = pytest.StashKey[list["ServiceFactory"]]()


@final
class ServiceFactory:
    """Starts services for one fixture scope and stops them at its end.

    Call it like the ``managed_process`` fixture documents; :meth:`stop_all` is its teardown.
    """

    def __init__(self, node: pytest.Item | pytest.Collector) -> None:
        self.node = node
        self.services: list[tuple[ManagedProcess, MarkerBox]] = []

    def __call__(
        self,
        cmd: list[str],
        *,
        output: str | Sequence[str] | None = None,
        port: int | tuple[str, int] | None = None,
        http: str | None = None,
        path: str | os.PathLike[str] | None = None,
        timeout: float | None = DEFAULT_PROCESS_WAIT_TIMEOUT,
        **options: Any,
    ) -> ManagedProcess:
        """Start ``ManagedProcess(cmd, **options)``, wait until it is ready, and return it.

        Args:
            cmd: The service's command and arguments.
            output: Text (or texts) that must appear in its stdout.
            port: A port on 127.0.0.1, or a ``(host, port)`` pair, that must accept connections.
            http: An ``http://`` URL that must answer a GET with 2xx or 3xx.
            path: A path (a unix socket, a pid file) that must exist.
            timeout: Seconds for all of them together.
            **options: :class:`ManagedProcess` options (``env``, ``cwd``, ``stderr_relay``...).

        Returns:
            The running, ready process. It is stopped at the end of the fixture's scope.

        Raises:
            ValidationError: If a probe's argument is not acceptable (nothing is started).
            StateError: If ``port``, ``http`` or a socket ``path`` answers before the service
                starts: another server holds it (code ``PROBE_ALREADY_ANSWERED``).
            ProcessError: If it cannot start, or exits before it is ready (with its output).
            ProcessTimeoutError: If it is not ready in time (with its output).
        """
        # The same sweep as contain="tree" without a cgroup (engine/contain.py), under a name
        # of its own: it finds what escaped even a service started with contain="group".
        marker = MarkerBox(MARKER_VARIABLE)
        env = options.pop("env", None)
        options["env"] = {**(env or {}), MARKER_VARIABLE: marker.value}
        process = ManagedProcess(cmd, **options)
        # Before the launch: what answers now is someone else (mirakuru's AlreadyRunning).
        refuse_answered_sync(process.command, port=port, http=http, path=path)
        self.services.append((process, marker))  # before the launch: teardown stops it anyway
        process.launch()
        process.wait_ready(output=output, port=port, http=http, path=path, timeout=timeout)
        return process

    def covers(self, item: pytest.Item) -> bool:
        """True if ``item`` runs inside this factory's scope."""
        return self.node is item or self.node in item.listchain()

    def stop_all(self) -> list[str]:
        """Stop every service, newest first; describe what went wrong (an empty list: nothing)."""
        problems: list[str] = []
        for process, _ in reversed(self.services):
            try:
                try:
                    process.terminate_gracefully()
                finally:
                    process.cleanup()
            except Exception as exc:
                problems.append(f"stopping {_label(process)} failed: {exc}")
        markers = [marker for _, marker in self.services]
        survivors = _survivors(markers)
        deadline = time.monotonic() + _SURVIVOR_WAIT
        while survivors and time.monotonic() < deadline:
            time.sleep(0.02)
            survivors = _survivors(markers)
        for marker in markers:
            marker.signal(signal.SIGKILL)  # each process pinned by a pidfd and re-checked
        for pid, command in survivors.items():
            problems.append(
                f"process {pid} ({command}) outlived its service's teardown (it escaped the "
                "service's containment); procfound killed it"
            )
        return problems


def _label(process: ManagedProcess) -> str:
    """The service as a one-line section title: its command, whitespace collapsed and cut."""
    command = shorten(" ".join(command_text(process.command).split()), _LABEL_CHARS)
    return f"{command} (pid {process.pid})"


# -- finding what survived --------------------------------------------------------------------


def _command_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            words = f.read().rstrip(b"\0").split(b"\0")
    except OSError:
        return "?"
    return command_display([word.decode("utf-8", "replace") for word in words])


def _survivors(boxes: Collection[MarkerBox]) -> dict[int, str]:
    """Live processes (not zombies) that carry one of the services' markers: pid -> command."""
    return {pid: _command_of(pid) for box in boxes for pid in box.members()}


# -- the fixtures -----------------------------------------------------------------------------


def _serve(request: pytest.FixtureRequest) -> Iterator[ServiceFactory]:
    factory = ServiceFactory(request.node)
    factories = request.config.stash.setdefault(_FACTORIES, [])
    factories.append(factory)
    try:
        yield factory
    finally:
        factories.remove(factory)
        problems = factory.stop_all()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def managed_process(request: pytest.FixtureRequest) -> Iterator[ServiceFactory]:
    """A factory of services that are ready when returned and stopped after the test.

    ``managed_process(cmd, *, output=None, port=None, http=None, path=None, timeout=10.0,
    **options)`` returns a ready :class:`~procfound.ManagedProcess` (see
    :mod:`procfound.pytest_plugin`).
    """
    yield from _serve(request)


@pytest.fixture(scope="module")
def managed_process_module(request: pytest.FixtureRequest) -> Iterator[ServiceFactory]:
    """Like ``managed_process``, for services shared by a module's tests."""
    yield from _serve(request)


@pytest.fixture(scope="session")
def managed_process_session(request: pytest.FixtureRequest) -> Iterator[ServiceFactory]:
    """Like ``managed_process``, for services shared by the whole session."""
    yield from _serve(request)


# -- reports ----------------------------------------------------------------------------------


def _recent(text: str) -> str:
    if len(text) <= _REPORT_CHARS:
        return text
    cut = text[-_REPORT_CHARS:]
    start = cut.find("\n") + 1
    return f"[... earlier output cut ...]\n{cut[start:] if 0 < start < len(cut) else cut}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failure, add the recent output of the test's services to its report."""
    report = yield
    if report.failed:
        for factory in item.config.stash.get(_FACTORIES, []):
            if not factory.covers(item):
                continue
            for process, _ in factory.services:
                if process.pid is None:
                    continue
                label = _label(process)
                for stream, text in (
                    ("stdout", process.stdout_tail),
                    ("stderr", process.stderr_tail),
                ):
                    if text:
                        report.sections.append(
                            (f"procfound service {label}: recent {stream}", _recent(text))
                        )
    return report
