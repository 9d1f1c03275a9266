"""The testbenches' stream helpers that run without a simulator."""
import pytest

from sim.streams import assert_elements_equal, pack_lanes, unpack_lanes


def test_lanes_round_trip_with_negatives():
    values = [-2, 1, 0, -1]
    assert unpack_lanes(pack_lanes(values, 2), 4, 2, signed=True) == values


def test_equal_streams_pass():
    assert_elements_equal([1, 0, 1, 1], [1, 0, 1, 1], lanes=2, words_per_frame=1)


def test_first_wrong_word_is_named_by_frame_and_word():
    expected = [0] * 12
    got = list(expected)
    got[7] = got[11] = 1
    with pytest.raises(AssertionError, match=r"^2 wrong elements; first in frame 1, word 0: "
                       r"got \[0, 1\], expected \[0, 0\]$"):
        assert_elements_equal(got, expected, lanes=2, words_per_frame=3)
