"""The expect matcher, without processes: pattern checks, the earliest-match rule, and the
decoded window over the owner's byte buffer (split characters, consumption, other readers)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from procfound import ExpectMatch, ValidationError
from procfound.engine.expect import DecodedWindow, Patterns
from procfound.services.talking import check_patterns


def test_literal_is_matched_as_text_not_regex() -> None:
    assert check_patterns("1+1=?").search("x 1+1=? y") is not None
    assert check_patterns("1+1=?").search("11=") is None


def test_compiled_patterns_are_kept_and_order_is_preserved() -> None:
    number = re.compile(r"\d+")
    patterns = check_patterns(["a", number, "b"])
    assert patterns.compiled[1] is number
    assert patterns.shown == ["a", r"\d+", "b"]
    assert len(check_patterns(("x", "y")).compiled) == 2


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [
        ([], "empty list"),
        ((), "empty list"),
        (b"x", "not bytes"),
        (bytearray(b"x"), "not bytearray"),
        (re.compile(b"x"), "bytes pattern"),
        (["ok", b"x"], "pattern[1]"),
        (["ok", re.compile(b"x")], "pattern[1]"),
        (5, "not int"),
        (None, "not NoneType"),
        ([["nested"]], "pattern[0]"),
    ],
)
def test_bad_patterns_are_refused_up_front(pattern: object, fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_patterns(pattern)
    assert fragment in str(caught.value)
    assert caught.value.code == "INVALID_ARGUMENT"


def test_earliest_match_wins_over_list_order() -> None:
    found = check_patterns(["world", "hello"]).search("say hello world")
    assert found is not None
    index, match = found
    assert (index, match.group()) == (1, "hello")


def test_tie_goes_to_the_lowest_index() -> None:
    found = check_patterns([re.compile("ab+"), "a"]).search("xxabbb")
    assert found is not None
    assert (found[0], found[1].group()) == (0, "abbb")
    found = check_patterns(["a", re.compile("ab+")]).search("xxabbb")
    assert found is not None
    assert (found[0], found[1].group()) == (0, "a")


def test_no_match_is_none() -> None:
    assert check_patterns(["z", re.compile(r"\d")]).search("abc") is None


def test_a_literal_is_searched_again_only_where_the_text_grew() -> None:
    patterns = Patterns(["needle", re.compile("a.*z")])
    text = "x" * 1000 + "need"
    assert patterns.search(text) is None
    text += "le then a"
    found = patterns.search(text)
    assert found is not None
    assert (found[0], found[1].start()) == (0, 1000)
    # The regex may match across everything: it is searched whole each time.
    patterns = Patterns([re.compile("a.*z")])
    assert patterns.search("a" + "-" * 100) is None
    found = patterns.search("a" + "-" * 100 + "z")
    assert found is not None
    assert found[1].start() == 0


def test_a_literal_is_found_again_from_the_start_after_a_restart() -> None:
    patterns = Patterns(["ab"])
    assert patterns.search("xxxxa") is None
    patterns.restart()
    found = patterns.search("ab")  # the front was consumed: a new text
    assert found is not None
    assert found[1].start() == 0


def test_expect_match_is_frozen() -> None:
    match = re.search("b", "ab")
    assert match is not None
    result = ExpectMatch(0, match, "a")
    with pytest.raises(AttributeError):
        result.index = 1  # type: ignore[misc]


def test_window_waits_for_a_split_character() -> None:
    window = DecodedWindow("utf-8", "strict")
    data = bytearray()
    raw = "€>".encode()
    for byte in raw[:2]:
        data.append(byte)
        assert window.update(data, 0) == ""
    data += raw[2:]
    assert window.update(data, 0) == "€>"


def test_window_keeps_carriage_returns_as_written() -> None:
    window = DecodedWindow("utf-8", "replace")
    assert window.update(bytearray(b"a\r\nb\rc"), 0) == "a\r\nb\rc"


def test_consume_maps_characters_to_bytes_inside_and_across_pieces() -> None:
    window = DecodedWindow("utf-8", "replace")
    data = bytearray("αβ".encode())
    window.update(data, 0)
    data += "γδ".encode()
    window.update(data, 0)
    taken = window.consume(3, data)  # across the first piece and into the second
    assert taken == 6
    del data[:taken]
    assert window.update(data, 6) == "δ"
    assert window.consume(1, data) == 2


def test_window_restarts_when_another_reader_consumed_the_front() -> None:
    window = DecodedWindow("utf-8", "replace")
    data = bytearray(b"line one\nprompt> ")
    window.update(data, 100)
    del data[:9]  # a line read took "line one\n"
    assert window.update(data, 109) == "prompt> "


def test_window_after_replaced_bytes_stays_in_step() -> None:
    window = DecodedWindow("utf-8", "replace")
    data = bytearray(b"a\xff\xfeb>c")
    assert window.update(data, 0) == "a\ufffd\ufffdb>c"
    taken = window.consume(5, data)  # through ">"
    assert taken == 5
    del data[:taken]
    assert window.update(data, 5) == "c"


def test_strict_window_stops_before_an_undecodable_byte() -> None:
    window = DecodedWindow("utf-8", "strict")
    data = bytearray(b"ok\xffmore")
    assert window.update(data, 0) == "ok"
    assert window.bad_bytes == 3
    assert window.error is not None


def test_final_decodes_an_incomplete_character_at_the_end() -> None:
    window = DecodedWindow("utf-8", "replace")
    data = bytearray("x€".encode()[:-1])
    assert window.update(data, 0) == "x"
    assert window.update(data, 0, final=True) == "x\ufffd"


@given(
    st.text(min_size=1, max_size=40),
    st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=20),
    st.data(),
)
def test_window_text_matches_a_whole_decode_however_bytes_arrive(
    text: str, cuts: list[int], data: st.DataObject
) -> None:
    raw = text.encode("utf-8", "surrogatepass")
    window = DecodedWindow("utf-8", "surrogatepass")
    buffer = bytearray()
    start = 0
    consumed = ""
    position = 0
    for cut in cuts * (len(raw) // max(sum(cuts), 1) + 1):
        if position >= len(raw):
            break
        buffer += raw[position : position + cut]
        position += cut
        shown = window.update(buffer, start)
        assert (consumed + shown) == text[: len(consumed) + len(shown)]
        chars = data.draw(st.integers(min_value=0, max_value=len(shown)))
        taken = window.consume(chars, buffer)
        consumed += shown[:chars]
        del buffer[:taken]
        start += taken
    buffer += raw[position:]
    assert consumed + window.update(buffer, start, final=True) == text
