"""fewseg as a NimbusImage annotation worker.

The platform runs the worker's container as::

    fewseg-nimbus-worker --apiUrl URL --token TOKEN --request interface|compute|preview \\
        --parameters JSON [--datasetId FOLDER]

``interface`` declares the fields of the worker's tool (:mod:`.interface`); ``compute``
reads the examples (polygons or points with a training tag), the negatives (with a "Not
these tags" tag) and the frames from the server, fits once and uploads the outlines of
every other object, frame by frame (:mod:`.compute`); ``preview`` draws what a run would
find on the current tile and posts it as the tool's preview (:mod:`.preview`).
Messages are JSON lines on stdout; the exit status is the job's status (:mod:`.worker`).
Server access goes through the official ``nimbusimage`` SDK (:mod:`.server`); install it
with ``pip install 'fewseg[nimbus]'``.
"""
