"""Permissions of the commerce area.

``orders.view`` and ``invoices.view`` are object rights: the owner is granted them on each
order / invoice at creation (guardian); ``orders.view_any`` and ``invoices.manage`` imply
them on every object.
"""

from __future__ import annotations

from backend.accounts.catalog import CUSTOMER, EDITOR
from backend.core.permissions import PermissionSpec

PERMISSIONS: tuple[PermissionSpec, ...] = (
    PermissionSpec(
        "products.manage",
        "Create, update and delete products",
        "commerce.Product",
        roles=(EDITOR,),
    ),
    PermissionSpec("orders.create", "Place own orders", "commerce.Order", roles=(CUSTOMER, EDITOR)),
    PermissionSpec(
        "orders.view",
        "View an order (granted to its owner on each order)",
        "commerce.Order",
        implied_by=("orders.view_any",),
    ),
    PermissionSpec("orders.view_any", "View every order and the live dashboard", "commerce.Order"),
    PermissionSpec("orders.manage", "Change the status of any order", "commerce.Order"),
    PermissionSpec(
        "invoices.view",
        "Read an invoice (granted to the order's owner on each invoice)",
        "commerce.Invoice",
        implied_by=("invoices.manage",),
    ),
    PermissionSpec(
        "invoices.manage",
        "Create and read any invoice; manage invoice templates",
        "commerce.Invoice",
    ),
)
