"""The pure line splitter (`procfound.engine.lines.LineSplitter`): bytes in, lines out.

No processes here: the engine only feeds it bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from procfound.engine.lines import LineSplitter, UndecodableOutput


def split(chunks: Iterable[bytes]) -> list[str]:
    """Feed every chunk to a fresh splitter, then close it; return all the lines in order."""
    splitter = LineSplitter()
    lines: list[str] = []
    for chunk in chunks:
        lines.extend(splitter.feed(chunk))
    lines.extend(splitter.close())
    return lines


def test_lf_ending_is_removed() -> None:
    assert split([b"one\ntwo\n"]) == ["one", "two"]


def test_crlf_ending_is_removed() -> None:
    assert split([b"one\r\ntwo\r\n"]) == ["one", "two"]


def test_feed_returns_each_line_as_soon_as_it_is_complete() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"first\nsec") == ["first"]
    assert splitter.feed(b"ond") == []
    assert splitter.feed(b"\nthird\nfou") == ["second", "third"]
    assert splitter.close() == ["fou"]


def test_last_line_without_newline_is_returned_by_close() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"a\nno newline at the end") == ["a"]
    assert splitter.close() == ["no newline at the end"]


def test_close_returns_nothing_when_the_input_ended_with_a_newline() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"a\n") == ["a"]
    assert splitter.close() == []


def test_close_on_an_unfed_splitter_returns_nothing() -> None:
    assert LineSplitter().close() == []


def test_empty_feed_returns_nothing() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"") == []
    assert splitter.feed(b"x") == []
    assert splitter.feed(b"") == []
    assert splitter.close() == ["x"]


def test_empty_lines_are_kept() -> None:
    assert split([b"a\n\nb\n"]) == ["a", "", "b"]
    assert split([b"\n\n\n"]) == ["", "", ""]
    assert split([b"\r\n\r\nx"]) == ["", "", "x"]


def test_spaces_and_tabs_around_the_text_are_kept() -> None:
    assert split([b"  both sides  \n\tTAB\t\r\n"]) == ["  both sides  ", "\tTAB\t"]


def test_a_10_mib_line_fed_in_1000_pieces_comes_out_whole() -> None:
    size = 10 << 20
    line = (b"0123456789abcdef" * (size // 16 + 1))[:size]
    piece = size // 1000
    splitter = LineSplitter()
    early: list[str] = []
    for start in range(0, size, piece):
        early.extend(splitter.feed(line[start : start + piece]))
    assert early == [], "a line was returned before its newline arrived"
    done = splitter.feed(b"\nnext")
    assert len(done) == 1
    assert len(done[0]) == size
    assert done[0] == line.decode()
    assert splitter.close() == ["next"]


def test_invalid_utf8_becomes_replacement_characters() -> None:
    assert split([b"ok \xff\xfe bad\n", b"err \xc3\x28 bad\n"]) == [
        "ok \ufffd\ufffd bad",
        "err \ufffd( bad",
    ]


def test_a_truncated_multibyte_character_at_close_is_replaced_not_dropped() -> None:
    assert split([b"caf\xc3"]) == ["caf\ufffd"]


def test_a_multibyte_character_split_across_two_feeds_decodes_correctly() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"caf\xc3") == []
    assert splitter.feed(b"\xa9\n") == ["café"]
    assert splitter.close() == []


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_a_four_byte_character_split_at_every_byte_decodes_correctly(cut: int) -> None:
    snowman_and_smile = "☃😀".encode()
    data = b"<" + snowman_and_smile + b">\n"
    at = 1 + 3 + cut  # inside the 4-byte emoji
    assert split([data[:at], data[at:]]) == ["<☃😀>"]


def test_a_character_fed_one_byte_at_a_time_decodes_correctly() -> None:
    data = "日本語 ünïcødé 😀\nsecond\n".encode()
    assert split(data[i : i + 1] for i in range(len(data))) == ["日本語 ünïcødé 😀", "second"]


def test_crlf_split_across_two_feeds_is_one_ending() -> None:
    assert split([b"a\r", b"\nb\n"]) == ["a", "b"]


def test_crlf_split_across_feeds_keeps_following_empty_lines() -> None:
    assert split([b"a\r", b"\n\r", b"\n", b"b\n"]) == ["a", "", "b"]


@pytest.mark.parametrize(
    "separator",
    ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"],
    ids=["VT", "FF", "FS", "GS", "RS", "NEL", "LS", "PS"],
)
def test_only_newline_ends_a_line_not_other_unicode_separators(separator: str) -> None:
    # str.splitlines() would cut here; a child's line is ended by \n alone.
    assert split([f"left{separator}right\n".encode()]) == [f"left{separator}right"]


# A line: any text that UTF-8 can encode and holds no line-ending character.
line_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\n\r"),
    max_size=40,
)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    """Cut ``data`` at the given offsets (any order, duplicates allowed)."""
    bounds = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in pairwise(bounds)]


@given(
    lines=st.lists(line_text, max_size=30), ending=st.sampled_from(["\n", "\r\n"]), data=st.data()
)
def test_property_terminated_lines_come_back_exactly_for_any_chunking(
    lines: list[str], ending: str, data: st.DataObject
) -> None:
    encoded = "".join(line + ending for line in lines).encode()
    cuts = data.draw(st.lists(st.integers(0, len(encoded)), max_size=20))
    assert split(chunked(encoded, cuts)) == lines


@given(
    lines=st.lists(line_text, max_size=30).filter(lambda ls: bool(ls) and ls[-1] != ""),
    data=st.data(),
)
def test_property_lines_joined_by_newline_come_back_exactly_for_any_chunking(
    lines: list[str], data: st.DataObject
) -> None:
    # Joined (not terminated) by "\n": the last line has no newline and comes from close().
    # A trailing empty line would be indistinguishable from a final "\n", hence the filter.
    encoded = "\n".join(lines).encode()
    cuts = data.draw(st.lists(st.integers(0, len(encoded)), max_size=20))
    assert split(chunked(encoded, cuts)) == lines


def test_split_chunks_cuts_a_big_read_into_64_kib_pieces_and_skips_empty_ones() -> None:
    line = b"x" * 99 + b"\n"  # 100 bytes
    big = line * 2000  # 200,000 bytes: four 64 KiB pieces
    splitter = LineSplitter()
    batches = list(splitter.split_chunks([b"no newline yet ", big]))
    assert len(batches) == 4  # the first chunk completes no line: no empty batch for it
    assert all(batches)
    lines = [item for batch in batches for item in batch]
    assert lines == ["no newline yet " + "x" * 99] + ["x" * 99] * 1999
    assert splitter.close() == []


@given(
    lines=st.lists(line_text, max_size=30), ending=st.sampled_from(["\n", "\r\n"]), data=st.data()
)
def test_property_split_chunks_gives_what_feed_gives(
    lines: list[str], ending: str, data: st.DataObject
) -> None:
    encoded = "".join(line + ending for line in lines).encode()
    cuts = data.draw(st.lists(st.integers(0, len(encoded)), max_size=20))
    splitter = LineSplitter()
    got = [item for batch in splitter.split_chunks(chunked(encoded, cuts)) for item in batch]
    assert got + splitter.close() == lines


# -- undecodable lines (errors="strict") ---------------------------------------------------------


@pytest.mark.parametrize("max_line", [None, 100])
def test_an_undecodable_line_reports_the_lines_before_it_its_bytes_and_position(
    max_line: int | None,
) -> None:
    splitter = LineSplitter(errors="strict", max_line=max_line)
    assert splitter.feed(b"zero\n") == ["zero"]
    with pytest.raises(UndecodableOutput) as info:
        splitter.feed(b"one\r\ntw\xffo\nthree\npart")
    failed = info.value
    assert failed.lines == ["one"]  # decoded, not yet delivered
    assert failed.rest == b"tw\xffo\nthree\npart"  # everything from the failing line on
    assert failed.position == 12  # in the whole stream: 5 + 5 + 2
    assert isinstance(failed.error, UnicodeDecodeError)


@pytest.mark.parametrize("max_line", [None, 100])
def test_an_undecodable_line_split_across_feeds_and_chunks_keeps_every_byte(
    max_line: int | None,
) -> None:
    splitter = LineSplitter(errors="strict", max_line=max_line)
    assert splitter.feed(b"a\nb") == ["a"]
    chunks = [b"\xff", b"c\nd\n", b"e\n"]
    with pytest.raises(UndecodableOutput) as info:
        list(splitter.split_chunks(chunks))
    assert info.value.lines == []
    assert info.value.rest == b"b\xffc\nd\ne\n"
    assert info.value.position == 3


@pytest.mark.parametrize("max_line", [None, 100])
def test_an_undecodable_last_line_is_reported_at_close(max_line: int | None) -> None:
    splitter = LineSplitter(errors="strict", max_line=max_line)
    assert splitter.feed(b"ok\nx\xfe") == ["ok"]
    with pytest.raises(UndecodableOutput) as info:
        splitter.close()
    assert (info.value.lines, info.value.rest, info.value.position) == ([], b"x\xfe", 4)
