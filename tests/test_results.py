"""What a run cost (duration, rusage) and output caps that keep memory bounded."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SyncCall, python

import procfound
from procfound.engine.lines import CutLine, LineSplitter

ROOT = Path(__file__).resolve().parent.parent
# Spins for 0.7 s of its own CPU time (not wall time: on a loaded machine a second of wall time
# may hold less than half a second of CPU).
SPIN = python(
    "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.7: sum(range(10000))"
)
ALLOC = python("x = bytearray(100 * 1024 * 1024)\nx[::4096] = b'x' * len(x[::4096])")


def test_duration_is_close_to_the_wall_time(sync_call: SyncCall) -> None:
    start = time.monotonic()
    result = sync_call(procfound.run, ["sleep", "1"])
    wall = time.monotonic() - start
    assert result.duration is not None
    assert abs(result.duration - 1.0) < 0.5
    assert result.duration <= wall


@pytest.mark.anyio
async def test_rusage_shows_cpu_time_of_a_spinning_child() -> None:
    result = await procfound.async_run(SPIN)
    assert result.rusage is not None
    assert result.rusage.user_time >= 0.5
    assert result.rusage.cpu_time >= result.rusage.user_time


@pytest.mark.anyio
async def test_rusage_shows_the_peak_memory_of_the_child() -> None:
    result = await procfound.async_run(ALLOC)
    assert result.rusage is not None
    assert result.rusage.max_rss >= 100 * 1024 * 1024


@pytest.mark.anyio
async def test_errors_carry_duration_and_rusage() -> None:
    with pytest.raises(procfound.ProcessError) as info:
        await procfound.async_run(["sh", "-c", "exit 3"])
    assert info.value.duration is not None
    assert info.value.duration < 5
    assert info.value.rusage is not None


def _rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def test_a_1_gib_output_with_max_output_keeps_the_last_mib_in_bounded_memory() -> None:
    # In a fresh interpreter, so the peak RSS is this capture's alone.
    code = """
    import resource, procfound
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cmd = ["sh", "-c", "head -c 1073741823 /dev/zero; printf z"]
    r = procfound.run(cmd, text=False, max_output=1 << 20)
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
    assert len(r.stdout) == 1 << 20, len(r.stdout)
    assert r.stdout.endswith(b"z") and r.stdout.count(0) == (1 << 20) - 1
    print(r.stdout_dropped, grew)
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(python(code), env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    dropped, grew_kib = map(int, done.stdout.split())
    assert dropped == (1 << 30) - (1 << 20)
    assert grew_kib < 64 * 1024


@pytest.mark.anyio
async def test_max_output_is_said_in_the_error_message() -> None:
    cmd = ["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x; exit 2"]
    with pytest.raises(procfound.ProcessError) as info:
        await procfound.async_run(cmd, max_output=1000)
    assert info.value.stdout_dropped == 99000
    assert "the first 99000 bytes were dropped (max_output)" in str(info.value)
    assert info.value.stdout == "x" * 1000


@pytest.mark.parametrize("bad", [0, -1, 1.5, "10", True])
def test_max_output_must_be_a_positive_int(bad: object) -> None:
    with pytest.raises(procfound.ValidationError, match="max_output"):
        procfound.run(["true"], max_output=bad)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_100_mib_line_with_max_line_is_cut_and_later_lines_are_intact() -> None:
    cmd = ["sh", "-c", "head -c 104857600 /dev/zero | tr '\\0' a; echo; echo after"]
    lines = [line async for line in procfound.async_stream(cmd, max_line=1 << 20)]
    assert len(lines) == 2
    first, second = lines
    assert isinstance(first, CutLine)
    assert len(first) == 1 << 20
    assert set(first) == {"a"}
    assert first.dropped == 100 * (1 << 20) - (1 << 20)
    assert second == "after"
    assert not isinstance(second, CutLine)


def test_sync_stream_honours_max_line(sync_call: SyncCall) -> None:
    lines = sync_call(lambda: list(procfound.stream(["printf", "abcdef\\nxy\\n"], max_line=3)))
    assert lines == ["abc", "xy"]
    assert lines[0].dropped == 3


def test_splitter_cap_keeps_a_character_whole_at_the_cut() -> None:
    splitter = LineSplitter(max_line=3)
    (line,) = splitter.feed("aé b\n".encode())  # 'a' + 2-byte 'é' fills the cap exactly
    assert line == "aé"
    assert line.dropped == 2
    (cut,) = LineSplitter(max_line=2).feed("aéb\n".encode())  # the cap splits 'é'
    assert cut == "a"
    assert cut.dropped == 3


def test_cli_json_includes_duration_and_rusage() -> None:
    import json

    cmd = [sys.executable, "-m", "procfound", "run", "--json", "--", "sleep", "0.2"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    document = json.loads(done.stdout)
    assert 0.1 < document["duration"] < 5
    assert set(document["rusage"]) == {"user_time", "system_time", "max_rss"}
