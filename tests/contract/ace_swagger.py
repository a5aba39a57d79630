"""The platform's published ACE API contract (``../shared/ace-api/swagger.json``) as a
validator, and one concrete request for every GET operation it declares.

The schemas are made strict the way Flask-RESTX marshals: every declared field is
present (unless an ``X-Fields`` mask chose fewer), any field may be ``null``, nothing
undeclared appears, and ``date-time`` strings parse as ISO 8601.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import jsonschema
import pytest

from tests.conftest import IN_CI

SWAGGER = Path(__file__).resolve().parents[2].parent / "shared" / "ace-api" / "swagger.json"
DAY = {"start_time": "2025-10-01T00:00:00", "end_time": "2025-10-01T02:00:00"}


def load_swagger() -> dict[str, Any]:
    """The Swagger document, its duplicated operationId renamed; skip (fail in CI) if absent."""
    if not SWAGGER.is_file():
        message = f"the ACE API contract is not at {SWAGGER} (../shared/ace-api/swagger.json)"
        if IN_CI:
            pytest.fail(f"{message}; CI must have it")
        pytest.skip(message)
    return _loaded()


@cache
def _loaded() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SWAGGER.read_text())
    seen: set[str] = set()
    for item in doc["paths"].values():
        for method, op in item.items():
            if not isinstance(op, dict) or "operationId" not in op:
                continue
            if op["operationId"] in seen:
                # the platform publishes get_point_collection twice; validators refuse that
                op["operationId"] = f"{op['operationId']}_{method}_{len(seen)}"
            seen.add(op["operationId"])
    return doc


def _definition_name(ref: str) -> str:
    return unquote(ref.rsplit("/", 1)[-1])


def _strict(schema: dict[str, Any], defs: dict[str, Any], *, required: bool) -> dict[str, Any]:
    """A JSON Schema (draft 4) of a Swagger schema, strict as Flask-RESTX output."""
    if "$ref" in schema:
        return {"$ref": "#/definitions/" + quote(_definition_name(schema["$ref"]))}
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            target = defs[_definition_name(part["$ref"])] if "$ref" in part else part
            flat = _flatten(target, defs)
            merged.update(flat.get("properties", {}))
        return _object({"properties": merged}, defs, required=required)
    if "properties" in schema or schema.get("type") == "object":
        return _object(schema, defs, required=required)
    out = {k: v for k, v in schema.items() if k in ("type", "format", "enum")}
    if "items" in schema:
        out["items"] = _strict(schema["items"], defs, required=required)
    if "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def _flatten(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "allOf" not in schema:
        return schema
    props: dict[str, Any] = {}
    for part in schema["allOf"]:
        target = defs[_definition_name(part["$ref"])] if "$ref" in part else part
        props.update(_flatten(target, defs).get("properties", {}))
    return {"properties": props, "type": "object"}


def _object(schema: dict[str, Any], defs: dict[str, Any], *, required: bool) -> dict[str, Any]:
    props = dict(schema.get("properties", {}))
    wildcard = props.pop("*", None)  # Flask-RESTX's Wildcard field: any further keys
    out: dict[str, Any] = {
        "type": ["object", "null"],
        "properties": {k: _strict(v, defs, required=required) for k, v in props.items()},
        "additionalProperties": (
            _strict(wildcard.get("additionalProperties", {}), defs, required=required)
            if wildcard is not None
            else not props
        ),
    }
    if required and props:
        out["required"] = sorted(props)
    return out


@cache
def _schema_doc(required: bool) -> dict[str, Any]:
    doc = _loaded()
    defs = doc["definitions"]
    return {name: _strict(schema, defs, required=required) for name, schema in defs.items()}


def _iso(value: object) -> bool:
    if not isinstance(value, str):
        return True
    dt.datetime.fromisoformat(value)
    return True


FORMATS = jsonschema.FormatChecker(formats=())
FORMATS.checks("date-time", raises=ValueError)(_iso)


def response_schema(path: str, method: str = "get", status: str = "200") -> dict[str, Any] | None:
    op = _loaded()["paths"][path][method]
    schema = op["responses"].get(status, {}).get("schema")
    return copy.deepcopy(schema) if schema is not None else None


def validate(body: Any, path: str, *, method: str = "get", masked: bool = False) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``body`` is what the contract declares."""
    schema = response_schema(path, method)
    assert schema is not None, f"{method.upper()} {path} declares no response schema"
    defs = _loaded()["definitions"]
    root = _strict(schema, defs, required=not masked)
    root["definitions"] = _schema_doc(not masked)
    jsonschema.Draft4Validator(root, format_checker=FORMATS).validate(body)


