"""Where stored objects (uploads, PDFs) live, and expiring links to them.

One setting chooses the place: ``STORAGE_URL``.

- empty (default): Django's FileSystemStorage under ``MEDIA_ROOT``;
- ``s3://<bucket>[/<prefix>]?region=<name>&endpoint_url=<url>&sse=<AES256|aws:kms>
  &kms_key_id=<id>&addressing_style=<path|virtual>``: django-storages' S3 storage (boto3),
  objects private (``private`` ACL, presigned links only), server-side encryption when ``sse``
  is given. Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID`` /
  ``AWS_SECRET_ACCESS_KEY`` variables, an instance role, ...), never from the URL.

:func:`private_url` is the one way to hand a stored object to a client: an S3 presigned GET,
or for local storage a signed, expiring link to :func:`open_signed_link`'s view.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard
from urllib.parse import parse_qs, quote, urlsplit

from django.conf import settings
from django.core import signing
from django.core.files.storage import Storage, storages
from django.urls import reverse

if TYPE_CHECKING:
    from storages.backends.s3 import S3Storage

S3_BACKEND = "storages.backends.s3.S3Storage"
LOCAL_BACKEND = "django.core.files.storage.FileSystemStorage"
_SIGNING_SALT = "triton.storage.link"

# Types a browser may render from a local link; anything else is served as bytes to save.
# (HTML, SVG, XML and scripts would run on Triton's own origin.)
_INLINE_SAFE_TYPES = frozenset(
    {"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp", "text/plain"}
)


class StorageConfigError(ValueError):
    """STORAGE_URL cannot be understood."""


def storage_backend_from_url(url: str, *, link_expiry: int = 3600) -> dict[str, Any]:
    """The ``STORAGES["default"]`` entry for a ``STORAGE_URL`` (see the module docstring).

    Called from the settings module: it must not read settings itself."""
    if not url:
        # No location option: FileSystemStorage follows settings.MEDIA_ROOT when it changes.
        return {"BACKEND": LOCAL_BACKEND}
    parts = urlsplit(url)
    if parts.scheme == "file":
        return {"BACKEND": LOCAL_BACKEND, "OPTIONS": {"location": parts.path}}
    if parts.scheme != "s3" or not parts.netloc:
        raise StorageConfigError(f"STORAGE_URL must be s3://<bucket>... or file:///path: {url!r}")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    unknown = set(query) - {"region", "endpoint_url", "sse", "kms_key_id", "addressing_style"}
    if unknown:
        raise StorageConfigError(f"unknown STORAGE_URL parameters: {sorted(unknown)}")
    object_parameters: dict[str, str] = {}
    if query.get("sse"):
        object_parameters["ServerSideEncryption"] = query["sse"]
        if query.get("kms_key_id"):
            object_parameters["SSEKMSKeyId"] = query["kms_key_id"]
    options: dict[str, Any] = {
        "bucket_name": parts.netloc,
        "location": parts.path.strip("/"),
        "default_acl": "private",
        "querystring_auth": True,
        "querystring_expire": link_expiry,
        "file_overwrite": False,
        "object_parameters": object_parameters,
        "region_name": query.get("region") or None,
        "endpoint_url": query.get("endpoint_url") or None,
        # SigV4 everywhere: presigned links work in every region and on S3-compatible servers.
        "signature_version": "s3v4",
    }
    if query.get("addressing_style"):
        options["addressing_style"] = query["addressing_style"]
    return {"BACKEND": S3_BACKEND, "OPTIONS": options}


def default_storage() -> Storage:
    return storages["default"]


def is_s3(storage: Storage) -> TypeGuard[S3Storage]:
    # Imported here: boto3 loads only when S3 is in use.
    from storages.backends.s3 import S3Storage

    return isinstance(storage, S3Storage)


# --- Download names ---------------------------------------------------------------------------

_UNSAFE_IN_NAME = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')
_NOT_ASCII_TOKEN = re.compile(r"[^A-Za-z0-9._ ()\[\]+-]")


def safe_filename(name: str, *, default: str = "download", max_length: int = 200) -> str:
    """A user-given file name made safe to store and to send back: no directories, control
    characters or reserved characters, no leading dots, Unicode normalized, bounded length."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_IN_NAME.sub("_", name).strip().lstrip(".").strip()
    if not name:
        return default
    if len(name) > max_length:
        stem, dot, ext = name.rpartition(".")
        keep_ext = bool(dot) and 0 < len(ext) <= 16
        name = (stem[: max_length - len(ext) - 1] + "." + ext) if keep_ext else name[:max_length]
    return name


