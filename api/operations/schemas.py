"""Schemas of the operations endpoints (health)."""

from __future__ import annotations

from typing import Literal

from ninja import Field, Schema


class HealthChecks(Schema):
    """One entry per dependency: ``"ok"`` or ``"error: <short reason>"``."""

    database: str = Field(..., examples=["ok"])
    cache: str = Field(..., examples=["ok"])
    disk: str = Field(..., examples=["ok"])
    channel_layer: str = Field(..., examples=["ok"])
    broker: str = Field(..., examples=["ok", "error: timed out after 2.0s"])
    workers: str = Field(
        ...,
        examples=["ok", "error: no Celery worker answered a ping"],
        description="Reported only: a failing workers check does not make the answer 503.",
    )


class HealthOut(Schema):
    """``status`` is ``ok`` (200) or ``error`` (503, one or more checks failed)."""

    status: Literal["ok", "error"]
    checks: HealthChecks


class HealthFailureOut(HealthOut):
    """The 503 answer: the health shape plus RFC 9457 ``type``, ``title`` and ``detail``."""

    type: str = Field(..., examples=["https://triton.dev/problems/service-unavailable"])
    title: str = Field(..., examples=["Service unavailable"])
    detail: str = Field(..., examples=["Failing checks: broker."])
