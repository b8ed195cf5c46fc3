"""ResourceUsage: what a finished child cost (CPU time and peak memory), read when it is reaped."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["ResourceUsage"]

# getrusage's ru_maxrss is in KiB on Linux and in bytes on macOS.
_MAXRSS_UNIT: Final = 1 if sys.platform == "darwin" else 1024


@dataclass(frozen=True, slots=True)
class ResourceUsage:
    """CPU time and peak memory of one reaped child (``os.wait4``).

    These are the figures of the *direct* child; for a tree that was killed they do not include
    grandchildren the child had not waited for (the kernel adds a process's usage to its parent's
    only when the parent reaps it).

    Attributes:
        user_time: Seconds of CPU time spent in user mode.
        system_time: Seconds of CPU time spent in the kernel.
        max_rss: Peak resident set size, in bytes.

    Example:
        >>> ResourceUsage(user_time=0.5, system_time=0.1, max_rss=2**20).cpu_time
        0.6
    """

    user_time: float
    system_time: float
    max_rss: int

    @property
    def cpu_time(self) -> float:
        """User plus system time, in seconds."""
        return self.user_time + self.system_time

    @classmethod
    def from_rusage(cls, rusage: Any) -> ResourceUsage:
        """Build from a ``resource.struct_rusage``."""
        return cls(
            user_time=float(rusage.ru_utime),
            system_time=float(rusage.ru_stime),
            max_rss=int(rusage.ru_maxrss) * _MAXRSS_UNIT,
        )

    def to_dict(self) -> dict[str, float | int]:
        """A JSON-ready dict."""
        return {
            "user_time": self.user_time,
            "system_time": self.system_time,
            "max_rss": self.max_rss,
        }
