"""Atlas error model: every failure is an AtlasError carrying Atlas's HTTP status, errorCode and message."""

from __future__ import annotations

from typing import Any


class AtlasError(Exception):
    """Mirrors AtlasBaseException: serialised as {"errorCode","errorMessage"} with the EC HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"errorCode": self.code, "errorMessage": self.message}


def java_str(value: Any) -> str:
    """Render a value roughly like Java's toString, which Atlas uses inside error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={java_str(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(java_str(v) for v in value) + "]"
    return str(value)


def type_not_found(name: str) -> AtlasError:
    return AtlasError(404, "ATLAS-404-00-001", f"Given typename {name} was invalid")


def type_guid_not_found(guid: str) -> AtlasError:
    return AtlasError(404, "ATLAS-404-00-002", f"Given type guid {guid} was invalid")


def bad_request(message: str) -> AtlasError:
    return AtlasError(400, "ATLAS-400-00-029", message)


def entity_type_missing(name: str, category: str = "ENTITY") -> AtlasError:
    return AtlasError(400, "ATLAS-400-00-014", f"Type {category} with name {name} does not exist")


def guid_not_found(guid: str) -> AtlasError:
    return AtlasError(404, "ATLAS-404-00-005", f"Given instance guid {guid} is invalid/not found")


def invalid_params(messages: list[str]) -> AtlasError:
    first = messages[0] if messages else ""
    return AtlasError(404, "ATLAS-404-00-007", f"Invalid instance creation/updation parameters passed : {first}")


def referenced_not_found(ref: str) -> AtlasError:
    return AtlasError(404, "ATLAS-404-00-00A", f"Referenced entity {ref} is not found")


def unique_not_found(type_name: str, attrs: dict[str, Any]) -> AtlasError:
    return AtlasError(
        404, "ATLAS-404-00-009", f"Instance {type_name} with unique attribute {java_str(attrs)} does not exist"
    )


def not_unique_attribute(type_name: str, attr: str) -> AtlasError:
    return AtlasError(400, "ATLAS-400-00-013", f"Type {type_name} with unique attribute {attr} does not exist")


def classification_not_found(name: str) -> AtlasError:
    return AtlasError(404, "ATLAS-404-00-008", f"Given classification {name} was invalid")


def invalid_parameters(message: str) -> AtlasError:
    return AtlasError(400, "ATLAS-400-00-01A", f"invalid parameters: {message}")
