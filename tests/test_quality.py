"""Static checks run inside the test session: ruff (lint and format) and mypy --strict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [
    "procfound",
    "tests",
    "benchmarks",
    "examples",
    "docs/griffe_sync_twins.py",
    "noxfile.py",
]


def _check(*argv: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, timeout=280
    )
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}"


def test_ruff_check_is_clean() -> None:
    _check("ruff", "check", *SOURCES)


def test_ruff_format_is_clean() -> None:
    _check("ruff", "format", "--check", *SOURCES)


@pytest.mark.timeout(300)
def test_mypy_strict_is_clean() -> None:
    _check("mypy", "--strict", "procfound")
