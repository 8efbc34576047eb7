"""The policy file (TOML): the business rules a deployer reads and edits.

Every key has a type, a default and a range here, in one table (``SPEC``). Loading checks
the file against it: an unknown key (a typo), a wrong type or an out-of-range value stops
start-up with the key, its line in the file and the fix. Missing keys take the default.
"""

from __future__ import annotations

import difflib
import logging
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from core.actions import DecisionType
from core.policy_sections import TypedSections
from core.risk_table import DEFAULT_LEVELS, DEFAULT_STRATEGIES, LEVELS, STRATEGIES

log = logging.getLogger(__name__)

DEFAULT_SYSTEM_PROMPT = """\
You are the customer assistant of {business_name}, talking with a customer in Discord direct
messages. Answer briefly and plainly. Use the tools to look things up instead of guessing, and never
invent order details, prices or policies. When a tool result says an action was not performed, tell
the customer so honestly. Never claim an action is done unless a tool result says it was executed.
Before answering a factual question you are not sure about, call check_confidence. When you need a
fact or decision you don't have, use ask_human; when the customer wants a person,
hand_over_to_human.
"""


# US dollars per million tokens (Anthropic's list prices): input, output, a cache write (5-minute
# lifetime) and a cache read. A model is priced by the longest name here it starts with.
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "claude-opus-4-5": {"input": 5.0, "output": 25.0, "cache_write": 6.25, "cache_read": 0.5},
    "claude-opus-4": {"input": 15.0, "output": 75.0, "cache_write": 18.75, "cache_read": 1.5},
    "claude-sonnet-4": {"input": 3.0, "output": 15.0, "cache_write": 3.75, "cache_read": 0.3},
    "claude-haiku-4-5": {"input": 1.0, "output": 5.0, "cache_write": 1.25, "cache_read": 0.1},
    "claude-3-5-haiku": {"input": 0.8, "output": 4.0, "cache_write": 1.0, "cache_read": 0.08},
}
PRICE_KEYS = ("input", "output", "cache_write", "cache_read")

# Words customers and help articles use for one thing (shop English); a deployer adds their own.
DEFAULT_SYNONYMS = [
    "ship, shipping, deliver, delivery, send, post, postage, dispatch, courier, carrier",
    "arrive, arrival, receive, come",
    "parcel, package, shipment, box",
    "cost, price, fee, charge, how much, expensive",
    "return, returning, send back, bring back",
    "refund, money back, reimburse, repay, reimbursement",
    "exchange, swap, replace, switch",
    "broken, damaged, smashed, cracked, chipped, shattered, broke",
    "wrong, incorrect, mistake, different",
    "lost, missing, never arrived, disappeared",
    "cancel, cancellation, stop, terminate, quit, unsubscribe",
    "pause, skip, hold, suspend, on hold",
    "subscription, club, membership, member, subscribe",
    "discount, coupon, code, promo, voucher, deal, reduction, money off",
    "student, university, college",
    "colour, color, glaze, shade",
    "size, big, large, small, capacity, ml, volume",
    "engrave, engraving, personalise, personalize, personalised, personalized",
    "dishwasher, dish washer, machine wash",
    "microwave, microwavable, reheat, heat up",
    "stain, stains, marks, discolouration",
    "invoice, receipt, bill",
    "password, log in, login, sign in",
    "delete, erase, remove my data, gdpr",
    "support, customer service, help desk, team",
    "contact, reach, phone, call, e-mail",
    "class, lesson, workshop, course",
    "gift, present, gift wrap",
    "track, tracking, where is my, status",
    "express, fast, quick, tomorrow, next day, urgent, rush",
    "address, location",
    "customs, import, duty, duties, import tax",
    "warranty, guarantee, defect, crazing",
    "material, made of, porcelain, ceramic, stoneware, clay",
    "restock, back in stock, sold out, in stock, out of stock",
    "set, pair, bundle",
    "pay later, instalment, installment, klarna",
    "bulk, wholesale, large order, business, company",
]

# Measured on the corpora in tests/data with `python -m bench.word_lists`: no ordinary shop message
# matches, and they find the legal, medical and hand-over requests (see the README). Matching:
# core/words.py.
LEGAL_MEDICAL_WORDS = [
    "sue",
    "lawyer",
    "lawsuit",
    "attorney",
    "solicitor",
    "legal advice",
    "legal action",
    "legal rights",
    "to court",
    "in court",
    "court case",
    "small claims",
    "breach of contract",
    "consumer protection",
    "liable",
    "liability",
    "negligence",
    "negligent",
    "diagnos*",
    "symptom",
    "medication",
    "medicine",
    "allergic",
    "allergy",
    "pregnan*",
    "breastfeed*",
    "doctor",
    "poisoned",
    "poisoning",
    "toxic",
    "overdose",
    "injur*",
    "stitches",
    "hospital",
    "heart condition",
    "blood pressure",
    "palpitation",
    "rash",
]
HANDOVER_PHRASES = [
    "talk to a human",
    "speak to a human",
    "talk to a person",
    "speak to a person",
    "speak with a person",
    "talk with a person",
    "real person",
    "actual person",
    "real human",
    "human being",
    "human agent",
    "human please",
    "is there a human",
    "get a human",
    "need a human",
    "want a human",
    "live agent",
    "talk to someone",
    "speak to someone",
    "customer service representative",
    "a representative",
    "talk to an agent",
    "speak to an agent",
    "your manager",
    "speak to a manager",
    "talk to a manager",
    "supervisor",
    "not a bot",
    "talk to a bot",
]


