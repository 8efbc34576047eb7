"""Files customers and operators send: what they are (read from their bytes, not their names), what
is taken (caps), what Claude can see, and how they are described. Pure: no Discord, no database.

Claude reads images (JPEG, PNG, GIF, WebP) and PDFs; anything else is kept for the operators and
described to Claude by name and size. A file's declared type is not trusted: only bytes that start
as an image or a PDF are shown as one.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MB = 1024 * 1024
PDF = "application/pdf"
IMAGES = ("image/jpeg", "image/png", "image/gif", "image/webp")

# What the Messages API takes (an image or a request over these is refused with a 400, and a
# refused file in the history would refuse every later answer of the conversation):
IMAGE_MAX_BYTES = 5 * MB * 3 // 4  # an image's base64 is at most 5 MB
PDF_MAX_BYTES = 16 * MB
REQUEST_FILE_BYTES = 20 * MB  # every file shown in one request (base64: ~27 MB of the 32 MB)
REQUEST_FILES = 20  # more images than this and each must be under 2000 px a side


def sniff(data: bytes) -> str | None:
    """The media type the bytes themselves say, for the types Claude reads; else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return PDF
    return None


def size_text(size: int) -> str:
    if size >= MB:
        return f"{size / MB:.1f} MB"
    return f"{max(1, round(size / 1024))} KB"


@dataclass(frozen=True)
class Caps:
    """[attachments] in the policy."""

    max_file_bytes: int
    files_per_message: int
    bytes_per_day: int


@dataclass(frozen=True)
class Offered:
    """A file as it came: its name, the size Discord announced, its bytes (None: not fetched,
    because the announced size was already over the cap, or the download failed)."""

    filename: str
    size: int
    data: bytes | None
    declared_type: str | None = None


@dataclass(frozen=True)
class Taken:
    filename: str
    size: int
    media_type: (
        str  # sniffed for images and PDFs; else the declared type or "application/octet-stream"
    )
    readable: bool  # an image or a PDF: Claude sees it
    data: bytes


@dataclass(frozen=True)
class Refused:
    filename: str
    why: str


def take(
    offered: Sequence[Offered], caps: Caps, used_today: int
) -> tuple[list[Taken], list[Refused]]:
    """What of one message's files is kept, in order, and what is refused (and why)."""
    taken: list[Taken] = []
    refused: list[Refused] = []
    for file in offered:
        size = len(file.data) if file.data is not None else file.size
        if len(taken) >= caps.files_per_message:
            refused.append(
                Refused(file.filename, f"at most {caps.files_per_message} files a message")
            )
        elif size > caps.max_file_bytes:
            refused.append(
                Refused(
                    file.filename,
                    f"{size_text(size)}; files can be up to {size_text(caps.max_file_bytes)}",
                )
            )
        elif file.data is None:
            refused.append(Refused(file.filename, "it could not be downloaded"))
        elif used_today + size > caps.bytes_per_day:
            refused.append(
                Refused(file.filename, "today's allowance for files is used up; try tomorrow")
            )
        else:
            sniffed = sniff(file.data)
            media = sniffed or file.declared_type or "application/octet-stream"
            taken.append(Taken(file.filename, size, media, sniffed is not None, file.data))
            used_today += size
    return taken, refused


def too_large_for_claude(media_type: str, size: int) -> bool:
    """An image or PDF the Messages API would refuse by its size."""
    return size > (PDF_MAX_BYTES if media_type == PDF else IMAGE_MAX_BYTES)


def shown_in_one_request(files: Sequence[tuple[int, str, int]]) -> dict[int, str]:
    """Of the images and PDFs a request would show (id, media type, size; oldest first), those it
    does not show, with why: too large for the API, or left out so the request stays within what
    the API takes (the newest are shown first: the customer's latest files matter most)."""
    withheld: dict[int, str] = {}
    budget, count = REQUEST_FILE_BYTES, REQUEST_FILES
    for file_id, media_type, size in reversed(files):
        if too_large_for_claude(media_type, size):
            withheld[file_id] = "too large for you to see; the operators have it"
        elif size > budget or count == 0:
            withheld[file_id] = "not shown again in this request (older files are left out)"
        else:
            budget, count = budget - size, count - 1
    return withheld


def refusal_text(refused: Sequence[Refused]) -> str:
    """One plain sentence for the customer."""
    parts = "; ".join(f"“{r.filename[:80]}” ({r.why})" for r in refused)
    return f"I couldn't take {parts}. Nothing else is affected: the rest of your message is here."


def described(attachments: Sequence[dict[str, Any]]) -> str:
    """The files of a turn in words (what Claude reads beside the pictures it sees)."""
    lines = []
    for a in attachments:
        name, size = a.get("filename", "file"), size_text(int(a.get("size") or 0))
        if a.get("gone"):
            lines.append(f"{name} ({size}): no longer kept")
        elif a.get("withheld"):
            lines.append(f"{name} ({size}): {a['withheld']}")
        elif a.get("readable"):
            kind = "PDF" if a.get("media_type") == PDF else "image"
            lines.append(f"{name} ({kind}, {size}): shown to you")
        elif a.get("file_id"):
            lines.append(f"{name} ({a.get('media_type')}, {size}): you cannot open this type")
    return "\n".join(lines)


def content_block(media_type: str, data: bytes) -> dict[str, Any]:
    """The Messages API block that shows this file to Claude."""
    source = {"type": "base64", "media_type": media_type, "data": base64.b64encode(data).decode()}
    return {"type": "document" if media_type == PDF else "image", "source": source}
