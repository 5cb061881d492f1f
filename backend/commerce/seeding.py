"""The default invoice template: created by migration 0002, and again after every flush
(post_migrate), like the default roles."""

from __future__ import annotations

from typing import Any

DEFAULT_TEMPLATE_NAME = "Default"

DEFAULT_TEMPLATE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<style>
  body { font-family: sans-serif; font-size: 12pt; color: #222; }
  h1 { font-size: 20pt; margin-bottom: 0; }
  table { width: 100%; border-collapse: collapse; margin-top: 1em; }
  th, td { border-bottom: 1px solid #ccc; padding: 4pt; text-align: left; }
  td.num, th.num { text-align: right; }
</style>
</head>
<body>
<h1>Invoice {{ invoice.id }}</h1>
<p>Order {{ order.id }} of {{ order.created_at|date:"Y-m-d" }}
   &middot; status {{ order.status }}</p>
<p>Billed to: {{ user.name }} &lt;{{ user.email }}&gt;</p>
<table>
  <tr>
    <th>Product</th><th class="num">Quantity</th>
    <th class="num">Unit price</th><th class="num">Amount</th>
  </tr>
  {% for item in order.items %}
  <tr>
    <td>{{ item.product.name }}</td>
    <td class="num">{{ item.quantity }}</td>
    <td class="num">{{ item.unit_price }}</td>
    <td class="num">{{ item.line_total }}</td>
  </tr>
  {% endfor %}
  <tr><th colspan="3">Total</th><th class="num">{{ order.total_amount }}</th></tr>
</table>
</body>
</html>
"""


def seed_default_template(**kwargs: Any) -> None:
    from backend.commerce.models import InvoiceTemplate

    InvoiceTemplate.objects.get_or_create(
        name=DEFAULT_TEMPLATE_NAME, defaults={"html_template": DEFAULT_TEMPLATE}
    )
