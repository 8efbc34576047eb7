"""The policy file's sections as typed, frozen records: ``policy.desk.note_prefix``,
not ``policy["desk"]["note_prefix"]``, so that a misspelt key is a type error (mypy runs in CI).

Generated from ``core.policy.SPEC``, where keys are declared: after adding a key there, run
``python -m core.policy > core/policy_sections.py``; ``tests/test_core_config.py`` fails until this
file matches. The map sections (risk_levels, strategies, messages) stay
``policy["risk_levels"]`` and ``policy.message(name)``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any


@dataclass(frozen=True)
class AbuseSection:
    messages_per_minute: int
    min_account_age_days: float
    max_open_tickets: int
    tokens_per_day: int


@dataclass(frozen=True)
class AgentSection:
    business_name: str
    system_prompt: str


@dataclass(frozen=True)
class AgentsSection:
    auto_approve: tuple[str, ...]
    approvers: dict
    approval_minutes: float
    max_connections: int
    max_calls_per_agent: int
    request_seconds: float


@dataclass(frozen=True)
class AttachmentsSection:
    max_file_mb: float
    files_per_message: int
    mb_per_customer_per_day: float
    claude_sees_files: bool
    keep_days: int


@dataclass(frozen=True)
class ConfirmationsSection:
    yes_words: tuple[str, ...]
    ack_words: tuple[str, ...]
    no_words: tuple[str, ...]


@dataclass(frozen=True)
class ConversationSection:
    idle_minutes: int


@dataclass(frozen=True)
class CopilotSection:
    enabled: bool
    model: str
    max_drafts_per_day: int
    max_tokens: int
    summarize_after_turns: int


@dataclass(frozen=True)
class DeliverySection:
    retry_base_seconds: float
    retry_max_seconds: float
    stall_seconds: float
    catch_up_hours: float


@dataclass(frozen=True)
class DeskSection:
    note_prefix: str
    transcript_turns: int
    urgent_keywords: tuple[str, ...]
    high_keywords: tuple[str, ...]
    handover_phrases: tuple[str, ...]
    urgent_decision_types: tuple[str, ...]
    auto_close_hours: float
    transcript_to_customer: bool
    auto_close_grace_hours: float
    hours: tuple[str, ...]
    timezone: str
    escalation: tuple[str, ...]
    on_call_role_id: int


@dataclass(frozen=True)
class DiscordSection:
    requests_per_second: float


@dataclass(frozen=True)
class FeedbackSection:
    ask_after_close: bool
    ask_after_ai: bool


@dataclass(frozen=True)
class HaSection:
    takeover_seconds: float


@dataclass(frozen=True)
class KnowledgeSection:
    passages: int
    min_score: float
    synonyms: tuple[str, ...]


@dataclass(frozen=True)
class LlmSection:
    max_tokens: int
    history_turns: int
    history_tokens: int
    max_tool_rounds: int
    retry_after_failure_seconds: float
    prompt_caching: bool
    prices: dict
    max_answer_attempts: int


@dataclass(frozen=True)
class MfaSection:
    enabled: bool
    issuer: str
    challenge_minutes: float
    setup_minutes: float
    attempts_per_challenge: int
    failures_per_hour: int
    unenrolled: str
    operator_code_above: float


@dataclass(frozen=True)
class RiskSection:
    confidence_threshold: int
    confirmation_minutes: float
    amount_threshold: float
    approvers_above: float
    amount_params: tuple[str, ...]
    personal_data_params: tuple[str, ...]
    legal_medical_keywords: tuple[str, ...]


@dataclass(frozen=True)
class SummarySection:
    cron: str
    timezone: str
    days: int
    alert_rate_percent: float


@dataclass(frozen=True)
class TimeoutsSection:
    ticket_answer_seconds: float
    reminder: bool
    idle_check_seconds: float


def _record(values: dict[str, Any]) -> dict[str, Any]:
    """Lists become tuples: a record is frozen through and through."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


class TypedSections:
    """The record sections of the policy (``core.policy.Policy`` has these)."""

    values: dict[str, dict[str, Any]]

    @cached_property
    def abuse(self) -> AbuseSection:
        return AbuseSection(**_record(self.values["abuse"]))

    @cached_property
    def agent(self) -> AgentSection:
        return AgentSection(**_record(self.values["agent"]))

    @cached_property
    def agents(self) -> AgentsSection:
        return AgentsSection(**_record(self.values["agents"]))

    @cached_property
    def attachments(self) -> AttachmentsSection:
        return AttachmentsSection(**_record(self.values["attachments"]))

    @cached_property
    def confirmations(self) -> ConfirmationsSection:
        return ConfirmationsSection(**_record(self.values["confirmations"]))

    @cached_property
    def conversation(self) -> ConversationSection:
        return ConversationSection(**_record(self.values["conversation"]))

    @cached_property
    def copilot(self) -> CopilotSection:
        return CopilotSection(**_record(self.values["copilot"]))

    @cached_property
    def delivery(self) -> DeliverySection:
        return DeliverySection(**_record(self.values["delivery"]))

    @cached_property
    def desk(self) -> DeskSection:
        return DeskSection(**_record(self.values["desk"]))

    @cached_property
    def discord(self) -> DiscordSection:
        return DiscordSection(**_record(self.values["discord"]))

    @cached_property
    def feedback(self) -> FeedbackSection:
        return FeedbackSection(**_record(self.values["feedback"]))

    @cached_property
    def ha(self) -> HaSection:
        return HaSection(**_record(self.values["ha"]))

    @cached_property
    def knowledge(self) -> KnowledgeSection:
        return KnowledgeSection(**_record(self.values["knowledge"]))

    @cached_property
    def llm(self) -> LlmSection:
        return LlmSection(**_record(self.values["llm"]))

    @cached_property
    def mfa(self) -> MfaSection:
        return MfaSection(**_record(self.values["mfa"]))

    @cached_property
    def risk(self) -> RiskSection:
        return RiskSection(**_record(self.values["risk"]))

    @cached_property
    def summary(self) -> SummarySection:
        return SummarySection(**_record(self.values["summary"]))

    @cached_property
    def timeouts(self) -> TimeoutsSection:
        return TimeoutsSection(**_record(self.values["timeouts"]))
