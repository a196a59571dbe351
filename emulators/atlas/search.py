"""Basic search (SearchParameters + FilterCriteria) and a simple DSL subset, with Atlas's validation codes."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import AtlasError, bad_request
from .store import EntityStore
from .typesystem import parse_date

DEFAULT_LIMIT, MAX_LIMIT = 100, 10000
_OPS = {
    "LT": ["<", "lt"], "GT": [">", "gt"], "LTE": ["<=", "lte"], "GTE": [">=", "gte"], "EQ": ["=", "eq"],
    "NEQ": ["!=", "neq"], "IN": ["in", "IN"], "LIKE": ["like", "LIKE"],
    "STARTS_WITH": ["startsWith", "STARTSWITH", "begins_with", "BEGINS_WITH"],
    "ENDS_WITH": ["endsWith", "ENDSWITH", "ends_with", "ENDS_WITH"],
    "CONTAINS": ["contains", "CONTAINS"], "NOT_CONTAINS": ["not_contains", "NOT_CONTAINS"],
    "CONTAINS_ANY": ["containsAny", "CONTAINSANY", "contains_any", "CONTAINS_ANY"],
    "CONTAINS_ALL": ["containsAll", "CONTAINSALL", "contains_all", "CONTAINS_ALL"],
    "IS_NULL": ["isNull", "ISNULL", "is_null", "IS_NULL"],
    "NOT_NULL": ["notNull", "NOTNULL", "not_null", "NOT_NULL"],
    "TIME_RANGE": ["timerange", "TIMERANGE", "time_range", "TIME_RANGE"],
    "NOT_EMPTY": ["notEmpty", "NOTEMPTY", "not_empty", "NOT_EMPTY"],
}
TOKENS = {tok: op for op, toks in _OPS.items() for tok in toks}
SYMBOL = {op: toks[0] for op, toks in _OPS.items()}
SYSTEM_ATTRS = {
    "__guid": "string", "__typeName": "string", "__state": "string", "__createdBy": "string",
    "__modifiedBy": "string", "__timestamp": "long", "__modificationTimestamp": "long", "__labels": "string",
    "__customAttributes": "string", "__classificationNames": "string", "__propagatedClassificationNames": "string",
    "__isIncomplete": "boolean", "__historicalGuids": "string", "__pendingTasks": "string",
    "__entityStatus": "string", "__traitNames": "string", "__propagatedTraitNames": "string",
}
SPECIAL_CLASSIFICATIONS = {"*", "_CLASSIFIED", "_NOT_CLASSIFIED", "_ALL_CLASSIFICATION_TYPES"}


def normalize_paging(limit: Any, offset: Any) -> tuple[int, int]:
    """QueryParams.getNormalizedParams: limit <=0 or > max falls back to the default; offset >= 0."""
    try:
        lim = int(limit) if limit is not None else DEFAULT_LIMIT
    except (TypeError, ValueError):
        lim = DEFAULT_LIMIT
    if lim <= 0 or lim > MAX_LIMIT:
        lim = DEFAULT_LIMIT
    try:
        off = max(int(offset or 0), 0)
    except (TypeError, ValueError):
        off = 0
    return lim, off


def _nonempty(f: Any) -> bool:
    return isinstance(f, dict) and bool(f)


def _validate_criteria(c: dict[str, Any]) -> None:
    """DiscoveryREST.validateNestedCriteria: -103 operator, -104 name, -105 value, 500 missing condition."""
    if not c:
        return
    crit = c.get("criterion")
    if crit:
        if not c.get("condition"):
            raise AtlasError(500, "ATLAS-500-00-001",
                             "Condition (AND/OR) must be specified when using multiple filters.")
        for sub in crit:
            _validate_criteria(sub or {})
        return
    op = TOKENS.get(c.get("operator")) if isinstance(c.get("operator"), str) else None
    if op is None:
        raise AtlasError(400, "ATLAS-400-00-103", "Filter operator is invalid/not specified")
    if not str(c.get("attributeName") or "").strip():
        raise AtlasError(400, "ATLAS-400-00-104", "Filter attribute name is empty/not specified")
    if op not in ("IS_NULL", "NOT_NULL") and not str(c.get("attributeValue") or "").strip():
        raise AtlasError(400, "ATLAS-400-00-105", "Filter attribute value is empty/not specified")


def validate_basic(p: dict[str, Any]) -> None:
    """Checks DiscoveryREST runs for POST /search/basic, in Atlas's order."""
    if (p.get("limit") is not None and int(p["limit"]) < 0) or (p.get("offset") is not None and int(p["offset"]) < 0):
        raise bad_request("Limit/offset should be non-negative")
    if _nonempty(p.get("entityFilters")) and not p.get("typeName"):
        raise bad_request("EntityFilters specified without Type name")
    if _nonempty(p.get("tagFilters")) and not p.get("classification"):
        raise bad_request("TagFilters specified without tag name")
    if not any(p.get(k) for k in ("typeName", "classification", "query", "termName")):
        raise AtlasError(400, "ATLAS-400-00-047",
                         "No search parameter was found. One of the following MUST be specified in the request; "
                         "typeName, classification, termName or query")
    for key in ("entityFilters", "tagFilters"):
        if _nonempty(p.get(key)):
            _validate_criteria(p[key])


