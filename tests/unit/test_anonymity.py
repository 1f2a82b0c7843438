"""Proves the k-anonymity rules: no suppressed cell can be derived, or pinned below k, from what is published."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engagiert.shared.anonymity import Cell, K, suppress_breakdown, suppress_count, suppress_rate, suppressed_cells

# Small counts are the interesting ones: most cells below or near k, some large.
counts = st.one_of(st.integers(0, 2 * K), st.integers(0, 60))
tables = st.dictionaries(st.sampled_from([f"c{i}" for i in range(8)]), counts, min_size=1, max_size=8)


def feasible_values(published: dict[str, int | None], total: int | None) -> dict[str, range]:
    """Return every value each suppressed cell can take, given the published cells and total (exact).

    What a reader knows: the published cells, the published total (None when suppressed), and that
    cells are non-negative integers that add up to the total. Without a published total a suppressed
    cell is bounded by nothing the table says (returned as the open range 0..LARGE). With one, a
    cell can take ``v`` exactly when the other suppressed cells can add up to ``rest - v``: the sums
    those cells reach form the interval ``0..hi``, built up one cell at a time.
    """
    hidden = [key for key, value in published.items() if value is None]
    if total is None:
        return {key: range(LARGE + 1) for key in hidden}
    rest = total - sum(v for v in published.values() if v is not None)
    assert rest >= 0
    feasible: dict[str, range] = {}
    for key in hidden:
        hi = 0  # the other hidden cells reach every sum in 0..hi (none of them: only 0)
        for _ in (h for h in hidden if h != key):
            hi = min(hi + rest, rest)
        feasible[key] = range(rest - hi, rest + 1)
    return feasible


LARGE = 10**6


@settings(max_examples=400, deadline=None)
@given(tables)
def test_no_suppressed_cell_is_determined_or_pinned_below_k(table: dict[str, int]) -> None:
    """For any table, each suppressed cell has two or more feasible values, one of them at least k."""
    total = sum(table.values())
    published_total = suppress_count(total)
    cells = {key: Cell(value=v, people=v) for key, v in table.items()}
    published = {
        key: (None if value is None else int(value))
        for key, value in suppress_breakdown(cells, total_published=published_total is not None).items()
    }
    for key, value in published.items():
        if value is not None:
            assert value >= K, f"a published cell below k: {key}={value}"
            assert value == table[key]
    for key, values in feasible_values(published, published_total).items():
        assert table[key] in values, "the true value must be feasible (the check itself is sound)"
        assert len(values) >= 2, f"{key} is determined by what is published: {published}, total {published_total}"
        assert max(values) >= K, f"{key} is pinned below k: {published}, total {published_total}"


@settings(max_examples=200, deadline=None)
@given(tables, tables)
def test_two_breakdowns_of_one_total_leak_nothing(first: dict[str, int], second_shape: dict[str, int]) -> None:
    """Two breakdowns of the same people (age bands and fields) under one total each stay safe on their own.

    Their cells are different unknowns tied only through the published total, so each breakdown's
    feasible values are those of its own equation.
    """
    total = sum(first.values())
    # Spread the same people over the second breakdown's keys, in the second table's proportions.
    keys = list(second_shape) or ["c0"]
    second = dict.fromkeys(keys, 0)
    for i in range(total):
        second[keys[i % len(keys)]] += 1
    published_total = suppress_count(total)
    for table in (first, second):
        cells = {key: Cell(value=v, people=v) for key, v in table.items()}
        shown = suppress_breakdown(cells, total_published=published_total is not None)
        published = {key: (None if v is None else int(v)) for key, v in shown.items()}
        for values in feasible_values(published, published_total).values():
            assert len(values) >= 2
            assert max(values) >= K


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(list("abcdef")), st.tuples(st.integers(0, 9), st.floats(0.5, 40.0))))
def test_hours_cells_hide_fewer_than_k_contributors(raw: dict[str, tuple[int, float]]) -> None:
    """Hours per field: a cell of fewer than k contributors is hidden, and so is any group whose sum is derivable."""
    cells = {
        key: Cell(value=round(people * hours, 2) if people else 0.0, people=people)
        for key, (people, hours) in raw.items()
    }
    contributors = sum(c.people for c in cells.values())
    hidden = suppressed_cells(cells, total_published=contributors >= K)
    for key in cells:
        if cells[key].people < K:
            assert key in hidden
    if contributors >= K and hidden:
        assert len(hidden) >= 2
        assert sum(cells[key].people for key in hidden) >= K


def test_rates_need_k_in_the_denominator() -> None:
    """A rate over fewer than k is suppressed; over k or more it is published."""
    assert suppress_rate(1, 4) is None
    assert suppress_rate(4, 5) == 0.8


def test_a_single_small_cell_takes_the_next_smallest_with_it() -> None:
    """One cell below k under a published total: the smallest published cell is suppressed too."""
    cells = {"a": Cell(3, 3), "b": Cell(7, 7), "c": Cell(40, 40)}
    assert suppress_breakdown(cells, total_published=True) == {"a": None, "b": None, "c": 40}


def test_a_group_summing_to_less_than_k_grows() -> None:
    """Two suppressed cells adding up to less than k would pin each below k: a third one joins."""
    cells = {"a": Cell(1, 1), "b": Cell(2, 2), "c": Cell(6, 6), "d": Cell(30, 30)}
    assert suppress_breakdown(cells, total_published=True) == {"a": None, "b": None, "c": None, "d": 30}
