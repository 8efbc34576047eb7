"""The Discord side of Handoff that is not a cog: the Bot subclass, the ports the engine talks
through (DMs, the staff desk), buttons and forms, the command tree and the interaction helpers, the
start-up check. The cogs beside this package hold only slash commands and listeners."""
