"""Checks the shared shapes of the figures: periods, age bands, main fields, the network answer and its CSV."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from engagiert.shared.figures import (
    Amount,
    Breakdown,
    Count,
    MunicipalityFigures,
    MunicipalityInfo,
    Rate,
    age_band,
    main_field,
    network_answer,
    network_csv,
    parse_period,
    size_class,
)
from engagiert.shared.problems import Problem


def test_periods_are_years_or_quarters_with_both_ends_included() -> None:
    """A year, a quarter, the default (this year); anything else is a 422 problem."""
    assert (parse_period("2026-Q4", today=date(2026, 1, 5)).start, parse_period("2026-Q4", today=date.today()).end) == (
        date(2026, 10, 1),
        date(2026, 12, 31),
    )
    assert parse_period("2024-Q1", today=date.today()).end == date(2024, 3, 31)
    assert parse_period(None, today=date(2027, 3, 1)).label == "2027"
    for bad in ("2026-Q0", "2026-Q5", "26", "2026-q1", "1999", "2026-12", " 2026"):
        with pytest.raises(Problem) as raised:
            parse_period(bad, today=date.today())
        assert raised.value.status == 422


def test_age_bands_count_birthdays_on_the_last_day() -> None:
    """Eighteen on the day counts as 18-29; no date of birth is 'unknown'."""
    end = date(2026, 12, 31)
    assert age_band(date(2008, 12, 31), on=end) == "18_29"
    assert age_band(date(2009, 1, 1), on=end) == "under_18"
    assert age_band(date(1961, 12, 31), on=end) == "65_plus"
    assert age_band(None, on=end) == "unknown"
    assert (size_class(9_999), size_class(10_000), size_class(500_000), size_class(None)) == (
        "under_10k",
        "10k_20k",
        "500k_plus",
        "unknown",
    )


def test_main_field_is_the_longest_running_open_engagement() -> None:
    """The oldest open engagement wins; without one, the last ended; without any, unknown."""
    engagements = [
        {"field": "Kultur", "since": "2020-01-01", "until": None},
        {"field": "Sport", "since": "2015-01-01", "until": "2019-12-31"},
        {"field": "Soziales", "since": "2022-01-01", "until": None},
    ]
    assert main_field(engagements, on=date(2026, 12, 31)) == "kultur"
    assert main_field(engagements, on=date(2019, 12, 31)) == "sport"
    assert main_field(engagements[1:2], on=date(2026, 12, 31)) == "sport"
    assert main_field([], on=date(2026, 12, 31)) == "unknown"
    assert main_field([{"field": "Feuerwehr/Katastrophenschutz", "since": "2000-01-01"}], on=date(2026, 1, 1)) == (
        "feuerwehr_katastrophenschutz"
    )


def _row(ags: str, name: str, *, named: bool, active: int) -> MunicipalityFigures:
    return MunicipalityFigures(
        municipality=MunicipalityInfo(ags=ags, name=name, kind="Gemeinde", inhabitants=15_000, named=named),
        figures={
            "members_active": Count(active),
            "hours_total": Amount(12.5 * active, active),
            "rate": Rate(3, 4),
            "by_band": Breakdown({"a": Count(active - 2), "b": Count(2)}, total="members_active"),
        },
    )


def test_the_network_answer_names_only_who_agreed_and_sorts_by_label() -> None:
    """An unnamed municipality has no AGS or name anywhere, also not in the CSV; statistics need k values."""
    rows = [_row(f"0577400{i}", f"Gemeinde Ort{i}", named=i != 3, active=10 * (i + 1)) for i in range(6)]
    answer = network_answer(period=parse_period("2026", today=date.today()), source="registry", rows=rows)
    labels = [r["label"] for r in answer["municipalities"]]
    assert labels == sorted(labels)
    hidden = next(r for r in answer["municipalities"] if not r["named"])
    assert (hidden["label"], hidden["ags"]) == ("Gemeinde, 10.000–20.000 Einw.", None)
    assert answer["network"]["members_active"] == {"n": 6, "median": 35.0, "q1": 22.5, "q3": 47.5}
    assert answer["network"]["rate"]["n"] == 0  # a denominator of 4 is below k everywhere
    assert answer["municipalities"][0]["figures"]["by_band"] == {"a": None, "b": None}  # 2 < k takes 'a' along
    body = network_csv(answer).decode("utf-8")
    assert body.startswith("\ufeff")
    for text in (str(answer), body):
        assert "Ort3" not in text
        assert "05774003" not in text
    table = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff")), delimiter=";"))
    assert table[-3]["label"] == "Netzwerk: Median"
    assert table[-3]["members_active"] == "35,0"
