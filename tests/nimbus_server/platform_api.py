"""The NimbusImage platform's own endpoints, for a test Girder 3.2 server.

What fewseg's worker talks to besides Girder's folders, items and large_image tiles, made to
behave as the platform's real server plugin (NimbusImage's
``devops/girder/plugins/AnnotationPlugin``, read from its source; this is our own code):

* ``/upenn_annotation``: ``GET`` (``datasetId``; ``shape``; ``tags``, a JSON list: annotations
  carrying *all* of them (``$all``); ``afterId``, a cursor that makes ``offset`` ignored;
  ``limit`` (default 50, 0 = all), ``offset``, ``sort`` (default ``_id``), ``sortdir``),
  ``POST /multiple`` and ``POST`` (one): schema-checked as the platform's
  ``AnnotationSchema``, one bad element rejects the whole batch; ``GET`` / ``PUT`` /
  ``DELETE /{id}`` and ``DELETE /multiple`` (a user re-tagging or deleting what a worker
  found; deleting removes the annotation's connections).
* ``/annotation_connection``: ``POST /connectTo`` links each new annotation to its nearest
  annotation carrying any of the tags on the same location and channel (distance between
  centres: a point's coordinate, a polygon's or line's vertex mean), ``GET ?datasetId=``
  lists the links.
* ``/worker_interface``: ``POST ?image=`` (admins) stores the fields a worker declares and
  answers the whole stored document, ``GET ?image=`` returns the fields.
* ``/worker_preview``: ``POST ?image=`` (admins) stores a worker's preview of the current
  tile (``{"image": "data:image/png;base64,..."}``) as the document's ``preview``, ``GET
  ?image=`` returns the document (``{}`` when none), ``DELETE ?image=`` forgets it.
* ``/dataset_view`` (``GET ?datasetId=``) and ``/upenn_collection``: the display layers
  (colour, contrast, visibility) of the dataset; a collection's ``meta`` must hold
  ``compatibility`` and the other keys the platform's schema requires.

Status codes are the plugin's on Girder 3.2, because the same Girder calls raise them: a
dataset id that is not an ObjectId 500; reading a dataset that does not exist 400 (Girder's
"No such folder"), one the caller cannot read 403; uploading to a dataset that does not
exist or without WRITE access 403; a folder that is not a dataset ``200 []`` on read and 400
on upload; an element that fails the schema 400.

Annotations and connections live in the server's (mock) Mongo database, queried as the
plugin queries them; ``GET /fewseg_test/log`` lists every annotation POST (sizes,
locations, tags) and ``connectTo`` body so tests can check how the worker uploaded.
``PAGE_CAP`` caps every annotation page, so a client that does not follow the ``afterId``
cursor misses annotations.
"""

from __future__ import annotations

import json
import math
import threading

import jsonschema
from bson.objectid import ObjectId
from girder.api import access
from girder.api.describe import Description, autoDescribeRoute, describeRoute
from girder.api.rest import Resource
from girder.constants import AccessType
from girder.exceptions import AccessException, RestException, ValidationException
from girder.models.folder import Folder
from girder.models.model_base import AccessControlledModel, Model
from girder.utility.acl_mixin import AccessControlMixin

# The platform's AnnotationSchema (upenncontrast_annotation/server/models/annotation.py);
# its custom "objectId" type is checked where the id is converted (500 when it is not one).
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
        "color": {"type": ["string", "null"]},
    },
    "required": ["coordinates", "tags", "channel", "location", "shape", "datasetId"],
}
#: What a collection's (configuration's) ``meta`` must hold (the platform's CollectionSchema).
COLLECTION_META = ("subtype", "compatibility", "layers", "tools", "propertyIds", "snapshots", "scales")

_lock = threading.Lock()
_interfaces: dict[str, dict] = {}  # image -> {_id, image, interface, access}
_previews: dict[str, dict] = {}  # image -> {_id, image, preview, access}
_views: list[dict] = []
_log: list[dict] = []
#: At most this many annotations per GET page (None: as asked), so clients must page.
PAGE_CAP: int | None = None


