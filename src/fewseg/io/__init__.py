"""What fewseg reads and writes: frames, annotations, datasets of many frames, outputs.

* :mod:`~fewseg.io.frames`: a frame from TIFF / OME-TIFF / PNG / JPEG, or through
  :mod:`~fewseg.io.formats` (OME-Zarr, vendor files), as a ``(C, Y, X)`` float32
  :class:`~fewseg.objects.Frame`; plane and channel selection.
* :mod:`~fewseg.io.annotations`: NimbusImage JSON, GeoJSON, label images and click CSVs,
  in and out, validated.
* :mod:`~fewseg.io.dataset`: a batch's frames (files as XY positions, planes read by
  region) named without holding pixels, so they travel to workers.
* :mod:`~fewseg.io.outputs`: a batch's results as annotations, label stacks or OME-Zarr
  ``labels/``.

Nothing here knows a segmentation method.
"""
