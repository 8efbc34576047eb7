"""Text helpers for Discord's limits."""

from __future__ import annotations

DISCORD_MESSAGE_LIMIT = 2000
_FENCE = "```"
# Best boundaries first: paragraph, line, sentence end, word.
_BREAKS = ("\n\n", "\n", ". ", "! ", "? ", "; ", ", ", " ")


def _cut_point(text: str, limit: int) -> int:
    """Where to cut ``text`` (longer than limit) so the first part is <= limit characters."""
    window = text[:limit]
    for sep in _BREAKS:
        at = window.rfind(sep)
        # Don't cut absurdly early (a lone paragraph break near the start); keep chunks useful.
        if at >= limit // 3:
            return at + len(sep)
    # A hard cut inside a very long word; never through a run of backticks (``` fence markers, even
    # two of them back to back), so every marker stays whole.
    cut = limit
    while cut > 0 and text[cut - 1] == "`" and text[cut] == "`":
        cut -= 1
    return cut or limit


def split_message(text: str, limit: int = DISCORD_MESSAGE_LIMIT) -> list[str]:
    """Split text into Discord messages of at most ``limit`` characters on sensible boundaries.

    Paragraphs, then lines, sentences and words; a hard cut only inside a very long word.
    A code block split across messages is closed and reopened so both halves render.
    """
    text = text.strip()
    if not text:
        return []
    reserve = len(_FENCE) + 1  # room to close a code fence at the end of a chunk
    chunks: list[str] = []
    reopen = ""
    while text:
        text = reopen + text
        if len(text) <= limit:
            chunks.append(text)
            break
        cut = _cut_point(text, limit - reserve)
        head, text = text[:cut].rstrip(), text[cut:].lstrip("\n ")
        if head.count(_FENCE) % 2 == 1:
            head += "\n" + _FENCE
            reopen = _FENCE + "\n"
        else:
            reopen = ""
        if head.strip():
            chunks.append(head)
    return chunks
