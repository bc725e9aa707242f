"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import FakeClock, RecordingServer, recording_server


@pytest.fixture
def http_server() -> Iterator[RecordingServer]:
    """A local HTTP server serving canned replies and counting requests."""
    with recording_server() as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    """An injected clock whose sleep returns at once."""
    return FakeClock()
