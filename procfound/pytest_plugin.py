"""The pytest plugin: services that are ready when a test uses them and leave nothing behind.

Installed with procfound through the ``pytest11`` entry point, so there is nothing to enable.
It provides three fixtures, one factory per scope:

- ``managed_process``: services stopped at the end of the test;
- ``managed_process_module``: shared by the tests of a module, stopped after its last test;
- ``managed_process_session``: shared by the whole session.

``managed_process(cmd, *, output=None, port=None, http=None, path=None, timeout=10.0,
check=None, **options)`` starts ``ManagedProcess(cmd, **options)``, waits until it is ready
(:meth:`ManagedProcess.wait_ready`, every given probe under one deadline) and returns it.

**Teardown** stops each service's process tree (``terminate_gracefully``; ManagedProcess
contains the whole tree by default), then looks for anything the service started that is still
running: every service gets an environment variable (``PROCFOUND_PYTEST_SERVICE``) that its
descendants inherit, and ``/proc`` is searched for it (Linux). Survivors, such as a daemon that
left the process group of a service started with ``contain="group"``, are killed and reported as
an error of the test (or of the last test of the module or session).

**Reports:** when a test fails, the recent stdout and stderr of every service it used (its own
and the shared ones) are added to its report, one section per stream.

Each fixture is a :class:`procfound.ServiceGroup` tied to a pytest scope: the plugin uses the
public API only.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Final, final

import pytest

from procfound import ServiceGroup

__all__ = ["MARKER_VARIABLE", "ServiceFactory"]

#: The environment variable every service (and whatever it starts) carries.
MARKER_VARIABLE: Final = "PROCFOUND_PYTEST_SERVICE"
# The last characters of each stream shown in a failed test's report.
_REPORT_CHARS: Final = 8000

_FACTORIES: Final = pytest.StashKey[list["ServiceFactory"]]()


@final
class ServiceFactory(ServiceGroup):
    """The services of one fixture scope: a :class:`~procfound.ServiceGroup` marked with
    :data:`MARKER_VARIABLE`, stopped at the scope's end.

    Calling it is :meth:`ServiceGroup.start <procfound.ServiceGroup.start>` (``cmd``,
    ``output``, ``port``, ``http``, ``path``, ``timeout``, ``check`` and the ManagedProcess
    options); :meth:`stop_all` is its teardown.
    """

    def __init__(self, node: pytest.Item | pytest.Collector) -> None:
        super().__init__(MARKER_VARIABLE)
        self.node = node

    __call__ = ServiceGroup.start

    def covers(self, item: pytest.Item) -> bool:
        """True if ``item`` runs inside this factory's scope."""
        return self.node is item or self.node in item.listchain()


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
    check=None, **options)`` returns a ready :class:`~procfound.ManagedProcess` (see
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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failure, add the recent output of the test's services to its report."""
    report = yield
    if report.failed:
        for factory in item.config.stash.get(_FACTORIES, []):
            if factory.covers(item):
                for title, text in factory.recent_output(_REPORT_CHARS):
                    report.sections.append((f"procfound service {title}", text))
    return report
