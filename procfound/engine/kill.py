"""The escalation schedule for stopping a process tree: a pure object, tested without processes.

The engine's one kill path (:meth:`procfound.engine.session.ChildSession.finish`) follows it:
the stop signal (SIGTERM unless the caller chose another; with SIGCONT, so a stopped tree can act
on it) to the process group, up to ``grace``
seconds for the tree to go, then SIGKILL to the group and up to ``kill_wait`` seconds for the
kernel to finish it. A child in uninterruptible sleep may outlast even that; then the wait gives
up instead of hanging forever (peers wait without bound: anyio #757).
"""

from __future__ import annotations

import math
import signal
from dataclasses import dataclass
from typing import Final

from procfound.engine.contain import CONTAIN_LEVELS

__all__ = ["DEFAULT_GRACE", "KILL_WAIT", "VALID_SIGNALS", "KillSchedule", "KillStep", "StopPolicy"]

DEFAULT_GRACE: Final = 0.5
KILL_WAIT: Final = 5.0
# Every signal this platform can deliver, real-time ones included (glibc keeps 32 and 33).
VALID_SIGNALS: Final = frozenset(int(sig) for sig in signal.valid_signals()) - {0}


@dataclass(frozen=True, slots=True)
class KillStep:
    """Send ``signals`` to the group, then wait up to ``wait`` seconds for the child to exit."""

    signals: tuple[int, ...]
    wait: float


@dataclass(frozen=True, slots=True)
class KillSchedule:
    """How to stop a tree: a polite request, a grace period, then force, all bounded.

    ``stop_signal`` is any signal number the platform has (real-time ones included): it is kept
    as a number, never converted to :class:`signal.Signals` (which has no real-time members).

    Example:
        >>> [step.signals for step in KillSchedule(grace=1.0).steps()]
        [(15, 18), (9,)]
        >>> KillSchedule(grace=0).steps()[0].signals
        (9,)
    """

    grace: float = DEFAULT_GRACE
    kill_wait: float = KILL_WAIT
    stop_signal: int = int(signal.SIGTERM)

    def __post_init__(self) -> None:
        if not 0 <= self.grace < float("inf") or self.kill_wait <= 0:
            raise ValueError("grace must be finite and >= 0, and kill_wait > 0")

    def steps(self) -> tuple[KillStep, ...]:
        """The steps in order; with no grace, SIGKILL at once.

        Example:
            >>> [step.signals for step in KillSchedule(0.2, stop_signal=signal.SIGRTMIN).steps()]
            [(34, 18), (9,)]
        """
        kill = KillStep((int(signal.SIGKILL),), self.kill_wait)
        if self.grace == 0 or self.stop_signal == signal.SIGKILL:
            return (kill,)
        polite: tuple[int, ...] = (int(self.stop_signal),)
        if self.stop_signal != signal.SIGCONT:
            polite += (int(signal.SIGCONT),)
        return (KillStep(polite, self.grace), kill)

    def with_grace(self, grace: float) -> KillSchedule:
        """The same schedule with another grace period."""
        return KillSchedule(grace, self.kill_wait, self.stop_signal)

    @property
    def bound(self) -> float:
        """The longest the whole schedule can take, in seconds."""
        return sum(step.wait for step in self.steps())


@dataclass(frozen=True, slots=True)
class StopPolicy:
    """How one call's tree is stopped, whole: the first signal, the grace, what is contained.

    Built and checked once, before anything is spawned, by :func:`procfound.call.stop.stop_policy`
    (for the API, the CLI and the pytest plugin alike) and handed to the engine as it is: the
    engine reads it and converts nothing. ``contain`` is ``"group"``, ``"tree"`` or
    ``"cgroup"`` (engine/contain.py).

    Example:
        >>> StopPolicy(kill_grace=0).schedule.steps()[0].signals
        (9,)
    """

    stop_signal: int = int(signal.SIGTERM)
    kill_grace: float = DEFAULT_GRACE
    contain: str = "group"

    def __post_init__(self) -> None:
        # The value's own invariant, a backstop for one built by hand: stop_policy() parses
        # names and gives the precise messages.
        grace = self.kill_grace
        if isinstance(self.stop_signal, int) and not isinstance(self.stop_signal, bool):
            object.__setattr__(self, "stop_signal", int(self.stop_signal))  # a signal.Signals
        if (
            type(self.stop_signal) is not int
            or self.stop_signal not in VALID_SIGNALS
            or isinstance(grace, bool)
            or not isinstance(grace, int | float)
            or not 0 <= grace < math.inf
            or self.contain not in CONTAIN_LEVELS
        ):
            from procfound.errors import ValidationError

            raise ValidationError(
                f"not a stop policy this platform can carry out: {self!r:.200}; "
                "build one with procfound.stop_policy()",
                code="INVALID_ARGUMENT",
            )

    @property
    def schedule(self) -> KillSchedule:
        """The TERM→KILL escalation this policy asks for."""
        return KillSchedule(self.kill_grace, stop_signal=self.stop_signal)
