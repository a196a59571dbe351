"""A thin Apache Atlas v2 client: one method per endpoint we use, one pooled session, typed errors.

Credentials come from the environment (``ATLAS_USERNAME``/``ATLAS_PASSWORD`` or ``ATLAS_TOKEN``) or a
Prefect block handed in by the flow, never from argv, and are never logged. Atlas answers a bad password
with a servlet-container HTML page (not JSON) and no ``WWW-Authenticate`` challenge, so a 401 is mapped to
"bad credentials" whatever its body. Retries: connection errors and 5xx only (entity/bulk is an upsert).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from governance.errors import (
    AtlasAuthError,
    AtlasConflict,
    AtlasError,
    AtlasNotFound,
    AtlasUnavailable,
    ConfigError,
)
from governance.http import DeadlineExceeded, build_session, request_within

DEFAULT_URL = "http://localhost:21000"
DEFAULT_DEADLINE = 120.0
DEADLINE_ENV = "MODELGOV_ATLAS_DEADLINE"
PAGE_SIZE = 100  # Atlas's default search limit; we page past it
# guids per GET /v2/entity/bulk. Atlas sets no count limit (EntityREST.getByGuids checks each guid's length
# only); the guids are repeated query parameters, so the request line is the limit: 150 uuids make a 6.4 kB
# line, inside Atlas's 16 kB request buffer (atlas.jetty.request.buffer.size) and the 8 kB request line that
# proxies in front of Atlas commonly allow (nginx, Apache httpd). BULK_GET_QUERY_MAX bounds longer guids. 150,
# not 100: a report reads builds, train processes and datasets, three bulk levels per page of 100 searched
# rows, and must stay within 3 calls per 100 rows (issue 23).
BULK_GET_CHUNK = 150
BULK_GET_QUERY_MAX = 7000  # characters of guid=... parameters in one request line


@dataclass(frozen=True)
class MutationResult:
    """Atlas's EntityMutationResponse, reduced to what callers need."""

    guid_assignments: dict[str, str]
    created: list[dict] = field(default_factory=list)
    updated: list[dict] = field(default_factory=list)
    deleted: list[dict] = field(default_factory=list)

    @classmethod
    def from_json(cls, body: dict) -> MutationResult:
        mutated = body.get("mutatedEntities") or {}
        return cls(guid_assignments=dict(body.get("guidAssignments") or {}),
                   created=list(mutated.get("CREATE", [])),
                   updated=list(mutated.get("UPDATE", [])) + list(mutated.get("PARTIAL_UPDATE", [])),
                   deleted=list(mutated.get("DELETE", [])))


@dataclass(frozen=True)
class AtlasSettings:
    """Where Atlas is and how to authenticate. ``repr`` hides secrets."""

    url: str = DEFAULT_URL
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    kerberos: bool = False
    verify: bool | str = True
    timeout: tuple[float, float] = (5.0, 60.0)
    retries: int = 3
    deadline: float = DEFAULT_DEADLINE  # seconds for one operation, retries and backoff included

    @classmethod
    def from_env(cls, url: str | None = None) -> AtlasSettings:
        """Read ATLAS_URL, ATLAS_USERNAME, ATLAS_PASSWORD, ATLAS_TOKEN, ATLAS_AUTH=kerberos, and the CA bundle:
        ATLAS_CA_BUNDLE for Atlas alone, else the one of every client (``governance.tls``)."""
        from governance.secrets import refuse_credentials
        from governance.tls import INSECURE_ENV, session_verify

        env = os.environ
        refuse_credentials(url or env.get("ATLAS_URL"), "Atlas URL")
        if env.get("ATLAS_TLS_VERIFY", "true").strip().lower() == "false":
            raise ConfigError(f"ATLAS_TLS_VERIFY=false is no longer read: certificate verification is turned off "
                              f"only by {INSECURE_ENV}=true (logged, refused for production); better, set "
                              "ATLAS_CA_BUNDLE or MODELGOV_CA_BUNDLE to the CA that signed Atlas's certificate")
        verify: bool | str = env.get("ATLAS_CA_BUNDLE") or session_verify()
        try:
            deadline = float(env.get(DEADLINE_ENV) or DEFAULT_DEADLINE)
        except ValueError as exc:
            raise ConfigError(f"{DEADLINE_ENV}={env.get(DEADLINE_ENV)!r}: give the seconds as a number") from exc
        if deadline <= 0:
            raise ConfigError(f"{DEADLINE_ENV} must be more than 0 seconds")
        return cls(url=(url or env.get("ATLAS_URL") or DEFAULT_URL).rstrip("/"), deadline=deadline,
                   username=env.get("ATLAS_USERNAME"), password=env.get("ATLAS_PASSWORD"),
                   token=env.get("ATLAS_TOKEN"), kerberos=env.get("ATLAS_AUTH", "").lower() == "kerberos",
                   verify=verify)


