"""The stop policy: how a call's process tree is stopped, checked whole before anything starts.

``stop_signal``, ``kill_grace`` and ``contain`` used to be checked in one place and converted in
another, after the child was already running: a real-time stop signal passed the check, the child
was spawned, and the conversion raised a raw ``ValueError`` that left the child unkilled. Now one
function, :func:`stop_policy`, parses and checks the three together and returns one immutable
:class:`~procfound.engine.kill.StopPolicy` that the engine reads as it is. The API's keywords, the
CLI's options and the pytest plugin all go through it (and through its parts,
:func:`parse_signal`, :func:`parse_contain`, :func:`parse_grace`), so there is one signal parser,
one list of levels and one reading of ``PROCFOUND_CONTAIN``.
"""

from __future__ import annotations

import math
import os
import signal
from typing import Final

from procfound.engine.contain import CONTAIN_LEVELS
from procfound.engine.kill import DEFAULT_GRACE, VALID_SIGNALS, StopPolicy
from procfound.errors import ValidationError, shorten, signal_name

__all__ = [
    "CONTAIN_ENV",
    "CONTAIN_LEVELS",
    "StopPolicy",
    "parse_contain",
    "parse_grace",
    "parse_signal",
    "resolve_contain",
    "signal_name",
    "stop_policy",
]

CONTAIN_ENV: Final = "PROCFOUND_CONTAIN"
_RTMIN: Final = getattr(signal, "SIGRTMIN", None)
_RTMAX: Final = getattr(signal, "SIGRTMAX", None)
_ACCEPTED: Final = (
    "a signal number, a signal.Signals or a name like 'SIGTERM', 'INT' or 'SIGRTMIN+2'"
)


def _signal_by_name(text: str) -> int | None:
    word = text.strip().upper()
    if word.isdigit():  # no signal number has more than a few digits (int() refuses 4,300+)
        return int(word) if len(word) < 10 else None
    name = word if word.startswith("SIG") else "SIG" + word
    for base_name, base in (("SIGRTMIN", _RTMIN), ("SIGRTMAX", _RTMAX)):
        if base is None or not name.startswith(base_name):
            continue
        rest = name[len(base_name) :]
        if not rest:
            return int(base)
        if rest[0] in "+-" and rest[1:].isdigit() and len(rest) < 6:
            return int(base) + int(rest[1:]) * (1 if rest[0] == "+" else -1)
        return None
    sig = getattr(signal.Signals, name, None) if name.isidentifier() else None
    return None if sig is None else int(sig)


def parse_signal(value: object, name: str = "stop_signal") -> int:
    """A signal this platform has, as a number, from a number, a ``signal.Signals`` or a name.

    Names are case-insensitive, with or without ``SIG``; ``SIGRTMIN+N`` and ``SIGRTMAX-N`` name
    the real-time signals. Anything else is refused here, before any child is started.

    Args:
        value: What the caller passed.
        name: The argument's name, for the message.

    Returns:
        The signal number.

    Raises:
        ValidationError: If ``value`` is not a signal this platform can send.

    Example:
        >>> parse_signal("term"), parse_signal(2)
        (15, 2)
    """
    if isinstance(value, str):
        number = _signal_by_name(value) if "\0" not in value and value.isascii() else None
        if number is None:
            raise ValidationError(
                f"unknown {name} {shorten(repr(value), 60)}: expected {_ACCEPTED}",
                code="INVALID_ARGUMENT",
            )
    elif isinstance(value, int) and not isinstance(value, bool):
        number = int(value)
    else:
        raise ValidationError(
            f"{name} must be {_ACCEPTED}, not {type(value).__name__}", code="INVALID_ARGUMENT"
        )
    if number not in VALID_SIGNALS:
        raise ValidationError(
            f"{name} {shorten(str(number), 30)} is not a signal this platform can send",
            code="INVALID_ARGUMENT",
        )
    return number


def parse_contain(value: object, where: str = "contain") -> str:
    """A containment level: ``"group"``, ``"tree"`` or ``"cgroup"`` (case and spaces ignored).

    Raises:
        ValidationError: For anything else.

    Example:
        >>> parse_contain(" Tree ")
        'tree'
    """
    if isinstance(value, str) and (level := value.strip().lower()) in CONTAIN_LEVELS:
        return level
    shown = shorten(repr(value), 60) if isinstance(value, str) else type(value).__name__
    raise ValidationError(
        f"{where} must be one of {', '.join(map(repr, CONTAIN_LEVELS))}, not {shown}",
        code="INVALID_ARGUMENT",
    )


def parse_grace(value: object, name: str = "kill_grace") -> float:
    """Seconds from the stop signal to SIGKILL: a finite number, 0 or more (0: SIGKILL at once).

    Raises:
        ValidationError: For a negative, infinite or NaN number, or anything but a number.

    Example:
        >>> parse_grace(2)
        2.0
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(
            f"{name} must be a number of seconds, not {type(value).__name__}",
            code="INVALID_ARGUMENT",
        )
    try:
        seconds = float(value)
    except OverflowError:
        seconds = math.inf
    if not 0 <= seconds < math.inf:
        raise ValidationError(
            f"{name} must be a finite number of seconds >= 0 (the tree is always SIGKILLed "
            f"after it), not {shorten(repr(value), 30)}",
            code="INVALID_ARGUMENT",
        )
    return seconds


def stop_policy(
    stop_signal: object = signal.SIGTERM,
    kill_grace: object = DEFAULT_GRACE,
    contain: object = None,
    *,
    default_contain: str = "group",
) -> StopPolicy:
    """Check how a tree is to be stopped, whole, and return it as one immutable value.

    The call's own ``contain`` wins; None takes the environment variable ``PROCFOUND_CONTAIN``,
    then ``default_contain`` (the call's own default: ``"group"`` for a run, ``"tree"`` for a
    :class:`~procfound.ManagedProcess` and the CLI). Every part is checked here, so a policy the
    engine cannot carry out is refused before any child starts.

    Args:
        stop_signal: The signal sent first (see :func:`parse_signal`).
        kill_grace: Seconds from it to SIGKILL.
        contain: ``"group"``, ``"tree"``, ``"cgroup"``, or None.
        default_contain: The level when neither the call nor the environment chose one.

    Returns:
        The policy.

    Raises:
        ValidationError: If any part is not valid (the message names it).

    Example:
        >>> stop_policy("SIGINT", 2, "tree")
        StopPolicy(stop_signal=2, kill_grace=2.0, contain='tree')
    """
    level = resolve_contain(None if contain is None else parse_contain(contain), default_contain)
    return StopPolicy(parse_signal(stop_signal), parse_grace(kill_grace), level)


def resolve_contain(contain: str | None, default: str) -> str:
    """A call's level: its own (checked), else ``PROCFOUND_CONTAIN`` (checked here), else
    ``default``."""
    if contain is not None:
        return contain
    from_env = os.environ.get(CONTAIN_ENV, "")
    if from_env.strip():
        return parse_contain(from_env, f"the environment variable {CONTAIN_ENV}")
    return parse_contain(default, "default_contain")
