"""The NimbusImage platform's own endpoints, for a test Girder 3.2 server.

What fewseg's worker talks to besides Girder's folders, items and large_image tiles:

* ``/upenn_annotation``: ``GET`` (``datasetId``, ``shape``, ``tags`` (a JSON list: any of
  them), ``limit``, ``offset``, ``sort``, ``sortdir``, ``afterId``), ``POST /multiple``
  (validated against the platform's ``AnnotationSchema``; one bad element rejects the
  whole batch, as the platform's ``validateMultiple`` does), ``POST`` (one).
* ``/worker_interface``: ``POST ?image=`` (admins) stores the fields a worker declares and
  answers the whole stored document, ``GET ?image=`` returns the fields.
* ``/worker_preview``: ``POST ?image=`` (admins) stores a worker's preview of the current
  tile (``{"image": "data:image/png;base64,..."}``) as the document's ``preview``, ``GET
  ?image=`` returns the document (``{}`` when none), ``DELETE ?image=`` forgets it.
* ``/dataset_view`` (``GET ?datasetId=``) and ``/upenn_collection/{id}``: the display
  layers (colour, contrast, visibility) of the dataset.
* ``/annotation_connection/connectTo``: accepted and recorded.

Annotations live in this process's memory (a test server); ``GET /fewseg_test/log`` lists
every annotation POST (sizes, locations) so tests can check how the worker uploaded.
``PAGE_CAP`` caps every ``GET`` page, so a client that does not follow the ``afterId``
cursor misses annotations.
"""

from __future__ import annotations

import json
import threading

import jsonschema
from bson.objectid import ObjectId
from girder.api import access
from girder.api.describe import Description, autoDescribeRoute, describeRoute
from girder.api.rest import Resource
from girder.constants import AccessType
from girder.exceptions import RestException, ValidationException
from girder.models.folder import Folder

# The platform's AnnotationSchema (upenncontrast_annotation/server/models/annotation.py),
# with its custom "objectId" type written as a 24-hex-digit string.
COORD = {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}, "z": {"type": "number"}},
         "required": ["x", "y"]}
ANNOTATION_SCHEMA = {
    "$schema": "http://json-schema.org/draft-04/schema",
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "coordinates": {"type": "array", "items": COORD, "minItems": 1},
        "tags": {"type": "array", "items": {"type": "string"}},
        "channel": {"type": "integer"},
        "location": {"type": "object", "properties": {
            "XY": {"type": "integer"}, "Z": {"type": "integer"}, "Time": {"type": "integer"}}},
        "shape": {"type": "string", "enum": ["point", "line", "polygon", "rectangle"]},
        "datasetId": {"type": "string", "pattern": "^[0-9a-f]{24}$"},
        "color": {"type": ["string", "null"]},
    },
    "required": ["coordinates", "tags", "channel", "location", "shape", "datasetId"],
}

_lock = threading.Lock()
_annotations: list[dict] = []  # in _id order
_interfaces: dict[str, dict] = {}  # image -> {_id, image, interface, access}
_previews: dict[str, dict] = {}  # image -> {_id, image, preview, access}
_collections: dict[str, dict] = {}
_views: list[dict] = []
_log: list[dict] = []
#: At most this many annotations per GET page (None: as asked), so clients must page.
PAGE_CAP: int | None = None


def add_collection(dataset_id: str, layers: list[dict], *, owner_id: str) -> dict:
    """Store a configuration (collection) with ``layers`` and a view linking it to the dataset."""
    collection = {"_id": str(ObjectId()), "name": "fewseg test configuration", "folderId": dataset_id,
                  "meta": {"subtype": "contrastConfiguration", "layers": layers, "tools": [], "propertyIds": [],
                           "snapshots": [], "scales": {}}}
    view = {"_id": str(ObjectId()), "datasetId": dataset_id, "configurationId": collection["_id"],
            "creatorId": owner_id, "layerContrasts": {}, "lastLocation": {"xy": 0, "z": 0, "time": 0}}
    with _lock:
        _collections[collection["_id"]] = collection
        _views.append(view)
    return collection


def _is_dataset(dataset_id: str, user) -> bool:
    try:
        folder = Folder().load(dataset_id, user=user, level=AccessType.READ)
    except Exception:  # an id that is not an ObjectId  # noqa: BLE001
        return False
    return folder is not None and folder.get("meta", {}).get("subtype") == "contrastDataset"


