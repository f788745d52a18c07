"""Fixtures shared by the integration tests."""

from tests.integration.vcs_fixtures import clean_project, project  # noqa: F401
