"""The one value formatter: each style writes the text its readers know (judge reasons,
alerts, report cells, chart ticks, report changes), and a missing value reads ``n/a``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analyzer.core.formatting import Style, format_value, p_value_text

CASES = [
    # (value, unit, style, text)
    (0.0123, "ratio", Style.REASON, "1.23%"),
    (0.005, "pp", Style.REASON, "+0.50 pp"),
    (41.04, "ms", Style.REASON, "41.0 ms"),
    (19.8, "rps", Style.REASON, "19.80 rps"),
    (123456.0, "requests", Style.REASON, "1.235e+05 requests"),
    (math.inf, "ratio", Style.REASON, "inf%"),
    (True, "", Style.ALERT, "true"),
    (12000, "", Style.ALERT, "12000"),
    (11890.0, "", Style.ALERT, "1.189e+04"),
    (-math.inf, "", Style.ALERT, "-inf"),
    (np.int64(3), "", Style.ALERT, "3"),
    (12000.0, "", Style.READING, "12,000"),
    (1234.5678, "", Style.READING, "1,234.6"),
    (0.0123, "", Style.READING, "0.0123"),
    (0.05, "ratio", Style.READING, "5.00%"),
    (math.inf, "", Style.READING, "∞"),
    (True, "", Style.READING, "True"),
    ("x", "", Style.READING, "x"),
    (0.015, "ratio", Style.TICK, "1.5%"),
    (250.0, "ms", Style.TICK, "250 ms"),
    (20.0, "rps", Style.TICK, "20/s"),
    (0.0399, "ratio", Style.CHANGE, "+3.99 pp"),
    (2.5, "ms", Style.CHANGE, "+2.5 ms"),
    (-0.2, "rps", Style.CHANGE, "-0.2"),
]


@pytest.mark.parametrize(("value", "unit", "style", "text"), CASES)
def test_each_style_writes_what_its_readers_know(value, unit, style, text):
    assert format_value(value, unit, style) == text


@pytest.mark.parametrize("style", list(Style))
def test_a_missing_value_reads_n_a_in_every_style(style):
    assert format_value(None, "ratio", style) == "n/a"
    assert format_value(math.nan, "ms", style) == "n/a"


def test_p_values_below_what_doubles_tell_apart_print_as_a_bound():
    assert p_value_text(0.00312) == "p=0.0031"
    assert p_value_text(0.0) == "p<1e-300"
