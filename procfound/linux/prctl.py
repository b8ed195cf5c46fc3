"""Linux prctl(2) helpers: the kernel name, parent-death signal, dumpable and no_new_privs flags.

Each helper changes state of the *calling* process (or thread, for the name and the death
signal), so call them in the process they are meant for, typically a worker right after it starts.

They need Linux and the optional python-prctl package (``pip install 'procfound[linux]'``,
which builds against the libcap headers: ``apt-get install libcap-dev``). python-prctl is
imported on first use, so this module imports fine anywhere; every ``set_*`` / ``get_*`` helper
raises :class:`~procfound.errors.PlatformError` when it cannot work, with the code
``PLATFORM_NOT_SUPPORTED`` off Linux and ``DEPENDENCY_MISSING`` when python-prctl is absent.
A prctl call that the kernel refuses is not an exception: the helper logs a warning on the
``procfound`` logger and returns False (``get_name`` returns None).
"""

from __future__ import annotations

import functools
import logging
import signal
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Final

from procfound.call.options import check_text
from procfound.errors import PlatformError, ValidationError, shorten

__all__ = [
    "get_name",
    "has_prctl",
    "is_linux",
    "set_death_signal",
    "set_dumpable",
    "set_name",
    "set_no_new_privs",
]

logger = logging.getLogger("procfound")

# The kernel keeps 16 bytes of comm including the terminating NUL.
MAX_NAME_LENGTH: Final = 15

INSTALL_HINT: Final = (
    "install it with: pip install 'procfound[linux]' "
    "(building it needs the libcap headers: apt-get install libcap-dev)"
)


@functools.cache
def _import_prctl() -> ModuleType | None:
    # Cached so a missing package costs one failed import, not a sys.path scan per call.
    try:
        import prctl
    except ImportError:
        return None
    module: ModuleType = prctl
    return module


def _require_prctl() -> ModuleType:
    if not is_linux():
        raise PlatformError(
            f"prctl features are only available on Linux (current platform: {sys.platform})",
            code="PLATFORM_NOT_SUPPORTED",
            platform=sys.platform,
        )
    module = _import_prctl()
    if module is None:
        raise PlatformError(
            f"python-prctl is not installed; {INSTALL_HINT}",
            code="DEPENDENCY_MISSING",
            hint=INSTALL_HINT,
        )
    return module


def is_linux() -> bool:
    """Check whether this process runs on Linux.

    Returns:
        True if ``sys.platform`` starts with ``"linux"``, False otherwise.

    Example:
        >>> from procfound.linux.prctl import is_linux
        >>> is_linux()
        True
    """
    return sys.platform.startswith("linux")


def has_prctl() -> bool:
    """Check whether the prctl helpers can work here.

    Returns:
        True if running on Linux and python-prctl can be imported, False otherwise.

    Example:
        >>> from procfound.linux.prctl import has_prctl, set_name
        >>> if has_prctl():
        ...     set_name("worker-1")
        True
    """
    return is_linux() and _import_prctl() is not None


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, int):  # bool is an int; so is 0/1 from C-minded callers
        raise ValidationError(
            f"{name} must be True or False, not {type(value).__name__}", code="INVALID_ARGUMENT"
        )
    return bool(value)


def _set_flag(
    what: str, value: object, name: str, setter: Callable[[ModuleType, int], object]
) -> bool:
    """Check a bool flag, then set it through python-prctl with ``setter(prctl, 0 or 1)``."""
    flag = _flag(value, name)
    prctl = _require_prctl()
    return _apply(what, flag, lambda: setter(prctl, 1 if flag else 0))


def _apply(what: str, value: object, call: Callable[[], object]) -> bool:
    """Run one prctl setter: True on success; a failure is logged as a warning, not raised."""
    try:
        call()
    except Exception as error:
        logger.warning("Failed to set %s to %r: %s", what, value, error)
        return False
    logger.debug("%s set to %r", what, value)
    return True


def set_name(name: str) -> bool:
    """Set the kernel name of the calling thread (PR_SET_NAME).

    This is the ``comm`` value shown in ``/proc/<pid>/comm``, ``top`` and ``ps -o comm``, not
    the full command line (for that, see :func:`procfound.linux.title.set_process_title`).
    The kernel keeps 15 bytes; a longer name is cut to at most 15 characters and 15 bytes of
    UTF-8 (never in the middle of a character, so :func:`get_name` can read it back) and a
    warning is logged.

    Args:
        name: The new name; at most 15 characters (and 15 UTF-8 bytes) are kept.

    Returns:
        True if the name was set, False if the prctl call failed (a warning is logged).

    Raises:
        ValidationError: If ``name`` is not a str, or holds a NUL or a lone surrogate.
        PlatformError: Not on Linux (``PLATFORM_NOT_SUPPORTED``) or python-prctl is not
            installed (``DEPENDENCY_MISSING``).

    Example:
        >>> from procfound.linux.prctl import set_name
        >>> set_name("worker-1")
        True
    """
    check_text(name, "name")
    prctl = _require_prctl()
    kept = name[:MAX_NAME_LENGTH]
    # The kernel cuts at 15 *bytes*; cutting at a character boundary ourselves keeps the name
    # valid UTF-8 (a split character would make get_name() fail to decode it).
    kept = kept.encode()[:MAX_NAME_LENGTH].decode("utf-8", errors="ignore")
    if kept != name:
        logger.warning(
            "Process name truncated to %d characters: %r -> %r", MAX_NAME_LENGTH, name, kept
        )
        name = kept
    try:
        prctl.set_name(name)
    except Exception as error:
        logger.warning("Failed to set process name %r: %s", name, error)
        return False
    logger.debug("Process name set to %r", name)
    return True


