"""Finding the policy's words in what customers write: whole words, simple English endings, phrases.

One matcher for every word list in the policy (legal/medical words, hand-over phrases, priority
words), so they all behave alike. A list entry is a word or a phrase:

- it matches whole words only: "sue" is not found in "issue", "a human" not in "a humane mistake",
  "real person" not in "a real personal discount";
- its last word also matches its simple endings: "sue" finds sues, sued, suing; "injury" finds
  injuries; "lawyer" finds lawyers;
- a final ``*`` matches any word beginning: "diagnos*" finds diagnosis, diagnosed;
- a possessive 's is allowed ("my lawyer's letter");
- spaces match any white space, and curly apostrophes are read as straight ones.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable


def _ending(word: str) -> str:
    """The regex for the last word of an entry, with its simple English endings."""
    if word.endswith("*"):
        return re.escape(word[:-1]) + r"\w*"
    if len(word) > 2 and word.endswith("e"):
        return re.escape(word[:-1]) + r"(?:e|es|ed|ing|er|ers)"  # sue: sues, sued, suing
    if len(word) > 2 and word.endswith("y") and word[-2] not in "aeiou":
        return re.escape(word[:-1]) + r"(?:y|ies|ied)"  # injury: injuries
    return re.escape(word) + r"(?:s|es|ed|ing)?"


def _entry(entry: str) -> str:
    words = entry.casefold().replace("\u2019", "'").split()
    # lawyer's
    return r"\s+".join([*(re.escape(w) for w in words[:-1]), _ending(words[-1])]) + "(?:'s)?"


class WordList:
    """A compiled word list; ``find`` returns the entry a text mentions first, or None."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.entries = [e.strip() for e in entries if e.strip()]
        # Longest entries first, so "legal advice" wins over "legal" where both are listed.
        ordered = sorted(self.entries, key=len, reverse=True)
        self._each = [(entry, re.compile(_entry(entry))) for entry in ordered]
        # One alternation without groups for the search (named groups made it twice as slow); which
        # entry matched is worked out only when asked, on the few characters found. An apostrophe
        # belongs to the word ("don't" is one word); a possessive 's is allowed above.
        body = "|".join(_entry(entry) for entry in ordered)
        self._pattern = re.compile(r"(?<![\w'])(?:" + body + r")(?![\w'])") if ordered else None

    def found_text(self, text: str) -> str | None:
        """The words as the customer wrote them (for explanations), or None."""
        if self._pattern is None or not text:
            return None
        match = self._pattern.search(text.casefold().replace("\u2019", "'"))
        return match.group() if match else None

    def find(self, text: str) -> str | None:
        """The list entry the text mentions first, or None."""
        found = self.found_text(text)
        if found is None:
            return None
        return next(entry for entry, pattern in self._each if pattern.fullmatch(found))


@functools.lru_cache(maxsize=64)
def word_list(entries: tuple[str, ...]) -> WordList:
    """A compiled list, kept for the next call with the same entries (the policy's lists never
    change)."""
    return WordList(entries)
