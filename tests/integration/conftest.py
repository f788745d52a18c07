"""Fixtures shared by the integration tests."""

from tests.integration.vcs_fixtures import project  # noqa: F401
