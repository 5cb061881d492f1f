"""/invoice-templates and /invoices: who may do what, the render (run here, as the job runs
it), idempotency, failures, and the PDF download."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from backend.commerce import services
from backend.commerce.models import Invoice, InvoiceTemplate
from tests.backend.commerce.test_rendering import pdf_text
from tests.conftest import ApiClient
from tests.factories import (
    InvoiceTemplateFactory,
    ProductFactory,
    UserFactory,
    bearer_for,
    place_order,
)

pytestmark = pytest.mark.django_db


def _pdf_files(invoice: Invoice) -> list[str]:
    """This invoice's files (ids repeat across test runs; the creation time does not)."""
    stem = Path(services.invoice_pdf_name(invoice)).stem
    _, files = default_storage.listdir("invoices")
    return [f for f in files if f.startswith(stem)]


# --- templates ------------------------------------------------------------------------------
def test_default_template_is_seeded(as_admin: ApiClient) -> None:
    listed = as_admin.get("/invoice-templates").json()
    assert [t["name"] for t in listed["items"]] == ["Default"]
    assert "{% for item in order.items %}" in listed["items"][0]["html_template"]


def test_templates_are_managed_with_invoices_manage(as_admin: ApiClient, problem) -> None:
    created = as_admin.post(
        "/invoice-templates", {"name": "Plain", "html_template": "<p>{{ order.id }}</p>"}
    )
    assert created.status_code == 201, created.content
    template_id = created.json()["id"]
    url = f"/invoice-templates/{template_id}"
    assert as_admin.get(url).json()["name"] == "Plain"
    patched = as_admin.patch(url, {"html_template": "<p>#{{ order.id }}</p>"})
    assert patched.json()["html_template"] == "<p>#{{ order.id }}</p>"
    problem(as_admin.post("/invoice-templates", {"name": "Plain", "html_template": "x"}), 409)
    body = problem(as_admin.patch(url, {"html_template": "{% debug %}"}), 422)
    assert body["errors"][0]["loc"] == ["body", "html_template"]
    problem(
        as_admin.post("/invoice-templates", {"name": "L", "html_template": "{% load x %}"}), 422
    )
    assert as_admin.delete(url).status_code == 204
    problem(as_admin.get(url), 404)


def test_templates_refuse_everyone_else(as_customer: ApiClient, as_editor: ApiClient, problem):
    template = InvoiceTemplate.objects.get(name="Default")
    url = f"/invoice-templates/{template.pk}"
    for client, status in ((ApiClient(), 401), (as_customer, 403), (as_editor, 403)):
        problem(client.get("/invoice-templates"), status)
        problem(client.get(url), status)
        problem(client.post("/invoice-templates", {"name": "n", "html_template": "x"}), status)
        problem(client.patch(url, {"name": "n"}), status)
        problem(client.delete(url), status)
    assert InvoiceTemplate.objects.get(pk=template.pk).name == "Default"


def test_a_used_template_cannot_be_deleted(as_admin: ApiClient, customer, problem) -> None:
    template = InvoiceTemplateFactory()
    order = place_order(customer, (ProductFactory(), 1))
    services.invoice_request(actor=customer, order_id=order.pk, template_id=template.pk)
    problem(as_admin.delete(f"/invoice-templates/{template.pk}"), 409)


