"""Serves the registry's figures: a municipality's own, and the network's in anonymised form (JSON or CSV).

The routes are the shared ones (:func:`engagiert.shared.figures.figures_router`); this service gives
its figures use case and maps its domain errors to problems.
"""

from __future__ import annotations

from engagiert.registry.api.deps import Service, problems
from engagiert.registry.services.figures import Figures
from engagiert.shared.figures import figures_router


def _figures(service: Service) -> Figures:
    return service.figures


router = figures_router("registry", _figures, guard=problems)
