"""Suppresses small cells of published figures (k-anonymity) so that no suppressed cell can be derived.

The rules (``K`` = 5), for a figure that several people make up:

- **Primary suppression.** A count below ``k`` (zero included) is suppressed. An amount (hours)
  that fewer than ``k`` people contributed to is suppressed. A rate whose denominator is below
  ``k`` is suppressed.
- **Secondary suppression.** A breakdown whose total is published is additive: its cells add up
  to the total (the figures are built so that every person is in exactly one cell). The
  suppressed cells' sum is then known (total minus the published cells), so one suppressed cell
  alone would be exactly derivable, and a suppressed group whose people add up to fewer than
  ``k`` (or whose sum is zero) would pin each of its cells below ``k``. So the smallest published
  cells are suppressed as well, one at a time, until the suppressed group has at least two cells
  and at least ``k`` people. Each suppressed cell can then be anything from 0 to the group's sum
  (at least ``k``) as far as the published numbers tell: neither determined nor bounded below ``k``.
- A breakdown without a published total (its total suppressed, or none) has no such relation:
  its primary suppression is all it needs (a suppressed total below ``k`` means every cell is below
  ``k`` and suppressed anyway).

The rows of the network's table are independent: the network publishes no sums across
municipalities, only medians and quartiles of the published cells (never of suppressed ones).
See docs/network-figures.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

K = 5
"""The smallest number of people a published cell may describe."""


@dataclass(frozen=True, slots=True)
class Cell:
    """One cell of a breakdown: its value and how many people make it up (disjoint across a breakdown's cells)."""

    value: float
    people: int


def primary(cells: Mapping[str, Cell], *, k: int = K) -> set[str]:
    """Return the keys of cells that fewer than ``k`` people make up."""
    return {key for key, cell in cells.items() if cell.people < k}


def suppressed_cells(cells: Mapping[str, Cell], *, total_published: bool, k: int = K) -> set[str]:
    """Return the keys to suppress in a breakdown: primary cells and, under a published total, enough more.

    Under a published total the suppressed group grows by the published cell with the fewest
    people (ties by key, so the choice is stable) until it is empty, or has two or more cells
    with at least ``k`` people and a sum above zero.
    """
    hidden = primary(cells, k=k)
    if not total_published:
        return hidden
    while hidden and not _safe_group(cells, hidden, k=k):
        shown = [key for key in cells if key not in hidden]
        if not shown:
            break  # everything is suppressed: only the total is left, which is published
        hidden.add(min(shown, key=lambda key: (cells[key].people, cells[key].value, key)))
    return hidden


def _safe_group(cells: Mapping[str, Cell], hidden: set[str], *, k: int) -> bool:
    """Return whether a group of suppressed cells hides each one under a published total."""
    people = sum(cells[key].people for key in hidden)
    value = sum(cells[key].value for key in hidden)
    return len(hidden) >= 2 and people >= k and value > 0


def suppress_breakdown(cells: Mapping[str, Cell], *, total_published: bool, k: int = K) -> dict[str, float | None]:
    """Return a breakdown's published values: suppressed cells as None."""
    hidden = suppressed_cells(cells, total_published=total_published, k=k)
    return {key: None if key in hidden else cell.value for key, cell in cells.items()}


def suppress_count(value: int, *, k: int = K) -> int | None:
    """Return a count, or None when it is below ``k``."""
    return None if value < k else value


def suppress_rate(numerator: int, denominator: int, *, k: int = K) -> float | None:
    """Return a rate, or None when its denominator is below ``k``."""
    return None if denominator < k else round(numerator / denominator, 4)


__all__ = ["Cell", "K", "primary", "suppress_breakdown", "suppress_count", "suppress_rate", "suppressed_cells"]
