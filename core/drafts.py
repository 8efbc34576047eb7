"""What a drafted answer looks like in a ticket's thread, before and after a person used it. Pure:
the copilot (``core/copilot.py``) writes drafts, the desk sends them, this says how they read."""

from __future__ import annotations

from storage.drafts import Draft

# The draft's message holds the whole draft under its header (what Send relays is what is shown).
DRAFT_TEXT_LIMIT = 1800
HEADER = "💡 **Suggested answer (not sent)**"

ENDINGS = {
    "sent": "✅ Suggested answer, sent as it was by {name}",
    "edited": "✏️ Suggested answer, edited and sent by {name}",
    "discarded": "🗑️ Suggested answer, discarded by {name}",
    "superseded": "Suggested answer, not used: the ticket was answered, closed or taken over",
}


def clip_draft(text: str) -> str:
    """A draft short enough to be shown whole (cut at a word, marked)."""
    text = text.strip()
    if len(text) <= DRAFT_TEXT_LIMIT:
        return text
    cut = text.rfind(" ", 0, DRAFT_TEXT_LIMIT - 2)
    return text[: cut if cut > 0 else DRAFT_TEXT_LIMIT - 2].rstrip() + " …"


def _quoted(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.split("\n"))


def suggested_text(draft: Draft) -> str:
    """The draft's message while it can still be sent."""
    asked = (
        f" (asked by {draft.requested_by_name}: {draft.instructions})" if draft.instructions else ""
    )
    return f"{HEADER}{asked[:150]}\n{_quoted(draft.text)}"


def ended_text(draft: Draft) -> str:
    """The draft's message once it was used or dropped: no buttons, and who did what."""
    ending = ENDINGS.get(draft.status, "Suggested answer").format(
        name=draft.decided_by_name or "someone"
    )
    return f"{ending}\n{_quoted(draft.text)}"
