"""Catalog, orders and invoices. Money is ``Decimal`` with two places, never a float."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

MONEY_DIGITS = 12
MONEY_PLACES = 2


class Product(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    price = models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES)
    # Orders take stock with a conditional UPDATE (stock >= quantity); the constraint is the
    # database's own guarantee that it never goes negative.
    stock = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("id",)
        constraints = (
            models.CheckConstraint(condition=Q(price__gt=Decimal("0")), name="product_price_pos"),
            models.CheckConstraint(condition=Q(stock__gte=0), name="product_stock_not_negative"),
        )
        indexes = (models.Index(fields=("name",), name="product_name_idx"),)

    def __str__(self) -> str:
        return self.name


class OrderStatus(models.TextChoices):
    PENDING = "pending"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class Order(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(
        max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING
    )
    total_amount = models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-id",)
        indexes = (
            models.Index(fields=("user", "id"), name="order_user_idx"),
            models.Index(fields=("status",), name="order_status_idx"),
        )

    def __str__(self) -> str:
        return f"order {self.pk}"


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES)

    class Meta:
        ordering = ("id",)
        constraints = (
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_item_quantity_pos"),
        )

    def __str__(self) -> str:
        return f"{self.quantity} x product {self.product_id}"


class InvoiceTemplate(models.Model):
    name = models.CharField(max_length=200, unique=True)
    html_template = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return self.name


class InvoiceStatus(models.TextChoices):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


class Invoice(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="invoices")
    # The order's owner, copied so lists filter without a join.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    template = models.ForeignKey(InvoiceTemplate, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(
        max_length=16, choices=InvoiceStatus.choices, default=InvoiceStatus.PENDING
    )
    # Storage name of the rendered PDF (deterministic per invoice), empty until ready.
    pdf_name = models.CharField(max_length=300, blank=True, default="")
    failure_reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-id",)
        indexes = (models.Index(fields=("user", "id"), name="invoice_user_idx"),)

    def __str__(self) -> str:
        return f"invoice {self.pk}"