class _Annotations(AccessControlMixin, Model):
    """Annotations; reading or writing one needs that access on its dataset folder."""

    def initialize(self):
        self.name = "upenn_annotation"
        self.resourceColl = "folder"
        self.resourceParent = "datasetId"

    def validate(self, doc):
        return doc


class _Connections(Model):
    def initialize(self):
        self.name = "annotation_connection"

    def validate(self, doc):
        return doc


class CollectionModel(AccessControlledModel):
    """Configurations, each with its own access list (its creator owns it)."""

    def initialize(self):
        self.name = "upenn_collection"
        self.exposeFields(level=AccessType.READ, fields=("_id", "name", "description", "folderId", "creatorId",
                                                         "meta", "created", "updated", "size"))

    def validate(self, doc):
        meta = doc.get("meta")
        if not isinstance(meta, dict):
            raise ValidationException("a collection needs its 'meta' object")
        missing = [key for key in COLLECTION_META if key not in meta]
        if missing:
            raise ValidationException(f"the collection's meta lacks {', '.join(missing)}")
        return doc


def add_collection(dataset_id: str, layers: list[dict], *, owner, compatibility: dict) -> dict:
    """Store a configuration (collection) with ``layers`` and a view linking it to the dataset."""
    meta = {"subtype": "contrastConfiguration", "compatibility": compatibility, "layers": layers, "tools": [],
            "propertyIds": [], "snapshots": [], "scales": {}}
    collection = _new_collection(Folder().load(dataset_id, force=True), "fewseg test configuration", "", meta, owner)
    view = {"_id": str(ObjectId()), "datasetId": dataset_id, "configurationId": str(collection["_id"]),
            "creatorId": str(owner["_id"]), "layerContrasts": {}, "lastLocation": {"xy": 0, "z": 0, "time": 0}}
    with _lock:
        _views.append(view)
    return collection


def _new_collection(folder, name, description, meta, owner) -> dict:
    doc = {"name": name, "description": description, "folderId": folder["_id"], "creatorId": owner["_id"],
           "size": 0, "meta": meta}
    CollectionModel().setUserAccess(doc, user=owner, level=AccessType.ADMIN, save=False)
    return CollectionModel().save(doc)


def _is_dataset(dataset_id: ObjectId) -> bool:
    folder = Folder().load(dataset_id, force=True)
    return folder is not None and folder.get("meta", {}).get("subtype") == "contrastDataset"


def _with_object_id(annotation):
    """The annotation with its ``datasetId`` an ObjectId (an id that is not one: InvalidId, a 500)."""
    if not isinstance(annotation, dict):
        raise TypeError(f"an annotation must be a JSON object, not {type(annotation).__name__}")  # the plugin: 500
    if "datasetId" in annotation:
        annotation = {**annotation, "datasetId": ObjectId(annotation["datasetId"])}
    return annotation


def _require_write(dataset_ids, user) -> None:
    """WRITE access on every dataset; one that does not exist is refused too (403), as the plugin does."""
    folders = {f["_id"]: f for f in Folder().find({"_id": {"$in": list(dataset_ids)}})}
    missing = [str(d) for d in dataset_ids if d not in folders]
    if missing:
        raise AccessException(f"Dataset(s) not found: {missing}")
    for folder in folders.values():
        Folder().requireAccess(folder, user, AccessType.WRITE)


def _validate(annotations) -> list[dict]:
    for annotation in annotations:
        try:
            jsonschema.validate(annotation, ANNOTATION_SCHEMA)
        except jsonschema.ValidationError as exc:
            raise ValidationException(exc.message) from None
    for dataset_id in {a["datasetId"] for a in annotations}:
        if not _is_dataset(dataset_id):
            raise ValidationException("Annotation dataset ID is invalid")
    return annotations


def _remove(ids) -> None:
    _Connections().removeWithQuery({"$or": [{"childId": {"$in": ids}}, {"parentId": {"$in": ids}}]})
    _Annotations().removeWithQuery({"_id": {"$in": ids}})


