"""Simulations (python -m rehearsal.simulate): the shipped scenarios pass against the real bot.py
on the Discord stand-in, a wrong expectation fails with its reason and exit status 1, and a bad
scenario file is named."""

from __future__ import annotations

from pathlib import Path

from rehearsal.simulate import main

ROOT = Path(__file__).resolve().parents[1]


async def test_the_shipped_scenarios_pass(capsys, monkeypatch):
    # a deployer with agents: their endpoint and webhooks stay out of simulations (their webhooks
    # without the tokens once stopped every simulated bot at start)
    monkeypatch.setenv("HANDOFF_MCP_TOKENS", "fraud-review:" + "t" * 30)
    monkeypatch.setenv("HANDOFF_MCP_WEBHOOKS", "fraud-review=https://agents.example.com/hook")
    status = await main([str(ROOT / "scenarios")])
    out = capsys.readouterr().out
    assert status == 0, out
    assert out.count("\nok   ") + out.startswith("ok   ") >= 7
    assert "0 failed" in out


async def test_a_broken_promise_fails_with_its_reason(tmp_path, capsys):
    (tmp_path / "refund.toml").write_text(
        """
name = "a refund runs at once (it must not)"
[[model]]
tool = "issue_refund"
input = { order_id = 1, amount = 10, reason = "late" }
[[model]]
text = "Done."
[[step]]
customer = "refund 10 on order 1 please"
[expect]
no_ticket = true
[[expect.sql]]
query = "SELECT COALESCE(SUM(refunded_cents), 0) FROM shop_orders"
equals = 1000
"""
    )
    status = await main([str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 1
    assert "FAIL a refund runs at once" in out
    assert "a ticket was opened (approval)" in out and "gave 0, not 1000" in out


async def test_a_scenario_the_runner_cannot_read_is_named(tmp_path, capsys):
    (tmp_path / "typo.toml").write_text('[[step]]\ncustomr = "hello"\n')
    assert await main([str(tmp_path)]) == 2
    assert "typo.toml: step 1 must be one of customer" in capsys.readouterr().err
