"""PromQL rendering is safe (namespace names validated) and durations parse as documented."""

from __future__ import annotations

from datetime import timedelta

import pytest

from analyzer.core.durations import DurationError, format_duration, parse_duration
from analyzer.core.templates import TemplateError, render_query

TEMPLATE = 'sum by ({{ namespace_label }}) (increase(x{ {{namespace_label}}=~"{{ namespaces }}"}[{{ step }}]))'


def test_render_fills_every_placeholder_once_for_all_namespaces():
    query = render_query(
        TEMPLATE, namespace_label="ns", namespaces=["b", "a", "b"], step=timedelta(seconds=90)
    )
    assert query == 'sum by (ns) (increase(x{ ns=~"a|b"}[1m30s]))'


@pytest.mark.parametrize("bad", ['bar"}) or vector(1', "Bar", "-x", "a" * 64, "", "a.b", "x|y"])
def test_namespace_names_that_are_not_dns_labels_never_enter_a_query(bad):
    with pytest.raises(TemplateError):
        render_query(TEMPLATE, namespace_label="ns", namespaces=[bad], step=timedelta(minutes=1))


def test_unknown_placeholder_and_bad_label_are_refused():
    with pytest.raises(TemplateError, match="unknown placeholder"):
        render_query(
            "{{ nope }}", namespace_label="ns", namespaces=["a"], step=timedelta(minutes=1)
        )
    with pytest.raises(TemplateError, match="label"):
        render_query(TEMPLATE, namespace_label="a-b", namespaces=["a"], step=timedelta(minutes=1))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("10m", 600),
        ("1h30m", 5400),
        ("2d", 172800),
        ("250ms", 0.25),
        ("1w2d", 777600),
        ("1y", 31536000),
        ("0", 0),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["m", "10x", "-5s", "1.5m", "", "30m1h", "1h1h"])
def test_bad_durations(text):
    with pytest.raises(DurationError):
        parse_duration(text)


@pytest.mark.parametrize("number", ["10", 10, 2.5, "600"])
def test_a_bare_number_is_refused_naming_it(number):
    with pytest.raises(DurationError, match=rf"{number} is a bare number; add a unit"):
        parse_duration(number)


def test_format_duration_round_trips():
    for text in ("1m30s", "2h", "1d6h", "250ms", "10m"):
        assert format_duration(parse_duration(text)) == text
