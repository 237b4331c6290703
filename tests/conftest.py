"""The suite's shared fixtures live in tests/support/fixtures.py; a folder's conftest.py holds
only fixtures that folder alone uses."""

pytest_plugins = ["tests.support.fixtures", "tests.support.localstripe"]
