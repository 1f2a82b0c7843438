"""Serves the events service's figures: a municipality's own, and the network's in anonymised form (JSON or CSV).

The routes are the shared ones (:func:`engagiert.shared.figures.figures_router`); this service gives
its figures use case.
"""

from __future__ import annotations

from engagiert.events.api.deps import Service
from engagiert.events.services.figures import Figures
from engagiert.shared.figures import figures_router


def _figures(service: Service) -> Figures:
    return service.figures


router = figures_router("events", _figures)
