"""PatternMatcher (the handshake matcher behind wait_for_process_output), tested without processes.

The rule is the seed's: every expected part must occur somewhere in everything fed so far, in
any order, however the output was split into feeds.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from procfound.engine.matching import PatternMatcher

HANDSHAKE = b"1|6|tcp|127.0.0.1:4242|grpc\n"


def test_parts_match_in_any_order() -> None:
    matcher = PatternMatcher(["A", "B"])
    assert matcher.feed(b"B|x\nA\n") is True
    assert matcher.matched
    assert matcher.missing == []


def test_parts_in_separate_feeds_match_once_all_are_seen() -> None:
    matcher = PatternMatcher(["tcp", "grpc", "1|6|"])
    assert matcher.feed(b"grpc here\n") is False
    assert matcher.missing == ["tcp", "1|6|"]
    assert matcher.feed(b"noise\n") is False
    assert matcher.feed(b"1|6|tcp\n") is True
    assert matcher.missing == []


def test_part_spanning_two_feeds_is_found() -> None:
    matcher = PatternMatcher(["127.0.0.1:4242"])
    assert matcher.feed(b"1|6|tcp|127.0.") is False
    assert matcher.feed(b"0.1:4242|grpc\n") is True


def test_part_spanning_many_one_byte_feeds_is_found() -> None:
    matcher = PatternMatcher(["tcp|127.0.0.1:4242|grpc"])
    results = [matcher.feed(bytes([byte])) for byte in HANDSHAKE]
    assert results.index(True) == HANDSHAKE.index(b"grpc") + len(b"grpc") - 1
    assert matcher.text == HANDSHAKE.decode()


def test_part_spanning_a_long_feed_boundary_after_much_output_is_found() -> None:
    matcher = PatternMatcher(["READY-TOKEN"])
    assert matcher.feed(b"x" * 100_000 + b"READY-") is False
    assert matcher.feed(b"y" * 10) is False  # breaks the token: must not match later
    assert matcher.feed(b"TOKEN") is False
    assert matcher.feed(b"READY") is False
    assert matcher.feed(b"-TOKEN\n") is True


def test_multibyte_character_split_across_feeds_is_decoded_and_matched() -> None:
    encoded = "prêt ☃\n".encode()
    matcher = PatternMatcher(["prêt ☃"])
    split_at = encoded.index("ê".encode()) + 1  # inside the two-byte "ê"
    assert matcher.feed(encoded[:split_at]) is False
    assert matcher.text == "pr"
    snowman = encoded.index("☃".encode())
    assert matcher.feed(encoded[split_at : snowman + 1]) is False
    assert matcher.feed(encoded[snowman + 1 :]) is True
    assert matcher.text == "prêt ☃\n"
    assert "\ufffd" not in matcher.text


def test_empty_parts_list_matches_at_once() -> None:
    matcher = PatternMatcher([])
    assert matcher.matched
    assert matcher.missing == []
    assert matcher.text == ""
    assert matcher.feed(b"anything") is True


def test_empty_string_part_is_always_present() -> None:
    matcher = PatternMatcher(["", "go"])
    assert matcher.missing == ["go"]
    assert matcher.feed(b"go\n") is True


def test_missing_lists_unseen_parts_in_their_given_order() -> None:
    matcher = PatternMatcher(["one", "two", "three"])
    assert matcher.missing == ["one", "two", "three"]
    matcher.feed(b"two")
    assert matcher.missing == ["one", "three"]
    missing = matcher.missing
    missing.clear()  # a copy: changing it does not change the matcher
    assert matcher.missing == ["one", "three"]


def test_duplicate_parts_are_satisfied_by_one_occurrence() -> None:
    matcher = PatternMatcher(["ok", "ok"])
    assert matcher.feed(b"ok") is True


def test_text_holds_everything_fed_including_after_the_match() -> None:
    matcher = PatternMatcher(["ready"])
    matcher.feed(b"line 1\n")
    matcher.feed(b"ready\n")
    matcher.feed(b"more\n")
    assert matcher.text == "line 1\nready\nmore\n"
    assert matcher.matched


def test_invalid_bytes_are_replaced_not_raised() -> None:
    matcher = PatternMatcher(["ok"])
    assert matcher.feed(b"\xff\xfe ok") is True
    assert matcher.text == "\ufffd\ufffd ok"


def test_final_feed_flushes_an_incomplete_character_as_replacement() -> None:
    matcher = PatternMatcher(["x"])
    matcher.feed("é".encode()[:1])
    assert matcher.text == ""
    assert matcher.feed(b"", final=True) is False
    assert matcher.text == "\ufffd"


def test_other_encoding_is_honoured() -> None:
    matcher = PatternMatcher(["prêt"], encoding="latin-1")
    assert matcher.feed("prêt".encode("latin-1")) is True
    assert matcher.text == "prêt"


def test_non_string_part_is_refused() -> None:
    with pytest.raises(TypeError):
        PatternMatcher([b"bytes"])  # type: ignore[list-item]


@given(
    text=st.text(alphabet="ab|é☃\n", max_size=40),
    parts=st.lists(st.text(alphabet="ab|é☃", min_size=1, max_size=4), max_size=4),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=10),
)
def test_any_split_of_the_output_gives_the_same_answer_as_one_feed(
    text: str, parts: list[str], cuts: list[int]
) -> None:
    data = text.encode()
    bounds = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    matcher = PatternMatcher(parts)
    for start, end in itertools.pairwise(bounds):
        matcher.feed(data[start:end])
    assert matcher.matched == all(part in text for part in parts)
    assert matcher.missing == [part for part in parts if part not in text]
    assert matcher.text == text
