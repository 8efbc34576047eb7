"""Reading a typed answer to "Shall I go ahead?": only an unqualified yes confirms.

Pure and small: no discord, no database. The yes and no words come from the policy file
(``[confirmations]``), so a deployer can add other languages' words.

A reply is cut into known phrases (yes words, no words, politeness such as "please" or "thanks"). It
confirms only when nothing else is left: "yes", "Yes, go ahead please!", "👍". An acknowledgement is
not consent: "ok thanks", "perfect", "fine", "k" only show the customer read something (maybe an
earlier answer), so alone they are asked again; a yes word beside one still confirms ("ok, go
ahead"). A yes followed by anything else ("yes, but only 2", "ok but not today") is a new message
for Claude, and the confirmation stays pending; nothing runs on a qualified yes. A no followed by
more ("no, make it 2") cancels, and Claude answers the rest. Hedges ("maybe", "I think so", "no
problem?") are asked again.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable

# Politeness around an answer; on its own it answers nothing.
FILLERS = (
    "please",
    "pls",
    "plz",
    "thanks",
    "thank you",
    "thank you very much",
    "thanks a lot",
    "thx",
    "ty",
    "cheers",
    "oh",
    "ah",
    "well",
    "then",
    "much appreciated",
    "mate",
    "yes sir",
)
_HEDGES = re.compile(
    r"\b(maybe|perhaps|probably|i think|i guess|i suppose|not sure|unsure|possibly|might|kind"
    r" of|sort of|hmm+|"
    r"dunno|don't know|idk|wait|hold on|no problem|no worries|not yet)\b"
)
_TOKEN = re.compile(r"[\w']+|[\u2600-\u27bf\U0001f300-\U0001faff]")
# emoji variation selector, joiner, skin tones
_MODIFIERS = re.compile(r"[\ufe0f\u200d\U0001f3fb-\U0001f3ff]")


class Reply(enum.StrEnum):
    YES = "yes"  # confirm: run the action
    NO = "no"  # cancel
    NO_AND_MORE = "no_and_more"  # cancel, and the rest of the message is a new message for Claude
    UNCLEAR = "unclear"  # a hedge or a word we don't know: ask again
    OTHER = "other"  # a new message (a question, a change, a qualified yes): Claude answers it


def tokens(text: str) -> list[str]:
    lowered = _MODIFIERS.sub("", text.casefold().replace("\u2019", "'"))
    return [t.strip("'") for t in _TOKEN.findall(lowered) if t.strip("'")]


class ReplyReader:
    def __init__(
        self, yes_words: Iterable[str], no_words: Iterable[str], ack_words: Iterable[str] = ()
    ) -> None:
        self._phrases: dict[tuple[str, ...], str] = {}
        # Acknowledgements last: a word listed as both (an older policy file's "ok") only
        # acknowledges.
        for kind, words in (
            ("filler", FILLERS),
            ("no", no_words),
            ("yes", yes_words),
            ("ack", ack_words),
        ):
            for word in words:
                key = tuple(tokens(word))
                if key:
                    self._phrases[key] = kind
        self._longest = max((len(k) for k in self._phrases), default=1)

    def _segments(self, words: list[str]) -> tuple[list[str], int]:
        """The kinds of the known phrases from the start (longest match first), and how many words
        they cover."""
        kinds: list[str] = []
        i = 0
        while i < len(words):
            for size in range(min(self._longest, len(words) - i), 0, -1):
                kind = self._phrases.get(tuple(words[i : i + size]))
                if kind is not None:
                    kinds.append(kind)
                    i += size
                    break
            else:
                break
        return kinds, i

    def read(self, text: str) -> Reply:
        raw = text.strip()
        if not raw or "?" in raw:
            return Reply.OTHER
        words = tokens(raw)
        if _HEDGES.search(" ".join(words)):
            return Reply.UNCLEAR
        if not words:
            return Reply.UNCLEAR  # punctuation only
        kinds, covered = self._segments(words)
        answers = [k for k in kinds if k not in ("filler", "ack")]
        if covered == len(words):
            if answers and all(k == "yes" for k in answers):
                return Reply.YES
            if answers and all(k == "no" for k in answers):
                return Reply.NO
            return Reply.UNCLEAR  # "yes no", or only "thanks" / "ok thanks" / "perfect"
        if answers and answers[0] == "no" and "yes" not in answers:
            return Reply.NO_AND_MORE
        if answers or "ack" in kinds:
            # a qualified yes ("ok but not today"): Claude reads it; nothing runs
            return Reply.OTHER
        rest = words[covered:]
        if len(rest) <= 2 and not any(ch.isdigit() for w in rest for ch in w):
            return Reply.UNCLEAR  # a word or two we don't know ("hm", "lol")
        return Reply.OTHER
