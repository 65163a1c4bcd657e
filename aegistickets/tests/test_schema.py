"""The OpenAPI schema is valid, complete and served with its docs page."""

import json

import pytest
from django.core.management import call_command

EXPECTED_OPERATIONS = {
    ("/api/events", "get"),
    ("/api/events", "post"),
    ("/api/events/{id}", "get"),
    ("/api/events/{id}", "patch"),
    ("/api/events/{id}/ticket-types", "post"),
    ("/api/ticket-types/{id}", "get"),
    ("/api/ticket-types/{id}", "patch"),
    ("/api/basket", "post"),
    ("/api/basket/{token}", "get"),
    ("/api/basket/{token}/items/{id}", "delete"),
    ("/api/checkout", "post"),
    ("/api/waiting-list", "post"),
    ("/api/waiting-list/{token}", "get"),
    ("/api/waiting-list/{token}", "delete"),
    ("/api/waiting-list/{token}/confirm", "post"),
    ("/api/orders", "get"),
    ("/api/orders/lookup", "post"),
    ("/api/orders/{code}", "get"),
    # After the purchase
    ("/api/orders/{code}/cancel", "post"),
    ("/api/orders/{code}/refunds", "post"),
    ("/api/check-ins", "post"),
    ("/api/events/{event_id}/orders.csv", "get"),
    ("/api/events/{event_id}/attendees.csv", "get"),
    ("/api/events/{event_id}/cancel", "post"),
    ("/api/events/{event_id}/vouchers", "get"),
    ("/api/events/{event_id}/vouchers", "post"),
}


def test_schema_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.json"
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", "--file", str(target))
    schema = json.loads(target.read_text())
    assert schema["openapi"].startswith("3.")
    operations = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert operations == EXPECTED_OPERATIONS


@pytest.mark.django_db
def test_schema_documents_problem_responses_and_auth(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    checkout = schema["paths"]["/api/checkout"]["post"]
    assert {"201", "400", "402", "404", "409", "422"} <= set(checkout["responses"])
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in checkout["parameters"])
    assert "tokenAuth" in schema["components"]["securitySchemes"]


@pytest.mark.django_db
def test_docs_page_is_served_from_our_own_static_files(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn.jsdelivr.net" not in html
