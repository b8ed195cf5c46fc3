"""Property tests (hypothesis, issue 8): what goes in comes out exactly; the shell guard holds.

* argv, env values and input bytes reach a child exactly (compared as bytes);
* output of any size (0..2 MiB) written in any chunking comes back exactly through ``run`` /
  ``async_run`` capture, and through ``stream`` line splitting;
* a string that passes the shell guard never makes ``/bin/sh`` run a second command.

Each property runs through the sync twin and through the async form under asyncio and trio
(``via``). Examples are few (25-60) and there is no deadline: each one starts processes.
"""

from __future__ import annotations

import functools
import json
import os
import random
import sys
from contextlib import aclosing
from typing import Any

import anyio
import pytest
from conftest import python
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from procfound import (
    CompletedProcess,
    ShellFeatureError,
    ValidationError,
    async_run,
    async_stream,
    run,
    shell,
    stream,
)
from procfound.shell import DANGEROUS_SHELL_PATTERNS, validate_shell_safety

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

VIAS = ["sync", "asyncio", "trio"]


def properties(max_examples: int) -> Any:
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


def call_run(via: str, cmd: list[str], **kwargs: Any) -> CompletedProcess:
    if via == "sync":
        return run(cmd, **kwargs)
    result: CompletedProcess = anyio.run(functools.partial(async_run, cmd, **kwargs), backend=via)
    return result


def call_stream(via: str, cmd: list[str], **kwargs: Any) -> list[str]:
    if via == "sync":
        return list(stream(cmd, **kwargs))

    async def collect() -> list[str]:
        async with aclosing(async_stream(cmd, **kwargs)) as agen:
            return [line async for line in agen]

    lines: list[str] = anyio.run(collect, backend=via)
    return lines


# --------------------------------------------------------------------------------------------
# argv, env values and input bytes
# --------------------------------------------------------------------------------------------

# Any character but NUL and the surrogates no encoding can carry, plus the surrogate escapes
# (U+DC80..U+DCFF) that stand for arbitrary bytes 0x80..0xFF (PEP 383): every such str is a
# valid argv element or env value and reaches the child as os.fsencode(str).
TEXT = st.text(
    st.one_of(
        st.characters(exclude_categories=["Cs"], exclude_characters="\0"),
        st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF),
    ),
    max_size=40,
)

ARGV_PROBE = python(
    """
    import json, os, sys
    print(json.dumps([os.fsencode(arg).hex() for arg in sys.argv[1:]]))
    """
)
ENV_PROBE = python(
    """
    import json, os, sys
    print(json.dumps({key: os.environb[key.encode()].hex() for key in sys.argv[1:]}))
    """
)
STDIN_ECHO = python(
    """
    import shutil, sys
    shutil.copyfileobj(sys.stdin.buffer, sys.stdout.buffer, 1 << 16)
    """
)


@pytest.mark.parametrize("via", VIAS)
@properties(30)
@given(argv=st.lists(TEXT, max_size=8))
def test_argv_reaches_the_child_byte_for_byte(via: str, argv: list[str]) -> None:
    result = call_run(via, [*ARGV_PROBE, *argv])
    assert json.loads(result.stdout) == [os.fsencode(arg).hex() for arg in argv]


ENV_NAME = st.from_regex(r"\APF_[A-Z][A-Z0-9_]{0,10}\Z")


@pytest.mark.parametrize("via", VIAS)
@properties(30)
@given(env=st.dictionaries(ENV_NAME, TEXT, max_size=4))
def test_env_values_reach_the_child_byte_for_byte(via: str, env: dict[str, str]) -> None:
    result = call_run(via, [*ENV_PROBE, *env], env=env)
    assert json.loads(result.stdout) == {
        key: os.fsencode(value).hex() for key, value in env.items()
    }


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


INPUT = st.one_of(
    st.binary(max_size=4096),
    st.builds(random_bytes, st.integers(0, 2 << 20), st.integers(0, 2**32)),
)


@pytest.mark.parametrize("via", VIAS)
@properties(25)
@given(data=INPUT)
def test_input_bytes_reach_the_child_exactly(via: str, data: bytes) -> None:
    result = call_run(via, STDIN_ECHO, input=data, text=False, timeout=60)
    assert len(result.stdout) == len(data)
    assert result.stdout == data


