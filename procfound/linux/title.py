"""Process titles: the command line ``ps``, ``top`` and ``htop`` show, through setproctitle.

**Test mode.** A process title belongs to the whole process, so changing it from a test would
rename the test runner (and every pytest-xdist worker) for all later tests. The helpers here
are therefore inert while ``PYTEST_CURRENT_TEST`` is set in the environment, which pytest does
for the duration of each test: :func:`set_process_title` and :func:`set_process_title_from_argv`
return True without doing anything, and :func:`get_process_title` returns None. The variable
is read on every call, never cached, so deleting it (``monkeypatch.delenv``) or starting a
child without it turns the helpers back on.

setproctitle is imported on first use; without it the setters return False and the getter
returns None.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Final

from procfound.call.options import check_text

__all__ = [
    "get_process_title",
    "has_setproctitle",
    "set_process_title",
    "set_process_title_from_argv",
]

logger = logging.getLogger("procfound")

TEST_MODE_VARIABLE: Final = "PYTEST_CURRENT_TEST"


def _in_test_mode() -> bool:
    return TEST_MODE_VARIABLE in os.environ


@functools.cache
def _import_setproctitle() -> ModuleType | None:
    # Cached so a missing package costs one failed import, not a sys.path scan per call.
    try:
        import setproctitle
    except ImportError:
        return None
    module: ModuleType = setproctitle
    return module


def has_setproctitle() -> bool:
    """Check whether setproctitle can be imported.

    Returns:
        True if setproctitle is available, False otherwise.

    Example:
        >>> from procfound.linux.title import has_setproctitle
        >>> has_setproctitle()
        True
    """
    return _import_setproctitle() is not None


def set_process_title(title: str) -> bool:
    """Set the title of this process as ``ps``, ``top`` and ``htop`` show it.

    Useful for telling workers of one program apart. Unlike
    :func:`procfound.linux.prctl.set_name`, the title is not cut to 15 characters.

    In test mode (``PYTEST_CURRENT_TEST`` set, checked at each call) this does nothing and
    returns True, so tests cannot rename the test runner.

    Args:
        title: The new title.

    Returns:
        True if the title was set (or skipped in test mode); False if setproctitle is not
        installed, or if setting it failed (a warning is logged).

    Raises:
        ValidationError: If ``title`` is not a str, or holds a NUL or a lone surrogate (also
            in test mode).

    Example:
        >>> from procfound.linux.title import set_process_title
        >>> set_process_title("myapp: worker 3")
        True
    """
    check_text(title, "title")
    if _in_test_mode():
        logger.debug("Skipping set_process_title in test mode")
        return True
    setproctitle = _import_setproctitle()
    if setproctitle is None:
        logger.debug("Cannot set process title %r: setproctitle is not installed", title)
        return False
    try:
        setproctitle.setproctitle(title)
    except Exception as error:
        logger.warning("Failed to set process title %r: %s", title, error)
        return False
    logger.debug("Process title set to %r", title)
    return True


def get_process_title() -> str | None:
    """Get the title of this process.

    In test mode (``PYTEST_CURRENT_TEST`` set, checked at each call) this returns None.

    Returns:
        The current title; None in test mode, if setproctitle is not installed, or if reading
        it failed.

    Example:
        >>> from procfound.linux.title import get_process_title, set_process_title
        >>> set_process_title("myapp: worker 3")
        True
        >>> get_process_title()
        'myapp: worker 3'
    """
    if _in_test_mode():
        return None
    setproctitle = _import_setproctitle()
    if setproctitle is None:
        return None
    try:
        return str(setproctitle.getproctitle())
    except Exception as error:
        logger.debug("Failed to get process title: %s", error)
        return None


def set_process_title_from_argv() -> bool:
    """Set the title to the command name the program was invoked as, then its arguments.

    The title is the basename of ``sys.argv[0]``, then a space and ``sys.argv[1:]`` joined by
    spaces when there are arguments. The name is taken as invoked: a symlink keeps its own
    name and a ``.py`` suffix stays. Arguments are not quoted, so ``["pyvider", "--name",
    "my app"]`` gives ``pyvider --name my app``. This hides the interpreter path that a Python
    program otherwise shows in ``ps``.

    In test mode (``PYTEST_CURRENT_TEST`` set, checked at each call) this does nothing and
    returns True.

    Returns:
        True if the title was set (or skipped in test mode); False if setproctitle is not
        installed, ``sys.argv`` is empty, or setting the title failed (a warning is logged).

    Example:
        >>> import sys
        >>> from procfound.linux.title import get_process_title, set_process_title_from_argv
        >>> sys.argv = ["/usr/local/bin/pyvider", "--name", "my app"]  # as the program was run
        >>> set_process_title_from_argv()
        True
        >>> get_process_title()  # what ps shows
        'pyvider --name my app'
    """
    if _in_test_mode():
        logger.debug("Skipping set_process_title_from_argv in test mode")
        return True
    if not sys.argv:
        # Embedded interpreters may leave argv empty; there is no command name to show.
        logger.warning("Cannot set process title from argv: sys.argv is empty")
        return False
    command_name = Path(sys.argv[0]).name
    arguments = sys.argv[1:]
    title = f"{command_name} {' '.join(arguments)}" if arguments else command_name
    return set_process_title(title)
