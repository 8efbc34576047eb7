"""How well the policy's word lists tell messages for a person from ordinary shop talk.

    python -m bench.word_lists [--policy policy.toml] [--show]

Reads two corpora shipped with the tests: ``tests/data/shop_messages.txt`` (ordinary shop
messages, some written as traps for naive matching: "food court", "a humane mistake") and
``tests/data/person_requests.txt`` (legal, medical and hand-over requests). Prints the false
positives among shop messages (target 0) and the recall on person requests (target >= 95%),
with the lists as the policy file sets them. ``--show`` lists every miss and false alarm.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from core.policy import Policy, defaults, load_policy
from core.words import WordList

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"


def _lines(name: str) -> list[str]:
    text = (DATA / name).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def shop_messages() -> list[str]:
    return [line.removesuffix("(trap)").strip() for line in _lines("shop_messages.txt")]


def person_requests() -> list[tuple[str, str]]:
    """(kind, message): kind is legal_medical or handover."""
    return [tuple(line.split("|", 1)) for line in _lines("person_requests.txt")]  # type: ignore[misc]


@dataclass
class Figures:
    shop: int = 0
    requests: int = 0
    # (message, the entry it matched)
    false_alarms: list[tuple[str, str]] = field(default_factory=list)
    missed: list[tuple[str, str]] = field(default_factory=list)  # (kind, message)

    @property
    def recall(self) -> float:
        return 1 - len(self.missed) / self.requests if self.requests else 0.0


def measure(policy: Policy) -> Figures:
    lists = {
        "legal_medical": WordList(policy.risk.legal_medical_keywords),
        "handover": WordList(policy.desk.handover_phrases),
    }
    figures = Figures()
    for message in shop_messages():
        figures.shop += 1
        for words in lists.values():
            if (entry := words.find(message)) is not None:
                figures.false_alarms.append((message, entry))
                break
    for kind, message in person_requests():
        figures.requests += 1
        if lists[kind].find(message) is None:
            figures.missed.append((kind, message))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--policy", type=Path, help="a policy file (default: the built-in defaults)"
    )
    parser.add_argument("--show", action="store_true", help="list every miss and false alarm")
    args = parser.parse_args()
    policy = load_policy(args.policy) if args.policy else defaults()
    f = measure(policy)
    print(f"word lists from {policy.source}")
    print(f"shop messages: {f.shop}, false positives: {len(f.false_alarms)} (target 0)")
    print(
        f"legal, medical and hand-over requests: {f.requests}, found: {f.requests - len(f.missed)},"
        f" recall {f.recall:.1%} (target >= 95%)"
    )
    if args.show:
        for message, entry in f.false_alarms:
            print(f"  false alarm: {message!r} matched {entry!r}")
        for kind, message in f.missed:
            print(f"  missed ({kind}): {message!r}")


if __name__ == "__main__":
    main()
