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


def bare_phrase(text: str) -> str:
    """A short message as a phrase to look up: lower case, single spaces, no end punctuation
    ("Help!" -> "help")."""
    return " ".join(text.casefold().strip(" .!?").split())


def for_people(seconds: float) -> str:
    """A duration as a person says it: "40 seconds", "1 minute", "10 minutes", "1 hour 30 minutes",
    "2 days"."""
    seconds = max(0, round(seconds))

    def unit(n: int, name: str) -> str:
        return f"{n} {name}{'' if n == 1 else 's'}"

    if seconds < 90:
        return unit(seconds, "second")
    minutes = round(seconds / 60)
    if minutes < 90:
        return unit(minutes, "minute")
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return unit(hours, "hour") + (f" {unit(minutes, 'minute')}" if minutes else "")
    days, hours = divmod(hours, 24)
    return unit(days, "day") + (f" {unit(hours, 'hour')}" if hours else "")
