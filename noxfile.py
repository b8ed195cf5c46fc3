"""nox sessions: tests, lint, bench (side-by-side benchmarks) and soak (long fault runs)."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

# Every Python that `requires-python = ">=3.11"` claims and this machine has. `nox -s tests` runs
# all of them; `nox -s tests-3.12` one.
PYTHONS = ["3.11", "3.12", "3.13"]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole suite, including ruff and mypy --strict (tests/test_quality.py).

    Four workers (pytest-xdist): most tests wait on children, graces and timeouts rather than
    use the CPU, so on two cores four workers finish in about a third of one worker's time.
    """
    session.install("-e", ".[dev,linux]")
    session.run("python", "-m", "pytest", *(session.posargs or ["-n", "4"]))


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """Only the static checks."""
    session.install("-e", ".[dev,linux]")
    session.run("ruff", "check", "procfound", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "procfound", "tests", "benchmarks", "noxfile.py")
    session.run("mypy", "--strict", "procfound")


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """procfound against subprocess, asyncio, anyio and trio in one run; prints ratio tables."""
    session.install("-e", ".[dev,linux]")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session(python="3.11")
def soak(session: nox.Session) -> None:
    """Long mixed runs with random timeouts and cancellations (marked `soak`)."""
    session.install("-e", ".[dev,linux]")
    session.run(
        "python",
        "-m",
        "pytest",
        "-m",
        "soak",
        *session.posargs,
        env={"PROCFOUND_SOAK": "1"},
    )