def _validate(annotations, user) -> list[dict]:
    if not isinstance(annotations, list):
        raise ValidationException("expected a list of annotations")
    for annotation in annotations:
        try:
            jsonschema.validate(annotation, ANNOTATION_SCHEMA)
        except jsonschema.ValidationError as exc:
            raise ValidationException(exc.message) from None
    for dataset_id in {a["datasetId"] for a in annotations}:
        if not _is_dataset(dataset_id, user):
            raise ValidationException("Annotation dataset ID is invalid")
    return annotations


class AnnotationResource(Resource):
    def __init__(self):
        super().__init__()
        self.resourceName = "upenn_annotation"
        self.route("GET", (), self.find)
        self.route("POST", (), self.create)
        self.route("POST", ("multiple",), self.create_multiple)

    @access.user
    @autoDescribeRoute(
        Description("List annotations of a dataset.")
        .param("datasetId", "The dataset folder.", required=True)
        .param("shape", "Only this shape.", required=False)
        .param("tags", "JSON list of tags: annotations with any of them.", required=False)
        .param("afterId", "Only annotations whose _id is greater.", required=False)
        .param("limit", "Page size (0 = all).", required=False, dataType="integer", default=50)
        .param("offset", "Skip this many.", required=False, dataType="integer", default=0)
        .param("sort", "Sort field.", required=False, default="_id")
        .param("sortdir", "1 or -1.", required=False, dataType="integer", default=1)
    )
    def find(self, datasetId, shape, tags, afterId, limit, offset, sort, sortdir):
        if not _is_dataset(datasetId, self.getCurrentUser()):
            raise RestException("Invalid dataset id", code=400)
        wanted = json.loads(tags) if tags else []
        with _lock:
            found = [a for a in _annotations if a["datasetId"] == datasetId
                     and (not shape or a["shape"] == shape)
                     and (not wanted or set(a["tags"]) & set(wanted))
                     and (not afterId or ObjectId(a["_id"]) > ObjectId(afterId))]
        if sortdir == -1:
            found = found[::-1]
        found = found[offset:]
        limit = min(limit or len(found), PAGE_CAP or len(found))
        return found[:limit]

    @access.user
    @autoDescribeRoute(Description("Create an annotation.").jsonParam("body", "The annotation.", paramType="body"))
    def create(self, body):
        return self._store([body], self.getCurrentUser())[0]

    @access.user
    @autoDescribeRoute(Description("Create annotations.").jsonParam("body", "The annotations.", paramType="body",
                                                                     requireArray=True))
    def create_multiple(self, body):
        return self._store(body, self.getCurrentUser())

    def _store(self, annotations, user):
        annotations = _validate(annotations, user)
        with _lock:
            stored = []
            for annotation in annotations:
                annotation = {k: v for k, v in annotation.items() if k != "_id"}
                annotation["_id"] = str(ObjectId())
                _annotations.append(annotation)
                stored.append(annotation)
            _log.append({"count": len(stored), "locations": sorted({json.dumps(a["location"], sort_keys=True)
                                                                    for a in stored}),
                         "tags": sorted({t for a in stored for t in a["tags"]})})
        return stored


def _image_document(store: dict, image: str, field: str, value, user) -> dict:
    """Store ``value`` under ``field`` of ``image``'s document (made on first use, owned by ``user``)."""
    with _lock:
        document = store.get(image)
        if document is None:
            document = {"_id": str(ObjectId()), "image": image,
                        "access": {"users": [{"id": str(user["_id"]), "level": AccessType.ADMIN, "flags": []}],
                                   "groups": []}}
            store[image] = document
        document[field] = value
        return dict(document)


def _require_image(params) -> str:
    if "image" not in params:
        raise RestException("Missing 'image' parameter", code=400)
    return params["image"]


class WorkerInterfaceResource(Resource):
    """``worker_interface``: one document per worker image, ``{_id, image, interface, access}``.

    ``POST`` (admins only) answers the whole stored document; ``GET`` only its ``interface``
    (``null`` when none).
    """

    def __init__(self):
        super().__init__()
        self.resourceName = "worker_interface"
        self.route("POST", (), self.set_interface)
        self.route("GET", (), self.get_interface)

    @access.admin
    @describeRoute(Description("Store the interface a worker image declares.")
                   .param("image", "The worker's docker image.").param("body", "The fields.", paramType="body"))
    def set_interface(self, params):
        image = _require_image(params)
        body = self.getBodyJson()
        if not isinstance(body, dict):
            raise ValidationException("the interface must be a JSON object")
        return _image_document(_interfaces, image, "interface", body, self.getCurrentUser())

    @access.user
    @describeRoute(Description("The interface of a worker image.").param("image", "The image."))
    def get_interface(self, params):
        image = _require_image(params)
        with _lock:
            return _interfaces.get(image, {}).get("interface")


