"""The Discord stand-in now ships in the package (``rehearsal.discord_stand_in``); tests import it
from here as before."""

from rehearsal.discord_stand_in import *  # noqa: F403
from rehearsal.discord_stand_in import BOT_ID, FakeDiscord, use_fake_discord, user_json  # noqa: F401
