"""The OpenAPI document describes every route the app serves, from the routes themselves;
its browsable page works offline."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate
from starlette.routing import Route

from tests.asgi import api_client
from tsgate.api import openapi
from tsgate.app import create_app
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator

pytestmark = pytest.mark.anyio


def test_the_document_is_valid_openapi_31_and_names_every_route() -> None:
    app = create_app()
    doc = openapi.document(app.routes)
    validate(doc)  # the OpenAPI 3.1 meta-schema
    assert doc["openapi"] == "3.1.0"
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    served = {
        (re.sub(r"{(\w+):\w+}", r"{\1}", r.path), m)
        for r in app.routes
        if isinstance(r, Route) and not openapi._undescribed(r)
        for m in (r.methods or set()) - {"HEAD"}
    }
    assert documented == served
    for group in ("chart API", "ACE drop-in", "jobs", "saved charts", "operations"):
        assert any(op["tags"] == [group] for ops in doc["paths"].values() for op in ops.values())
    for ops in doc["paths"].values():
        for op in ops.values():
            assert "4XX" in op["responses"] and "503" in op["responses"]


def test_a_route_without_a_description_fails_the_build() -> None:
    async def hidden(request: object) -> None: ...

    routes = [*create_app().routes, Route("/api/hidden", hidden)]
    with pytest.raises(openapi.Undocumented, match="/api/hidden"):
        openapi.document(routes)


async def test_served_at_api_openapi_json_with_a_page_that_works_offline(
    settings: Settings,
) -> None:
    async with api_client(settings, create_simulator(seed=1)) as api:
        served = await api.get("/api/openapi.json")
        page = await api.get("/api/docs")
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        fetched = [await api.get(a) for a in assets]
        script = await api.get("/api/docs/static/docs.js")
    assert served.status_code == 200 and served.headers["content-type"] == "application/json"
    assert served.json()["paths"]["/api/timeseries"]["get"]["tags"] == ["chart API"]
    assert page.status_code == 200 and "swagger-ui" in page.text
    assert assets and all(a.startswith("/api/docs/static/") for a in assets)  # nothing remote
    assert all(f.status_code == 200 and f.content for f in fetched)
    assert "/api/openapi.json" in script.text and "http" not in script.text.replace("https", "")


def test_upstream_paths_are_not_claimed() -> None:
    # pass-through paths belong to upstream's own document, not this one
    paths = openapi.document(create_app().routes)["paths"]
    assert not any("rest" in p for p in paths) and "/api/sites/{site}" not in paths
