"""`streamflow models`' AUC trend: noise stays flat, a real change still shows."""

from streamflow_local.sparkline import BARS, MIN_SPAN, spark


def test_noise_in_the_fourth_decimal_is_not_drawn_as_a_cliff():
    line = spark([0.823468, 0.8235])
    assert len(line) == 2
    assert line == BARS[0] * 2  # 3e-5 apart: the same bar, not ▁█


def test_a_real_change_spans_the_whole_height():
    assert spark([0.70, 0.80]) == BARS[0] + BARS[-1]
    line = spark([0.80, 0.75, 0.70])
    assert line[0] == BARS[-1] and line[1] in BARS[3:5] and line[2] == BARS[0]


def test_a_change_below_the_floor_moves_part_of_the_height():
    line = spark([0.80, 0.80 + MIN_SPAN / 2])
    low, high = BARS.index(line[0]), BARS.index(line[1])
    assert 0 < high - low < len(BARS) - 1


def test_single_value_and_empty():
    assert spark([]) == ""
    assert spark([0.9]) == BARS[0]


def test_values_wider_than_the_floor_follow_their_own_range():
    assert spark([0.8, 0.6, 0.8, 0.74]) == "█▁█▆"
