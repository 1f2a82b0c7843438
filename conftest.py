"""Loads the shared test fixtures for every test in the repository."""

pytest_plugins = ["engagiert.shared.testing.plugin"]
