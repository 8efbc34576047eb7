"""One-time codes: enrolment, challenges for destructive actions, limits, expiry, restarts, and
secrecy."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path

import discord
import pyotp
import pytest

from core.codes import SecretBox, code_in, generate_key, matching_step
from tests.conftest import Harness, eventually
from tests.desk_support import Desk, refund_ticket, refunded_cents, start_again
from tests.dpytest_ext import Interactions, make_operator
from tests.fake_claude import text, tool_calls
from tests.support import TEST_SECRET_KEY, test_policy

SUBSCRIPTION = "SELECT status FROM shop_subscriptions WHERE discord_user_id = ?"


# -- the rules, without Discord ----------------------------------------------------------------


def test_codes_match_the_current_step_or_one_either_side_and_never_an_old_step():
    secret = pyotp.random_base32()
    totp = pyotp.TOTP(secret)
    now = 1_800_000_000.0
    step = int(now // 30)
    assert matching_step(secret, totp.at(now), now, 0) == step
    assert matching_step(secret, totp.at(now - 30), now, 0) == step - 1, "one step of drift back"
    assert matching_step(secret, totp.at(now + 30), now, 0) == step + 1, "one step of drift ahead"
    assert matching_step(secret, totp.at(now - 60), now, 0) is None, "two steps: refused"
    assert matching_step(secret, totp.at(now + 60), now, 0) is None
    assert matching_step(secret, totp.at(now), now, step) is None, "accepted once: never again"
    assert matching_step(secret, totp.at(now - 30), now, step) is None, (
        "older than the last accepted"
    )
    assert (
        matching_step(secret, "12345", now, 0) is None
        and matching_step(secret, "abcdef", now, 0) is None
    )
    assert (
        code_in(" 123456 ") == "123456"
        and code_in("123456 please") is None
        and code_in("1234567") is None
    )


def test_secrets_are_sealed_and_only_the_same_key_opens_them():
    box = SecretBox(TEST_SECRET_KEY)
    sealed = box.seal("JBSWY3DPEHPK3PXP")
    assert "JBSWY3DPEHPK3PXP" not in sealed and box.open(sealed) == "JBSWY3DPEHPK3PXP"
    with pytest.raises(ValueError, match="another HANDOFF_SECRET_KEY"):
        SecretBox(generate_key()).open(sealed)


# -- helpers -------------------------------------------------------------------------------------


def code(secret: str, h: Harness, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(h.clock.now() + offset_steps * 30)


def key_in(setup: discord.Message) -> str:
    """The authenticator key a setup DM shows."""
    return re.search(r"`([A-Z2-7]{32})`", setup.content).group(1)


async def enrol(h: Harness, who: int = 0) -> str:
    """Enrol a customer by typing; returns the secret they were shown."""
    await h.dm(who, "enrol")
    [setup] = h.sent()
    secret = key_in(setup)
    assert setup.attachments and setup.attachments[0].filename == "authenticator.png"
    await h.dm(who, code(secret, h))
    assert "Your authenticator is set up" in h.sent()[0].content
    h.clock.advance(30)  # the enrolment code's step is used up
    return secret


async def ask_to_cancel_subscription(h: Harness, who: int = 0) -> None:
    h.fake.then(
        tool_calls(("cancel_subscription", {"subscription_id": who + 1})),
        text("Please send your code."),
    )
    await h.dm(who, "cancel my subscription")


async def subscription(h: Harness, who: int = 0) -> str | None:
    rows = await h.fetch(SUBSCRIPTION, (h.members[who].id,))
    return rows[0][0] if rows else None


# -- enrolment -----------------------------------------------------------------------------------


async def test_enrolment_needs_a_valid_first_code_and_reenrolment_replaces_only_when_confirmed(
    harness,
):
    h = harness
    await h.start()
    await h.dm(0, "enrol")
    [setup] = h.sent()
    first = key_in(setup)
    assert (
        f"otpauth://totp/Example%20Shop:TestUser0?secret={first}&issuer=Example%20Shop"
        in setup.content
    )
    png = sorted(Path(".").glob("dpytest_*.dat"), key=lambda p: p.stat().st_mtime)[-1].read_bytes()  # noqa: ASYNC240
    assert png.startswith(b"\x89PNG\r\n\x1a\n"), "the QR code is a PNG"
    await h.dm(0, "000000" if code(first, h) != "000000" else "111111")
    assert h.sent()[0].content.startswith("That code doesn't match the new setup")
    [row] = await h.fetch("SELECT secret, pending_secret FROM mfa_secrets")
    assert row["secret"] is None and row["pending_secret"] is not None
    await h.dm(0, code(first, h))
    assert "Your authenticator is set up" in h.sent()[0].content

    h.clock.advance(30)
    await h.dm(0, "enrol")  # a new phone: a code from the current one first
    assert h.sent()[0].content.startswith(
        "You already have an authenticator set up. To replace it, first send"
    )
    await h.dm(0, code(first, h))
    [setup2] = h.sent()
    second = key_in(setup2)
    h.clock.advance(30)
    await ask_to_cancel_subscription(h)  # the old setup works until the new one is confirmed
    h.sent()
    await h.dm(0, code(first, h))
    assert h.sent()[-1].content == "Code accepted. Done: Cancel a subscription."
    h.clock.advance(30)
    await h.dm(0, code(second, h))
    assert h.sent()[0].content.startswith("Your authenticator was replaced")
    [row] = await h.fetch("SELECT secret, pending_secret FROM mfa_secrets")
    assert (
        SecretBox(TEST_SECRET_KEY).open(row["secret"]) == second and row["pending_secret"] is None
    )
    history = [m.id async for m in setup2.channel.history(limit=50)]
    assert setup.id not in history and setup2.id not in history, (
        "the keys left the DM once confirmed"
    )


async def test_the_discord_session_alone_cannot_replace_the_authenticator(harness):
    h = harness
    await h.start()
    secret = await enrol(h)
    await h.dm(0, "enrol")  # whoever holds the session, without the phone
    [told] = h.sent()
    assert (
        "first send the 6-digit code your current app shows" in told.content
        and not told.attachments
    )
    assert [r[0] for r in await h.fetch("SELECT pending_secret FROM mfa_secrets")] == [None], (
        "no new key was made"
    )
    guess = "000000" if code(secret, h) != "000000" else "111111"
    await h.dm(0, guess)
    assert h.sent()[0].content.startswith("That isn't the code your current authenticator shows")
    await h.dm(0, "enrol")
    h.sent()
    for _ in range(10):  # guessing is the hourly wrong-code limit's, as for a challenge
        await h.dm(0, guess)
    assert "locked" in h.sent()[-1].content
    await h.dm(0, "enrol")
    h.sent()
    await h.dm(0, code(secret, h))  # even the right code: locked
    assert [r[0] for r in await h.fetch("SELECT pending_secret FROM mfa_secrets")] == [None]
    [row] = await h.fetch("SELECT secret FROM mfa_secrets")
    assert SecretBox(TEST_SECRET_KEY).open(row["secret"]) == secret, (
        "the authenticator is still the customer's"
    )
    actions = [
        r[0] for r in await h.fetch("SELECT action FROM audit WHERE action LIKE 'mfa_replace%'")
    ]
    assert "mfa_replacement_asked" in actions and "mfa_replacement_code_wrong" in actions
    assert "mfa_replaced" not in actions


async def test_an_unfinished_setup_is_abandoned_and_its_key_deleted(harness):
    h = harness
    await h.start()
    await h.dm(0, "enrol")
    [setup] = h.sent()
    secret = key_in(setup)
    job = h.bot.scheduler.get_job("mfa-setup:1")
    assert job is not None, "the setup's expiry is armed"
    assert job.next_run_time.timestamp() == pytest.approx(h.clock.now() + 15 * 60, abs=1)
    h.clock.advance(16 * 60)
    await job.func()  # what the scheduler runs at the setup's expiry
    await h.settle()
    assert h.sent()[0].content.startswith("Your authenticator setup wasn't finished in time")
    assert setup.id not in [m.id async for m in setup.channel.history(limit=50)]
    await h.dm(0, code(secret, h))
    assert "No code was asked for" in h.sent()[0].content, "an abandoned setup is never confirmed"
    assert [r[0] for r in await h.fetch("SELECT secret FROM mfa_secrets")] == [None]


async def test_enrol_slash_command_in_a_dm(desk):
    h = desk.h
    customer = h.members[0]
    channel = customer.dm_channel or await customer.create_dm()
    desk.i.slash("enrol", member=customer, channel=channel, guild_command=False)
    await eventually(lambda: [r for r in desk.i.responses if r.get("followup")], what="the setup")
    [data] = [r["data"] for r in desk.i.responses if r.get("followup")]
    secret = re.search(r"`([A-Z2-7]{32})`", data["content"]).group(1)
    assert data["attachments"][0]["filename"] == "authenticator.png"
    assert data["flags"] & 64, "the key is shown in an ephemeral reply, never kept in the DM"
    await h.dm(0, code(secret, h))
    assert "Your authenticator is set up" in h.sent()[-1].content

    h.clock.advance(30)
    desk.i.responses.clear()
    # again: the current code first
    desk.i.slash("enrol", member=customer, channel=channel, guild_command=False)
    await eventually(lambda: [r for r in desk.i.responses if r.get("followup")], what="the answer")
    [data] = [r["data"] for r in desk.i.responses if r.get("followup")]
    assert data["content"].startswith("You already have an authenticator") and not data.get(
        "attachments"
    )
    await h.settle()
    assert "first send the 6-digit code" in h.sent()[-1].content


# -- challenges ----------------------------------------------------------------------------------


async def test_a_destructive_action_runs_once_after_a_correct_code_never_shown_to_claude(harness):
    h = harness
    await h.start()
    secret = await enrol(h)
    await ask_to_cancel_subscription(h)
    prompt, _ = h.sent()
    assert (
        "This needs a one-time code:" in prompt.content and "- subscription id: 1" in prompt.content
    )
    assert await subscription(h) != "cancelled", "nothing runs before the code"
    used = code(secret, h)
    await h.dm(0, used)
    assert h.sent()[0].content == "Code accepted. Done: Cancel a subscription."
    assert await subscription(h) == "cancelled"

    h.fake.then(text("Anything else?"))
    await h.dm(0, "thanks")
    history = json.dumps(h.fake.requests[-1]["messages"])
    assert (
        used not in history and "[one-time code]" in history and "correct one-time code" in history
    )
    stored = [r[0] for r in await h.fetch("SELECT content FROM turns WHERE kind = 'customer'")]
    assert used not in stored and "[one-time code]" in stored


async def test_wrong_replayed_and_drifted_codes(harness):
    h = harness
    await h.start()
    secret = await enrol(h)
    await ask_to_cancel_subscription(h)
    h.sent()
    previous = code(secret, h, -2)
    await h.dm(0, previous)  # two steps old
    assert h.sent()[0].content == "That code isn't right. 2 more tries."
    await h.dm(0, code(secret, h, +1))  # one step ahead: a phone clock running fast
    assert h.sent()[0].content == "Code accepted. Done: Cancel a subscription."

    h.fake.then(tool_calls(("delete_account", {})), text("Send your code."))
    await h.dm(0, "delete my account")
    h.sent()
    await h.dm(0, code(secret, h, +1))  # the same code again: a replay
    assert h.sent()[0].content == "That code isn't right. 2 more tries."
    await h.dm(0, code(secret, h))  # older than the last accepted step
    assert h.sent()[0].content == "That code isn't right. 1 more tries."
    await h.dm(0, "000000" if code(secret, h, +2) != "000000" else "111111")
    assert (
        h.sent()[0].content
        == "Too many wrong codes, so I cancelled it (Delete the account). Nothing was done."
    )
    assert (await h.fetch("SELECT deleted_at FROM shop_accounts"))[0][0] is None
    await h.dm(0, code(secret, h, +2))
    assert h.sent()[0].content.startswith("No code was asked for just now")


async def test_ten_wrong_codes_in_an_hour_lock_codes_until_an_operator_unlocks(harness):
    from tests.desk_support import desk_with
    from tests.support import test_policy

    # Every message counts toward [abuse] messages_per_minute, codes too: off here, where a test
    # sends a minute's worth of codes within a second.
    async with desk_with(harness, test_policy(abuse={"messages_per_minute": 0})) as desk:
        h = desk.h
        secret = await enrol(h)
        wrong = (
            "000000" if "000000" not in {code(secret, h, d) for d in range(-1, 30)} else "999999"
        )
        for _ in range(4):  # 3 + 3 + 3 + 1 wrong codes over four requests
            await ask_to_cancel_subscription(h)
            for _ in range(3):
                await h.dm(0, wrong)
                reply = h.sent()[-1].content
                if "locked" in reply:
                    break
            h.clock.advance(60)
        assert "Codes are locked" in reply
        [failures] = await h.fetch("SELECT COUNT(*) FROM mfa_failures")
        assert failures[0] == 10
        await ask_to_cancel_subscription(h)
        h.sent()
        await h.dm(0, code(secret, h))
        assert "Codes are locked" in h.sent()[0].content and await subscription(h) != "cancelled"

        await desk.slash("mfa-unlock", None, member=desk.stranger, customer=h.members[0])
        assert (await desk.told(1))[0][0].startswith("Only operators")
        await desk.slash("mfa-unlock", None, customer=h.members[0])
        assert (await desk.told(2))[-1][0] == "Codes are unlocked for them. They have been told."
        assert h.sent()[-1].content == "Our team unlocked codes for your account."
        h.clock.advance(30)
        await ask_to_cancel_subscription(h)
        h.sent()
        await h.dm(0, code(secret, h))
        assert h.sent()[0].content == "Code accepted. Done: Cancel a subscription."


async def test_a_correct_code_after_the_expiry_is_refused_also_when_the_bot_was_down(desk):
    h = desk.h
    secret = await enrol(h)
    await ask_to_cancel_subscription(h)
    h.sent()
    h.clock.advance(5 * 60 + 1)
    await h.dm(0, code(secret, h))
    assert h.sent()[0].content.startswith("The code request for Cancel a subscription expired")
    assert await subscription(h) != "cancelled"

    await ask_to_cancel_subscription(h)
    await start_again(desk)
    h.clock.advance(5 * 60 + 1)
    await start_again(desk)  # down across the expiry: start-up ends it and tells the customer

    async def last_sent() -> str:
        told = await h.fetch(
            "SELECT content FROM outbox WHERE status = 'sent' ORDER BY id DESC LIMIT 1"
        )
        return told[0][0]

    for _ in range(400):  # start-up owes it; the outbox delivers it a moment later under load
        if "expired" in await last_sent():
            break
        await asyncio.sleep(0.01)
    assert "expired" in await last_sent()
    await h.dm(0, code(secret, h))
    assert h.sent()[-1].content.startswith("No code was asked for just now")
    assert await subscription(h) != "cancelled"


async def test_a_restart_in_the_middle_of_a_challenge_and_two_codes_at_once(desk):
    h = desk.h
    secret = await enrol(h)
    await ask_to_cancel_subscription(h)
    await start_again(desk)
    # the same code twice, and the next step's code, typed at once
    for value in (code(secret, h), code(secret, h), code(secret, h, +1)):
        await h.dm(0, value, settle=False)
    await h.settle()
    done = [m.content for m in h.sent()].count("Code accepted. Done: Cancel a subscription.")
    assert (
        done == 1
        and len(await h.fetch("SELECT 1 FROM audit WHERE action = 'action_executed'")) == 1
    )


async def test_cancel_button_and_only_the_customer_can_press_it(desk):
    h = desk.h
    await enrol(h)
    await ask_to_cancel_subscription(h)
    prompt, _ = h.sent()
    desk.i.click("mfa:cancel:1", member=h.members[1], channel=prompt.channel, message=prompt)
    assert (await desk.told(1))[0] == ("Only the customer who was asked can cancel this.", True)
    desk.i.click("mfa:cancel:1", member=h.members[0], channel=prompt.channel, message=prompt)
    await eventually(lambda: len(desk.i.responses) == 2, what="the cancel")
    await h.settle()
    assert h.sent()[-1].content == "Cancelled: Cancel a subscription. Nothing was done."
    assert await subscription(h) != "cancelled"


async def test_mfa_reset_by_an_operator_is_audited_and_the_customer_told(desk):
    h = desk.h
    await enrol(h)
    await desk.slash("mfa-reset", None, customer=h.members[0])
    assert (await desk.told(1))[0][
        0
    ] == "Their authenticator setup was removed. They have been told."
    assert "reset your authenticator" in h.sent()[-1].content
    [audit] = await h.fetch("SELECT actor FROM audit WHERE action = 'mfa_reset'")
    assert audit[0] == f"operator:{desk.operator.id}"
    await ask_to_cancel_subscription(h)
    assert "haven't set one up yet" in h.sent()[-1].content


async def test_a_reset_ends_a_pending_code_request_and_codes_are_never_stored_in_clear(desk):
    h = desk.h
    await enrol(h)
    await ask_to_cancel_subscription(h)
    assert "one-time code" in h.sent()[0].content
    await desk.slash("mfa-reset", None, customer=h.members[0])
    await desk.told(1)
    told = [m.content for m in h.sent()]
    assert "Cancelled: Cancel a subscription. Nothing was done." in told
    assert "reset your authenticator" in told[-1]
    assert (await h.fetch("SELECT status FROM mfa_challenges"))[0][0] == "cancelled"

    calls = len(h.fake.requests)
    old_code = "123456"
    await h.dm(0, old_code)  # a code from the old app, typed in answer to the old prompt
    assert "No code was asked for" in h.sent()[-1].content
    await h.dm(0, "enrol")
    [setup] = h.sent()
    secret = key_in(setup)
    await h.dm(0, code(secret, h))
    assert "Your authenticator is set up" in h.sent()[-1].content
    assert len(h.fake.requests) == calls, "no code reached Claude"
    contents = [r[0] for r in await h.fetch("SELECT content FROM turns")]
    assert old_code not in contents and code(secret, h) not in contents
    assert await subscription(h) != "cancelled"


async def test_a_pending_request_without_a_setup_takes_the_new_setups_first_code(desk):
    h = desk.h
    secret = await enrol(h)
    await ask_to_cancel_subscription(h)
    h.sent()
    # a setup gone while the request waits
    await h.db.execute("UPDATE mfa_secrets SET secret = NULL")
    await h.dm(0, "enrol")
    [setup] = h.sent()
    new_secret = key_in(setup)
    assert new_secret != secret
    await h.dm(0, code(new_secret, h))
    assert "Your authenticator is set up" in h.sent()[-1].content


async def everything_stored(target) -> bytes:
    """The database's files (SQLite), or every row of every table as text (PostgreSQL)."""
    if isinstance(target, Path):
        return b"".join(p.read_bytes() for p in target.parent.glob(target.name + "*"))
    import asyncpg

    conn = await asyncpg.connect(target)
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        )
        rows = [await conn.fetch(f"SELECT t::text FROM {r[0]} t") for r in tables]
    finally:
        await conn.close()
    assert len(tables) > 10
    return "\n".join(row[0] for table in rows for row in table).encode()


