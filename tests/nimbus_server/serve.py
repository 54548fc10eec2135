"""Run a NimbusImage test server: real Girder 3.2 + girder-large-image, the platform's endpoints.

Run with the server's own environment (``.venv-girder``, made by ``scripts/setup``)::

    .venv-girder/bin/python tests/nimbus_server/serve.py --port 8123 --data /tmp/srv \\
        --image frame.ome.tif --layers '[...]' --ready /tmp/srv/ready.json

The database is mongomock (pytest-girder's ``--mock-db``): nothing outside this process.
It creates an admin, a filesystem assetstore under ``--data``, a dataset folder (the
platform's ``contrastDataset``) holding ``--image`` as a large image, a configuration with
``--layers`` and a view of it; then it writes ``--ready`` (``apiUrl``, ``token``,
``datasetId``, ``itemId``, ``collectionId``) and serves on 127.0.0.1 until killed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import mongomock
import pymongo

pymongo.MongoClient = mongomock.MongoClient  # before Girder connects: the mock DB


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--data", required=True, help="folder for the assetstore and the ready file")
    p.add_argument("--image", required=True, help="the dataset's TIFF / OME-TIFF")
    p.add_argument("--layers", default="[]", help="JSON list of the configuration's display layers")
    p.add_argument("--ready", required=True, help="write the connection details here when serving")
    p.add_argument("--page-cap", type=int, default=None, help="at most this many annotations per GET page")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = _parse(argv)
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("GIRDER_MONGO_URI", "mongodb://127.0.0.1:27017/girder_fewseg_test")

    import cherrypy
    from girder.constants import ServerMode
    from girder.models import getDbConnection
    from girder.utility.server import setup as setup_server

    getDbConnection(os.environ["GIRDER_MONGO_URI"])
    sys.path.insert(0, str(Path(__file__).parent))
    import platform_api

    app = setup_server(mode=ServerMode.TESTING, plugins=["large_image"])
    platform_api.mount(app.root.api.v1)
    platform_api.PAGE_CAP = args.page_cap
    cherrypy.config.update({"server.socket_host": "127.0.0.1", "server.socket_port": args.port,
                            "environment": "embedded", "log.screen": False,
                            "engine.autoreload.on": False})
    cherrypy.engine.start()
    try:
        ready = _populate(args, data, platform_api)
    except BaseException:
        cherrypy.engine.exit()
        raise
    tmp = Path(args.ready).with_suffix(".tmp")
    tmp.write_text(json.dumps(ready))
    tmp.replace(args.ready)
    cherrypy.engine.block()
    return 0


def _populate(args, data: Path, platform_api) -> dict:
    """The admin, assetstore, dataset with its large image, configuration and view; the ready record."""
    from girder.models.assetstore import Assetstore
    from girder.models.folder import Folder
    from girder.models.item import Item
    from girder.models.token import Token
    from girder.models.upload import Upload
    from girder.models.user import User
    from girder_large_image.models.image_item import ImageItem

    admin = User().createUser(login="admin", password="password", firstName="Ad", lastName="Min",
                              email="admin@fewseg.test", admin=True)
    Assetstore().createFilesystemAssetstore("fewseg-test", root=str(data / "assetstore"))
    private = next(Folder().childFolders(parent=admin, parentType="user", user=admin, filters={"name": "Private"}))
    dataset = Folder().createFolder(private, "fewseg test dataset", creator=admin)
    image = Path(args.image)
    item = Item().createItem(image.name, creator=admin, folder=dataset)
    with open(image, "rb") as handle:
        upload = Upload().uploadFromFile(handle, image.stat().st_size, image.name, parentType="item",
                                         parent=item, user=admin)
    item = Item().load(item["_id"], force=True)
    if "fileId" not in item.get("largeImage", {}):  # girder-large-image usually makes it on upload
        ImageItem().createImageItem(item, upload, user=admin, createJob=False)
    Folder().setMetadata(dataset, {"subtype": "contrastDataset", "selectedLargeImageId": str(item["_id"])})
    collection = platform_api.add_collection(str(dataset["_id"]), json.loads(args.layers), owner=admin,
                                             compatibility=_compatibility(ImageItem().getMetadata(item)))
    token = Token().createToken(admin, days=1)

    return {"apiUrl": f"http://127.0.0.1:{args.port}/api/v1", "token": str(token["_id"]),
            "datasetId": str(dataset["_id"]), "itemId": str(item["_id"]), "collectionId": str(collection["_id"])}


def _compatibility(tiles: dict) -> dict:
    """What the app records in a configuration's ``meta.compatibility`` for a dataset (its
    ``getDatasetCompatibility``): whether XY, Z and Time are one or several, and the channel names."""
    frames = tiles.get("frames") or [{}]
    several = {axis: len({f.get(f"Index{axis}", 0) for f in frames}) > 1 for axis in ("XY", "Z", "T")}
    names = tiles.get("channels") or []
    n_channels = max(len(names), len({f.get("IndexC", 0) for f in frames}))
    return {"xyDimensions": "multiple" if several["XY"] else "one", "zDimensions": "multiple" if several["Z"] else "one",
            "tDimensions": "multiple" if several["T"] else "one",
            "channels": {str(c): (names[c] if c < len(names) and names[c] else "Unnamed channel")
                         for c in range(n_channels)}}


if __name__ == "__main__":
    sys.exit(main())