class PolicyError(ValueError):
    """The policy file is unreadable or holds wrong keys or values (one line each in the
    message)."""

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


@dataclass(frozen=True)
class Key:
    type: type | tuple[type, ...]
    default: Any
    lo: float | None = None
    hi: float | None = None
    help: str = ""
    choices: tuple[str, ...] = ()  # the words allowed (for text, or each item of a list)


# section -> key -> spec. Adding a rule means adding a line here and reading it where it is used.
# Keys an older policy file may still have, and why they no longer do anything: a warning, not a
# stop.
RETIRED = {
    (
        "messages",
        "action_unavailable",
    ): "every strategy now has a step kind, so this text is never shown"
}

SPEC: dict[str, dict[str, Key]] = {
    "agent": {
        "business_name": Key(str, "Example Shop", help="the name customers see"),
        "system_prompt": Key(
            str, DEFAULT_SYSTEM_PROMPT, help="instructions for Claude; {business_name} is filled in"
        ),
    },
    "conversation": {
        "idle_minutes": Key(
            int,
            30,
            1,
            7 * 24 * 60,
            "silence after which the next message starts a new conversation",
        ),
    },
    "llm": {
        "max_tokens": Key(int, 1024, 64, 8192, "longest answer Claude may write"),
        "history_turns": Key(int, 40, 2, 500, "most stored turns sent to Claude"),
        "history_tokens": Key(int, 24000, 500, 150000, "approximate token budget for the history"),
        "max_tool_rounds": Key(int, 6, 1, 20, "tool calls Claude may chain before it must answer"),
        "retry_after_failure_seconds": Key(
            (int, float), 60, 1, 3600, "wait before trying Claude again"
        ),
        "prompt_caching": Key(
            bool,
            True,
            help="mark the tools, system prompt and conversation for the API's prompt cache",
        ),
        "prices": Key(
            dict,
            DEFAULT_PRICES,
            help="[llm.prices]: per model, dollars per million tokens (input, output,"
            " cache_write, cache_read); added to the defaults",
        ),
        "max_answer_attempts": Key(
            int, 3, 1, 20, "tries per message before the bot stops retrying on its own"
        ),
    },
    "knowledge": {
        "passages": Key(
            int, 3, 0, 10, "passages given to Claude with each answer (0: only search_knowledge)"
        ),
        "min_score": Key(
            (int, float),
            0.4,
            0,
            1,
            "how much of a question a passage must cover (0-1, rare words weigh more) to be given",
        ),
        "synonyms": Key(
            list,
            DEFAULT_SYNONYMS,
            help="groups of words or phrases meaning one thing to the search, comma-separated,"
            ' e.g. "return, send back"',
        ),
    },
    "copilot": {
        "enabled": Key(
            bool, True, help="draft an answer on every question and hand-over ticket (needs AI)"
        ),
        "model": Key(
            str, "", help="the Claude model that drafts (empty: ANTHROPIC_MODEL, the customers')"
        ),
        "max_drafts_per_day": Key(int, 500, 0, 100_000, "drafts written per day (UTC), at most"),
        "max_tokens": Key(int, 500, 64, 2000, "the longest draft Claude may write"),
        "summarize_after_turns": Key(
            int,
            12,
            0,
            1000,
            "a ticket whose conversation has this many messages gets a three-line summary"
            " at the top of its thread (0: never)",
        ),
    },
    "delivery": {
        "retry_base_seconds": Key(
            (int, float), 2, 0.001, 600, "first wait after Discord refused a send for now"
        ),
        "retry_max_seconds": Key((int, float), 300, 0.001, 86400, "longest wait between retries"),
        "stall_seconds": Key(
            (int, float),
            60,
            1,
            3600,
            "a Discord request waiting longer than this means the"
            " client is wedged: logged, recovered, counted in /stats",
        ),
        "catch_up_hours": Key(
            (int, float),
            24,
            0,
            720,
            "after a start, read what customers active this recently"
            " and open tickets' threads got while the bot was down"
            " (0: off)",
        ),
    },
    "ha": {
        "takeover_seconds": Key(
            (int, float),
            10,
            3,
            300,
            "with PostgreSQL: a standby takes over within this long"
            " after the leader stops (killed, host lost, cut off)",
        ),
    },
    "abuse": {
        "messages_per_minute": Key(
            int,
            10,
            0,
            1000,
            "more DMs than this from one customer within a minute are"
            " stored but not answered (the customer is told once); 0: off",
        ),
        "min_account_age_days": Key(
            (int, float),
            0,
            0,
            3650,
            "DMs from Discord accounts younger than this are stored but not answered; 0: off",
        ),
        "max_open_tickets": Key(
            int,
            5,
            1,
            100,
            "tickets one customer may have waiting at once: past it, the"
            " assistant's questions join the newest one and approvals are"
            " not sent",
        ),
        "tokens_per_day": Key(
            int,
            0,
            0,
            1_000_000_000,
            "Claude tokens one customer may use in a day (UTC), counted as the API reports them:"
            " past it their messages go to a person (0: off)",
        ),
    },
    "attachments": {
        "max_file_mb": Key(
            (int, float),
            5,
            0.1,
            25,
            "largest file a customer may send, in MB (Claude is shown pictures up to 3.75 MB)",
        ),
        "files_per_message": Key(int, 4, 1, 10, "files taken from one message; more are refused"),
        "mb_per_customer_per_day": Key(
            (int, float), 25, 1, 10_000, "MB of files one customer may send in a day (UTC)"
        ),
        "claude_sees_files": Key(
            bool, True, help="Claude sees images and PDFs (false: described by name and size only)"
        ),
        "keep_days": Key(
            int, 90, 0, 3650, "customers' files are deleted after this many days (0: kept)"
        ),
    },
    "feedback": {
        "ask_after_close": Key(
            bool, True, help="after a ticket closes, ask the customer to rate the help (1-5)"
        ),
        "ask_after_ai": Key(
            bool,
            False,
            help=(
                "after a conversation only the assistant handled ends (idle), ask for a rating too"
            ),
        ),
    },
    "agents": {
        "auto_approve": Key(
            list,
            [],
            help=(
                "agents' actions the policy approves up to an amount, e.g."
                ' ["refund:50"] (MCP request_approval); everything else waits'
                " for a person"
            ),
        ),
        "approvers": Key(
            dict,
            {},
            help=(
                "distinct operators who must approve an agent's action, e.g. { refund = 2 }"
                " (1 to 5; an agent may ask for more with request_approval's approvers)"
            ),
        ),
        "approval_minutes": Key(
            (int, float),
            60,
            1,
            10080,
            "an agent's approval request nobody decided in this time expires (never approved)",
        ),
        "max_connections": Key(
            int,
            128,
            1,
            10000,
            "open connections to the MCP port at once; more are closed at"
            " once (the bot keeps its files for Discord and Claude)",
        ),
        "max_calls_per_agent": Key(
            int,
            32,
            1,
            1000,
            "calls of one agent in progress (waiting) at once; more are"
            " refused with 429 until some return",
        ),
        "request_seconds": Key(
            (int, float),
            10,
            1,
            120,
            "a request's headers and body must arrive within this"
            " time, or the connection is closed",
        ),
    },
    "discord": {
        "requests_per_second": Key(
            (int, float),
            45,
            1,
            50,
            "the pace of every request the bot starts itself (Discord allows 50 a second in all)",
        ),
    },
    "desk": {
        "note_prefix": Key(
            str, "//", help="operator messages starting with this stay between operators"
        ),
        "transcript_turns": Key(int, 8, 0, 30, "recent conversation turns shown on a new ticket"),
        "urgent_keywords": Key(
            list,
            [
                "payment",
                "charge",
                "card",
                "refund",
                "fraud",
                "stolen",
                "hacked",
                "password",
                "security",
                "locked out",
                "unauthorized",
            ],
            help="words that make a ticket urgent (payment or security)",
        ),
        "high_keywords": Key(
            list,
            [
                "complaint",
                "complain",
                "angry",
                "furious",
                "terrible",
                "unacceptable",
                "frustrated",
                "disappointed",
                "ridiculous",
                "lawyer",
                "worst",
            ],
            help="words that make a ticket high priority (complaints, frustration)",
        ),
        "handover_phrases": Key(
            list,
            HANDOVER_PHRASES,
            help="a customer message with one of these goes to a person without the assistant",
        ),
        "urgent_decision_types": Key(
            list,
            ["financial"],
            help="decision types whose approvals are urgent (payments)",
            choices=tuple(d.value for d in DecisionType),
        ),
        "auto_close_hours": Key(
            (int, float),
            0,
            0,
            8760,
            'a ticket quiet this long gets "anything else?", then'
            " closes after auto_close_grace_hours (0: off)",
        ),
        "transcript_to_customer": Key(
            bool,
            False,
            help=(
                "on close, also send the customer their copy of the"
                " transcript (without internal notes)"
            ),
        ),
        "auto_close_grace_hours": Key(
            (int, float), 12, 0.01, 720, 'from "anything else?" to closing'
        ),
        "hours": Key(
            list,
            [],
            help='when people are at the desk, e.g. ["mon-fri 09:00-17:30"]; empty: always',
        ),
        "timezone": Key(str, "UTC", help='the time zone of [desk] hours, e.g. "Europe/Paris"'),
        "escalation": Key(
            list,
            [],
            help=(
                "an unanswered or undecided ticket mentions the next role at each step, e.g."
                " [{after_minutes = 15, mention_role_id = 123}, {after_minutes = 60,"
                " mention_role_id = 456}]"
            ),
        ),
        "on_call_role_id": Key(
            int,
            0,
            0,
            2**63 - 1,
            "outside [desk] hours, new tickets and reminders mention this"
            " role instead of the operators (0: the operators as usual)",
        ),
    },
    "risk": {
        "confidence_threshold": Key(
            int, 70, 0, 100, "below this confidence the agent asks a person instead"
        ),
        "confirmation_minutes": Key(
            (int, float), 10, 0.5, 1440, "a customer confirmation expires after this"
        ),
        "amount_threshold": Key(
            (int, float), 100, 0, 10**9, "money above this makes an action financial/high"
        ),
        "approvers_above": Key(
            (int, float),
            0,
            0,
            10**9,
            "a customer's action with money above this needs two operators' approval (0: off)",
        ),
        "amount_params": Key(
            list,
            ["amount", "total", "price", "refund", "value", "cost", "sum"],
            help="parameter names holding money",
        ),
        "personal_data_params": Key(
            list,
            [
                "card",
                "card_number",
                "cvv",
                "cvc",
                "password",
                "passcode",
                "pin",
                "ssn",
                "iban",
                "account_number",
                "medical",
                "diagnosis",
                "health",
            ],
            help="parameter names holding personal data (at least medium risk)",
        ),
        "legal_medical_keywords": Key(
            list,
            LEGAL_MEDICAL_WORDS,
            help=(
                "customer words that make a message critical (a person answers);"
                " a final * matches word beginnings"
            ),
        ),
    },
    "confirmations": {
        "yes_words": Key(
            list,
            [
                "yes",
                "y",
                "yeah",
                "yea",
                "yep",
                "yup",
                "ya",
                "sure",
                "confirm",
                "confirmed",
                "go ahead",
                "do it",
                "go for it",
                "please do",
                "correct",
                "that's right",
                "that's correct",
                "right",
                "sounds good",
                "looks good",
                "absolutely",
                "definitely",
                "of course",
                "approved",
                "yes do it",
                "yes go ahead",
                "👍",
                "✅",
            ],
            help="words that confirm, alone or with please/thanks (add other languages' words)",
        ),
        "ack_words": Key(
            list,
            [
                "ok",
                "okay",
                "k",
                "kk",
                "fine",
                "perfect",
                "alright",
                "all right",
                "cool",
                "great",
                "nice",
                "noted",
                "got it",
                "understood",
                "👌",
            ],
            help=(
                "acknowledgements: alone they never confirm (the customer is asked for a clear"
                " yes); they win over the same word in yes_words"
            ),
        ),
        "no_words": Key(
            list,
            [
                "no",
                "n",
                "nope",
                "nah",
                "cancel",
                "cancel it",
                "don't",
                "do not",
                "don't do it",
                "do not do it",
                "stop",
                "never mind",
                "nevermind",
                "no way",
                "abort",
                "decline",
                "👎",
                "❌",
            ],
            help="words that cancel (add other languages' words)",
        ),
    },
    "mfa": {
        "enabled": Key(
            bool, True, help="one-time codes for destructive actions (needs HANDOFF_SECRET_KEY)"
        ),
        "issuer": Key(
            str, "", help="the name the authenticator app shows (default: [agent] business_name)"
        ),
        "challenge_minutes": Key((int, float), 5, 0.5, 60, "a code request expires after this"),
        "setup_minutes": Key(
            (int, float),
            15,
            1,
            1440,
            "an authenticator setup not confirmed by then is abandoned"
            " (its key's message deleted); also how long a request to"
            " replace a setup waits for the current code",
        ),
        "attempts_per_challenge": Key(int, 3, 1, 10, "wrong codes before a request is cancelled"),
        "failures_per_hour": Key(int, 10, 1, 100, "wrong codes in an hour before codes are locked"),
        "unenrolled": Key(
            str,
            "enrol",
            help="a customer without an authenticator: offer enrolment, or a ticket",
            choices=("enrol", "ticket"),
        ),
        "operator_code_above": Key(
            (int, float),
            0,
            0,
            10**9,
            "approvals of amounts above this need the approving operator's own code (0: off)",
        ),
    },
    "timeouts": {
        "ticket_answer_seconds": Key(
            (int, float),
            600,
            10,
            7 * 86400,
            "a ticket with no human answer after this: the customer is told; it stays open",
        ),
        "reminder": Key(bool, True, help="remind the operators at half the answer time"),
        "idle_check_seconds": Key(
            (int, float), 60, 5, 3600, "how often idle conversations are closed"
        ),
    },
    "summary": {
        "cron": Key(
            str,
            "0 9 * * *",
            help="when the escalation summary is posted (crontab: minute hour day month weekday)",
        ),
        "timezone": Key(str, "UTC", help="the time zone of the cron expression, e.g. Europe/Paris"),
        "days": Key(int, 7, 1, 365, "the period the scheduled summary covers"),
        "alert_rate_percent": Key(
            (int, float), 15, 0, 100, "escalation rate above which the summary is an alert"
        ),
    },
    "risk_levels": {
        dt: Key(str, level, help=f"risk level of {dt} actions", choices=LEVELS)
        for dt, level in DEFAULT_LEVELS.items()
    },
    "strategies": {
        dt: Key(str, strategy, help=f"what happens to {dt} actions", choices=STRATEGIES)
        for dt, strategy in DEFAULT_STRATEGIES.items()
    },
    "messages": {
        "llm_unavailable": Key(
            str,
            "Sorry, I can't answer right now. Your message is saved and I'll reply "
            "as soon as I can; no need to send it again.",
        ),
        "llm_gave_up": Key(
            str,
            "Sorry, I still can't answer. Your message is saved; a person from our team "
            "will follow up here.",
        ),
        "no_ai": Key(str, "Thanks for your message! A person from our team will answer you here."),
        "budget_reached": Key(
            str,
            "A person from our team will follow up on your messages here (ticket #{number}); they"
            " are all kept.",
        ),
        "empty": Key(str, "I can only read text. Could you type your question?"),
        "after_hours": Key(
            str,
            "Our team is away right now; people are back {when}. Your ticket stays open and "
            "you'll get the answer here.",
        ),
        "auto_close_soon": Key(
            str,
            "Anything else about ticket #{number}? If not, it closes in {when}; just write "
            "here to keep it open.",
        ),
        "rate": Key(str, "How did we do on ticket #{number}? Tap a rating (1 = poor, 5 = great)."),
        "rate_ai": Key(str, "How did the assistant do? Tap a rating (1 = poor, 5 = great)."),
        "rated": Key(str, "Thank you for rating us {score}/5!"),
        "blocked": Key(
            str,
            "Sorry, this account can't use this support chat at the moment. If you think this is a "
            "mistake, please contact us another way.",
        ),
        "slow_down": Key(
            str,
            "You're sending messages faster than I can answer them. Please wait a minute; "
            "messages sent meanwhile are kept but won't be answered one by one.",
        ),
        "account_too_new": Key(
            str,
            "Sorry, this support chat isn't available to very new Discord accounts. Please "
            "contact us another way.",
        ),
        "attachment_only": Key(
            str,
            "I can only see pictures and PDFs, not that kind of file. Could you describe what you"
            " need in text?",
        ),
        "file_refused": Key(
            str, "{refused}", help="a file that was not taken: {refused} says which and why"
        ),
        "ticket_question": Key(
            str,
            "I've asked our team about this (ticket #{number}). Their answer will come "
            "here; you can keep chatting meanwhile.",
        ),
        "ticket_approval": Key(
            str,
            "{action} needs an operator's approval, so I've sent it to our team as "
            "ticket #{number}. You'll hear back here; nothing has been done yet.",
        ),
        "ticket_handover": Key(
            str,
            "I've asked a person from our team to take over (ticket #{number}). They'll "
            "write to you here.",
        ),
        "ticket_relay": Key(
            str, "Your message is with our team as ticket #{number}; a person will answer here."
        ),
        "operator_says": Key(str, "**{operator}** (our team): {text}"),
        "approved": Key(
            str, "Good news: your request ({action}, ticket #{number}) was approved and done."
        ),
        "approved_failed": Key(
            str,
            "Your request ({action}, ticket #{number}) was approved, but it could not be "
            "done: {error}. Our team has been told.",
        ),
        "denied": Key(str, "Your request ({action}, ticket #{number}) was not approved: {reason}"),
        "takeover": Key(str, "{operator} from our team is here and will talk with you directly."),
        "handback": Key(str, "Thanks for your patience! You're back with the assistant now."),
        "closed": Key(str, "Ticket #{number} is closed: {reason}"),
        "confirm_preference": Key(str, "I can do this: {details}. Shall I go ahead? (Yes / No)"),
        "confirm_details": Key(
            str,
            "Please confirm exactly this:\n{details}\nReply **yes** to confirm or **no** "
            "to cancel.",
        ),
        "confirm_again": Key(str, "I need a clear yes or no for: {action}. Shall I go ahead?"),
        "confirm_use_buttons": Key(
            str,
            "You have {count} requests waiting for your answer, so I can't tell which"
            " one you mean. Please use the Confirm or Cancel buttons under each.",
        ),
        "confirmed_done": Key(str, "Done: {action}."),
        "confirmed_failed": Key(str, "{action} could not be done: {error}"),
        "confirm_cancelled": Key(str, "OK, I won't do that ({action}). Nothing was changed."),
        "confirm_expired": Key(
            str,
            "Your confirmation for {action} expired, so nothing was done. Ask again "
            "if you still want it.",
        ),
        "mfa_prompt": Key(
            str,
            "This needs a one-time code:\n{details}\nSend the 6-digit code from your "
            "authenticator app within {minutes} minutes, or press Cancel.",
        ),
        "mfa_wrong": Key(str, "That code isn't right. {left} more tries."),
        "mfa_too_many": Key(
            str, "Too many wrong codes, so I cancelled it ({action}). Nothing was done."
        ),
        "mfa_locked": Key(
            str,
            "Codes are locked for your account after too many wrong tries. Our team can unlock "
            "them; nothing was done.",
        ),
        "mfa_expired": Key(
            str,
            "The code request for {action} expired, so nothing was done. Ask again if you "
            "still want it.",
        ),
        "mfa_done": Key(str, "Code accepted. Done: {action}."),
        "mfa_failed": Key(str, "Code accepted, but {action} could not be done: {error}"),
        "mfa_cancelled": Key(str, "Cancelled: {action}. Nothing was done."),
        "mfa_unexpected": Key(
            str,
            "No code was asked for just now, so I didn't use that one. Please don't send "
            "codes unless I ask for one.",
        ),
        "mfa_not_enrolled": Key(
            str,
            "{action} needs a one-time code from an authenticator app, and you haven't "
            "set one up yet. Type **enrol** (or use /enrol) to set it up, then ask again.",
        ),
        "mfa_enrol": Key(
            str,
            "Scan this QR code with your authenticator app (Google Authenticator, Authy, "
            "1Password...), or enter this key by hand: `{secret}`\nThen send me the 6-digit code "
            "it shows to finish.\n-# {uri}",
        ),
        "mfa_enrolled": Key(
            str,
            "Your authenticator is set up. Actions like cancelling a subscription or deleting "
            "your account will now ask for a code.",
        ),
        "mfa_enrol_wrong": Key(
            str, "That code doesn't match the new setup. Check the app and send the current code."
        ),
        "mfa_reset": Key(
            str, "Our team reset your authenticator setup. Type **enrol** to set it up again."
        ),
        "mfa_replace_needs_code": Key(
            str,
            "You already have an authenticator set up. To replace it, first send "
            "the 6-digit code your current app shows (within {minutes} minutes). "
            "Lost it? Ask for a person: our team checks who you are and resets it.",
        ),
        "mfa_replace_wrong": Key(
            str,
            "That isn't the code your current authenticator shows, so I didn't set up a "
            "new one. Type **enrol** to try again.",
        ),
        "mfa_replaced": Key(
            str,
            "Your authenticator was replaced: codes now come from the new one, and the old "
            "one no longer works. If this wasn't you, ask for a person right away.",
        ),
        "mfa_setup_abandoned": Key(
            str,
            "Your authenticator setup wasn't finished in time, so I deleted the key I "
            "sent. Type **enrol** to start again.",
        ),
        "mfa_unlocked": Key(str, "Our team unlocked codes for your account."),
        "ticket_timeout": Key(
            str,
            "No one from our team has answered yet, sorry for the wait. Your request "
            "(ticket #{number}) stays open: the answer will come here as soon as someone "
            "replies. Meanwhile I can help with anything else.",
        ),
        "help": Key(
            str,
            "I'm the assistant of {business_name}. Ask me anything about your orders and account."
            " What I can do, and how:\n{abilities}\nTo reach a person from our team at any time,"
            " write **talk to a human**.",
        ),
        "specialist_only": Key(
            str,
            "That's a question for a person on our team, not for me: I've passed it on as "
            "ticket #{number}. They'll answer here.",
        ),
    },
}