class Searcher:
    """Evaluates searches against an EntityStore snapshot (callers hold the emulator lock)."""

    def __init__(self, store: EntityStore) -> None:
        self.store = store
        self.reg = store.reg

    # ----- basic ---------------------------------------------------------------------------------
    def basic(self, params: dict[str, Any], validate: bool = True) -> dict[str, Any]:
        p = copy.deepcopy(params)
        if validate:
            validate_basic(p)
        limit, offset = normalize_paging(p.get("limit"), p.get("offset"))
        types = self._types(p.get("typeName"), p.get("includeSubTypes", True) is not False)
        classes = self._classifications(p.get("classification"), p.get("includeSubClassifications", True) is not False)
        ef = p.get("entityFilters") if _nonempty(p.get("entityFilters")) else None
        tf = p.get("tagFilters") if _nonempty(p.get("tagFilters")) else None
        if ef:
            for tname in types or []:
                self._check_attrs(ef, tname, entity=True)
        if tf and classes and p["classification"] not in SPECIAL_CLASSIFICATIONS:
            self._check_attrs(tf, p["classification"], entity=False)
        query = (p.get("query") or "").strip()
        hits = []
        for guid, rec in self.store.entities.items():
            if types is not None and rec["typeName"] not in types:
                continue
            if types is None and (rec["typeName"].startswith("__")):
                continue
            if p.get("excludeDeletedEntities") and rec["status"] != "ACTIVE":
                continue
            if not self._class_match(guid, p.get("classification"), classes, tf):
                continue
            if ef and not self._eval(ef, lambda name, r=rec, g=guid: self._entity_value(g, r, name)):
                continue
            if query and not self._fulltext(rec, query):
                continue
            hits.append(guid)
        hits.sort(key=lambda g: (self.store.entities[g]["createTime"], g))
        if p.get("sortBy"):
            key = p["sortBy"]
            desc = str(p.get("sortOrder") or "ASCENDING").upper().startswith("DESC")
            hits.sort(key=lambda g: _sort_key(self._entity_value(g, self.store.entities[g], key)), reverse=desc)
        page = hits[offset: offset + limit]
        p["limit"], p["offset"] = limit, offset
        out: dict[str, Any] = {"queryType": "BASIC", "searchParameters": p}
        if page:
            extra = [a for a in (p.get("attributes") or []) if a]
            out["entities"] = [self.store.header(g, extra) for g in page]
        out["approximateCount"] = len(hits)
        return out

    def _types(self, type_name: str | None, include_sub: bool) -> set[str] | None:
        if not type_name:
            return None
        out: set[str] = set()
        for t in [x.strip() for x in str(type_name).split(",") if x.strip()]:
            if t == "_ALL_ENTITY_TYPES":
                return {n for n, d in self.reg.defs.items() if d["category"] == "ENTITY"}
            if not self.reg.is_entity(t):
                raise AtlasError(400, "ATLAS-400-00-00A", f"{t}: Unknown/invalid typename")
            out |= self.reg.with_subtypes(t) if include_sub else {t}
        return out

    def _classifications(self, name: str | None, include_sub: bool) -> set[str] | None:
        if not name or name in SPECIAL_CLASSIFICATIONS:
            return None
        if not self.reg.is_classification(name):
            raise AtlasError(400, "ATLAS-400-00-046", f"{name}: Unknown/invalid classification")
        return self.reg.with_subtypes(name) if include_sub else {name}

    def _class_match(self, guid: str, name: str | None, classes: set[str] | None, tf: Any) -> bool:
        if not name:
            return True
        present = self.store.classifications_of(guid)
        if name == "_NOT_CLASSIFIED":
            return not present
        candidates = present if classes is None else [c for c in present if c["typeName"] in classes]
        if not candidates:
            return False
        if tf is None:
            return True
        return any(self._eval(tf, lambda n, c=c: (c.get("attributes") or {}).get(n)) for c in candidates)

    def _check_attrs(self, crit: dict[str, Any], type_name: str, entity: bool) -> None:
        if crit.get("criterion"):
            for sub in crit["criterion"]:
                self._check_attrs(sub or {}, type_name, entity)
            return
        name = crit.get("attributeName")
        if not name or name in SYSTEM_ATTRS:
            return
        info = self.reg.info.get(type_name)
        if info is None:
            return
        if name not in info.attributes and not (entity and name in info.rel_attrs):
            raise AtlasError(400, "ATLAS-400-00-023", f"Attribute {name} not found for type {type_name}")

    def _entity_value(self, guid: str, rec: dict[str, Any], name: str) -> Any:
        if name in SYSTEM_ATTRS:
            direct = [c["typeName"] for c in rec.get("classifications", [])]
            return {
                "__guid": guid, "__typeName": rec["typeName"], "__state": rec["status"],
                "__entityStatus": rec["status"], "__createdBy": rec["createdBy"], "__modifiedBy": rec["updatedBy"],
                "__timestamp": rec["createTime"], "__modificationTimestamp": rec["updateTime"],
                "__labels": rec.get("labels") or None, "__customAttributes": json.dumps(rec.get("customAttributes"))
                if rec.get("customAttributes") else None,
                "__classificationNames": direct or None, "__traitNames": direct or None,
                "__propagatedClassificationNames": [c["typeName"] for c in self.store.propagated(guid)] or None,
                "__propagatedTraitNames": [c["typeName"] for c in self.store.propagated(guid)] or None,
                "__isIncomplete": False, "__historicalGuids": None, "__pendingTasks": None,
            }[name]
        return rec["attributes"].get(name)

    def _attr_type(self, name: str) -> str:
        return SYSTEM_ATTRS.get(name, "")

    def _eval(self, crit: dict[str, Any], getter: Any) -> bool:
        if crit.get("criterion"):
            results = (self._eval(sub or {}, getter) for sub in crit["criterion"] if sub)
            return all(results) if str(crit.get("condition")).upper() == "AND" else any(results)
        name = crit.get("attributeName")
        if not name:
            return True
        return compare(getter(name), TOKENS[crit["operator"]], str(crit.get("attributeValue") or ""))

    def _fulltext(self, rec: dict[str, Any], query: str) -> bool:
        words = [w.strip("*").lower() for w in query.split() if w.strip("*")]
        texts = [str(v).lower() for v in rec["attributes"].values() if isinstance(v, str | int | float)]
        texts.append(rec["typeName"].lower())
        return all(any(w in t for t in texts) for w in words)

    # ----- DSL -----------------------------------------------------------------------------------
    def dsl(self, query: str, type_name: str | None, classification: str | None, limit: Any, offset: Any
            ) -> dict[str, Any]:
        q = (query or "").strip()
        if type_name:
            q = f"{type_name} {q}".strip()
        if classification and not (query or "").strip():
            q = f"{q} isa {classification}".strip()
        if len(q) > 4096:
            raise AtlasError(400, "ATLAS-400-00-058", "Invalid query length, update atlas.graph.dsl-max-query-str-length "
                                                        "to change the limit")
        parsed = parse_dsl(q)
        lim, off = normalize_paging(parsed.get("limit", limit), parsed.get("offset", offset))
        tname = parsed["type"]
        if not self.reg.is_entity(tname) and not self.reg.is_classification(tname):
            raise AtlasError(400, "ATLAS-400-00-05B", f"DSL Semantic Error - Type {tname} not found")
        hits = []
        for guid, rec in self.store.entities.items():
            if rec["status"] != "ACTIVE":
                continue
            if self.reg.is_entity(tname):
                if rec["typeName"] not in self.reg.with_subtypes(tname):
                    continue
            elif tname not in self.store.classification_names(guid):
                continue
            isa = parsed.get("isa")
            if isa and not any(isa == c or self.reg.is_a(c, isa) for c in self.store.classification_names(guid)):
                continue
            if parsed.get("where") and not self._dsl_eval(parsed["where"], guid, rec, tname):
                continue
            hits.append(guid)
        hits.sort(key=lambda g: (self.store.entities[g]["createTime"], g))
        out: dict[str, Any] = {"queryType": "DSL", "queryText": query}
        page = hits[off: off + lim]
        if page:
            out["entities"] = [self.store.header(g) for g in page]
        out["approximateCount"] = -1
        return out

    def _dsl_eval(self, node: Any, guid: str, rec: dict[str, Any], tname: str) -> bool:
        if node[0] in ("and", "or"):
            vals = [self._dsl_eval(n, guid, rec, tname) for n in node[1:]]
            return all(vals) if node[0] == "and" else any(vals)
        _, attr, op, value = node
        info = self.reg.info.get(rec["typeName"])
        if attr not in SYSTEM_ATTRS and info is not None and attr not in info.attributes:
            raise AtlasError(400, "ATLAS-400-00-05D", f"DSL Semantic Error - Attribute {attr} not found for type "
                                                       f"{tname}")
        op_map = {"=": "EQ", "!=": "NEQ", "<": "LT", ">": "GT", "<=": "LTE", ">=": "GTE", "like": "LIKE"}
        return compare(self._entity_value(guid, rec, attr), op_map[op], value)