def _centre(annotation) -> dict | None:
    """Where the platform measures an annotation from: a point's coordinate, a polygon's or line's vertex mean."""
    coords = annotation["coordinates"]
    if annotation["shape"] == "point":
        return coords[0]
    if annotation["shape"] not in ("polygon", "line"):
        return None  # the platform measures other shapes as infinitely far
    centre = {axis: sum(c[axis] for c in coords) / len(coords) for axis in ("x", "y")}
    if all("z" in c for c in coords):
        centre["z"] = sum(c["z"] for c in coords) / len(coords)
    return centre


def _distance(a, b) -> float:
    ca, cb = _centre(a), _centre(b)
    if ca is None or cb is None:
        return math.inf
    axes = ("x", "y", "z") if "z" in ca and "z" in cb else ("x", "y")
    return math.sqrt(sum((ca[axis] - cb[axis]) ** 2 for axis in axes))


class AnnotationResource(Resource):
    def __init__(self):
        super().__init__()
        self.resourceName = "upenn_annotation"
        self.route("GET", (), self.find)
        self.route("GET", (":id",), self.get)
        self.route("POST", (), self.create)
        self.route("POST", ("multiple",), self.create_multiple)
        self.route("PUT", (":id",), self.update)
        self.route("DELETE", (":id",), self.delete)
        self.route("DELETE", ("multiple",), self.delete_multiple)

    @access.public
    @autoDescribeRoute(
        Description("List annotations of a dataset.")
        .param("datasetId", "The dataset folder.", required=True)
        .param("shape", "Only this shape.", required=False)
        .jsonParam("tags", "Annotations carrying all of these tags.", required=False, requireArray=True)
        .param("afterId", "Only annotations whose _id is greater (offset is then ignored).", required=False)
        .pagingParams(defaultSort="_id")
    )
    def find(self, datasetId, shape, tags, afterId, limit, offset, sort):
        dataset_id = ObjectId(datasetId)  # not an ObjectId: InvalidId, a 500 as on the platform
        Folder().load(dataset_id, user=self.getCurrentUser(), level=AccessType.READ, exc=True)
        query = {"datasetId": dataset_id}
        if shape is not None:
            query["shape"] = shape
        if tags:
            query["tags"] = {"$all": tags}
        if afterId:
            query["_id"] = {"$gt": ObjectId(afterId)}
            offset = 0
        if PAGE_CAP:
            limit = min(limit or PAGE_CAP, PAGE_CAP)
        return list(_Annotations().find(query, sort=sort, limit=limit, offset=offset))

    @access.user
    @describeRoute(Description("Create an annotation.").param("body", "The annotation.", paramType="body"))
    def create(self, params):
        annotation = _with_object_id(self.getBodyJson())
        Folder().load(annotation["datasetId"], user=self.getCurrentUser(), level=AccessType.WRITE, exc=True)
        return self._store([annotation])[0]

    @access.user
    @describeRoute(Description("Create annotations.").param("body", "The annotations.", paramType="body"))
    def create_multiple(self, params):
        body = self.getBodyJson()
        if not isinstance(body, list):
            raise TypeError("the body must be a JSON list")  # the plugin fails on it: 500
        annotations = [_with_object_id(a) for a in body]
        _require_write({a["datasetId"] for a in annotations if "datasetId" in a}, self.getCurrentUser())
        return self._store(annotations)

    @access.public
    @autoDescribeRoute(Description("One annotation.").modelParam("id", model=_Annotations, level=AccessType.READ,
                                                                 destName="annotation"))
    def get(self, annotation):
        return annotation

    @access.user
    @autoDescribeRoute(
        Description("Change an annotation (its tags, coordinates, ...).")
        .modelParam("id", model=_Annotations, level=AccessType.WRITE, destName="annotation")
        .jsonParam("body", "The fields to change.", paramType="body", requireObject=True)
    )
    def update(self, annotation, body):
        changed = {k: v for k, v in _with_object_id(body).items() if k in ANNOTATION_SCHEMA["properties"]
                   or k == "datasetId"}
        annotation = {**annotation, **changed}
        _validate([annotation])
        return _Annotations().save(annotation)

    @access.user
    @autoDescribeRoute(Description("Delete an annotation (and its connections).")
                       .modelParam("id", model=_Annotations, level=AccessType.WRITE, destName="annotation"))
    def delete(self, annotation):
        _remove([annotation["_id"]])

    @access.user
    @describeRoute(Description("Delete annotations (and their connections).")
                   .param("body", "Their ids.", paramType="body"))
    def delete_multiple(self, params):
        ids = [ObjectId(i) for i in self.getBodyJson()]
        found = _Annotations().find({"_id": {"$in": ids}}, fields=["datasetId"])
        _require_write({a["datasetId"] for a in found}, self.getCurrentUser())
        _remove(ids)

    def _store(self, annotations):
        annotations = _validate(annotations)
        stored = []
        for annotation in annotations:
            annotation = {k: v for k, v in annotation.items() if k != "_id"}
            stored.append(_Annotations().save(annotation))
        with _lock:
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
        self.route("POST", (), self.create)
        self.route("GET", (":id",), self.get)

    @access.user
    @autoDescribeRoute(
        Description("Create a configuration (collection).")
        .modelParam("folderId", "Its dataset folder.", model=Folder, level=AccessType.WRITE, paramType="query")
        .param("name", "Its name.", strip=True)
        .param("description", "Its description.", required=False, default="", strip=True)
        .jsonParam("metadata", "Its meta (layers, compatibility, ...).", paramType="form", requireObject=True,
                   required=False)
    )
    def create(self, folder, name, description, metadata):
        return CollectionModel().filter(_new_collection(folder, name, description, metadata, self.getCurrentUser()),
                                        self.getCurrentUser())

    @access.public
    @autoDescribeRoute(
        Description("A configuration (collection).")
        .modelParam("id", "Its id.", model=CollectionModel, level=AccessType.READ, destName="collection")
    )
    def get(self, collection):
        return CollectionModel().filter(collection, self.getCurrentUser())