@dataclass(frozen=True)
class Policy(TypedSections):
    """The checked policy: each record section typed (``policy.desk.note_prefix``,
    ``core.policy_sections``); the map sections by name (``policy["risk_levels"]``,
    ``policy.message(name)``)."""

    values: dict[str, dict[str, Any]]
    source: str

    def __getitem__(
        self, section: Literal["risk_levels", "strategies", "messages"]
    ) -> dict[str, Any]:
        return self.values[section]

    @property
    def system_prompt(self) -> str:
        agent = self.values["agent"]
        return agent["system_prompt"].replace("{business_name}", agent["business_name"])

    def message(self, name: str, **fields: str) -> str:
        text = self.values["messages"][name]
        for key, value in fields.items():
            text = text.replace("{" + key + "}", value)
        return text

    def describe(self) -> list[str]:
        lines = [f"policy from {self.source}"]
        for section, keys in self.values.items():
            for key, value in keys.items():
                shown = (
                    value if not isinstance(value, str) or len(value) < 60 else value[:57] + "..."
                )
                lines.append(f"  [{section}] {key} = {shown!r}")
        return lines


# any action kind, any message name: not records
MAP_SECTIONS = ("risk_levels", "strategies", "messages")

SECTIONS_DOC = """The policy file's sections as typed, frozen records: ``policy.desk.note_prefix``,
not ``policy["desk"]["note_prefix"]``, so that a misspelt key is a type error (mypy runs in CI).

Generated from ``core.policy.SPEC``, where keys are declared: after adding a key there, run
``python -m core.policy > core/policy_sections.py``; ``tests/test_core_config.py`` fails until this
file matches. The map sections (risk_levels, strategies, messages) stay
``policy["risk_levels"]`` and ``policy.message(name)``."""


