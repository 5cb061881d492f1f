"""Rights of the content area: posts and files.

Role rights: ``posts.create`` / ``posts.manage`` (Editor), ``files.upload`` (Customer, Editor),
``files.manage`` (Admin only). Object rights, granted by the services through guardian: the
author of a post gets ``posts.view``, ``posts.update`` and ``posts.delete`` on it; the owner
of a file ``files.view``, ``files.delete`` and ``files.share``; a user a file is shared with
``files.view``. ``posts.manage`` and ``files.manage`` imply the matching rights on every object.
"""

from __future__ import annotations

from backend.accounts.catalog import CUSTOMER, EDITOR
from backend.core.permissions import PermissionSpec

_POST = "content.Post"
_FILE = "content.File"

PERMISSIONS: tuple[PermissionSpec, ...] = (
    PermissionSpec("posts.create", "Write own blog posts", _POST, roles=(EDITOR,)),
    PermissionSpec("posts.manage", "Edit, publish and delete any post", _POST, roles=(EDITOR,)),
    PermissionSpec(
        "posts.view", "See this post while it is a draft", _POST, implied_by=("posts.manage",)
    ),
    PermissionSpec(
        "posts.update", "Edit and publish this post", _POST, implied_by=("posts.manage",)
    ),
    PermissionSpec("posts.delete", "Delete this post", _POST, implied_by=("posts.manage",)),
    PermissionSpec("files.upload", "Upload and share own files", _FILE, roles=(CUSTOMER, EDITOR)),
    PermissionSpec("files.manage", "Read and delete any file", _FILE),
    PermissionSpec(
        "files.view", "Read and download this file", _FILE, implied_by=("files.manage",)
    ),
    PermissionSpec("files.delete", "Delete this file", _FILE, implied_by=("files.manage",)),
    PermissionSpec("files.share", "Share this file with other users", _FILE),
)

# Object rights the services grant.
POST_AUTHOR_RIGHTS = ("posts.view", "posts.update", "posts.delete")
FILE_OWNER_RIGHTS = ("files.view", "files.delete", "files.share")
FILE_SHARED_RIGHTS = ("files.view",)