class ConnectionResource(Resource):
    def __init__(self):
        super().__init__()
        self.resourceName = "annotation_connection"
        self.route("GET", (), self.find)
        self.route("POST", ("connectTo",), self.connect_to)

    @access.public
    @autoDescribeRoute(
        Description("Connections of a dataset.")
        .param("datasetId", "The dataset.", required=True)
        .param("childId", "Only connections from this annotation.", required=False)
        .pagingParams(defaultSort="_id")
    )
    def find(self, datasetId, childId, limit, offset, sort):
        dataset_id = ObjectId(datasetId)
        if not Folder().load(dataset_id, user=self.getCurrentUser(), level=AccessType.READ):
            raise RestException("Access denied to dataset", code=403)
        query = {"datasetId": dataset_id, **({"childId": ObjectId(childId)} if childId else {})}
        return list(_Connections().find(query, sort=sort, limit=limit, offset=offset))

    @access.user
    @describeRoute(Description("Connect each new annotation to its nearest tagged neighbour on its location.")
                   .param("body", "annotationsIds, tags, channelId (and datasetId).", paramType="body"))
    def connect_to(self, params):
        body = self.getBodyJson()
        user = self.getCurrentUser()
        with _lock:
            _log.append({"connectTo": body})
        ids = [ObjectId(i) for i in body["annotationsIds"]]
        query = {"_id": {"$nin": ids}}
        if body["channelId"] is not None:
            query["channel"] = int(body["channelId"])
        if body["tags"]:
            query["tags"] = {"$in": body["tags"]}
        made = []
        for child_id in ids:
            child = _Annotations().load(child_id, user=user, level=AccessType.READ)  # no access: 403
            if child is None:
                continue
            candidates = list(_Annotations().find({**query, "location": child["location"],
                                                   "datasetId": child["datasetId"]}))
            if not candidates:
                continue
            nearest = min(candidates, key=lambda other: _distance(child, other))  # the first of equals
            if not _is_dataset(child["datasetId"]):
                raise ValidationException("Connection dataset ID is invalid")
            made.append(_Connections().save({"tags": [], "label": "A Connection -- automatic",
                                             "parentId": nearest["_id"], "childId": child_id,
                                             "datasetId": child["datasetId"]}))
        return made


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