def _section_class(section: str) -> str:
    return "".join(part.title() for part in section.split("_")) + "Section"


def _field_type(kind: type | tuple[type, ...]) -> str:
    if kind is list:
        return "tuple[str, ...]"
    if isinstance(kind, tuple):
        return "float" if float in kind else " | ".join(t.__name__ for t in kind)
    return kind.__name__


def sections_source() -> str:
    """The source of ``core/policy_sections.py``, generated from ``SPEC``."""
    records = sorted(s for s in SPEC if s not in MAP_SECTIONS)
    out = [
        f'"""{SECTIONS_DOC}"""',
        "",
        "from __future__ import annotations",
        "",
        "from dataclasses import dataclass",
        "from functools import cached_property",
        "from typing import Any",
        "",
    ]
    for section in records:
        out += ["", "@dataclass(frozen=True)", f"class {_section_class(section)}:"]
        out += [f"    {key}: {_field_type(spec.type)}" for key, spec in SPEC[section].items()]
        out.append("")
    out += [
        "",
        "def _record(values: dict[str, Any]) -> dict[str, Any]:",
        '    """Lists become tuples: a record is frozen through and through."""',
        "    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}",
        "",
        "",
        "class TypedSections:",
        '    """The record sections of the policy (``core.policy.Policy`` has these)."""',
        "",
        "    values: dict[str, dict[str, Any]]",
    ]
    for section in records:
        out += [
            "",
            "    @cached_property",
            f"    def {section}(self) -> {_section_class(section)}:",
            f'        return {_section_class(section)}(**_record(self.values["{section}"]))',
        ]
    return "\n".join(out) + "\n"


