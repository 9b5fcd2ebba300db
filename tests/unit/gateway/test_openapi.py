"""The public OpenAPI document keeps only the schemas its paths use."""

from __future__ import annotations

from gateway.openapi import public_openapi


def test_the_public_document_keeps_the_schemas_its_paths_use_and_no_others() -> None:
    ref = {"$ref": "#/components/schemas/Board"}
    document = {
        "paths": {
            "/api/console/deliveries": {"get": {"responses": {"200": {"content": {"x": ref}}}}},
            "/api/internal": {"put": {"requestBody": {"$ref": "#/components/schemas/Secret"}}},
        },
        "components": {
            "schemas": {
                "Board": {"properties": {"rows": {"$ref": "#/components/schemas/Row"}}},
                "Row": {"type": "object"},
                "Secret": {"type": "object"},
            }
        },
    }
    public = public_openapi({"delivery": document})
    assert list(public["paths"]) == ["/api/console/deliveries"]
    assert sorted(public["components"]["schemas"]) == ["Board", "Row"]
