"""Found by `make fuzz` (schemathesis ST105): errors are sent as application/problem+json, so the schema says so."""

import pytest


@pytest.mark.django_db
def test_every_error_response_is_documented_as_problem_json(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    errors = [
        (path, method, status, set(response.get("content", {})))
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        for status, response in operation["responses"].items()
        if status.startswith(("4", "5"))
    ]
    assert errors
    # 414 is gunicorn's own answer to an over-long request line, before Django: documented as its HTML page.
    wrong = [e for e in errors if e[3] != ({"text/html"} if e[2] == "414" else {"application/problem+json"})]
    assert wrong == []


@pytest.mark.django_db
def test_every_operation_documents_the_servers_414(client):
    """Found by `make fuzz` (ST103): a 4206-byte request line got gunicorn's 414, which the schema did not list."""
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operations = [
        (path, method, operation["responses"])
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "responses" in operation
    ]
    assert len(operations) >= 17
    assert [(path, method) for path, method, responses in operations if "414" not in responses] == []


@pytest.mark.django_db
@pytest.mark.parametrize("when", ["0095-06-06T07:31:31Z", "9999-12-31T23:00:00Z", "1899-01-01T00:00:00+00:00"])
def test_event_dates_outside_the_shop_era_are_refused(staff_api, when):
    """Found by `make fuzz` (ST108): a year-95 date was stored and echoed with a local-mean-time offset
    ('+00:53:28'), which is not an RFC 3339 date-time: such dates are invalid input."""
    body = {"name": "Old", "venue": "V", "city": "C", "starts_at": when, "ends_at": "2099-01-01T00:00:00Z"}
    response = staff_api.post("/api/events", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "starts_at" in response.json()["errors"]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "key"), [("/api/events", "events"), ("/api/orders", "orders")])
def test_paginated_lists_are_documented_as_their_envelope(client, path, key):
    """Found by `make fuzz` (ST108): the lists were documented as bare arrays but answer {count, next, previous, …}."""
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    ok = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    if "$ref" in ok:
        ok = schema["components"]["schemas"][ok["$ref"].rsplit("/", 1)[1]]
    assert ok["type"] == "object"
    assert {"count", "next", "previous", key} <= set(ok["required"])
    assert ok["properties"][key]["type"] == "array"


@pytest.mark.django_db
def test_query_parameters_are_documented_as_validated(client):
    """Found by `make fuzz` (ST201): the schema documented DRF's `?format=` override on the CSV exports, which nothing
    uses (it is off now), and a `page` with no lower bound; the API answers 400 for `page` < 1."""
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    def parameters(path):
        listed = schema["paths"][path]["get"].get("parameters", [])
        return {p["name"]: p["schema"] for p in listed if p["in"] == "query"}

    assert parameters("/api/events/{event_id}/orders.csv") == {}
    assert parameters("/api/events/{event_id}/attendees.csv") == {}
    events, orders = parameters("/api/events"), parameters("/api/orders")
    assert set(events) == {"search", "page"}
    assert set(orders) == {"event", "status", "page"}
    for page in (events["page"], orders["page"]):
        assert (page["type"], page["minimum"]) == ("integer", 1)
    assert events["search"]["maxLength"] == 100