def defaults() -> Policy:
    return Policy(
        {s: {k: _copy(spec.default) for k, spec in keys.items()} for s, keys in SPEC.items()},
        "built-in defaults",
    )


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def _line_of(text: str, section: str, key: str | None) -> int | None:
    """Best-effort line number of ``[section] key`` in the TOML text (tomllib reports none)."""
    current = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        header = re.match(r"^\[\s*([^\]]+?)\s*\]", stripped)
        if header:
            current = header.group(1)
            if key is None and current == section:
                return number
            continue
        if key and current == section and re.match(rf"^\"?{re.escape(key)}\"?\s*=", stripped):
            return number
    return None


def _type_name(t: type | tuple[type, ...]) -> str:
    names = {
        int: "a whole number",
        float: "a number",
        str: "text in quotes",
        bool: "true or false",
        list: "a list of words in quotes",
    }
    if isinstance(t, tuple):
        return "a number" if set(t) == {int, float} else " or ".join(names[x] for x in t)
    return names.get(t, t.__name__)


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(
            f"{source}: not valid TOML: {exc}. Check quotes, '=' and [section] headers."
        ) from None

    def where(section: str, key: str | None = None) -> str:
        line = _line_of(text, section, key)
        return f"{source}:{line}" if line else source

    values = defaults().values
    problems: list[str] = []
    for section, table in raw.items():
        if section not in SPEC:
            hint = difflib.get_close_matches(section, SPEC, n=1)
            fix = f"did you mean [{hint[0]}]?" if hint else f"known sections: {', '.join(SPEC)}"
            problems.append(f"{where(section)}: unknown section [{section}]; {fix}")
            continue
        if not isinstance(table, dict):
            problems.append(f"{where(section)}: '{section}' must be a [section] of keys")
            continue
        for key, value in table.items():
            if (section, key) in RETIRED:
                log.warning(
                    "%s: [%s] %s is no longer used (%s); you can delete the line",
                    where(section, key),
                    section,
                    key,
                    RETIRED[section, key],
                )
                continue
            problem = _check_value(section, key, value, where(section, key))
            if problem is None and (section, key) == ("llm", "prices"):
                values[section][key] = {**DEFAULT_PRICES, **value}  # a model added, or re-priced
            elif problem is None:
                values[section][key] = value
            else:
                problems.append(problem)
    problem = _check_schedule(
        values["summary"], where("summary", "cron"), where("summary", "timezone")
    )
    problems.extend([problem] if problem else [])
    problem = _check_hours(values["desk"], where("desk", "hours"), where("desk", "timezone"))
    problems.extend([problem] if problem else [])
    if problems:
        raise PolicyError("\n".join(problems), problems=problems)
    return Policy(values, source)