def _sort_key(v: Any) -> tuple[int, Any]:
    if v is None:
        return (0, "")
    if isinstance(v, bool | int | float):
        return (1, v)
    return (2, str(v))


def _coerce(actual: Any, text: str) -> Any:
    """Convert a filter's string value to the type of the stored value."""
    if isinstance(actual, bool):
        return text.strip().lower() == "true"
    if isinstance(actual, int | float):
        try:
            return float(text)
        except ValueError:
            d = parse_date(text)
            return float(d) if d is not None else None
    return text


def _time_range(text: str) -> tuple[int, int] | None:
    now = datetime.now(UTC)
    start_of_day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    ms = lambda d: int(d.timestamp() * 1000)  # noqa: E731
    named = {
        "TODAY": (start_of_day, now), "YESTERDAY": (start_of_day - timedelta(days=1), start_of_day),
        "LAST_7_DAYS": (now - timedelta(days=7), now), "LAST_30_DAYS": (now - timedelta(days=30), now),
        "THIS_MONTH": (start_of_day.replace(day=1), now), "THIS_YEAR": (start_of_day.replace(month=1, day=1), now),
        "LAST_3_MONTHS": (now - timedelta(days=91), now), "LAST_6_MONTHS": (now - timedelta(days=182), now),
        "LAST_MONTH": (now - timedelta(days=31), start_of_day.replace(day=1)),
        "LAST_YEAR": (start_of_day.replace(year=now.year - 1, month=1, day=1), start_of_day.replace(month=1, day=1)),
        "THIS_QUARTER": (start_of_day.replace(month=(now.month - 1) // 3 * 3 + 1, day=1), now),
        "LAST_QUARTER": (now - timedelta(days=92), now),
    }
    if text in named:
        a, b = named[text]
        return ms(a), ms(b)
    parts = text.split(",")
    if len(parts) == 2:
        try:
            return int(parts[0]), int(parts[1])
        except ValueError:
            return None
    return None


def compare(actual: Any, op: str, text: str) -> bool:
    """Apply one Atlas filter operator to a stored value (lists match if any element matches)."""
    if op == "IS_NULL":
        return actual is None or actual == "" or actual == []
    if op == "NOT_NULL":
        return not (actual is None or actual == "" or actual == [])
    if op == "NOT_EMPTY":
        return bool(actual)
    if isinstance(actual, list):
        if op == "NEQ":
            return all(compare(a, "EQ", text) is False for a in actual)
        if op == "NOT_CONTAINS":
            return all(compare(a, "NOT_CONTAINS", text) for a in actual)
        if op == "CONTAINS_ALL":
            return all(v.strip() in [str(a) for a in actual] for v in text.split(","))
        if op == "CONTAINS_ANY":
            return any(v.strip() in [str(a) for a in actual] for v in text.split(","))
        return any(compare(a, op, text) for a in actual)
    if actual is None:
        return op in ("NEQ", "NOT_CONTAINS")
    if isinstance(actual, dict):
        actual = json.dumps(actual)
    if op == "TIME_RANGE":
        rng = _time_range(text)
        return rng is not None and isinstance(actual, int | float) and rng[0] <= actual <= rng[1]
    if op == "IN":
        return any(str(actual) == v.strip() or _coerce(actual, v.strip()) == actual for v in text.split(","))
    if op in ("EQ", "NEQ", "LT", "GT", "LTE", "GTE"):
        want = _coerce(actual, text)
        got: Any = float(actual) if isinstance(actual, int | float) and not isinstance(actual, bool) else actual
        if want is None:
            return op == "NEQ"
        try:
            result = {"EQ": got == want, "NEQ": got != want, "LT": got < want, "GT": got > want,
                      "LTE": got <= want, "GTE": got >= want}[op]
        except TypeError:
            return False
        return result
    s = str(actual)
    if op == "LIKE":
        pattern = "^" + ".*".join(re.escape(part).replace(r"\?", ".") for part in text.split("*")) + "$"
        return re.match(pattern, s, re.IGNORECASE | re.DOTALL) is not None
    if op == "STARTS_WITH":
        return s.startswith(text)
    if op == "ENDS_WITH":
        return s.endswith(text)
    if op in ("CONTAINS", "CONTAINS_ANY", "CONTAINS_ALL"):
        return text in s
    if op == "NOT_CONTAINS":
        return text not in s
    return False


_DSL_TOKEN = re.compile(
    r"\s*(?:(?P<str>\"[^\"]*\"|'[^']*'|`[^`]*`)|(?P<op><=|>=|!=|=|<|>)|(?P<num>-?\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][\w.]*))"
)


def _dsl_error(query: str, reason: str) -> AtlasError:
    return AtlasError(400, "ATLAS-400-00-059", f"Invalid DSL query: {query} | Reason: {reason}. Please refer to Atlas "
                                               "DSL grammar for more information")


def parse_dsl(query: str) -> dict[str, Any]:
    """Parse `[from] TYPE [isa C] [where A OP V (and|or A OP V)*] [limit N] [offset M]`."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(query):
        if query[pos:].strip() == "":
            break
        m = _DSL_TOKEN.match(query, pos)
        if not m or m.end() == pos:
            raise _dsl_error(query, f"unexpected character at {pos}")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    i = 0

    def peek(lower: bool = True) -> str | None:
        if i < len(tokens):
            return tokens[i][1].lower() if lower and tokens[i][0] == "word" else tokens[i][1]
        return None

    if peek() == "from":
        i += 1
    if i >= len(tokens) or tokens[i][0] != "word":
        raise _dsl_error(query, "missing type name")
    out: dict[str, Any] = {"type": tokens[i][1]}
    i += 1
    if peek() in ("isa", "is"):
        i += 1
        if i >= len(tokens):
            raise _dsl_error(query, "missing classification")
        out["isa"] = tokens[i][1]
        i += 1
    if peek() == "where":
        i += 1
        or_terms: list[Any] = []
        and_terms: list[Any] = []
        while True:
            if i + 2 >= len(tokens):
                raise _dsl_error(query, "incomplete condition")
            attr_kind, attr = tokens[i]
            op_kind, op = tokens[i + 1]
            val_kind, val = tokens[i + 2]
            if attr_kind != "word" or not (op_kind == "op" or op.lower() == "like") or val_kind == "op":
                raise _dsl_error(query, "unsupported condition")
            if "." in attr:
                raise _dsl_error(query, "attribute paths are not supported by the emulator")
            if val_kind == "str":
                val = val[1:-1]
            and_terms.append(("cmp", attr, op.lower() if op_kind == "word" else op, val))
            i += 3
            nxt = peek()
            if nxt == "and":
                i += 1
                continue
            or_terms.append(("and", *and_terms))
            and_terms = []
            if nxt == "or":
                i += 1
                continue
            break
        out["where"] = ("or", *or_terms)
    while peek() in ("limit", "offset"):
        kw = peek()
        if i + 1 >= len(tokens) or tokens[i + 1][0] != "num":
            raise _dsl_error(query, f"{kw} needs a number")
        out[kw] = int(tokens[i + 1][1])
        i += 2
    if i < len(tokens):
        raise _dsl_error(query, f"unsupported syntax near '{tokens[i][1]}'")
    return out