class AtlasClient:
    """Atlas v2 REST API. Every call has a timeout; failures raise AtlasError subclasses with Atlas's errorCode."""

    def __init__(self, settings: AtlasSettings):
        self.settings = settings
        self.base = settings.url.rstrip("/") + "/api/atlas"
        # retries happen in request_within, under one total deadline; the session itself never retries
        self.session = build_session(retries=0, timeout=settings.timeout)
        self.session.verify = settings.verify
        self.session.headers.update({"Accept": "application/json", "Content-Type": "application/json"})
        if settings.token:
            self.session.headers["Authorization"] = f"Bearer {settings.token}"
        elif settings.kerberos:  # preflight: no ticket, an expired one or an unknown principal fails here
            from governance.kerberos import spnego_auth

            self.session.auth = spnego_auth()
        elif settings.username is not None:
            self.session.auth = (settings.username, settings.password or "")

    @property
    def ticket(self) -> Any:
        """With ATLAS_AUTH=kerberos, the ``governance.kerberos.Ticket`` in use (renewed ones included)."""
        return getattr(self.session.auth, "ticket", None)

    @classmethod
    def from_env(cls, url: str | None = None) -> AtlasClient:
        return cls(AtlasSettings.from_env(url))

    def close(self) -> None:
        self.session.close()

    # -- transport -----------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, *, expect: tuple[int, ...] = (200,), **kwargs) -> Any:
        url = f"{self.base}{path}"
        settings = self.settings
        try:
            resp = request_within(self.session, method, url, deadline=settings.deadline, retries=settings.retries,
                                  timeout=settings.timeout, **kwargs)
        except requests.exceptions.SSLError as exc:  # the message names the host and the CA setting
            raise AtlasError(f"Atlas at {settings.url}: {exc}; for Atlas alone, ATLAS_CA_BUNDLE") from exc
        except DeadlineExceeded as exc:
            raise AtlasUnavailable(
                f"Atlas at {settings.url} did not answer {method} {path}"
                f"{f' ({exc.cause.__class__.__name__})' if exc.cause else ''}: waited {exc.waited:.0f} s over "
                f"{exc.attempts} attempt(s), the deadline for one Atlas operation is {settings.deadline:g} s "
                f"({DEADLINE_ENV})", waited=exc.waited) from exc
        except requests.RequestException as exc:
            raise AtlasUnavailable(f"Atlas at {settings.url} is not reachable: {exc.__class__.__name__}") from exc
        if resp.status_code in expect:
            if resp.status_code == 204 or not resp.content:
                return None
            try:
                return resp.json()
            except ValueError as exc:
                raise AtlasError(f"Atlas {method} {path}: answered {resp.status_code} with a non-JSON body",
                                 status=resp.status_code) from exc
        raise self._error(method, path, resp)

    def _error(self, method: str, path: str, resp: requests.Response) -> AtlasError:
        code = message = None
        try:
            body = resp.json()
            if isinstance(body, dict):
                code = body.get("errorCode")
                message = body.get("errorMessage") or body.get("error")
        except ValueError:
            body = None
        status = resp.status_code
        if status == 401 and self.ticket is not None:
            from governance.kerberos import refused_message

            return AtlasAuthError(f"Atlas {refused_message(self.settings.url, self.ticket)}", status=401,
                                  error_code=code)
        if status == 401:
            return AtlasAuthError(f"Atlas at {self.settings.url} rejected the credentials (HTTP 401): check "
                                  "ATLAS_USERNAME/ATLAS_PASSWORD or ATLAS_TOKEN", status=401, error_code=code)
        detail = f"{code}: {message}" if code else (message or resp.text.strip()[:200])
        text = f"Atlas {method} {path} failed with HTTP {status}: {detail}"
        kwargs = {"status": status, "error_code": code, "error_message": message}
        if status == 403:
            return AtlasAuthError(text, **kwargs)
        if status == 404:
            return AtlasNotFound(text, **kwargs)
        if status == 409:
            return AtlasConflict(text, **kwargs)
        return AtlasError(text, **kwargs)

    # -- admin ---------------------------------------------------------------------------------------------
    def status(self) -> str:
        return str(self._request("GET", "/admin/status").get("Status"))

    def version(self) -> dict:
        return self._request("GET", "/admin/version")

    # -- types ---------------------------------------------------------------------------------------------
    def get_typedef(self, name: str) -> dict | None:
        try:
            return self._request("GET", f"/v2/types/typedef/name/{quote(name, safe='')}")
        except AtlasNotFound:
            return None

    def search_typedefs(self, **filters: str) -> dict:
        """``GET /v2/types/typedefs`` with Atlas's filters (``servicetype``, ``name``, ``type``...): many defs in
        one call instead of one call per name."""
        return self._request("GET", "/v2/types/typedefs", params=filters) or {}

    def create_typedefs(self, typedefs: dict) -> dict:
        return self._request("POST", "/v2/types/typedefs", json=typedefs)

    def update_typedefs(self, typedefs: dict) -> dict:
        return self._request("PUT", "/v2/types/typedefs", json=typedefs)

    # -- entities ------------------------------------------------------------------------------------------
    def upsert_entities(self, entities: list[dict], referred: dict[str, dict] | None = None) -> MutationResult:
        body = {"entities": entities}
        if referred:
            body["referredEntities"] = referred
        return MutationResult.from_json(self._request("POST", "/v2/entity/bulk", json=body) or {})

    def get_entity(self, guid: str) -> dict:
        return self._request("GET", f"/v2/entity/guid/{quote(guid, safe='')}")

    def get_entities(self, guids: list[str], *, min_ext_info: bool = False) -> dict:
        """``GET /v2/entity/bulk?guid=...``: several entities in one consistent read. ``min_ext_info``: the
        referred entities (a build's deployments, say) in minimal form, for callers that do not read them.
        Atlas maps each guid once per request, so with ``min_ext_info`` an entity listed after its COMPOSITION
        container (a deployment after its build) comes back minimal too, without relationshipAttributes: do not
        list both."""
        params = [("guid", g) for g in guids]
        if min_ext_info:
            params.append(("minExtInfo", "true"))
        return self._request("GET", "/v2/entity/bulk", params=params) or {}

    def get_entities_paged(self, guids: Iterable[str], *, min_ext_info: bool = False) -> list[dict]:
        """The entities of ``guids`` (each read once, any status), in as few ``GET /v2/entity/bulk`` as the
        request line allows: ``BULK_GET_CHUNK`` guids or ``BULK_GET_QUERY_MAX`` characters a call."""
        out: list[dict] = []
        for page in guid_pages(guids):
            out.extend(self.get_entities(page, min_ext_info=min_ext_info).get("entities") or [])
        return out

    def get_active_entities(self, guids: list[str]) -> list[dict]:
        """The ACTIVE entities among ``guids``, read a page at a time (``get_entities_paged``)."""
        return [e for e in self.get_entities_paged(guids) if e.get("status", "ACTIVE") == "ACTIVE"]

    def get_entity_by_unique(self, type_name: str, qualified_name: str) -> dict | None:
        try:
            return self._request("GET", f"/v2/entity/uniqueAttribute/type/{quote(type_name, safe='')}",
                                 params={"attr:qualifiedName": qualified_name})
        except AtlasNotFound:
            return None

    def get_entities_by_unique(self, type_name: str, qualified_names: Iterable[str]) -> dict:
        """``GET /v2/entity/bulk/uniqueAttribute/type/{type}?attr_0:qualifiedName=…``: the entities of those
        names that exist (Atlas leaves out a name it does not find), their owned children in
        ``referredEntities``, in as few calls as the request line allows (``BULK_GET_QUERY_MAX``). A server
        that refuses the whole page when one name is missing (HTTP 404) is asked name by name for that page."""
        out: dict = {"entities": [], "referredEntities": {}}
        path = f"/v2/entity/bulk/uniqueAttribute/type/{quote(type_name, safe='')}"
        for page in name_pages(qualified_names):
            try:
                body = self._request("GET", path, params=[(f"attr_{i}:qualifiedName", name)
                                                          for i, name in enumerate(page)]) or {}
            except AtlasNotFound:
                body = {"entities": [], "referredEntities": {}}
                for name in page:
                    found = self.get_entity_by_unique(type_name, name)
                    if found:
                        body["entities"].append(found["entity"])
                        body["referredEntities"].update(found.get("referredEntities") or {})
            out["entities"].extend(body.get("entities") or [])
            out["referredEntities"].update(body.get("referredEntities") or {})
        return out

    def partial_update_by_unique(self, type_name: str, qualified_name: str, attributes: dict) -> MutationResult:
        body = {"entity": {"typeName": type_name, "attributes": attributes}}
        result = self._request("PUT", f"/v2/entity/uniqueAttribute/type/{quote(type_name, safe='')}",
                               params={"attr:qualifiedName": qualified_name}, json=body)
        return MutationResult.from_json(result or {})

    def delete_entity(self, guid: str) -> MutationResult:
        return MutationResult.from_json(self._request("DELETE", f"/v2/entity/guid/{quote(guid, safe='')}") or {})

    def add_classifications(self, guid: str, classifications: list[dict]) -> None:
        self._request("POST", f"/v2/entity/guid/{quote(guid, safe='')}/classifications", json=classifications,
                      expect=(200, 204))

    def get_classifications(self, guid: str) -> list[dict]:
        body = self._request("GET", f"/v2/entity/guid/{quote(guid, safe='')}/classifications")
        return list(body.get("list") or [])

    def audit(self, guid: str, count: int = 100) -> list[dict]:
        return self._request("GET", f"/v2/entity/{quote(guid, safe='')}/audit", params={"count": count})

    # -- search and lineage ------------------------------------------------------------------------------
    def search_basic(self, parameters: dict, *, max_results: int | None = None) -> Iterator[dict]:
        """Yield entity headers, paging past Atlas's 100-result default until the results run out."""
        offset = 0
        yielded = 0
        while True:
            body = dict(parameters, limit=PAGE_SIZE, offset=offset)
            page = self._request("POST", "/v2/search/basic", json=body) or {}
            entities = page.get("entities") or []  # the key is absent when nothing matched
            for entity in entities:
                yield entity
                yielded += 1
                if max_results is not None and yielded >= max_results:
                    return
            if len(entities) < PAGE_SIZE:
                return
            offset += PAGE_SIZE

    def search_dsl(self, query: str, limit: int = PAGE_SIZE, offset: int = 0) -> dict:
        return self._request("GET", "/v2/search/dsl", params={"query": query, "limit": limit, "offset": offset})

    def lineage(self, guid: str, direction: str = "BOTH", depth: int = 3) -> dict:
        return self._request("GET", f"/v2/lineage/{quote(guid, safe='')}",
                             params={"direction": direction, "depth": depth})

    def lineage_by_unique(self, type_name: str, qualified_name: str, direction: str = "BOTH",
                          depth: int = 3) -> dict:
        return self._request("GET", f"/v2/lineage/uniqueAttribute/type/{quote(type_name, safe='')}",
                             params={"attr:qualifiedName": qualified_name, "direction": direction, "depth": depth})


