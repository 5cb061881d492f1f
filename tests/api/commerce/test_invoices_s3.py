"""Invoice PDFs on S3 for real: the loopback moto server (tests/s3.py) stores the PDF, pdf_url
is a presigned GET that serves it, and stops serving it once it expires."""

from __future__ import annotations

import time

import httpx
import pytest

from backend.commerce import services
from tests.backend.commerce.test_rendering import pdf_text
from tests.conftest import ApiClient
from tests.factories import ProductFactory, bearer_for, place_order
from tests.s3 import S3Storage

pytestmark = pytest.mark.django_db


def test_invoice_pdf_is_stored_on_s3_and_served_by_an_expiring_link(
    s3_storage: S3Storage, customer, settings
) -> None:
    order = place_order(customer, (ProductFactory(name="Anvil", price="99.00"), 1))
    invoice = services.invoice_request(actor=customer, order_id=order.pk)
    assert services.invoice_render(invoice_id=invoice.pk) == "ready"
    invoice.refresh_from_db()

    stored = s3_storage.server.client().get_object(Bucket=s3_storage.bucket, Key=invoice.pdf_name)
    body = stored["Body"].read()
    assert body.startswith(b"%PDF") and "Anvil" in pdf_text(body)
    assert stored["ServerSideEncryption"] == "AES256"

    client = ApiClient(bearer_for(customer))
    url = client.get(f"/invoices/{invoice.pk}").json()["pdf_url"]
    assert url.startswith(s3_storage.server.endpoint_url) and "X-Amz-Signature" in url
    fetched = httpx.get(url, timeout=10)
    assert fetched.status_code == 200 and fetched.content == body
    assert "invoice-" in fetched.headers.get("content-disposition", "")

    redirect = client.get(f"/invoices/{invoice.pk}/pdf")
    assert redirect.status_code == 302
    assert httpx.get(redirect["Location"], timeout=10).content == body

    # A link minted with a one-second lifetime stops working.
    settings.STORAGE_LINK_EXPIRY = 1
    short = client.get(f"/invoices/{invoice.pk}").json()["pdf_url"]
    assert "X-Amz-Expires=1" in short
    deadline = time.monotonic() + 10
    while httpx.get(short, timeout=10).status_code == 200:
        assert time.monotonic() < deadline, "the presigned link never expired"
        time.sleep(0.2)
    assert httpx.get(short, timeout=10).status_code == 403
