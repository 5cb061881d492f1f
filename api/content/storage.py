"""``GET /storage/{token}``: the local-storage side of ``private_url``.

Public (the signed token is the credential). 404 for a token this server did not issue or an
object that is gone, 410 for an expired link; never a 500.
"""

from __future__ import annotations

from django.http import HttpRequest, StreamingHttpResponse
from ninja import Router

from api.content.streaming import stream_file
from api.errors import problem_responses
from backend.core.errors import Gone, NotFound
from backend.core.storage import (
    LinkExpired,
    LinkInvalid,
    content_disposition,
    default_storage,
    open_signed_link,
)

router = Router()


@router.get(
    "/{token}",
    auth=None,
    url_name="storage_link",
    response={200: None, **problem_responses(404, 410)},
    summary="Download through an expiring link",
)
def storage_link(request: HttpRequest, token: str) -> StreamingHttpResponse:
    try:
        link = open_signed_link(token)
    except LinkExpired as exc:
        raise Gone(detail="This link has expired; ask for a new one.") from exc
    except LinkInvalid as exc:
        raise NotFound(detail="No such link.") from exc
    storage = default_storage()
    try:
        fileobj = storage.open(link.name, "rb")
        size = storage.size(link.name)
    except (FileNotFoundError, OSError) as exc:
        raise NotFound(detail="The file no longer exists.") from exc
    filename = link.download_name or link.name.rsplit("/", 1)[-1]
    return stream_file(
        fileobj,
        content_type=link.content_type,
        disposition=content_disposition(filename, attachment=link.download_name is not None),
        size=size,
    )
