"""User HTML (post bodies, mail bodies) made safe to store and to show: nh3 (Ammonia).

An allow-list of ordinary formatting; everything else is dropped. Ammonia parses with a real
HTML5 parser (html5ever) and serializes its own tree, so what is stored is what a browser
will parse: mutation XSS through foreign content (svg/math), ``noscript`` or ``style`` quirks
has nothing to hide in. Links and images take absolute http(s) URLs only (links also
``mailto:``); every link gets ``rel="noopener noreferrer"``. No ``style`` or ``class``
attributes, no event handlers, no ids.
"""

from __future__ import annotations

import nh3

ALLOWED_TAGS: frozenset[str] = frozenset(
    {
        "p", "br", "hr", "div", "span",
        "strong", "b", "em", "i", "u", "s", "del", "ins", "sub", "sup", "small", "mark",
        "a", "ul", "ol", "li",
        "h1", "h2", "h3", "h4",
        "blockquote", "code", "pre", "img",
        "table", "thead", "tbody", "tr", "th", "td", "caption",
    }
)  # fmt: skip

ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "ol": {"start"},
    "th": {"colspan", "rowspan"},
    "td": {"colspan", "rowspan"},
}

# Removed together with everything inside them (not just unwrapped to their text).
DROPPED_WITH_CONTENT: frozenset[str] = frozenset(
    {
        "script", "style", "template", "noscript", "iframe", "object", "embed", "svg", "math",
        "textarea", "title", "xmp", "noembed", "noframes", "select", "option",
    }
)  # fmt: skip

_URL_SCHEMES = {"http", "https", "mailto"}
_IMAGE_PREFIXES = ("http://", "https://")


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    # Images load without a click: http(s) only (no mailto:, which the link schemes allow).
    if tag == "img" and attribute == "src" and not value.lower().startswith(_IMAGE_PREFIXES):
        return None
    return value


def sanitize_html(html: str) -> str:
    """The allow-listed part of ``html``; safe to store and to insert into a page."""
    if not html:
        return ""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_filter_attribute,
        strip_comments=True,
        link_rel="noopener noreferrer",
        url_schemes=set(_URL_SCHEMES),
        # Relative URLs would resolve against whichever page shows the HTML: refuse them.
        url_relative="deny",
    )