# Text no encoding can carry is refused before anything runs, never a UnicodeEncodeError from
# deep inside the spawn.
UNENCODABLE = "lone \ud800 surrogate"


@pytest.mark.parametrize(
    "call",
    [
        lambda: run(["echo", UNENCODABLE]),
        lambda: run(["true"], env={"PF_VALUE": UNENCODABLE}),
    ],
    ids=["argv", "env"],
)
def test_unencodable_text_is_a_validation_error(call: Any) -> None:
    with pytest.raises(ValidationError):
        call()


# --------------------------------------------------------------------------------------------
# Output of any size and chunking: capture and line streaming
# --------------------------------------------------------------------------------------------

# The writer bounds its number of writes (at most ~4000 per stream): a 2 MiB output in 1-byte
# writes would take seconds and prove nothing the smaller sizes do not.
CHUNKED_WRITER = python(
    """
    import os, random, sys
    size, seed = int(sys.argv[1]), int(sys.argv[2])
    chunks = [max(int(c), -(-size // 4000)) for c in sys.argv[3].split(",")]
    data = random.Random(seed).randbytes(size)
    both = sys.argv[4] == "both"
    pos = i = 0
    while pos < size:
        end = min(size, pos + chunks[i % len(chunks)])
        for fd in (1, 2) if both else (1,):
            view = memoryview(data)[pos:end]
            while view:
                view = view[os.write(fd, view) :]
        pos, i = end, i + 1
    """
)

CHUNKS = st.lists(st.integers(1, 1 << 20), min_size=1, max_size=6)


@pytest.mark.parametrize("via", VIAS)
@properties(30)
@given(
    size=st.integers(0, 2 << 20),
    seed=st.integers(0, 2**32),
    chunks=CHUNKS,
    as_text=st.booleans(),
)
@example(size=0, seed=0, chunks=[1], as_text=False)
@example(size=2 << 20, seed=1, chunks=[1], as_text=False)
@example(size=2 << 20, seed=2, chunks=[65536, 1, 4095], as_text=True)
def test_output_of_any_size_and_chunking_is_captured_exactly(
    via: str, size: int, seed: int, chunks: list[int], as_text: bool
) -> None:
    cmd = [*CHUNKED_WRITER, str(size), str(seed), ",".join(map(str, chunks)), "both"]
    result = call_run(via, cmd, text=as_text, timeout=60)
    data = random_bytes(size, seed)
    expected: str | bytes = data
    if as_text:  # universal newlines: CRLF and a lone CR read as LF
        expected = data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    assert len(result.stdout) == len(expected)
    assert result.stdout == expected
    assert result.stderr == expected


# The same generator runs in the test and in the child (``exec`` of one source), so both sides
# agree on the bytes. Items include CR, CRLF, multi-byte characters and invalid UTF-8.
LINE_DATA_SOURCE = """
import random
ITEMS = [b"a", b"bc", b" ", b"\\t", b"\\r", b"\\r\\n", "é".encode(), "日本".encode(),
         "😀".encode(), b"\\xff", b"\\xe6\\x97"]
def make(count, seed, newline_weight):
    rng = random.Random(seed)
    weights = [1] * len(ITEMS) + [newline_weight]
    return b"".join(rng.choices(ITEMS + [b"\\n"], weights=weights, k=count))
"""
_namespace: dict[str, Any] = {}
exec(LINE_DATA_SOURCE, _namespace)
make_line_data = _namespace["make"]

LINE_WRITER = python(
    LINE_DATA_SOURCE
    + """
import os, sys
count, seed, weight = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
data = make(count, seed, weight)
chunks = [max(int(c), -(-len(data) // 4000)) for c in sys.argv[4].split(",")]
pos = i = 0
while pos < len(data):
    end = min(len(data), pos + chunks[i % len(chunks)])
    view = memoryview(data)[pos:end]
    while view:
        view = view[os.write(1, view) :]
    pos, i = end, i + 1
"""
)


def reference_lines(data: bytes) -> list[str]:
    """What ``stream`` must yield: lines cut at LF, CRLF or a lone CR (universal newlines),
    without their ending, decoded with replacement; a last line without an ending too."""
    text = data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    pieces = text.split("\n")
    last = pieces.pop()
    return [*pieces, last] if last else pieces


