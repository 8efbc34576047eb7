"""The scripted Messages API now ships in the package (``rehearsal.scripted_claude``); tests import
it from here as before."""

from rehearsal.scripted_claude import *  # noqa: F403
from rehearsal.scripted_claude import (  # noqa: F401
    FakeClaude,
    PromptCache,
    Reply,
    answer_from_knowledge,
    error,
    last_user_text,
    passages_in,
    system_text,
    text,
    tool_calls,
)