# --- invoices -------------------------------------------------------------------------------
def test_owner_gets_a_pdf(as_customer: ApiClient, customer) -> None:
    product = ProductFactory(name="Brass lamp", price="19.99")
    order = place_order(customer, (product, 2))
    answer = as_customer.post("/invoices", {"order_id": order.pk})
    assert answer.status_code == 202, answer.content
    pending = answer.json()
    assert pending["status"] == "pending" and pending["pdf_url"] is None
    assert pending["user_id"] == customer.pk and pending["order_id"] == order.pk
    assert pending["template_id"] == InvoiceTemplate.objects.get(name="Default").pk

    assert services.invoice_render(invoice_id=pending["id"]) == "ready"
    ready = as_customer.get(f"/invoices/{pending['id']}").json()
    assert ready["status"] == "ready" and ready["pdf_url"]

    pdf = as_customer.get(f"/invoices/{pending['id']}/pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    text = pdf_text(b"".join(pdf.streaming_content))
    assert f"Invoice {pending['id']}" in text and "Brass lamp" in text
    assert "39.98" in text and customer.name in text

    listed = as_customer.get("/invoices").json()
    assert [i["id"] for i in listed["items"]] == [pending["id"]]


def test_rendering_twice_makes_one_pdf(customer) -> None:
    order = place_order(customer, (ProductFactory(), 1))
    invoice = services.invoice_request(actor=customer, order_id=order.pk)
    assert services.invoice_render(invoice_id=invoice.pk) == "ready"
    assert services.invoice_render(invoice_id=invoice.pk) == "ready"
    # A redelivery that starts over from pending overwrites the same name.
    Invoice.objects.filter(pk=invoice.pk).update(status="pending")
    assert services.invoice_render(invoice_id=invoice.pk) == "ready"
    assert len(_pdf_files(invoice)) == 1
    assert services.invoice_render(invoice_id=999999) is None


def test_a_template_that_cannot_render_fails_the_invoice(customer, as_customer) -> None:
    template = InvoiceTemplateFactory(html_template="{% load nothing %}")  # bypasses the check
    order = place_order(customer, (ProductFactory(), 1))
    invoice = services.invoice_request(actor=customer, order_id=order.pk, template_id=template.pk)
    assert services.invoice_render(invoice_id=invoice.pk) == "failed"
    body = as_customer.get(f"/invoices/{invoice.pk}").json()
    assert body["status"] == "failed" and "template" in body["failure_reason"]
    assert body["pdf_url"] is None
    assert as_customer.get(f"/invoices/{invoice.pk}/pdf").status_code == 409


def test_invoice_rights(problem) -> None:
    owner, other = UserFactory(), UserFactory()
    manager = UserFactory(roles=["Customer"])
    viewer = UserFactory(roles=["Customer"])
    from backend.core.permissions import registry

    manager.user_permissions.add(_permission("invoices.manage", registry))
    viewer.user_permissions.add(_permission("orders.view_any", registry))
    order = place_order(owner, (ProductFactory(), 1))
    clients = {
        "owner": ApiClient(bearer_for(owner)),
        "other": ApiClient(bearer_for(other)),
        "manager": ApiClient(bearer_for(manager)),
        "viewer": ApiClient(bearer_for(viewer)),
        "anon": ApiClient(),
    }
    body = {"order_id": order.pk}
    problem(clients["anon"].post("/invoices", body), 401)
    problem(clients["other"].post("/invoices", body), 404)  # cannot see the order
    problem(clients["viewer"].post("/invoices", body), 403)  # sees it, may not invoice it
    problem(clients["owner"].post("/invoices", {"order_id": 999999}), 404)
    problem(clients["owner"].post("/invoices", {**body, "template_id": 999999}), 422)
    by_owner = clients["owner"].post("/invoices", body).json()
    by_manager = clients["manager"].post("/invoices", body).json()
    assert by_manager["user_id"] == owner.pk  # the order's owner, whoever asked

    for invoice in (by_owner, by_manager):
        url = f"/invoices/{invoice['id']}"
        assert clients["owner"].get(url).status_code == 200
        assert clients["manager"].get(url).status_code == 200
        for name in ("other", "viewer"):
            problem(clients[name].get(url), 404)
            problem(clients[name].get(f"{url}/pdf"), 404)
        problem(clients["anon"].get(url), 401)
    assert clients["owner"].get("/invoices").json()["count"] == 2
    assert clients["manager"].get("/invoices").json()["count"] == 2
    assert clients["other"].get("/invoices").json() == {"items": [], "count": 0}
    assert clients["viewer"].get("/invoices").json()["count"] == 0


def _permission(name: str, registry):
    from django.contrib.auth.models import Permission

    spec = registry.get(name)
    model = spec.model_class()
    return Permission.objects.get(
        content_type__app_label=model._meta.app_label,
        content_type__model=model._meta.model_name,
        codename=spec.codename,
    )
