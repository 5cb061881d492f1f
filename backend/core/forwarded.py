"""The proxy's scheme header counts only when the proxy sent it.

With ``DJANGO_SECURE_PROXY_SSL_HEADER`` on, Django believes ``X-Forwarded-Proto: https`` from
anyone: a client that reaches a server process without going through the TLS proxy could claim
HTTPS (skip the redirect, get HTTPS-only cookies over plain HTTP). This middleware, first in the
stack, drops the header unless the direct peer (``REMOTE_ADDR``, the TCP peer: the servers run
without proxy-header processing) is on ``TRUSTED_PROXY_NETWORKS``. The proxy itself overwrites
whatever a client sent (compose/nginx/nginx.conf, compose/nginx/cluster.conf.template).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponseBase

SCHEME_HEADER = "HTTP_X_FORWARDED_PROTO"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_proxy_networks() -> list[Network]:
    networks: list[Network] = []
    for value in settings.TRUSTED_PROXY_NETWORKS:
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError as error:
            raise ImproperlyConfigured(
                f"TRUSTED_PROXY_NETWORKS: {value!r} is not a network"
            ) from error
    return networks


def from_trusted_proxy(request: HttpRequest, networks: list[Network]) -> bool:
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(peer in network for network in networks)


class TrustedProxySchemeMiddleware:
    """Works on the sync and async paths: it only edits the request before passing it on."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.networks = trusted_proxy_networks()  # a bad value fails at start, not per request
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if SCHEME_HEADER in request.META and not from_trusted_proxy(request, self.networks):
            del request.META[SCHEME_HEADER]
        return self.get_response(request)  # the awaitable itself on the async path
