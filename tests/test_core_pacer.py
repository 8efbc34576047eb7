"""The pacer's decisions on a fake clock: pace, priorities, route buckets, global holds, typing
dropped."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from core.pacer import Pacer, Priority, RequestDropped, RouteBuckets, Schedule

MSG = "POST /channels/1/messages"


def drain(schedule: Schedule, until: float, step: float = 0.001) -> list[tuple[float, str, int]]:
    """Run the schedule on a fake clock; every grant finishes at once. (time, route, priority) per
    grant."""
    now, sent = 0.0, []
    while now <= until:
        granted, _, _ = schedule.release(now)
        for turn in granted:
            sent.append((round(now, 4), turn.route, turn.priority))
            schedule.buckets.finish(turn.route)
        now += step
    return sent


def test_turns_are_spaced_at_the_rate():
    schedule = Schedule(45)
    for i in range(200):
        schedule.add(f"POST /channels/{i}/messages", Priority.ANSWER, 0.0)
    sent = drain(schedule, 2.0)
    times = [t for t, _, _ in sent]
    assert 89 <= len(sent) <= 91  # 45 a second for 2 s
    assert all(b - a >= 1 / 45 - 1e-3 for a, b in itertools.pairwise(times))
    for start in range(0, len(times)):  # never more than 46 in any one-second window
        assert sum(1 for t in times if times[start] <= t < times[start] + 1.0) <= 46


def test_an_idle_pacer_sends_at_once():
    schedule = Schedule(45)
    schedule.add(MSG, Priority.POST, 10.0)
    granted, _, wake = schedule.release(10.0)
    assert len(granted) == 1 and wake is None


def test_answers_go_before_edits_and_typing():
    schedule = Schedule(10)
    schedule.add("POST /channels/1/typing", Priority.TYPING, 0.0)
    schedule.add("PATCH /channels/2/messages/{id}", Priority.EDIT, 0.0)
    schedule.add("POST /channels/3/messages", Priority.POST, 0.0)
    schedule.add("POST /channels/4/messages", Priority.ANSWER, 0.0)
    order = [p for _, _, p in drain(schedule, 1.0)]
    assert order == [Priority.ANSWER, Priority.POST, Priority.EDIT, Priority.TYPING]


def test_typing_no_longer_wanted_is_dropped_without_spending_a_turn():
    schedule = Schedule(10)
    answer_sent = False
    schedule.add(MSG, Priority.ANSWER, 0.0)
    schedule.add("POST /channels/1/typing", Priority.TYPING, 0.0, wanted=lambda: not answer_sent)
    granted, dropped, _ = schedule.release(0.0)
    assert [t.route for t in granted] == [MSG] and dropped == []
    answer_sent = True
    schedule.buckets.finish(MSG)
    granted, dropped, wake = schedule.release(0.2)
    assert (
        granted == [] and [t.route for t in dropped] == ["POST /channels/1/typing"] and wake is None
    )


def test_an_announced_bucket_holds_its_route_and_the_turn_goes_to_another():
    schedule = Schedule(100)
    schedule.buckets.update(
        MSG,
        {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "2.5"},
        0.0,
    )
    schedule.add(MSG, Priority.ANSWER, 0.0)
    schedule.add("POST /channels/2/messages", Priority.POST, 0.0)
    granted, _, wake = schedule.release(0.0)
    assert [t.route for t in granted] == ["POST /channels/2/messages"]
    schedule.buckets.finish("POST /channels/2/messages")
    granted, _, wake = schedule.release(0.5)
    assert granted == [] and wake == 2.5
    granted, _, _ = schedule.release(2.5)
    assert [t.route for t in granted] == [MSG]


def test_a_route_not_announced_yet_takes_one_request_at_a_time():
    buckets = RouteBuckets()
    assert buckets.available(MSG, 0.0)
    buckets.start(MSG)
    assert not buckets.available(MSG, 0.0)
    buckets.finish(MSG)
    buckets.update(MSG, {}, 0.0)  # answered without rate-limit headers: not held
    buckets.start(MSG)
    buckets.start(MSG)
    assert buckets.available(MSG, 0.0)


def test_requests_in_flight_count_against_the_remaining():
    buckets = RouteBuckets()
    buckets.update(
        MSG,
        {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "2", "X-RateLimit-Reset-After": "5"},
        0,
    )
    buckets.start(MSG)
    buckets.start(MSG)
    assert not buckets.available(MSG, 1.0)
    assert buckets.available(MSG, 5.0)  # the bucket reset


def test_a_global_429_holds_everything():
    schedule = Schedule(45)
    schedule.hold(3.0)
    schedule.add(MSG, Priority.ANSWER, 1.0)
    granted, _, wake = schedule.release(1.0)
    assert granted == [] and wake == 3.0
    assert len(schedule.release(3.0)[0]) == 1


async def test_the_pacer_on_the_loop_counts_drops_and_reports():
    pacer = Pacer(1000)
    await pacer.acquire(MSG, Priority.ANSWER)
    pacer.finish(MSG)
    with pytest.raises(RequestDropped):
        await pacer.acquire("POST /channels/1/typing", Priority.TYPING, wanted=lambda: False)
    figures = pacer.figures()
    assert figures.paced == 1 and figures.dropped_typing == 1
    pacer.observe(MSG, 429, {"Retry-After": "0.01", "X-RateLimit-Scope": "user"})
    assert pacer.figures().rate_limited == 1
    assert pacer.report() is None  # nothing waited
    pacer._worst_since_report = 2.0
    line = pacer.report()
    assert line is not None and "longest wait in the last minute 2.0 s" in line
    assert pacer.report() is None  # at most once a minute


async def test_a_cancelled_wait_leaves_no_trace():
    pacer = Pacer(1)
    await pacer.acquire("GET /a", Priority.POST)  # takes the first turn; the next is 1 s away
    waiting = asyncio.create_task(pacer.acquire("GET /b", Priority.POST))
    await asyncio.sleep(0.01)
    assert pacer.schedule.waiting == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert pacer.schedule.waiting == 0


def test_the_day_rolls_over():
    clock = [1_800_000_000.0]
    pacer = Pacer(45, wall=lambda: clock[0])
    pacer.figures().paced = 7
    clock[0] += 86400
    assert pacer.figures().paced == 0