async def test_no_secret_or_code_in_the_database_file_or_the_logs(harness, caplog):
    caplog.set_level(logging.DEBUG)
    h = harness
    await h.start()
    secret = await enrol(h)
    codes = [code(secret, h, -1)]  # the enrolment code's step
    await ask_to_cancel_subscription(h)
    codes.append(code(secret, h))
    await h.dm(0, codes[-1])
    wrong = "000000" if "000000" not in codes else "999999"
    await h.dm(0, wrong)
    await h.stop()
    data = await everything_stored(h.db_path)
    for needle in [secret, *codes]:
        assert needle.encode() not in data, f"{needle!r} is in the database file"
        assert needle not in caplog.text, f"{needle!r} is in the log"
    await h.start()  # still readable with the same key


async def test_codes_off_send_destructive_actions_to_the_operators(harness):
    h = harness
    await h.start(policy=test_policy(mfa={"enabled": False}))
    await ask_to_cancel_subscription(h)
    [ticket] = await h.fetch("SELECT kind, reason FROM tickets")
    assert ticket["kind"] == "approval" and "One-time codes are off" in ticket["reason"]
    await h.dm(0, "enrol")  # not a command when codes are off: Claude answers it
    assert h.fake.requests[-1]["messages"][-1]["content"][-1]["text"] == "enrol"