@pytest.mark.parametrize("via", VIAS)
@properties(25)
@given(
    count=st.integers(0, 400_000),
    seed=st.integers(0, 2**32),
    newline_weight=st.sampled_from([0, 1, 3, 20]),
    chunks=CHUNKS,
)
@example(count=0, seed=0, newline_weight=1, chunks=[1])
@example(count=400_000, seed=1, newline_weight=0, chunks=[7])
@example(count=400_000, seed=2, newline_weight=20, chunks=[1, 65536])
def test_output_of_any_size_and_chunking_streams_as_exact_lines(
    via: str, count: int, seed: int, newline_weight: int, chunks: list[int]
) -> None:
    cmd = [*LINE_WRITER, str(count), str(seed), str(newline_weight), ",".join(map(str, chunks))]
    lines = call_stream(via, cmd, timeout=60)
    expected = reference_lines(make_line_data(count, seed, newline_weight))
    assert len(lines) == len(expected)
    assert lines == expected


def test_reference_lines_follow_the_documented_splitting() -> None:
    data = b"one\r\ntwo\n\nthree\r\rfour\r\r\nlast\r"
    assert reference_lines(data) == ["one", "two", "", "three", "", "four", "", "last"]
    assert list(stream(["printf", "one\\r\\ntwo\\n\\nthree\\r\\rfour\\r\\r\\nlast\\r"])) == (
        reference_lines(data)
    )


# --------------------------------------------------------------------------------------------
# The shell guard
# --------------------------------------------------------------------------------------------

# Every metacharacter of the guard, and things around them that shells treat specially.
META_TOKENS = [*DANGEROUS_SHELL_PATTERNS, "&&", "||", ">>", "<<", "$(", "${"]
SAFE_TOKENS = [
    "a",
    "id",
    "sh",
    "-c",
    "echo",
    " ",
    " ",
    "\t",
    "'",
    '"',
    "\\",
    "#",
    "=",
    "!",
    "%",
    "^",
    ",",
    ":",
    "@",
    "+",
    "-",
    ".",
    "/",
    "[",
    "]",
    "é",
    "x=1",
    "if",
    "then",
    "fi",
    "do",
    "done",
    "eval",
    "exec",
]
# Safe tokens four times as likely: about one string in five passes the guard.
TOKENS = st.lists(st.sampled_from(SAFE_TOKENS * 4 + META_TOKENS), max_size=12).map("".join)
# A harmless command first, the generated text as its arguments: the injection case, where
# untrusted text is pasted into a fixed command line.
PREFIXES = st.sampled_from(["echo ", "printf %s ", ": ", "true "])
TRACE = "+PFTRACE+ "


@properties(60)
@given(prefix=PREFIXES, text=TOKENS)
def test_a_string_passing_the_shell_guard_runs_exactly_one_simple_command(
    prefix: str, text: str
) -> None:
    command = prefix + text
    if any(pattern in command for pattern in DANGEROUS_SHELL_PATTERNS):
        event("refused by the guard")
        with pytest.raises(ShellFeatureError):
            validate_shell_safety(command)
        return
    event("passed the guard")
    validate_shell_safety(command)
    # `sh -x` prints one trace (PS4, then the command) per simple command it runs. The tokens
    # cannot spell PS4, so the text cannot fake a trace; a string that fails to parse runs none.
    traced = run(["/bin/sh", "-x", "-c", command], env={"PS4": TRACE}, check=False, timeout=10)
    traces = str(traced.stderr).count(TRACE)
    assert traces <= 1, f"{command!r} ran {traces} commands: {traced.stderr!r}"
    if traced.returncode == 0:
        assert traces == 1, (command, traced)
    # And shell() ran that very command line.
    result = shell(command, check=False, timeout=10)
    assert (result.returncode, result.stdout) == (traced.returncode, traced.stdout)


@pytest.mark.parametrize(
    "command",
    ["echo a; id", "echo a && id", "false || id", "echo a | id", "echo a & wait", "echo a\nid"],
)
def test_the_trace_count_sees_a_second_command(command: str) -> None:
    # The property's oracle is meaningful: without the guard, these run two commands.
    traced = run(["/bin/sh", "-x", "-c", command], env={"PS4": TRACE}, check=False)
    # Counted as occurrences, not lines: sh writes PS4 and the command separately, so the traces
    # of a background command and the next one can interleave.
    assert str(traced.stderr).count(TRACE) == 2
