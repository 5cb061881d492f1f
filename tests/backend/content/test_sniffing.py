"""Types come from the bytes."""

from __future__ import annotations

import io

import pytest

from backend.content.sniffing import HEAD_BYTES, sniff_mime_type


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64, "image/jpeg"),
        (b"GIF89a" + b"\x00" * 64, "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 64, "image/webp"),
        ("plain text, ünïcode\r\n\tindented".encode(), "text/plain"),
        (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "text/plain"),
        (b"MZ\x90\x00\x03" + b"\x00" * 300, "application/x-msdownload"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 64, "application/x-executable"),
        (b"\x00\x01\x02\x03 binary", None),
        ("latin-1 caf\xe9".encode("latin-1"), None),
        (b"", None),
    ],
)
def test_sniffing(content: bytes, expected: str | None) -> None:
    fileobj = io.BytesIO(content)
    assert sniff_mime_type(fileobj) == expected
    assert fileobj.tell() == 0  # rewound for the upload that follows


def test_multibyte_character_cut_at_the_end_of_the_head_is_still_text() -> None:
    content = b"a" * (HEAD_BYTES - 1) + "é".encode() + b"tail"
    assert sniff_mime_type(io.BytesIO(content)) == "text/plain"


def test_invalid_utf8_inside_the_head_is_not_text() -> None:
    content = b"a" * 100 + b"\xc3\x28" + b"a" * HEAD_BYTES
    assert sniff_mime_type(io.BytesIO(content)) is None
