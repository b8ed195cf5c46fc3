"""ManagedProcess.expect/aexpect (issue 26, item 2) on real children: literals, regexes, lists,
split characters, timeouts and end of output that consume nothing, one buffer with the reads."""

from __future__ import annotations

import re
import subprocess
import sys

import anyio
import pytest
from conftest import SyncCall, python

from procfound import (
    DecodeError,
    ExpectMatch,
    ManagedProcess,
    ProcessError,
    ProcessTimeoutError,
    ValidationError,
    wait_for_process_output,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux children")

PIPE = subprocess.PIPE


def _writes(*pieces: bytes | float, then_sleep: bool = True) -> list[str]:
    """A child that writes each bytes piece to stdout (flushed), sleeps for each float."""
    return python(
        f"""
        import os, sys, time
        for piece in {list(pieces)!r}:
            if isinstance(piece, bytes):
                os.write(1, piece)
            else:
                time.sleep(piece)
        if {then_sleep!r}:
            time.sleep(30)
        """
    )


@pytest.mark.anyio
async def test_expect_a_literal_through_cat_and_read_the_rest_as_a_line() -> None:
    async with ManagedProcess(["cat"], stdin=PIPE) as proc:
        await proc.awrite("what is 1+1? 2\n")
        found = await proc.aexpect("1+1?")
        assert isinstance(found, ExpectMatch)
        assert (found.index, found.before, found.match.group()) == (0, "what is ", "1+1?")
        assert await proc.read_line_async(timeout=10) == " 2"


@pytest.mark.anyio
async def test_expect_a_regex_gives_its_groups() -> None:
    async with ManagedProcess(_writes(b"we have 42 apples\n")) as proc:
        found = await proc.aexpect(re.compile(r"(\d+) apples"))
        assert found.match.group(1) == "42"
        assert found.before == "we have "


@pytest.mark.anyio
async def test_of_a_list_the_earliest_match_wins() -> None:
    async with ManagedProcess(_writes(b"one: b then a\n")) as proc:
        found = await proc.aexpect(["a", "b"])
        assert (found.index, found.before) == (1, "one: ")
        found = await proc.aexpect(("a", "b"))
        assert (found.index, found.before) == (0, " then ")


@pytest.mark.anyio
async def test_on_a_tie_the_lowest_index_wins() -> None:
    async with ManagedProcess(_writes(b"xxabbb\n")) as proc:
        found = await proc.aexpect([re.compile("ab+"), "a"])
        assert (found.index, found.match.group(), found.before) == (0, "abbb", "xx")


@pytest.mark.anyio
async def test_a_character_split_across_two_writes_is_never_broken() -> None:
    euro = "€".encode()
    async with ManagedProcess(_writes(b"price: " + euro[:2], 0.3, euro[2:] + b"5\n")) as proc:
        found = await proc.aexpect(re.compile("price: (.)"))
        assert found.match.group(1) == "€"
        assert await proc.read_line_async(timeout=10) == "5"


@pytest.mark.anyio
async def test_a_timeout_loses_nothing() -> None:
    async with ManagedProcess(["cat"], stdin=PIPE) as proc:
        await proc.awrite("partial line\n")
        with pytest.raises(ProcessTimeoutError) as caught:
            await proc.aexpect("never", timeout=0.3)
        assert isinstance(caught.value, TimeoutError)
        assert caught.value.code == "PROCESS_EXPECT_TIMEOUT"
        assert "partial line" in (caught.value.stdout or "")
        assert await proc.read_line_async(timeout=10) == "partial line"


def test_a_timeout_from_sync_code_then_a_match(sync_call: SyncCall) -> None:
    with ManagedProcess(["cat"], stdin=PIPE) as proc:
        sync_call(proc.write, "ask> ")
        with pytest.raises(TimeoutError):
            sync_call(proc.expect, "answer", timeout=0.2)
        sync_call(proc.write, "answer\n")
        found = sync_call(proc.expect, ["answer", "ask> "])
        assert (found.index, found.before) == (1, "")
        found = sync_call(proc.expect, "answer")
        assert found.before == ""


@pytest.mark.anyio
async def test_end_of_output_before_a_match_is_a_process_error_with_code_and_tail() -> None:
    async with ManagedProcess(python("print('bye', flush=True); raise SystemExit(3)")) as proc:
        with pytest.raises(ProcessError) as caught:
            await proc.aexpect("never", timeout=10)
        error = caught.value
        assert not isinstance(error, ProcessTimeoutError)
        assert error.code == "PROCESS_EXITED_EARLY"
        assert error.return_code == 3
        assert "bye" in (error.stdout or "")
        assert await proc.read_line_async(timeout=10) == "bye"  # nothing was consumed


@pytest.mark.anyio
async def test_expect_and_the_line_reads_share_one_buffer() -> None:
    async with ManagedProcess(_writes(b"line1\nprompt> line2\n")) as proc:
        assert await proc.read_line_async(timeout=10) == "line1"
        found = await proc.aexpect("> ")
        assert found.before == "prompt"
        assert await proc.read_line_async(timeout=10) == "line2"


@pytest.mark.anyio
async def test_expect_after_a_handshake_wait_sees_what_followed_it() -> None:
    async with ManagedProcess(_writes(b"ready 1|tcp|grpc\nmore> \n")) as proc:
        await wait_for_process_output(proc, ["tcp", "grpc"])
        found = await proc.aexpect("> ")
        assert found.before == "more"


@pytest.mark.anyio
async def test_text_is_matched_as_written_without_newline_translation() -> None:
    async with ManagedProcess(_writes(b"a\r\nb\n"), text_mode=True) as proc:
        found = await proc.aexpect("b")
        assert found.before == "a\r\n"


@pytest.mark.anyio
async def test_a_pattern_that_matches_empty_text_matches_at_once() -> None:
    async with ManagedProcess(["sleep", "30"]) as proc:
        found = await proc.aexpect(re.compile("x*"), timeout=1)
        assert (found.before, found.match.group()) == ("", "")


@pytest.mark.anyio
@pytest.mark.parametrize("pattern", [[], b"bytes", re.compile(b"x"), 3, ["ok", None]])
async def test_bad_patterns_are_refused_before_any_wait(pattern: object) -> None:
    async with ManagedProcess(["sleep", "30"]) as proc:
        with anyio.fail_after(5), pytest.raises(ValidationError):
            await proc.aexpect(pattern, timeout=None)  # type: ignore[arg-type]


def test_expect_without_captured_output_is_an_error() -> None:
    with ManagedProcess(["sleep", "30"], capture_output=False) as proc, pytest.raises(ProcessError):
        proc.expect("x", timeout=1)


@pytest.mark.anyio
async def test_strict_decoding_stops_at_a_bad_byte_before_a_match() -> None:
    async with ManagedProcess(_writes(b"ok\xff", 0.2, b"> rest\n"), errors="strict") as proc:
        with pytest.raises(DecodeError) as caught:
            await proc.aexpect("> ")
        assert caught.value.result is not None
        assert caught.value.result.stdout == b"ok\xff"
        found = await proc.aexpect("> ")  # the bad bytes were consumed; what follows is there
        assert found.before == ""
        assert await proc.read_line_async(timeout=10) == "rest"


@pytest.mark.anyio
async def test_a_match_before_a_bad_byte_is_found_under_strict_decoding() -> None:
    async with ManagedProcess(_writes(b"prompt> \xff\n"), errors="strict") as proc:
        found = await proc.aexpect("> ")
        assert found.before == "prompt"
