"""Issue 11: the OpenAPI document tells the truth about errors and authentication."""

from __future__ import annotations


def test_document_declares_bearer_scheme_and_problem_answers(stage):
    doc = stage.client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer",
        "description": "`POST /api/v1/auth/token` with email and password gives the token"}
    audit = doc["paths"]["/api/v1/audit"]["get"]
    assert audit["security"] == [{"bearer": []}]  # Swagger's Authorize button applies to it
    for code in ("401", "403", "422", "429"):
        assert list(audit["responses"][code]["content"]) == ["application/problem+json"]
    assert "security" not in doc["paths"]["/api/v1/deals"]["get"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_validation_errors_are_problems_as_documented(stage):
    r = stage.client.post("/api/v1/auth/token", json={"email": 1})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert set(r.json()) >= {"type", "title", "status", "code", "detail"}