class WorkerPreviewResource(Resource):
    """``worker_preview``: what a worker last showed for the current tile, one document per image.

    ``POST ?image=`` (admins only) stores the body (``{"image": "data:image/png;base64,...",
    ...}``) as the document's ``preview`` and answers the whole document ``{_id, image,
    preview, access}``; ``GET ?image=`` answers that document (``{}`` when none: the app
    reads its ``preview``); ``DELETE ?image=`` (admins only) forgets it.
    """

    def __init__(self):
        super().__init__()
        self.resourceName = "worker_preview"
        self.route("GET", (), self.get_preview)
        self.route("POST", (), self.set_preview)
        self.route("DELETE", (), self.clear_preview)

    @access.admin
    @describeRoute(Description("Store a worker's preview.").param("image", "The worker's docker image.")
                   .param("body", "The preview.", paramType="body"))
    def set_preview(self, params):
        image = _require_image(params)
        body = self.getBodyJson()
        if not isinstance(body, dict) or not isinstance(body.get("image", ""), str):
            raise ValidationException("the preview must be a JSON object whose 'image' is text")
        return _image_document(_previews, image, "preview", body, self.getCurrentUser())

    @access.user
    @describeRoute(Description("A worker's preview.").param("image", "The image."))
    def get_preview(self, params):
        image = _require_image(params)
        with _lock:
            document = _previews.get(image)
            return dict(document) if document is not None else {}

    @access.admin
    @describeRoute(Description("Forget a worker's preview.").param("image", "The image."))
    def clear_preview(self, params):
        image = _require_image(params)
        with _lock:
            _previews.pop(image, None)


class DatasetViewResource(Resource):
    def __init__(self):
        super().__init__()
        self.resourceName = "dataset_view"
        self.route("GET", (), self.find)

    @access.user
    @autoDescribeRoute(
        Description("Views of a dataset.")
        .param("datasetId", "The dataset.", required=False)
        .param("currentUserOnly", "Only the caller's views.", required=False, dataType="boolean", default=False)
    )
    def find(self, datasetId, currentUserOnly):
        user = self.getCurrentUser()
        with _lock:
            return [v for v in _views if (not datasetId or v["datasetId"] == datasetId)
                    and (not currentUserOnly or v["creatorId"] == str(user["_id"]))]


class CollectionResource(Resource):
    def __init__(self):
        super().__init__()
        self.resourceName = "upenn_collection"
        self.route("GET", (":id",), self.get)

    @access.user
    @autoDescribeRoute(Description("A configuration (collection).").param("id", "Its id.", paramType="path"))
    def get(self, id):
        with _lock:
            if id not in _collections:
                raise RestException("No such collection", code=404)
            return _collections[id]


class ConnectionResource(Resource):
    def __init__(self):
        super().__init__()
        self.resourceName = "annotation_connection"
        self.route("POST", ("connectTo",), self.connect_to)

    @access.user
    @autoDescribeRoute(Description("Connect annotations.").jsonParam("body", "What to connect.", paramType="body"))
    def connect_to(self, body):
        with _lock:
            _log.append({"connectTo": body})
        return []


class TestLogResource(Resource):
    def __init__(self):
        super().__init__()
        self.resourceName = "fewseg_test"
        self.route("GET", ("log",), self.log)

    @access.user
    @autoDescribeRoute(Description("Every annotation POST so far."))
    def log(self):
        with _lock:
            return list(_log)


def mount(api_root) -> None:
    """Add the platform's endpoints to a Girder API root (``root.api.v1``)."""
    api_root.upenn_annotation = AnnotationResource()
    api_root.worker_interface = WorkerInterfaceResource()
    api_root.worker_preview = WorkerPreviewResource()
    api_root.dataset_view = DatasetViewResource()
    api_root.upenn_collection = CollectionResource()
    api_root.annotation_connection = ConnectionResource()
    api_root.fewseg_test = TestLogResource()
