"""Unit tests of issue 17's console parts that need no stack: number formats, medians, merged rows, charts, texts."""

from __future__ import annotations

import re
from pathlib import Path

from engagiert.console import clients
from engagiert.console import figures as fig
from engagiert.console.i18n import catalogue

SOURCES = Path(__file__).parents[1] / "src" / "engagiert" / "console"
_KEY = re.compile(r"""["']((?:figures|practice)\.[a-z0-9_]+)["']""")


def test_figures_are_formatted_the_german_way_and_rates_as_percentages() -> None:
    """Thousands with a dot, decimals with a comma (Babel); a rate of 0.875 reads 87,5 %; suppressed reads "–"."""
    assert fig.fmt(12345.5, "de") == "12.345,5"
    assert fig.fmt(12345.5, "en") == "12,345.5"
    assert fig.fmt(0.875, "de", rate=True) == "87,5\u00a0%"
    assert fig.fmt(3, "de") == "3"
    assert fig.fmt(None, "de") == "–"


def test_medians_are_read_from_each_shape_the_network_block_may_take() -> None:
    """A scalar's median; a key's median nested by key or under a dotted name; anything else is None."""
    stats = {
        "members_active": {"n": 12, "median": 140.0, "q1": 80, "q3": 300},
        "members_by_field": {"Sport": {"n": 10, "median": 40}},
        "hours_by_field.Kultur": {"n": 9, "median": 120.5},
        "odd": 3,
    }
    assert fig.median(stats, "members_active") == 140.0
    assert fig.median(stats, "members_by_field", "Sport") == 40.0
    assert fig.median(stats, "hours_by_field", "Kultur") == 120.5
    assert fig.median(stats, "members_by_field", "Kultur") is None
    assert fig.median(stats, "odd") is None
    assert fig.median(None, "members_active") is None


def _answer(source: str, rows: list[dict[str, object]]) -> clients.NetworkFigures:
    return clients.NetworkFigures.model_validate(
        {"period": "2026", "source": source, "k": 5, "municipalities": rows, "network": {}, "same_kind": {}}
    )


def test_the_two_services_rows_merge_by_key_or_label_and_the_own_row_comes_first() -> None:
    """Named rows join by AGS, unnamed ones by label; suppressed cells stay None; the page's municipality leads."""
    registry = _answer(
        "registry",
        [
            {"label": "Bielefeld", "ags": "05711000", "named": True, "kind": "Stadt", "figures": {"members_active": 3}},
            {"label": "Paderborn", "ags": "05774032", "named": True, "kind": "Stadt", "figures": {"members_active": 9}},
            {
                "label": "Stadt, mittel",
                "ags": None,
                "named": False,
                "kind": "Stadt",
                "figures": {"members_active": None},
            },
        ],
    )
    events = _answer(
        "events",
        [
            {"label": "Paderborn", "ags": "05774032", "named": True, "figures": {"events_held": 6}},
            {"label": "Stadt, mittel", "ags": None, "named": False, "figures": {"events_held": 7}},
        ],
    )
    rows = fig.network_rows([registry, events, None], own=frozenset({"05774032"}))
    assert [r.label for r in rows] == ["Paderborn", "Bielefeld", "Stadt, mittel"]
    assert rows[0].own
    assert rows[0].values["members_active"] == 9.0
    assert rows[0].values["events_held"] == 6.0
    assert rows[2].values == {
        "members_active": None,
        "organisations": None,
        "members_new": None,
        "hours_total": None,
        "events_held": 7.0,
        "attendance_rate": None,
        "invitations_accepted_rate": None,
        "cards_expiring": None,
    }
    assert rows[2].ags is None


def test_a_bar_chart_scales_to_the_largest_value_and_draws_no_bar_for_a_missing_one() -> None:
    """The largest bar spans the plot; a missing median has no bar and reads "–" in the table."""
    chart = fig.bar_chart(
        chart_id="c",
        title="T",
        desc="D",
        categories=[("Sport", [40.0, 20.0]), ("Kultur", [10.0, None])],
        series=[("Paderborn", "own"), ("Median", "median")],
        number=lambda v: fig.fmt(v, "de"),
    )
    sport, kultur = chart.groups
    plot = fig.CHART_WIDTH - fig.LABEL_WIDTH - 50
    assert sport.bars[0].width == plot
    assert sport.bars[1].width == plot / 2
    assert kultur.bars[1].width == 0
    assert kultur.cells == ["10", "–"]
    assert chart.height > 0


def test_every_text_id_of_the_new_pages_exists_in_both_languages() -> None:
    """Text ids written in the new modules and templates are in the catalogue, German and English."""
    used: set[str] = set()
    for path in [
        SOURCES / "api" / "network_figures.py",
        SOURCES / "api" / "practice.py",
        SOURCES / "api" / "start.py",
        *(SOURCES / "templates" / "practice").glob("*.html"),
        *(SOURCES / "templates" / "network_figures").glob("*.html"),
    ]:
        used |= set(_KEY.findall(path.read_text(encoding="utf-8")))
    used = {k for k in used if not k.endswith("_")}
    texts = catalogue()
    assert used
    assert not sorted(k for k in used if k not in texts)
    for name in [*fig.SCALARS["registry"], *fig.SCALARS["events"], "not_available_registry", "not_available_events"]:
        assert set(texts[f"figures.{name}"]) == {"de", "en"}
