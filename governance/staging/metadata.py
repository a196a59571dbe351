"""ModelMetadata: the model owner's ``metadata.txt`` turned into a typed, validated value."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from governance.errors import Problem
from governance.staging.properties import PropertiesSyntaxError, Property, parse_properties
from governance.staging.risk import RISK_KEYS, RiskProfile, check_risk_keys

REQUIRED_KEYS = ("model.name", "model.version", "model.type", "model.owner", "model.owner.lob", "model.description")
KNOWN_OPTIONAL_KEYS = ("model.microservice.endpoint", "model.framework", "model.training.data")
NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$")  # the slug: paths, endpoints, qualifiedNames
MAX_NAME_LENGTH = 128
VERSION_PATTERN = re.compile(r"^(0|[1-9][0-9]{0,2})(\.(0|[1-9][0-9]{0,2})){0,2}$", re.ASCII)  # ASCII digits only: "1٠" is not 10
DATASET_URI_PATTERN = re.compile(r"^(hdfs|s3|s3a|file|https?|gs|abfss?|iceberg|mlflow-dataset)://\S+$")


def is_repo_relative(entry: str) -> bool:
    """A training-data entry naming a file shipped in the staged repo itself (e.g. ``data/train.csv``)."""
    parts = entry.split("/")
    return "://" not in entry and not entry.startswith("/") and ".." not in parts and all(parts)


@dataclass(frozen=True)
class ModelMetadata:
    """What the model owner declares about the model. Every later step reads it from here."""

    name: str  # the stable slug of the name: registry paths, endpoints, Atlas qualifiedNames
    version: str
    type: str
    owner: str
    owner_lob: str
    description: str
    endpoint: str | None = None
    framework: str | None = None
    training_data: tuple[str, ...] = ()
    extra: Mapping[str, str] = field(default_factory=dict)
    display_name: str = ""  # model.name as the owner wrote it (capitals, spaces), for people

    def __post_init__(self) -> None:
        if not self.display_name:
            object.__setattr__(self, "display_name", self.name)

    @property
    def version_number(self) -> int:
        """The version as one comparable integer (major*10^6 + minor*10^3 + patch).

        MLServer orders versions as integers and Atlas's ``ml_model_build.version`` is an int, so the
        dotted version the owner writes ("1.2") is mapped onto an order-preserving integer (1002000).
        """
        parts = [int(p) for p in self.version.split(".")] + [0, 0]
        return parts[0] * 1_000_000 + parts[1] * 1_000 + parts[2]

    @property
    def sensitive_data_category(self) -> str | None:
        """``model.training.data.sensitive`` (e.g. "pii"): marks the training data, and by propagation every
        build and deployment made from it, with the modelgov_sensitive_data classification in Atlas."""
        return self.extra.get("model.training.data.sensitive") or None

    @property
    def risk(self) -> RiskProfile:
        """Risk tier, intended use, limitations and validation (``governance.staging.risk``), normalised."""
        return RiskProfile.of(self.extra)

    def to_dict(self) -> dict:
        return {
            "name": self.name, "version": self.version, "type": self.type, "owner": self.owner,
            "owner_lob": self.owner_lob, "description": self.description, "endpoint": self.endpoint,
            "framework": self.framework, "training_data": list(self.training_data), "extra": dict(self.extra),
            "display_name": self.display_name,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> ModelMetadata:
        """The inverse of ``to_dict`` (a registry manifest stores it, so a version describes itself)."""
        return cls(name=data["name"], version=data["version"], type=data["type"], owner=data["owner"],
                   owner_lob=data["owner_lob"], description=data["description"], endpoint=data.get("endpoint"),
                   framework=data.get("framework"), training_data=tuple(data.get("training_data") or ()),
                   extra=dict(data.get("extra") or {}), display_name=data.get("display_name") or "")


def parse_metadata(text: str, filename: str) -> tuple[ModelMetadata | None, list[Problem]]:
    """Parse and check metadata text; return the value (when valid) and every problem found."""
    problems: list[Problem] = []
    try:
        entries = parse_properties(text)
    except PropertiesSyntaxError as exc:
        return None, [Problem(filename, str(exc), exc.line)]

    props: dict[str, Property] = {}
    for entry in entries:
        if entry.key in props:
            problems.append(Problem(filename, f"{entry.key} is set twice (first on line {props[entry.key].line})",
                                    entry.line))
        props[entry.key] = entry

    for key in REQUIRED_KEYS:
        if key not in props:
            problems.append(Problem(filename, f"{key} is missing"))
        elif not props[key].value.strip():
            problems.append(Problem(filename, f"{key} is empty", props[key].line))

    def value(key: str) -> str:
        return props[key].value.strip() if key in props else ""

    written = value("model.name")
    name = slugify(written)
    if written and (len(written) > MAX_NAME_LENGTH or any(ord(c) < 32 or c in "/\\\x7f" for c in written)
                    or not NAME_PATTERN.match(name)):
        problems.append(Problem(filename, f"model.name {written!r} must be at most {MAX_NAME_LENGTH} characters "
                                          "without '/', '\\' or control characters, with letters or digits to "
                                          "derive its identifier from", props["model.name"].line))
    version = value("model.version")
    if version and not VERSION_PATTERN.match(version):
        problems.append(Problem(filename, f"model.version {version!r} must be numeric like 3, 1.2 or 1.2.0 "
                                          "(each part 0-999)", props["model.version"].line))
    training: tuple[str, ...] = ()
    if "model.training.data" in props:
        uris = [u.strip() for u in props["model.training.data"].value.split(",") if u.strip()]
        for uri in uris:
            if not (DATASET_URI_PATTERN.match(uri) or is_repo_relative(uri)):
                problems.append(Problem(filename, f"model.training.data entry {uri!r} is neither a dataset URI "
                                                  "(hdfs://, s3://, file://, iceberg://, https://, ...) nor a path "
                                                  "inside the staged repo (data/...)", props["model.training.data"].line))
        training = tuple(uris)
    problems.extend(check_risk_keys({k: (props[k].value, props[k].line) for k in RISK_KEYS if k in props},
                                    filename))
    for key, entry in props.items():
        if not key.startswith("model."):
            problems.append(Problem(filename, f"unknown key {key!r} (metadata keys start with 'model.')", entry.line))

    if problems:
        return None, problems
    extra = {k: p.value for k, p in props.items()
             if k not in REQUIRED_KEYS and k not in KNOWN_OPTIONAL_KEYS}
    return ModelMetadata(
        name=name, version=version, type=value("model.type"), owner=value("model.owner"),
        owner_lob=value("model.owner.lob"), description=value("model.description"),
        endpoint=value("model.microservice.endpoint") or None, framework=value("model.framework") or None,
        training_data=training, extra=extra, display_name=written,
    ), []


def slugify(name: str) -> str:
    """The stable identifier of a model name as people write it: "Rental Pricing v2" -> "rental-pricing-v2".

    ASCII-folded, lowercase, runs of anything but letters, digits, '.', '_' and '-' become one '-', trimmed
    to letters or digits at both ends, at most 64 characters; the same name always gives the same slug.
    """
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9._-]+", "-", folded)
    slug = re.sub(r"-{2,}", "-", slug)[:64]
    return re.sub(r"^[^a-z0-9]+|[^a-z0-9]+$", "", slug)
