"""Files people attach on Discord, read when their message arrives: Discord's links to them expire
within a day, so the bytes are what is kept and sent on."""

from __future__ import annotations

import asyncio
import logging

import discord

from core.files import MB
from core.policy import Policy

log = logging.getLogger(__name__)

DOWNLOAD_SECONDS = 20  # one file from Discord's CDN


def max_file_bytes(policy: Policy) -> int:
    return int(policy.attachments.max_file_mb * MB)


async def downloaded(attachment: discord.Attachment, limit: int) -> tuple[bytes | None, str]:
    """(its bytes, "") or (None, why not): Discord announces it over ``limit`` bytes (it is not
    downloaded), or the download failed (logged). The bytes read are not measured here: callers
    judge them (a customer's are, with the day's allowance)."""
    if attachment.size > limit:
        return None, f"{attachment.size // 1024} KB"
    try:
        return await asyncio.wait_for(attachment.read(), DOWNLOAD_SECONDS), ""
    except (discord.HTTPException, OSError, TimeoutError) as exc:
        log.warning("could not download %s: %s", attachment.filename, exc)
        return None, f"could not be read: {exc}"