async def test_large_approvals_need_the_operators_own_code(harness):
    h = harness
    await h.start(members=4, policy=test_policy(mfa={"operator_code_above": 50}))

    h.members[2] = make_operator(h.bot, h.members[2])
    desk = Desk(h, Interactions(h.bot))
    try:
        # operators enrol like customers: DM the bot "enrol"
        operator_secret = await enrol(h, who=2)
        await refund_ticket(desk, amount=80, order_id=2)  # the grinder, $89
        await desk.click(1, "approve")
        await eventually(lambda: desk.i.responses, what="the code form")
        form = desk.i.responses[-1]
        assert form["type"] == 9 and form["data"]["custom_id"] == "ticket:approve-code:1"
        await desk.slash("approve", 1)
        assert "needs your own one-time code" in (await desk.told(1))[-1][0]
        wrong = "000000" if code(operator_secret, h) != "000000" else "111111"
        thread = await desk.thread(1)
        desk.i.submit_modal(
            "ticket:approve-code:1",
            {"__operator_code": wrong},
            member=desk.operator,
            channel=thread,
        )
        assert (await desk.told(2))[-1][0].startswith("Not approved: that code is not right")
        assert await refunded_cents(h) == 0
        desk.i.submit_modal(
            "ticket:approve-code:1",
            {"__operator_code": code(operator_secret, h)},
            member=desk.operator,
            channel=thread,
        )
        assert (await desk.told(3))[-1][0].startswith("Approved and done")
        assert await refunded_cents(h) == 8000

        await refund_ticket(desk, amount=20)  # below the threshold: no code
        await desk.slash("approve", 2)
        assert (await desk.told(4))[-1][0].startswith("Approved and done")
    finally:
        desk.i.close()


@pytest.mark.parametrize("shown", ["{a} {b}", "{a}-{b}", " {a}  {b} "])
async def test_a_code_typed_as_the_app_shows_it_is_a_code_and_never_stored(harness, shown):
    h = harness
    await h.start()
    secret = await enrol(h)
    await ask_to_cancel_subscription(h)
    h.sent()
    used = code(secret, h)
    typed = shown.format(a=used[:3], b=used[3:])
    await h.dm(0, typed)
    assert h.sent()[0].content == "Code accepted. Done: Cancel a subscription."
    rows = await h.fetch(
        "SELECT content, one_time_code FROM turns WHERE kind = 'customer' ORDER BY id"
    )
    assert (rows[-1][0], rows[-1][1]) == ("[one-time code]", 1)
    everything = json.dumps([list(r) for r in await h.fetch("SELECT * FROM turns")]) + json.dumps(
        h.fake.requests
    )
    assert (
        typed.strip() not in everything
        and used not in everything
        and used[:3] + " " not in everything
    )