def get_name() -> str | None:
    """Get the kernel name of the calling thread (PR_GET_NAME).

    Returns:
        The name (at most 15 characters), or None if the prctl call failed (a warning is
        logged).

    Raises:
        PlatformError: Not on Linux (``PLATFORM_NOT_SUPPORTED``) or python-prctl is not
            installed (``DEPENDENCY_MISSING``).

    Example:
        >>> from procfound.linux.prctl import get_name, set_name
        >>> set_name("worker-1")
        True
        >>> get_name()
        'worker-1'
    """
    prctl = _require_prctl()
    try:
        return str(prctl.get_name())
    except Exception as error:
        logger.warning("Failed to get process name: %s", error)
        return None


def set_death_signal(sig: int) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies (PR_SET_PDEATHSIG).

    Use it in a child so that it cannot outlive a parent that crashed or was killed.
    The kernel ties the request to the parent *thread* that forked this process: the signal
    comes when that thread exits, even if the rest of the parent lives on. The setting is
    cleared by ``fork()`` and when executing a set-user-ID or set-group-ID binary.

    Args:
        sig: The signal number to receive, for example ``signal.SIGTERM`` or ``signal.SIGKILL``
            (0 clears the setting).

    Returns:
        True if the signal was registered, False if the prctl call failed (a warning is logged).

    Raises:
        ValidationError: If ``sig`` is not a signal number of this platform (or 0).
        PlatformError: Not on Linux (``PLATFORM_NOT_SUPPORTED``) or python-prctl is not
            installed (``DEPENDENCY_MISSING``).

    Example:
        >>> import signal
        >>> from procfound.linux.prctl import set_death_signal
        >>> set_death_signal(signal.SIGTERM)  # SIGTERM arrives when the parent dies
        True
    """
    if (
        isinstance(sig, bool)
        or not isinstance(sig, int)
        or (sig != 0 and sig not in signal.valid_signals())
    ):
        raise ValidationError(
            f"sig must be a signal number such as signal.SIGTERM (0 clears it), "
            f"not {shorten(repr(sig))}",
            code="INVALID_ARGUMENT",
        )
    prctl = _require_prctl()
    return _apply("death signal", sig, lambda: prctl.set_pdeathsig(int(sig)))


def set_dumpable(flag: bool) -> bool:
    """Allow or forbid core dumps and ptrace attachment by peers (PR_SET_DUMPABLE).

    Turning it off keeps secrets in memory out of core files and away from other processes
    of the same user.

    Args:
        flag: True to allow core dumps (the default state), False to forbid them.

    Returns:
        True if the flag was set, False if the prctl call failed (a warning is logged).

    Raises:
        ValidationError: If ``flag`` is not a bool.
        PlatformError: Not on Linux (``PLATFORM_NOT_SUPPORTED``) or python-prctl is not
            installed (``DEPENDENCY_MISSING``).

    Example:
        >>> from procfound.linux.prctl import set_dumpable
        >>> set_dumpable(False)  # no core dumps for this process
        True
    """
    return _set_flag("dumpable flag", flag, "flag", lambda prctl, on: prctl.set_dumpable(on))


def set_no_new_privs(enabled: bool = True) -> bool:
    """Set the no_new_privs flag (PR_SET_NO_NEW_PRIVS) on this process and its descendants.

    Once set, ``execve()`` can no longer grant privileges (set-user-ID bits, file
    capabilities are ignored). The flag is inherited and cannot be cleared again.

    Args:
        enabled: True to set the flag. False asks to clear it, which the kernel never
            allows, so it returns False with a warning.

    Returns:
        True if the flag is set now; False if ``enabled`` was False or the prctl call
        failed (a warning is logged either way).

    Raises:
        ValidationError: If ``enabled`` is not a bool.
        PlatformError: Not on Linux (``PLATFORM_NOT_SUPPORTED``) or python-prctl is not
            installed (``DEPENDENCY_MISSING``).

    Example:
        A worker that must never gain privileges, whatever it executes later:

        >>> from procfound.linux.prctl import set_no_new_privs
        >>> set_no_new_privs()
        True
    """
    return _set_flag(
        "no_new_privs flag", enabled, "enabled", lambda prctl, on: prctl.set_no_new_privs(on)
    )
