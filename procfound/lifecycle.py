"""Interpreter exit in a fixed order, for layers that must not import each other.

Two layers let go of process-wide state at interpreter exit, and the order matters: first the
bridge stops its event-loop thread (every call still running there is cancelled, so its child is
stopped by its own kill path, inside the loop that drives it) and refuses new sync calls; then
the engine kills, reaps and closes whatever is still open (a child driven by a program's own loop
on a daemon thread, a stream held in a global). The other way round, the engine would close fds
under a loop still using them, and a sync call could start a child after the last sweep.

``atexit`` alone would order the two by registration, that is by whichever module happened to be
imported first. Here each hook names its stage and one ``atexit`` callback runs the stages in
order. That callback is registered when this module is first imported, during
``import procfound``, so a program's own exit hooks registered after ``import procfound`` run
before it (and may still make sync calls), as they always did.

Fork needs no order: each layer registers its own ``os.register_at_fork`` hook.

Layering: the standard library only. The engine and the bridge import this module; it imports
neither, so neither has to import the other to be shut down in the right order.
"""

from __future__ import annotations

import atexit
from collections.abc import Callable
from typing import Final

__all__ = ["CLOSE_SESSIONS", "STOP_PORTAL", "at_exit"]

# The stages, run in this order.
STOP_PORTAL: Final = 0  # the bridge: stop the portal thread, refuse sync calls from then on
CLOSE_SESSIONS: Final = 1  # the engine: kill, reap and close every session still open

_hooks: dict[int, list[Callable[[], object]]] = {STOP_PORTAL: [], CLOSE_SESSIONS: []}


def at_exit(stage: int, hook: Callable[[], object]) -> None:
    """Run ``hook`` at interpreter exit, in ``stage`` (stages in order, a stage's hooks in
    the order they were registered).

    Args:
        stage: :data:`STOP_PORTAL` or :data:`CLOSE_SESSIONS`.
        hook: Called with no arguments. A later stage runs even if it raises.

    Raises:
        KeyError: If ``stage`` is not one of the stages.
    """
    _hooks[stage].append(hook)


def _run_at_exit() -> None:
    failure: BaseException | None = None
    for stage in sorted(_hooks):
        for hook in _hooks[stage]:
            try:
                hook()
            except BaseException as exc:  # the next stage still runs; atexit reports this one
                failure = failure or exc
    if failure is not None:
        raise failure


atexit.register(_run_at_exit)