def _check_prices(value: Any, at: str) -> str | None:
    """``[llm.prices]``: ``model = { input = 3.0, output = 15.0, cache_write = 3.75,
    cache_read = 0.3 }``, dollars per million tokens."""
    example = (
        'e.g. "claude-sonnet-4" = { input = 3.0, output = 15.0, cache_write = 3.75,'
        " cache_read = 0.3 }"
    )
    if not isinstance(value, dict):
        return f"{at}: [llm.prices] must be a table of models, {example}"
    for model, price in value.items():
        if not isinstance(price, dict) or set(price) != set(PRICE_KEYS):
            return f"{at}: [llm.prices] {model!r} needs exactly {', '.join(PRICE_KEYS)}; {example}"
        bad = [
            k
            for k, v in price.items()
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0
        ]
        if bad:
            return f"{at}: [llm.prices] {model!r} {bad[0]} must be a number of dollars, 0 or more"
    return None


def _check_approvers(value: Any, at: str) -> str | None:
    """``[agents] approvers = { refund = 2 }``: operators who must approve each action."""
    if not isinstance(value, dict):
        return f"{at}: [agents] approvers must be a table, e.g. approvers = {{ refund = 2 }}"
    for name, count in value.items():
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 5:
            return (
                f"{at}: [agents] approvers: {name} = {count!r} must be a whole number from 1 to"
                " 5 (operators who must approve)"
            )
    return None


