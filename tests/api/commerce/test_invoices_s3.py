"""Invoice PDFs on S3 for real: the loopback moto server (tests/s3.py) stores the PDF, pdf_url
is a presigned GET that serves it, with the configured lifetime signed into it."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

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

    # The link's lifetime is STORAGE_LINK_EXPIRY, signed into it (SigV4 X-Amz-Expires from
    # X-Amz-Date). moto's server does not enforce expiry, so the parameters are what is checked.
    settings.STORAGE_LINK_EXPIRY = 42
    short = parse_qs(urlsplit(client.get(f"/invoices/{invoice.pk}").json()["pdf_url"]).query)
    assert short["X-Amz-Expires"] == ["42"]
    signed_at = datetime.strptime(short["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - signed_at).total_seconds()) < 60
    assert "host" in short["X-Amz-SignedHeaders"][0]
