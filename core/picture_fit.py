"""Pictures made to fit what the Messages API takes: a photo over its size (an image's base64 at
most 5 MB) or its pixels (8000 a side) is shown to Claude smaller, as the API would scale it anyway
(1568 pixels on the long edge), instead of not at all. The operators keep the original.

Pillow reads and writes the pictures (it is already here for matplotlib); a picture it cannot read,
or one whose pixels would be a decompression bomb, is not shown.
"""

from __future__ import annotations

import io

from core.files import IMAGE_MAX_BYTES

LONG_EDGE = 1568  # what the API scales a picture down to before Claude reads it
MAX_SIDE = 8000  # the API refuses a picture larger than this on either side


def needs_fitting(data: bytes) -> bool | None:
    """Whether a picture must be made smaller for the API (None: it cannot be read). Reads only
    its header unless it is over the size."""
    if len(data) > IMAGE_MAX_BYTES:
        return True
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as picture:
            return max(picture.size) > MAX_SIDE
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def fitted(data: bytes) -> bytes | None:
    """The picture as a JPEG at most LONG_EDGE pixels on its long edge (transparency on white),
    within the API's size; None if it cannot be read."""
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
        return None
    smaller = out.getvalue()
    return smaller if len(smaller) <= IMAGE_MAX_BYTES else None
