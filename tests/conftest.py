"""Fixtures the tests share."""

import pytest


@pytest.fixture
def messages():
    """Every napari notification shown during the test (severity, message)."""
    from napari.utils.notifications import notification_manager

    seen = []
    notification_manager.notification_ready.connect(lambda n: seen.append((str(n.severity), n.message)))
    yield seen
    notification_manager.notification_ready.disconnect()