@dataclass(frozen=True)
class Call:
    """One concrete request for a declared GET operation (``path`` as the Swagger spells it)."""

    path: str
    url: str  # relative to the API base, percent-encoded
    params: dict[str, str] = field(default_factory=dict)
    file: bool = False  # answers a file, not JSON


def get_operations() -> list[str]:
    """Every GET path the contract declares."""
    return sorted(p for p, item in load_swagger()["paths"].items() if "get" in item)


def calls(point: str, gateway: str, hawke_agent: str, package_id: str, pcap: str) -> list[Call]:
    """A request for every GET operation of the contract, on objects of the simulated fleet."""
    p = quote(point, safe="")
    gw = f"/gateways/{gateway}"
    c = "/clients/demo_health"
    s = "/sites/demo_campus"
    paged = {"page": "1", "per_page": "10"}
    return [
        Call("/clients/", "/clients/", paged),
        Call("/clients/{client_name}", c),
        Call("/clients/{client_name}/der_events", f"{c}/der_events", {"get_past_events": "true"}),
        Call("/clients/{client_name}/sites", f"{c}/sites"),
        Call(
            "/clients/{client_name}/volttron_agent_package",
            f"{c}/volttron_agent_package",
            {"volttron_agent_package_id": package_id},
            file=True,
        ),
        Call(
            "/clients/{client_name}/volttron_agent_package/list", f"{c}/volttron_agent_package/list"
        ),
        Call("/gateways/", "/gateways/", {"show_archived": "true"}),
        Call("/gateways/{gateway_name}", gw),
        Call("/gateways/{gateway_name}/agent_configs", f"{gw}/agent_configs", {"active": "false"}),
        Call("/gateways/{gateway_name}/der_events", f"{gw}/der_events"),
        Call("/gateways/{gateway_name}/hawke_configuration", f"{gw}/hawke_configuration"),
        Call(
            "/gateways/{gateway_name}/hawke_configuration/{hawke_agent_id}",
            f"{gw}/hawke_configuration/{hawke_agent}",
        ),
        Call(
            "/gateways/{gateway_name}/hawke_configuration/{hawke_agent_id}/list",
            f"{gw}/hawke_configuration/{hawke_agent}/list",
            {"use_base64_hash": "true"},
        ),
        Call("/gateways/{gateway_name}/pcap", f"{gw}/pcap", {"file_name": pcap}, file=True),
        Call("/gateways/{gateway_name}/pcap/list", f"{gw}/pcap/list", DAY),
        Call(
            "/gateways/{gateway_name}/volttron_agent_config_package",
            f"{gw}/volttron_agent_config_package",
            {"volttron_agent_identity": "platform.driver"},
        ),
        Call("/gateways/{gateway_name}/volttron_agents", f"{gw}/volttron_agents"),
        Call("/points/", "/points/", {"page": "3", "per_page": "50"}),
        Call("/points/{point_name}", f"/points/{p}"),
        Call("/points/{point_name}/timeseries", f"/points/{p}/timeseries", DAY),
        Call("/sites/", "/sites/"),
        Call("/sites/{site_name}", s),
        Call("/sites/{site_name}/configured_points", f"{s}/configured_points", paged),
        Call("/sites/{site_name}/points", f"{s}/points", {"per_page": "100"}),
        Call("/sites/{site_name}/timeseries", "/sites/elm_school/timeseries", DAY),
        Call(
            "/sites/{site_name}/timeseries/paginated",
            f"{s}/timeseries/paginated",
            {**DAY, "page_size": "500", "raw_data": "true"},
        ),
        Call("/sites/{site_name}/weather", f"{s}/weather"),
    ]
