"""What the napari tests share: the dock widget opened as a user opens it (the notifications seen: the
``messages`` fixture in conftest.py)."""

WIDGET = "find objects like these"


def open_widget(viewer):
    """The dock widget, opened through the plugin's manifest as the Plugins menu does."""
    from fewseg.napari.widget import FindObjects

    _, widget = viewer.window.add_plugin_dock_widget("fewseg", WIDGET)
    assert isinstance(widget, FindObjects)
    return widget