def _check_value(section: str, key: str, value: Any, at: str) -> str | None:
    """What is wrong with one key of the file (with its line and the fix), or None."""
    spec = SPEC[section].get(key)
    if spec is None:
        hint = difflib.get_close_matches(key, SPEC[section], n=1)
        fix = f"did you mean '{hint[0]}'?" if hint else f"known keys: {', '.join(SPEC[section])}"
        return f"{at}: unknown key '{key}' in [{section}]; {fix}"
    allowed = spec.type if isinstance(spec.type, tuple) else (spec.type,)
    if (section, key) == ("desk", "escalation"):  # a list of tables, not of words
        try:
            escalation_steps(value if isinstance(value, list) else [value])
        except ValueError as exc:
            return f"{at}: [desk] escalation: {exc}"
        return None
    if (section, key) == ("agents", "approvers"):
        return _check_approvers(value, at)
    if spec.type is dict:
        return _check_prices(value, at)
    if spec.type is list and not (
        isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)
    ):
        return (
            f'{at}: [{section}] {key} must be a list of words in quotes, e.g. {key} = ["one",'
            f' "two"] ({spec.help})'
        )
    items = value if isinstance(value, list) else [value]
    unknown = [v for v in items if v not in spec.choices] if spec.choices else []
    if unknown:
        hint = difflib.get_close_matches(unknown[0], spec.choices, n=1)
        fix = f"did you mean {hint[0]!r}?" if hint else f"use some of: {', '.join(spec.choices)}"
        return f"{at}: [{section}] {key}: unknown {unknown[0]!r}; {fix}"
    if (isinstance(value, bool) and bool not in allowed) or not any(
        isinstance(value, t) for t in allowed
    ):
        return (
            f"{at}: [{section}] {key} = {value!r} must be {_type_name(spec.type)} (default:"
            f" {spec.default!r})"
        )
    if spec.lo is not None and spec.hi is not None and not (spec.lo <= value <= spec.hi):
        return (
            f"{at}: [{section}] {key} = {value!r} is out of range; use {spec.lo:g} to {spec.hi:g}"
            f" ({spec.help})"
        )
    if isinstance(value, str) and not value.strip():
        return f"{at}: [{section}] {key} is empty; remove it to use the default"
    if (section, key) == ("agents", "auto_approve"):
        try:
            auto_approve_limits(value)
        except ValueError as exc:
            return f"{at}: [agents] auto_approve: {exc}"
    return None


