"""Handoff without Discord: a stand-in for Discord's REST API and gateway (``discord_stand_in``), a
scripted Messages API (``scripted_claude``), and simulations that run a deployer's policy against
the real bot on them (``simulate``)."""
