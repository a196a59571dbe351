"""HTTP layer: routing, auth, error mapping and state persistence around the Atlas emulator core."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from emulators.background import ServedInBackground

from .errors import (
    AtlasError,
    classification_not_found,
    entity_type_missing,
    guid_not_found,
    invalid_parameters,
    not_unique_attribute,
    unique_not_found,
)
from .lineage import lineage
from .models_loader import load_models
from .search import Searcher
from .store import EntityStore
from .typesystem import CATEGORY_LISTS, TypeRegistry

ERROR_TEXT = "There was an error processing your request. It has been logged (ID {:016x})."
UNAUTHORIZED_HTML = (
    "<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html;charset=utf-8\"/>\n"
    "<title>Error 401 Unauthorized</title>\n</head>\n<body><h2>HTTP ERROR 401 Unauthorized</h2>\n"
    "<table>\n<tr><th>URI:</th><td>{uri}</td></tr>\n<tr><th>STATUS:</th><td>401</td></tr>\n"
    "<tr><th>MESSAGE:</th><td>Unauthorized</td></tr>\n</table>\n</body>\n</html>\n"
)
DEF_PATHS = {
    "entitydef": "ENTITY", "classificationdef": "CLASSIFICATION", "structdef": "STRUCT", "enumdef": "ENUM",
    "relationshipdef": "RELATIONSHIP", "businessmetadatadef": "BUSINESS_METADATA",
}


class Request:
    """Parsed request handed to route functions."""

    def __init__(self, method: str, path: str, query: dict[str, list[str]], body: Any, user: str) -> None:
        self.method, self.path, self.query, self.body, self.user = method, path, query, body, user

    def q(self, name: str, default: str | None = None) -> str | None:
        vals = self.query.get(name)
        return vals[0] if vals else default

    def flag(self, name: str) -> bool:
        return (self.q(name) or "").lower() == "true"

    def unique_attrs(self, prefix: str = "attr:") -> dict[str, str]:
        return {k[len(prefix):]: v[0] for k, v in self.query.items() if k.startswith(prefix)}


Response = tuple[int, Any]


class AtlasCore:
    """Type registry + entity store + search + persistence behind one lock."""

    def __init__(self, state_path: str | None = None) -> None:
        self.lock = threading.RLock()
        self._flush_lock = threading.Lock()
        self.registry = TypeRegistry()
        load_models(self.registry)
        self.store = EntityStore(self.registry)
        self.searcher = Searcher(self.store)
        self.state_path = Path(state_path) if state_path else None
        if self.state_path and self.state_path.exists():
            state = json.loads(self.state_path.read_text())
            self.registry.load_state(state["typedefs"])
            self.store.load_state(state["store"])

    SAVE_DELAY_S = 1.0

    def save(self) -> None:
        """Schedule a write of the whole state (at most one per SAVE_DELAY_S; ``flush`` on stop).

        Writing the whole state after every mutation made each write O(everything stored): 3.5 MB after 100
        deploys, 17 MB after 500, so the stand-in's writes slowed with its age, which no real Atlas does.
        A kill -9 loses at most the last second of writes; a clean stop (SIGTERM) loses nothing."""
        if not self.state_path:
            return
        self._dirty = True
        if getattr(self, "_saver", None) is None:
            self._wake = threading.Event()
            self._saver = threading.Thread(target=self._save_loop, name="atlas-emulator-saver", daemon=True)
            self._saver.start()
        self._wake.set()

    def _save_loop(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(self.SAVE_DELAY_S)  # gather the writes of the next second into one
            self._wake.clear()
            self.flush()

    def flush(self) -> None:
        """Atomic write (temp file + rename) of the whole state, if anything changed."""
        if not self.state_path:
            return
        with self._flush_lock:
            with self.lock:
                if not getattr(self, "_dirty", False):
                    return
                data = json.dumps({"typedefs": self.registry.to_state(), "store": self.store.to_state()})
                self._dirty = False
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=str(self.state_path.parent), prefix=".atlas-state-")
            with os.fdopen(fd, "w") as f:
                f.write(data)
            os.replace(tmp, self.state_path)

    # ----- helpers -------------------------------------------------------------------------------
    def _entity_type(self, name: str) -> str:
        if not self.registry.is_entity(name):
            raise entity_type_missing(name)
        return name

    def _by_unique(self, req: Request, type_name: str, validate: bool = True) -> str:
        self._entity_type(type_name)
        attrs = req.unique_attrs()
        info = self.registry.entity(type_name)
        if validate:
            if not attrs:
                raise not_unique_attribute(type_name, "")
            for k in attrs:
                if k not in info.attributes or not info.attributes[k][0].get("isUnique"):
                    raise not_unique_attribute(type_name, k)
        guid = self.store.find_exact(type_name, attrs) if attrs else None
        if guid is None:
            raise unique_not_found(type_name, attrs)
        return guid

    def _body_list(self, req: Request) -> list[Any]:
        if not isinstance(req.body, list):
            raise invalid_parameters("expected a JSON array")
        return req.body

    # ----- routes --------------------------------------------------------------------------------
    def routes(self) -> list[tuple[str, str, Callable[..., Response], bool]]:
        """(method, regex, handler, mutates)."""
        return [
            ("GET", r"/api/atlas/admin/status", lambda r: (200, {"Status": "ACTIVE"}), False),
            ("GET", r"/api/atlas/admin/version", lambda r: (200, {
                "Version": "2.4.0", "Revision": "emulator", "Name": "apache-atlas",
                "Description": "Metadata Management and Data Governance Platform over Hadoop"}), False),
            ("GET", r"/api/atlas/v2/types/typedefs", self.get_typedefs, False),
            ("GET", r"/api/atlas/v2/types/typedefs/headers", self.get_typedef_headers, False),
            ("POST", r"/api/atlas/v2/types/typedefs", self.create_typedefs, True),
            ("PUT", r"/api/atlas/v2/types/typedefs", self.update_typedefs, True),
            ("DELETE", r"/api/atlas/v2/types/typedefs", self.delete_typedefs, True),
            ("GET", r"/api/atlas/v2/types/typedef/name/(?P<name>[^/]*)", self.get_typedef_name, False),
            ("DELETE", r"/api/atlas/v2/types/typedef/name/(?P<name>[^/]*)", self.delete_typedef_name, True),
            ("GET", r"/api/atlas/v2/types/typedef/guid/(?P<guid>[^/]+)", self.get_typedef_guid, False),
            ("GET", r"/api/atlas/v2/types/(?P<kind>\w+def)/name/(?P<name>[^/]*)", self.get_def_name, False),
            ("GET", r"/api/atlas/v2/types/(?P<kind>\w+def)/guid/(?P<guid>[^/]+)", self.get_def_guid, False),
            ("POST", r"/api/atlas/v2/entity", self.post_entity, True),
            ("POST", r"/api/atlas/v2/entity/bulk", self.post_bulk, True),
            ("GET", r"/api/atlas/v2/entity/bulk", self.get_bulk, False),
            ("DELETE", r"/api/atlas/v2/entity/bulk", self.delete_bulk, True),
            ("POST", r"/api/atlas/v2/entity/bulk/classification", self.bulk_classification, True),
            ("GET", r"/api/atlas/v2/entity/guid/(?P<guid>[^/]+)", self.get_entity, False),
            ("GET", r"/api/atlas/v2/entity/guid/(?P<guid>[^/]+)/header", self.get_header, False),
            ("PUT", r"/api/atlas/v2/entity/guid/(?P<guid>[^/]+)", self.put_entity_attr, True),
            ("DELETE", r"/api/atlas/v2/entity/guid/(?P<guid>[^/]*)", self.delete_entity, True),
            ("GET", r"/api/atlas/v2/entity/(?P<guid>[^/]+)/audit", self.get_audit, False),
            ("GET", r"/api/atlas/v2/entity/guid/(?P<guid>[^/]+)/classifications", self.get_classifications, False),
            ("POST", r"/api/atlas/v2/entity/guid/(?P<guid>[^/]+)/classifications", self.add_classifications, True),
            ("PUT", r"/api/atlas/v2/entity/guid/(?P<guid>[^/]+)/classifications", self.update_classifications, True),
            ("GET", r"/api/atlas/v2/entity/guid/(?P<guid>[^/]+)/classification/(?P<name>[^/]+)",
             self.get_classification, False),
            ("DELETE", r"/api/atlas/v2/entity/guid/(?P<guid>[^/]+)/classification/(?P<name>[^/]+)",
             self.delete_classification, True),
            ("POST", r"/api/atlas/v2/entity/guid/(?P<guid>[^/]+)/labels", self.labels_set, True),
            ("PUT", r"/api/atlas/v2/entity/guid/(?P<guid>[^/]+)/labels", self.labels_add, True),
            ("DELETE", r"/api/atlas/v2/entity/guid/(?P<guid>[^/]+)/labels", self.labels_remove, True),
            ("GET", r"/api/atlas/v2/entity/uniqueAttribute/type/(?P<type>[^/]+)", self.get_unique, False),
            ("GET", r"/api/atlas/v2/entity/uniqueAttribute/type/(?P<type>[^/]+)/header", self.get_unique_header,
             False),
            ("PUT", r"/api/atlas/v2/entity/uniqueAttribute/type/(?P<type>[^/]+)", self.put_unique, True),
            ("DELETE", r"/api/atlas/v2/entity/uniqueAttribute/type/(?P<type>[^/]+)", self.delete_unique, True),
            ("POST", r"/api/atlas/v2/entity/uniqueAttribute/type/(?P<type>[^/]+)/classifications",
             self.unique_add_classifications, True),
            ("PUT", r"/api/atlas/v2/entity/uniqueAttribute/type/(?P<type>[^/]+)/classifications",
             self.unique_update_classifications, True),
            ("DELETE", r"/api/atlas/v2/entity/uniqueAttribute/type/(?P<type>[^/]+)/classification/(?P<name>[^/]+)",
             self.unique_delete_classification, True),
            ("POST", r"/api/atlas/v2/entity/uniqueAttribute/type/(?P<type>[^/]+)/labels", self.unique_labels_set,
             True),
            ("PUT", r"/api/atlas/v2/entity/uniqueAttribute/type/(?P<type>[^/]+)/labels", self.unique_labels_add,
             True),
            ("DELETE", r"/api/atlas/v2/entity/uniqueAttribute/type/(?P<type>[^/]+)/labels",
             self.unique_labels_remove, True),
            ("GET", r"/api/atlas/v2/entity/bulk/uniqueAttribute/type/(?P<type>[^/]+)", self.get_bulk_unique, False),
            ("POST", r"/api/atlas/v2/search/basic", self.search_basic_post, False),
            ("GET", r"/api/atlas/v2/search/basic", self.search_basic_get, False),
            ("GET", r"/api/atlas/v2/search/dsl", self.search_dsl, False),
            ("GET", r"/api/atlas/v2/search/attribute", self.search_attribute, False),
            ("GET", r"/api/atlas/v2/lineage/uniqueAttribute/type/(?P<type>[^/]+)", self.lineage_unique, False),
            ("GET", r"/api/atlas/v2/lineage/(?P<guid>[^/]+)", self.lineage_guid, False),
            ("POST", r"/api/atlas/v2/relationship", self.create_relationship, True),
            ("GET", r"/api/atlas/v2/relationship/guid/(?P<guid>[^/]+)", self.get_relationship, False),
            ("DELETE", r"/api/atlas/v2/relationship/guid/(?P<guid>[^/]+)", self.delete_relationship, True),
        ]

    # typedefs
    def get_typedefs(self, r: Request) -> Response:
        return 200, self.registry.search({k: v[0] for k, v in r.query.items()})

    def get_typedef_headers(self, r: Request) -> Response:
        result = self.registry.search({k: v[0] for k, v in r.query.items()})
        out = [{"guid": d["guid"], "name": d["name"], "serviceType": d.get("serviceType"), "category": d["category"]}
               for lst in result.values() for d in lst]
        return 200, [{k: v for k, v in h.items() if v is not None} for h in out]

    def _types_body(self, r: Request) -> dict[str, Any]:
        if not isinstance(r.body, dict):
            raise invalid_parameters("expected AtlasTypesDef")
        return r.body

    def create_typedefs(self, r: Request) -> Response:
        return 200, self.registry.create(self._types_body(r), user=r.user)

    def update_typedefs(self, r: Request) -> Response:
        return 200, self.registry.update(self._types_body(r), user=r.user)

    def delete_typedefs(self, r: Request) -> Response:
        body = self._types_body(r)
        names = [d.get("name") for k in CATEGORY_LISTS for d in body.get(k) or []]
        self.registry.delete(names, self.store.types_in_use())
        return 204, None

    def delete_typedef_name(self, r: Request, name: str) -> Response:
        self.registry.delete([name], self.store.types_in_use())
        return 204, None

    def get_typedef_name(self, r: Request, name: str) -> Response:
        return 200, self.registry.get_by_name(name)

    def get_typedef_guid(self, r: Request, guid: str) -> Response:
        return 200, self.registry.get_by_guid(guid)

    def get_def_name(self, r: Request, kind: str, name: str) -> Response:
        if kind not in DEF_PATHS:
            raise _not_found()
        return 200, self.registry.get_by_name(name, DEF_PATHS[kind])

    def get_def_guid(self, r: Request, kind: str, guid: str) -> Response:
        if kind not in DEF_PATHS:
            raise _not_found()
        return 200, self.registry.get_by_guid(guid, DEF_PATHS[kind])

    # entities
    def post_entity(self, r: Request) -> Response:
        body = r.body if isinstance(r.body, dict) else {}
        if not isinstance(body.get("entity"), dict):
            raise invalid_parameters("no entity to create/update.")
        return 200, self.store.create_or_update([body["entity"]], body.get("referredEntities"), r.user)

    def post_bulk(self, r: Request) -> Response:
        body = r.body if isinstance(r.body, dict) else {}
        entities = body.get("entities")
        if not isinstance(entities, list) or not entities:
            raise invalid_parameters("no entities to create/update.")
        return 200, self.store.create_or_update(entities, body.get("referredEntities"), r.user)

    def get_bulk(self, r: Request) -> Response:
        guids = r.query.get("guid") or []
        if not guids:
            raise guid_not_found("")
        for g in guids:
            self.store.get_record(g)
        return 200, self.store.entities_with_ext(guids, r.flag("minExtInfo"), r.flag("ignoreRelationships"))

    def get_bulk_unique(self, r: Request, type: str) -> Response:
        """As EntityGraphRetriever.getEntitiesByUniqueAttributes: the entities found, in the order asked, those
        not found left out (Atlas catches INSTANCE_BY_UNIQUE_ATTRIBUTE_NOT_FOUND per entity), mapped with
        their owned children in referredEntities like GET /entity/bulk."""
        self._entity_type(type)
        found: list[str] = []
        i = 0
        while True:
            attrs = r.unique_attrs(f"attr_{i}:")
            if not attrs:
                break
            g = self.store.find_exact(type, attrs)
            if g is not None and g not in found:
                found.append(g)
            i += 1
        if not found:
            return 200, {"entities": [], "referredEntities": {}}
        return 200, self.store.entities_with_ext(found, r.flag("minExtInfo"), r.flag("ignoreRelationships"))

    def delete_bulk(self, r: Request) -> Response:
        guids = r.query.get("guid") or []
        if not guids:
            raise invalid_parameters("Guid(s) not specified")
        return 200, self.store.delete(guids, r.user)

    def get_entity(self, r: Request, guid: str) -> Response:
        self.store.get_record(guid)
        return 200, self.store.entity_with_ext(guid, r.flag("minExtInfo"), r.flag("ignoreRelationships"))

    def get_header(self, r: Request, guid: str) -> Response:
        self.store.get_record(guid)
        return 200, self.store.header(guid)

    def put_entity_attr(self, r: Request, guid: str) -> Response:
        name = r.q("name")
        if not name:
            raise invalid_parameters("attribute name not specified")
        return 200, self.store.update_attribute_by_guid(guid, name, r.body, r.user)

    def delete_entity(self, r: Request, guid: str) -> Response:
        if not guid:
            raise guid_not_found(guid)
        return 200, self.store.delete([guid], r.user)

    def get_audit(self, r: Request, guid: str) -> Response:
        count = int(r.q("count", "100") or 100)
        # EntityREST.getAuditEvents: newest first; sortOrder counts only with sortBy or offset (2.2+; 2.1
        # has neither and always answers newest first), and then ascending unless it says "desc"
        sorted_request = bool(r.q("sortBy")) or int(r.q("offset", "-1") or -1) > -1
        newest_first = (r.q("sortOrder") or "").lower() == "desc" if sorted_request else True
        return 200, self.store.audit_events(guid, count, newest_first, r.q("auditAction"))

    def get_unique(self, r: Request, type: str) -> Response:
        guid = self._by_unique(r, type)
        return 200, self.store.entity_with_ext(guid, r.flag("minExtInfo"), r.flag("ignoreRelationships"))

    def get_unique_header(self, r: Request, type: str) -> Response:
        return 200, self.store.header(self._by_unique(r, type))

    def put_unique(self, r: Request, type: str) -> Response:
        guid = self._by_unique(r, type)
        body = r.body if isinstance(r.body, dict) else {}
        entity = body.get("entity")
        if not isinstance(entity, dict):
            raise invalid_parameters("no entity to update.")
        entity = dict(entity)
        entity["guid"], entity["typeName"] = guid, self.store.entities[guid]["typeName"]
        return 200, self.store.create_or_update([entity], body.get("referredEntities"), r.user, partial=True)

    def delete_unique(self, r: Request, type: str) -> Response:
        self._entity_type(type)
        attrs = r.unique_attrs()
        if not attrs:
            raise unique_not_found(type, attrs)
        guid = self.store.find_exact(type, attrs)
        return 200, (self.store.delete([guid], r.user) if guid else {})

    # classifications and labels
    def get_classifications(self, r: Request, guid: str) -> Response:
        self.store.get_record(guid)
        items = self.store.classifications_of(guid)
        return 200, {"list": items, "startIndex": 0, "pageSize": len(items), "totalCount": len(items),
                     "sortType": "NONE"}

    def get_classification(self, r: Request, guid: str, name: str) -> Response:
        return 200, self.store.get_classification(guid, name)

    def add_classifications(self, r: Request, guid: str) -> Response:
        self.store.add_classifications(guid, self._body_list(r), r.user)
        return 204, None

    def update_classifications(self, r: Request, guid: str) -> Response:
        self.store.update_classifications(guid, self._body_list(r), r.user)
        return 204, None

    def delete_classification(self, r: Request, guid: str, name: str) -> Response:
        self.store.delete_classification(guid, name, r.user)
        return 204, None

    def unique_add_classifications(self, r: Request, type: str) -> Response:
        return self.add_classifications(r, self._by_unique(r, type))

    def unique_update_classifications(self, r: Request, type: str) -> Response:
        return self.update_classifications(r, self._by_unique(r, type))

    def unique_delete_classification(self, r: Request, type: str, name: str) -> Response:
        return self.delete_classification(r, self._by_unique(r, type), name)

    def bulk_classification(self, r: Request) -> Response:
        body = r.body if isinstance(r.body, dict) else {}
        c = body.get("classification")
        if not isinstance(c, dict):
            raise invalid_parameters("no classification")
        if not self.registry.is_classification(c.get("typeName")):
            raise classification_not_found(str(c.get("typeName")))
        guids = list(body.get("entityGuids") or [])
        if body.get("entityTypeName"):
            type_name = self._entity_type(body["entityTypeName"])
            for attrs in body.get("entitiesUniqueAttributes") or []:
                g = self.store.find_exact(type_name, attrs)
                if g is None:
                    raise unique_not_found(type_name, attrs)
                guids.append(g)
        if not guids:
            raise invalid_parameters("no entities to associate")
        for g in guids:
            self.store.add_classifications(g, [c], r.user)
        return 204, None

    def labels_set(self, r: Request, guid: str) -> Response:
        self.store.labels(guid, self._body_list(r), "set", r.user)
        return 204, None

    def labels_add(self, r: Request, guid: str) -> Response:
        self.store.labels(guid, self._body_list(r), "add", r.user)
        return 204, None

    def labels_remove(self, r: Request, guid: str) -> Response:
        self.store.labels(guid, self._body_list(r), "remove", r.user)
        return 204, None

    def unique_labels_set(self, r: Request, type: str) -> Response:
        return self.labels_set(r, self._by_unique(r, type))

    def unique_labels_add(self, r: Request, type: str) -> Response:
        return self.labels_add(r, self._by_unique(r, type))

    def unique_labels_remove(self, r: Request, type: str) -> Response:
        return self.labels_remove(r, self._by_unique(r, type))

    # search
    def search_basic_post(self, r: Request) -> Response:
        if not isinstance(r.body, dict):
            raise invalid_parameters("SearchParameters expected")
        return 200, self.searcher.basic(r.body)

    def search_basic_get(self, r: Request) -> Response:
        params: dict[str, Any] = {k: r.q(k) for k in ("query", "typeName", "classification", "sortBy", "sortOrder",
                                                       "limit", "offset") if r.q(k) is not None}
        params["excludeDeletedEntities"] = r.flag("excludeDeletedEntities")
        return 200, self.searcher.basic(params, validate=False)

    def search_dsl(self, r: Request) -> Response:
        return 200, self.searcher.dsl(r.q("query") or "", r.q("typeName"), r.q("classification"), r.q("limit"),
                                      r.q("offset"))

    def search_attribute(self, r: Request) -> Response:
        name, prefix = r.q("attrName"), r.q("attrValuePrefix")
        if not name and not prefix:
            raise invalid_parameters("attrName and attrValuePrefix both empty")
        params = {"typeName": r.q("typeName"), "limit": r.q("limit"), "offset": r.q("offset"),
                  "entityFilters": {"attributeName": name or "qualifiedName", "operator": "startsWith",
                                    "attributeValue": prefix}}
        return 200, self.searcher.basic(params)

    # lineage
    def _lineage_params(self, r: Request) -> tuple[str, int]:
        try:
            depth = int(r.q("depth", "3") or 3)
        except ValueError as exc:
            raise invalid_parameters("depth") from exc
        return r.q("direction", "BOTH") or "BOTH", depth

    def lineage_guid(self, r: Request, guid: str) -> Response:
        return 200, lineage(self.store, guid, *self._lineage_params(r))

    def lineage_unique(self, r: Request, type: str) -> Response:
        return 200, lineage(self.store, self._by_unique(r, type), *self._lineage_params(r))

    # relationships
    def create_relationship(self, r: Request) -> Response:
        if not isinstance(r.body, dict):
            raise invalid_parameters("relationship expected")
        return 200, self.store.create_relationship(r.body, r.user)

    def get_relationship(self, r: Request, guid: str) -> Response:
        return 200, {"relationship": self.store.relationship_json(guid), "referredEntities": {}}

    def delete_relationship(self, r: Request, guid: str) -> Response:
        self.store.delete_relationship(guid)
        return 204, None


class _NotFound(Exception):
    pass


def _not_found() -> _NotFound:
    return _NotFound()


def make_handler(core: AtlasCore, users: dict[str, str], tokens: set[str],
                 spnego: Any = None) -> type[BaseHTTPRequestHandler]:
    """Build the request handler class bound to one emulator instance."""
    compiled = [(m, re.compile("^" + p + "/?$"), fn, mut) for m, p, fn, mut in core.routes()]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # headers and body leave in two writes: without TCP_NODELAY a keep-alive client waits out its
        # 40 ms delayed ACK on every call, which real servers (Jetty, uvicorn) never make it do
        disable_nagle_algorithm = True
        server_version = "Jetty(9.4.z-SNAPSHOT)"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            return

        def _send(self, status: int, body: bytes | None, ctype: str = "application/json;charset=UTF-8") -> None:
            self.send_response(status)
            if spnego is not None and (status == 401 or self._negotiate):  # Kerberos: the SPNEGO challenge/answer
                self.send_header("WWW-Authenticate", f"Negotiate {self._negotiate}" if self._negotiate else "Negotiate")
            if body is None:  # Atlas's AuditFilter sets requestId after the body is committed: bodiless only
                self.send_header("requestId", str(uuid.uuid4()))
            if body is not None:
                self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)

        def _auth(self, path: str) -> str | None:
            if path.rstrip("/") == "/api/atlas/admin/status":
                return "anonymous"
            header = self.headers.get("Authorization") or ""
            if spnego is not None:  # atlas.authentication.method.kerberos=true: SPNEGO only
                user, self._negotiate = spnego.authenticate(header)
                return user
            if header.startswith("Basic "):
                try:
                    user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    return None
                return user if users.get(user) == pw and user else None
            if header.startswith("Bearer ") and header[7:].strip() in tokens:
                return "token-user"
            return None

        def _handle(self) -> None:
            self._negotiate = None
            split = urlsplit(self.path)
            path = unquote(split.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            user = self._auth(path)
            if user is None:
                self._send(401, UNAUTHORIZED_HTML.format(uri=path).encode(), "text/html;charset=iso-8859-1")
                return
            query = parse_qs(split.query, keep_blank_values=True)
            for values in query.values():
                for v in values:
                    if len(v) > 4096:
                        self._json(400, {"errorCode": "ATLAS-400-00-057",
                                         "errorMessage": "Length of query param exceeds the limit"})
                        return
            body: Any = None
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError:  # Jackson's parse error reaches AllExceptionMapper: plain-text 500
                    self._send(500, ERROR_TEXT.format(secrets.randbits(63)).encode(), "text/plain")
                    return
            for method, rx, fn, mutates in compiled:
                m = rx.match(path)
                if m is None or method != self.command:
                    continue
                try:
                    with core.lock:
                        status, payload = fn(Request(self.command, path, query, body, user), **m.groupdict())
                        if mutates and status < 300:
                            core.save()
                except AtlasError as err:
                    self._json(err.status, err.body())
                    return
                except _NotFound:
                    break
                except Exception:  # noqa: BLE001 - AllExceptionMapper: plain-text 500
                    self._send(500, ERROR_TEXT.format(secrets.randbits(63)).encode(), "text/plain")
                    return
                if status == 204:
                    self._send(204, None)
                else:
                    self._json(status, payload)
                return
            # Jersey 1's NotFoundException is not the javax one NotFoundExceptionMapper maps: AllExceptionMapper
            self._send(500, ERROR_TEXT.format(secrets.randbits(63)).encode(), "text/plain")

        def _json(self, status: int, payload: Any) -> None:
            self._send(status, json.dumps(payload).encode())

        do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815 - http.server dispatch names

    return Handler


class AtlasEmulator(ServedInBackground):
    """In-process Atlas v2 emulator: start() serves in a background thread, stop() shuts it down."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, state_path: str | None = None,
                 users: dict[str, str] | None = None, tokens: list[str] | None = None,
                 tls: ssl.SSLContext | None = None, spnego: Any = None) -> None:
        self.host, self.port = host, port
        self.tls = tls  # a server context: serve HTTPS (the secured-cluster tests)
        self.spnego = spnego  # an emulators.spnego.SpnegoAcceptor: Kerberos (SPNEGO) instead of basic auth
        self.core = AtlasCore(state_path)
        self.users = dict(users or {"admin": "admin"})
        self.tokens = set(tokens or [])

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def stop(self) -> None:
        super().stop()
        self.core.flush()

    def start(self) -> AtlasEmulator:
        server = ThreadingHTTPServer((self.host, self.port), make_handler(self.core, self.users, self.tokens,
                                                                         self.spnego))
        server.daemon_threads = True
        if self.tls:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._serve(server, "atlas-emulator")
        return self
