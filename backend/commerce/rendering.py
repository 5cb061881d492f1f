"""Invoice templates: a sandboxed Django template engine, and HTML -> PDF with wkhtmltopdf.

The engine is not the project's: it has no loaders (``include``/``extends`` find nothing),
no template libraries (``load`` knows nothing), autoescape on, and only a vetted subset of
the default tags and filters (no ``debug``, which dumps the context and loaded modules, no
``url``, ``csrf_token`` or ``load``). Contexts are plain dicts of strings and numbers, so a
template can reach no model method. wkhtmltopdf then runs with local file access,
JavaScript and the network off: every URL goes through a proxy on a closed loopback port.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from functools import cache
from typing import Any

import pdfkit
from django.conf import settings
from django.template import (
    Context,
    Engine,
    Library,
    TemplateSyntaxError,
    defaultfilters,
    defaulttags,
)

MAX_TEMPLATE_CHARS = 200_000

_ALLOWED_TAGS = (
    "autoescape", "comment", "cycle", "filter", "firstof", "for", "if", "ifchanged", "lorem",
    "now", "regroup", "resetcycle", "spaceless", "templatetag", "verbatim", "widthratio", "with",
)  # fmt: skip
_REFUSED_FILTERS = frozenset({"pprint"})


def _sandbox_library() -> Library:
    library = Library()
    for name in _ALLOWED_TAGS:
        library.tags[name] = defaulttags.register.tags[name]
    for name, function in defaultfilters.register.filters.items():
        if name not in _REFUSED_FILTERS:
            library.filters[name] = function
    return library


class _SandboxEngine(Engine):
    # Engine always adds defaulttags, defaultfilters and loader_tags: none of them here.
    default_builtins: list[str] = []

    def get_template_builtins(self, builtins: list[Any]) -> list[Library]:
        return [_sandbox_library()]


@cache
def sandbox_engine() -> Engine:
    return _SandboxEngine(
        dirs=[], app_dirs=False, loaders=[], libraries={}, autoescape=True, debug=False
    )


class TemplateInvalid(ValueError):
    """The template does not compile in the sandbox (unknown tag, syntax error, too long)."""


def check_template(source: str) -> None:
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateInvalid(f"a template may have at most {MAX_TEMPLATE_CHARS} characters")
    try:
        sandbox_engine().from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateInvalid(str(exc)) from exc


def render_html(source: str, context: dict[str, Any]) -> str:
    """Render in the sandbox; raises TemplateInvalid for a template that cannot render."""
    check_template(source)
    try:
        return sandbox_engine().from_string(source).render(Context(context, autoescape=True))
    except TemplateSyntaxError as exc:
        raise TemplateInvalid(str(exc)) from exc


def _closed_loopback_port() -> int:
    """A loopback port nothing listens on: bind one, and close it without listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pdf_options() -> dict[str, Any]:
    return {
        "quiet": "",
        "encoding": "UTF-8",
        "disable-local-file-access": "",
        "disable-javascript": "",
        "disable-plugins": "",
        # Every request (http, https, ftp) goes to a proxy that is not there.
        "proxy": f"http://127.0.0.1:{_closed_loopback_port()}",
        # A blocked resource must not fail the render: it is just left out.
        "load-error-handling": "ignore",
        "load-media-error-handling": "ignore",
    }


def render_pdf(html: str, *, timeout: float = 30.0) -> bytes:
    """PDF bytes; OSError when wkhtmltopdf fails or takes longer than ``timeout``.

    pdfkit builds the command line; the process is run here because pdfkit has no timeout
    and raises on exit code 1, which wkhtmltopdf also uses for "a resource was blocked"
    (exactly what the sandbox does) after writing a complete PDF.
    """
    executable = shutil.which(settings.WKHTMLTOPDF_PATH)
    if executable is None:
        raise OSError(f"{settings.WKHTMLTOPDF_PATH} is not installed")
    configuration = pdfkit.configuration(wkhtmltopdf=executable)
    command = pdfkit.PDFKit(
        html, "string", options=pdf_options(), configuration=configuration
    ).command()
    try:
        done = subprocess.run(  # noqa: S603  (fixed executable, options built above)
            command,
            input=html.encode("utf-8"),
            capture_output=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "XDG_RUNTIME_DIR": tempfile.gettempdir()},
        )
    except subprocess.TimeoutExpired as exc:
        raise OSError(f"wkhtmltopdf took longer than {timeout:.0f} s") from exc
    pdf = done.stdout
    complete = pdf.startswith(b"%PDF") and b"%%EOF" in pdf[-1024:]
    if done.returncode not in (0, 1) or not complete:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        raise OSError(f"wkhtmltopdf failed (exit {done.returncode}): {message[0][:200]}")
    return pdf
