"""One-time codes (TOTP): secrets encrypted at rest, codes checked in constant time, never twice.

Pure functions and a small key wrapper; the step kind that stores challenges is ``core.steps.code``.
A code is accepted for the current 30-second step or one step either side (clock drift), and
only for a step later than the last accepted one, so a code (or an older one) never works twice.
"""

from __future__ import annotations

import hmac
import io
import re
import unicodedata
from typing import Any

import pyotp
from cryptography.fernet import Fernet, InvalidToken

STEP_SECONDS = 30
DRIFT_STEPS = 1
# Six digits as a person types them from an authenticator app: "488243", "488 243", "488-243", "4 8
# 8 2 4 3".
CODE = re.compile(r"^\s*(\d(?:[ \t\u00a0\u2009\u202f\-\u2010-\u2013]{0,2}\d){5})\s*$")


def generate_key() -> str:
    """A new HANDOFF_SECRET_KEY."""
    return Fernet.generate_key().decode()


def generate_secret() -> str:
    return pyotp.random_base32()


class SecretBox:
    """Encrypts TOTP secrets with HANDOFF_SECRET_KEY (Fernet: AES-128-CBC with an HMAC)."""

    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode() if isinstance(key, str) else key)
        except (ValueError, TypeError) as exc:
            raise ValueError("not a valid Fernet key") from exc

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise ValueError("this secret was encrypted with another HANDOFF_SECRET_KEY") from None


KEY_CHECK = "secret_key_check"  # kept: a known text sealed with the key the stored secrets use
KEY_CHECK_TEXT = "handoff"


async def secret_key_problem(
    box: SecretBox, kept: Any, codes: Any, now: float, *, remember: bool = True
) -> str | None:
    """None when this HANDOFF_SECRET_KEY opens what the database holds (and remember it for the next
    start), else why not. A different key would lock every enrolled customer out of their codes,
    silently; on PostgreSQL it is also how a standby with another .env would break codes when it
    takes over."""
    sealed = await kept.kept(KEY_CHECK) or await codes.a_sealed_secret()
    if sealed is not None:
        try:
            box.open(sealed)
        except ValueError:
            return (
                "HANDOFF_SECRET_KEY is not the key this database's authenticator secrets were"
                " encrypted with; with it no enrolled customer could use a code. Use the key the"
                " bot ran with before (on every host: the same .env)"
            )
    if remember and await kept.kept(KEY_CHECK) is None:
        await kept.keep(KEY_CHECK, box.seal(KEY_CHECK_TEXT), now)
    return None


def code_in(text: str) -> str | None:
    """The 6-digit code a message consists of, if that is all it is, however the app spaced it ("488
    243"); digits of any script are read as ASCII digits."""
    match = CODE.match(text)
    if match is None:
        return None
    return "".join(str(unicodedata.digit(ch)) for ch in match.group(1) if ch.isdigit())


def matching_step(secret: str, code: str, now: float, last_step: int) -> int | None:
    """The time step ``code`` belongs to (within the drift), if it is later than ``last_step``."""
    if not re.fullmatch(r"\d{6}", code):
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    current = int(now // STEP_SECONDS)
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        # Compare every candidate (no early exit) so timing says nothing about which one matched.
        if (
            hmac.compare_digest(totp.at(step * STEP_SECONDS), code)
            and step > last_step
            and found is None
        ):
            found = step
    return found


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(
        name=account, issuer_name=issuer
    )


def qr_png(uri: str) -> bytes:
    import segno

    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="png", scale=6, border=2)
    return buffer.getvalue()
