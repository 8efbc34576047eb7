"""Pictures made to fit what the Messages API takes: a photo over its size (an image's base64 at
most 5 MB) or its pixels (8000 a side) is shown to Claude smaller, as the API would scale it anyway
(1568 pixels on the long edge), instead of not at all. The operators keep the original.

Pillow reads and writes the pictures (it is already here for matplotlib). A picture it cannot read,
or one of more than MAX_PIXELS (a few hundred KB of PNG can hold a picture that takes gigabytes to
decode), is not shown. Pictures are decoded one at a time, in a thread (``PictureFits``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import io

from core.files import IMAGE_MAX_BYTES
from storage.files import StoredFile

LONG_EDGE = 1568  # what the API scales a picture down to before Claude reads it
MAX_SIDE = 8000  # the API refuses a picture larger than this on either side
MAX_PIXELS = 64_000_000  # a 48-megapixel phone photo fits; decoding one takes ~200 MB at most
UNREADABLE = "could not be read as a picture; the operators have it"
TOO_LARGE = "too large for you to see; the operators have it"
FITS_KEPT = 64  # made-smaller pictures kept in memory (a few hundred KB each)


def needs_fitting(data: bytes) -> bool | str:
    """Whether a picture must be made smaller for the API, or why it cannot be shown. Reads only
    its header."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as picture:
            width, height = picture.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return UNREADABLE
    if width * height > MAX_PIXELS:
        return TOO_LARGE
    return len(data) > IMAGE_MAX_BYTES or max(width, height) > MAX_SIDE


def fitted(data: bytes) -> bytes | str:
    """The picture as a JPEG at most LONG_EDGE pixels on its long edge (transparency on white),
    within the API's size; or why it cannot be shown."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.draft("RGB", (LONG_EDGE, LONG_EDGE))  # JPEG: decode at a smaller scale
            opened.thumbnail((LONG_EDGE, LONG_EDGE))
            picture: Image.Image = opened
            if opened.mode in ("RGBA", "LA", "P"):
                rgba = opened.convert("RGBA")
                picture = Image.new("RGB", rgba.size, "white")
                picture.paste(rgba, mask=rgba.getchannel("A"))
            out = io.BytesIO()
            picture.convert("RGB").save(out, "JPEG", quality=85)
    except (OSError, ValueError, Image.DecompressionBombError):
        return UNREADABLE
    smaller = out.getvalue()
    return smaller if len(smaller) <= IMAGE_MAX_BYTES else TOO_LARGE


def fit_picture(picture: StoredFile) -> StoredFile | str | None:
    """None: shown as it is; a smaller copy (a JPEG); or why it is not shown."""
    need = needs_fitting(picture.data)
    if need is False:
        return None
    smaller = need if isinstance(need, str) else fitted(picture.data)
    if isinstance(smaller, str):
        return smaller
    return dataclasses.replace(picture, media_type="image/jpeg", size=len(smaller), data=smaller)


class PictureFits:
    """Each picture as the API takes it, worked out once per file per process, in a thread
    (decoding is CPU), one picture at a time (a burst of big ones costs one picture's memory)."""

    def __init__(self) -> None:
        self._fits: dict[int, StoredFile | str | None] = {}
        self._lock = asyncio.Lock()

    async def fit(self, picture: StoredFile) -> StoredFile | str:
        """The picture itself, a smaller copy, or why it is not shown."""
        async with self._lock:
            if picture.id not in self._fits:
                fit = await asyncio.to_thread(fit_picture, picture)
                if len(self._fits) >= FITS_KEPT:
                    self._fits.pop(next(iter(self._fits)))
                self._fits[picture.id] = fit
            fit = self._fits[picture.id]
        return picture if fit is None else fit