def guid_pages(guids: Iterable[str]) -> Iterator[list[str]]:
    """``guids`` without repeats, cut into pages for ``GET /v2/entity/bulk`` (count and request-line length)."""
    page: list[str] = []
    length = 0
    for guid in dict.fromkeys(guids):
        cost = len("&guid=") + len(quote(guid, safe=""))
        if page and (len(page) >= BULK_GET_CHUNK or length + cost > BULK_GET_QUERY_MAX):
            yield page
            page, length = [], 0
        page.append(guid)
        length += cost
    if page:
        yield page


def name_pages(qualified_names: Iterable[str]) -> Iterator[list[str]]:
    """``qualified_names`` without repeats, cut into pages of ``attr_N:qualifiedName=`` parameters that fit
    the request line (``BULK_GET_QUERY_MAX`` characters, ``BULK_GET_CHUNK`` names)."""
    page: list[str] = []
    length = 0
    for name in dict.fromkeys(qualified_names):
        cost = len(f"&attr_{len(page)}:qualifiedName=") + len(quote(name, safe=""))
        if page and (len(page) >= BULK_GET_CHUNK or length + cost > BULK_GET_QUERY_MAX):
            yield page
            page, length = [], 0
            cost = len("&attr_0:qualifiedName=") + len(quote(name, safe=""))
        page.append(name)
        length += cost
    if page:
        yield page


def related_guids(entity: dict, relationship: str) -> list[str]:
    """The guids of an entity's active relationship ends named ``relationship`` (one or a list)."""
    related = (entity.get("relationshipAttributes") or {}).get(relationship) or []
    if isinstance(related, dict):
        related = [related]
    return [r["guid"] for r in related if isinstance(r, dict) and r.get("guid")
            and r.get("relationshipStatus", "ACTIVE") == "ACTIVE" and r.get("entityStatus", "ACTIVE") == "ACTIVE"]
