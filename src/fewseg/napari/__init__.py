"""fewseg in napari: outline a few objects, find the rest, look at what was found.

The plugin is declared in ``napari.yaml`` (npe2): a reader (frames, stacks and
annotation files through fewseg's own readers), writers (Shapes to NimbusImage JSON /
GeoJSON, Labels to a label TIFF), the demo frame as sample data, and the dock widget
"find objects like these" (:mod:`fewseg.napari.widget`). It calls the library's one
batch loop (:func:`fewseg.batch.segment_frames`); nothing of the method lives here.

Modules: :mod:`~fewseg.napari.layers` turns fewseg's frames and annotations into napari
layer data and back (plain numpy, no napari import), :mod:`~fewseg.napari.reader`,
:mod:`~fewseg.napari.writer` and :mod:`~fewseg.napari.widget` are what the manifest
names. Install with ``pip install 'fewseg[napari]'``.
"""