def escalation_steps(entries: Sequence[Any]) -> list[tuple[float, int]]:
    """``[{after_minutes = 15, mention_role_id = 123}, ...]`` -> [(seconds after the ticket
    opened, role id)], checked: each step later than the one before, at most 10."""
    steps: list[tuple[float, int]] = []
    if len(entries) > 10:
        raise ValueError(f"{len(entries)} steps; at most 10")
    for n, entry in enumerate(entries, 1):
        example = "{after_minutes = 15, mention_role_id = 123456789012345678}"
        if not isinstance(entry, dict) or set(entry) != {"after_minutes", "mention_role_id"}:
            raise ValueError(f"step {n} must be {example}")
        minutes, role = entry["after_minutes"], entry["mention_role_id"]
        if isinstance(minutes, bool) or not isinstance(minutes, int | float) or minutes <= 0:
            raise ValueError(f"step {n}: after_minutes must be a number of minutes above 0")
        if isinstance(role, bool) or not isinstance(role, int) or role <= 0:
            raise ValueError(f"step {n}: mention_role_id must be a role's id (a whole number)")
        if steps and minutes * 60 <= steps[-1][0]:
            raise ValueError(f"step {n}: after_minutes must be later than step {n - 1}'s")
        steps.append((minutes * 60.0, role))
    return steps


def auto_approve_limits(entries: Sequence[str]) -> dict[str, float]:
    """``["refund:50", "flag_review:0"]`` -> {action: the amount up to which the policy approves
    it}."""
    limits: dict[str, float] = {}
    for entry in entries:
        action, _, amount = entry.rpartition(":")
        try:
            limit = float(amount)
        except ValueError:
            limit = -1.0
        if not action.strip() or limit < 0:
            raise ValueError(
                f'{entry!r} is not "action:amount"; e.g. "refund:50" approves an agent\'s refund'
                " request up to 50"
            )
        limits[action.strip()] = limit
    return limits


def _check_schedule(summary: dict[str, Any], cron_at: str, tz_at: str) -> str | None:
    """The summary's cron expression and time zone, checked at start-up rather than at 09:00."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from core.crontab import crontab_trigger

    try:
        tz = ZoneInfo(summary["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        return (
            f"{tz_at}: [summary] timezone = {summary['timezone']!r} is not a time zone; use a name"
            ' such as "UTC" or "Europe/Paris"'
        )
    try:
        crontab_trigger(summary["cron"], tz)
    except ValueError as exc:
        return (
            f"{cron_at}: [summary] cron = {summary['cron']!r} is not a crontab expression ({exc});"
            ' e.g. "0 9 * * *" is every day at 09:00, "0 9 * * 1" every Monday'
        )
    return None


def _check_hours(desk: dict[str, Any], hours_at: str, tz_at: str) -> str | None:
    from core.hours import SupportHours

    try:
        SupportHours(desk["hours"], desk["timezone"])
    except ValueError as exc:
        return f"{hours_at}: [desk] hours: {exc}"
    except Exception:
        return (
            f"{tz_at}: [desk] timezone = {desk['timezone']!r} is not a time zone; use a name such"
            ' as "UTC" or "Europe/Paris"'
        )
    return None


def load_policy(path: Path) -> Policy:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(
            f"HANDOFF_POLICY: policy file {path} does not exist; copy policy.toml from the project"
            " or point HANDOFF_POLICY at yours"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"HANDOFF_POLICY: cannot read {path}: {exc}") from None
    return parse_policy(text, str(path))


if __name__ == "__main__":  # python -m core.policy > core/policy_sections.py
    print(sections_source(), end="")