def _ascii_letters(name: str) -> str:
    """Accented Latin letters without their accents ("é" -> "e"); other characters as is."""
    letters = []
    for char in name:
        base = "".join(
            part for part in unicodedata.normalize("NFKD", char) if not unicodedata.combining(part)
        )
        letters.append(base if base.isascii() else char)
    return "".join(letters)


def content_disposition(filename: str, *, attachment: bool = True) -> str:
    """RFC 6266 ``Content-Disposition``: an ASCII ``filename`` fallback for old clients and the
    exact name, percent-encoded UTF-8, in ``filename*``."""
    name = safe_filename(filename)
    fallback = _NOT_ASCII_TOKEN.sub("_", _ascii_letters(name))
    kind = "attachment" if attachment else "inline"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


# --- Expiring links ---------------------------------------------------------------------------


def private_url(
    name: str, *, expires_in: int | None = None, download_name: str | None = None
) -> str:
    """An expiring link to the stored object ``name``.

    S3: a presigned GET (``download_name`` becomes the response's Content-Disposition).
    Local storage: a signed link to Triton's own download view, a path relative to the API's
    host unless ``STORAGE_PUBLIC_BASE_URL`` is set; it stops working after ``expires_in``
    seconds (default ``STORAGE_LINK_EXPIRY``).
    """
    expires_in = int(expires_in if expires_in is not None else settings.STORAGE_LINK_EXPIRY)
    if expires_in <= 0:
        raise ValueError("expires_in must be positive")
    storage = default_storage()
    from storages.backends.s3 import S3Storage

    if isinstance(storage, S3Storage):
        parameters = (
            {"ResponseContentDisposition": content_disposition(download_name)}
            if download_name
            else None
        )
        return str(storage.url(name, parameters=parameters, expire=expires_in))
    token = signing.TimestampSigner(salt=_SIGNING_SALT).sign_object(
        {"n": name, "d": download_name, "e": expires_in}, compress=True
    )
    path = reverse("api-v1:storage_link", kwargs={"token": token})
    return settings.STORAGE_PUBLIC_BASE_URL.rstrip("/") + path


class LinkInvalid(Exception):
    """The link was not issued by this server (tampered, truncated, other secret key)."""


class LinkExpired(Exception):
    """The link was genuine but its time is up."""


@dataclass(frozen=True)
class SignedLink:
    name: str
    download_name: str | None
    content_type: str


def open_signed_link(token: str) -> SignedLink:
    """Check a local link's token: what it points at, or LinkInvalid / LinkExpired."""
    signer = signing.TimestampSigner(salt=_SIGNING_SALT)
    try:
        payload = signer.unsign_object(token)
        if not isinstance(payload, dict) or not isinstance(payload.get("n"), str):
            raise LinkInvalid
        # The lifetime travels inside the signed payload; check the signature's age against it.
        signer.unsign_object(token, max_age=int(payload["e"]))
    except signing.SignatureExpired as exc:
        raise LinkExpired from exc
    except (signing.BadSignature, ValueError, TypeError, KeyError) as exc:
        raise LinkInvalid from exc
    download_name = payload.get("d") if isinstance(payload.get("d"), str) else None
    guessed, _encoding = mimetypes.guess_type(download_name or payload["n"])
    return SignedLink(
        name=payload["n"], download_name=download_name, content_type=served_content_type(guessed)
    )


def served_content_type(mime_type: str | None) -> str:
    """The Content-Type to serve stored bytes under from Triton's own origin: the type itself
    when a browser cannot run it (PDF, raster images, plain text), else bytes to save."""
    return mime_type if mime_type in _INLINE_SAFE_TYPES else "application/octet-stream"
