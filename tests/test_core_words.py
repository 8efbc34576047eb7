"""The policy's word lists: whole words, simple endings, phrases; measured on the corpora in
tests/data."""

from __future__ import annotations

import pytest

from bench.word_lists import measure, person_requests, shop_messages
from core.policy import defaults
from core.risk import RiskPolicy
from core.words import WordList

DEFAULTS = defaults()
LEGAL = WordList(DEFAULTS["risk"]["legal_medical_keywords"])
HANDOVER = WordList(DEFAULTS["desk"]["handover_phrases"])


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("I want to sue", "sue"),
        ("suing", "sue"),
        ("sue your company", "sue"),
        ("they sued us", "sue"),
        ("my lawyer's letter", "lawyer"),
        ("two lawyers", "lawyer"),
        ("I got injuries", "injur*"),
        ("I was diagnosed", "diagnos*"),
        ("see you in court", "in court"),
        ("food poisoning", "poisoning"),
        ("food court", None),
        ("poison ivy spray", None),
        ("an issue with my order", None),
        ("pursue", None),
        ("tennis court", None),
        ("SUE YOU", "sue"),
        ("I\u2019m suing", "sue"),
    ],
)
def test_legal_and_medical_words(text, found):
    assert LEGAL.find(text) == found


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("talk to a human", "talk to a human"),
        ("Talk  to\na human please", "talk to a human"),
        ("a humane mistake", None),
        ("a real personal discount", None),
        ("get me a real person", "real person"),
        ("I'm a human who loves coffee", None),
        ("do you have a manager's special", None),
        ("put me through to your manager", "your manager"),
    ],
)
def test_handover_phrases_match_whole_words(text, found):
    assert HANDOVER.find(text) == found


def test_an_entry_with_a_star_matches_word_beginnings_and_an_empty_list_nothing():
    assert WordList(["pregnan*"]).find("pregnancy") == "pregnan*"
    assert WordList([]).find("anything") is None
    assert RiskPolicy(DEFAULTS).message_topic("I'm suing you") == "suing"


def test_the_default_lists_on_the_corpora():
    assert len(shop_messages()) >= 150 and len(person_requests()) >= 50
    figures = measure(DEFAULTS)
    assert figures.false_alarms == [], "no ordinary shop message goes to a person"
    assert figures.recall >= 0.95, figures.missed
