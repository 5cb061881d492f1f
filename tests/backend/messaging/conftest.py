"""The socket fixtures of the realtime tests, for the chat's frame tests."""

from tests.realtime.conftest import open_socket  # noqa: F401
