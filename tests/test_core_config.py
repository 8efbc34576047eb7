"""Settings and the policy file: bad configuration stops start-up with the variable and the fix."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.policy import PolicyError, defaults, load_policy, parse_policy
from core.settings import ConfigError, load_settings
from tests.support import TEST_SECRET_KEY

ROOT = Path(__file__).resolve().parents[1]
GOOD = {
    "DISCORD_TOKEN": "abc.def.ghi",
    "DISCORD_GUILD_ID": "123456789012345678",
    "DISCORD_STAFF_CHANNEL_ID": "223456789012345678",
    "DISCORD_OPERATOR_ROLE_ID": "323456789012345678",
    "HANDOFF_SECRET_KEY": TEST_SECRET_KEY,
}


def test_good_settings_and_defaults():
    s = load_settings(GOOD)
    assert s.staff_channel_id == 223456789012345678
    assert s.db_path == Path("data/handoff.db") and s.policy_path == Path("policy.toml")
    assert (
        not s.ai_enabled and s.operator_user_id is None and s.anthropic_model.startswith("claude-")
    )


def test_discord_channel_id_is_accepted_for_the_staff_channel():
    env = dict(GOOD)
    env["DISCORD_CHANNEL_ID"] = env.pop("DISCORD_STAFF_CHANNEL_ID")
    assert load_settings(env).staff_channel_id == 223456789012345678


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"DISCORD_TOKEN": ""}, "DISCORD_TOKEN is not set"),
        ({"DISCORD_TOKEN": "Bot abc"}, "DISCORD_TOKEN contains spaces"),
        ({"DISCORD_GUILD_ID": "my-server"}, "DISCORD_GUILD_ID='my-server' is not a Discord ID"),
        ({"DISCORD_STAFF_CHANNEL_ID": ""}, "DISCORD_STAFF_CHANNEL_ID is not set"),
        ({"DISCORD_OPERATOR_ROLE_ID": "12"}, "DISCORD_OPERATOR_ROLE_ID='12' is not a Discord ID"),
        ({"DISCORD_USER_ID": "abc"}, "DISCORD_USER_ID='abc'"),
        ({"HANDOFF_LLM_CONCURRENCY": "0"}, "HANDOFF_LLM_CONCURRENCY='0' is out of range"),
        ({"HANDOFF_LLM_TIMEOUT": "soon"}, "HANDOFF_LLM_TIMEOUT='soon' is not a number"),
        ({"ANTHROPIC_BASE_URL": "localhost:8000"}, "ANTHROPIC_BASE_URL"),
        (
            {"HANDOFF_MCP_TOKENS": "fraud-review"},
            r"HANDOFF_MCP_TOKENS entry 1 \(fraud-review\) has no token",
        ),
        (
            {"HANDOFF_MCP_TOKENS": "fraud review:" + "t" * 30},
            "the agent name 'fraud review' must be",
        ),
        ({"HANDOFF_MCP_TOKENS": "a:short"}, r"entry 1 \(a\): the token is too short"),
        ({"HANDOFF_MCP_TOKENS": f"a:{'t' * 30},a:{'u' * 30}"}, "the agent name 'a' appears twice"),
        (
            {"HANDOFF_MCP_TOKENS": f"a:{'t' * 30},b:{'t' * 30}"},
            "the same token is given to two agents",
        ),
        ({"HANDOFF_MCP_PORT": "80000"}, "HANDOFF_MCP_PORT='80000' is out of range"),
        (
            {"DISCORD_API_BASE": "http://discord-proxy.example.com/api/v10"},
            "would send the bot token in clear",
        ),
        ({"DISCORD_API_BASE": "http://10.0.0.5:8080/api/v10"}, "would send the bot token in clear"),
        (
            {"HANDOFF_MCP_TOKENS": f"a:{'t' * 30}", "HANDOFF_MCP_HOST": "0.0.0.0"},
            "HANDOFF_MCP_HOST=0.0.0.0 listens beyond this machine: set HANDOFF_MCP_PUBLIC_URL",
        ),
        (
            {"HANDOFF_MCP_PUBLIC_URL": "desk.example.com"},
            "HANDOFF_MCP_PUBLIC_URL='desk.example.com' is not a URL",
        ),
    ],
)
def test_bad_settings_name_the_variable(change, names):
    with pytest.raises(ConfigError, match=names):
        load_settings({**GOOD, **change})


def test_mcp_tokens_are_read_and_described_without_the_tokens():
    settings = load_settings(
        {
            **GOOD,
            "HANDOFF_MCP_TOKENS": f" fraud-review:{'t' * 30} , voice.bot:{'u' * 30} ",
            "HANDOFF_MCP_PORT": "9000",
        }
    )
    assert settings.mcp_tokens == {"fraud-review": "t" * 30, "voice.bot": "u" * 30}
    described = "\n".join(settings.describe())
    assert (
        "fraud-review, voice.bot" in described
        and "127.0.0.1:9000" in described
        and "t" * 30 not in described
    )
    assert not load_settings(GOOD).mcp_enabled


def test_a_bad_token_is_never_printed_in_the_problem():
    with pytest.raises(ConfigError) as caught:
        load_settings({**GOOD, "HANDOFF_MCP_TOKENS": "a:secret12"})
    assert "secret12" not in str(caught.value)


def test_the_shipped_policy_file_loads_and_matches_the_defaults():
    policy = load_policy(ROOT / "policy.toml")
    assert policy.values == defaults().values


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            "[llm]\nmax_tokns = 100\n",
            r"<policy>:2: unknown key 'max_tokns' in \[llm\]; did you mean 'max_tokens'\?",
        ),
        ("[lm]\nmax_tokens = 100\n", r"<policy>:1: unknown section \[lm\]; did you mean \[llm\]\?"),
        (
            '[llm]\n\nmax_tokens = "many"\n',
            r"<policy>:3: \[llm\] max_tokens = 'many' must be a whole number",
        ),
        (
            "[llm]\nmax_tokens = 5\n",
            r"<policy>:2: \[llm\] max_tokens = 5 is out of range; use 64 to 8192",
        ),
        ("[llm]\nmax_tokens = true\n", r"must be a whole number"),
        ("[llm\nmax_tokens = 5\n", r"not valid TOML"),
        ('[messages]\nno_ai = "  "\n', r"no_ai is empty"),
    ],
)
def test_policy_mistakes_name_the_key_the_line_and_the_fix(toml, expected):
    with pytest.raises(PolicyError, match=expected):
        parse_policy(toml)


def test_policy_values_override_defaults_and_fill_the_prompt():
    policy = parse_policy(
        '[agent]\nbusiness_name = "Bean Co"\n[delivery]\nretry_base_seconds = 0.5\n'
    )
    assert "Bean Co" in policy.system_prompt and policy["delivery"]["retry_base_seconds"] == 0.5
    assert policy["llm"]["max_tokens"] == 1024


def run_bot_py(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python bot.py ARGS`` in ``cwd`` with only ``env`` for its Discord, Anthropic and Handoff
    settings."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DISCORD_", "ANTHROPIC_", "HANDOFF_"))
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "bot.py"), *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _run_check(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_bot_py(["--check"], env, cwd)


def test_check_prints_the_effective_setup(tmp_path):
    (tmp_path / "policy.toml").write_text((ROOT / "policy.toml").read_text())
    result = _run_check({**GOOD, "ANTHROPIC_API_KEY": "sk-ant-secret-value-1234"}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (
        "Configuration OK" in result.stdout
        and "DISCORD_STAFF_CHANNEL_ID 223456789012345678" in result.stdout
    )
    assert "sk-ant-secret" not in result.stdout and TEST_SECRET_KEY not in result.stdout, (
        "secrets are masked"
    )
    assert "HANDOFF_SECRET_KEY       (set)" in result.stdout
    assert "issue_refund (financial)" in result.stdout


def test_no_character_of_a_secret_is_shown_and_urls_lose_their_passwords(tmp_path):
    from storage.postgres import redacted

    token, key = "abc.def.ghiJKLM", "sk-ant-secret-value-WXYZ"
    described = "\n".join(
        load_settings({**GOOD, "DISCORD_TOKEN": token, "ANTHROPIC_API_KEY": key}).describe()
    )
    assert "JKLM" not in described and "WXYZ" not in described
    assert (
        redacted("postgresql://bot@db/handoff?sslmode=require&password=hunter2")
        == "postgresql://bot@db/handoff?sslmode=require&password=***"
    )
    assert redacted("postgresql://bot:hunter2@db/handoff") == "postgresql://bot:***@db/handoff"
    for base in (
        "http://127.0.0.1:8080/api/v10",
        "http://localhost:1/api",
        "https://proxy.example.com/api/v10",
    ):
        assert load_settings({**GOOD, "DISCORD_API_BASE": base}).discord_api_base == base
    public = load_settings(
        {
            **GOOD,
            "HANDOFF_MCP_TOKENS": f"a:{'t' * 30}",
            "HANDOFF_MCP_HOST": "0.0.0.0",
            "HANDOFF_MCP_PUBLIC_URL": "https://desk.example.com/mcp",
        }
    )
    assert public.mcp_url == "https://desk.example.com/mcp"


async def test_the_sqlite_file_and_its_folder_are_the_owners_alone(tmp_path):
    from storage.db import Database

    path = tmp_path / "new" / "handoff.db"
    db = await Database(path).open()
    try:
        await db.migrate()
    finally:
        await db.close()
    assert path.parent.stat().st_mode & 0o777 == 0o700
    for made in path.parent.iterdir():
        assert made.stat().st_mode & 0o077 == 0, f"{made.name} is readable by others"


def test_check_refuses_bad_config_with_the_fix(tmp_path):
    (tmp_path / "policy.toml").write_text("[llm]\nmax_tokns = 1\n")
    result = _run_check(GOOD, tmp_path)
    assert result.returncode == 2
    assert "policy.toml:2: unknown key 'max_tokns'" in result.stderr


def test_environment_wins_over_dotenv(tmp_path):
    (tmp_path / "policy.toml").write_text("")
    (tmp_path / ".env").write_text(
        "\n".join(f"{k}={v}" for k, v in GOOD.items()) + "\nDISCORD_GUILD_ID=999\n"
    )
    result = _run_check({"DISCORD_GUILD_ID": "423456789012345678"}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "DISCORD_GUILD_ID         423456789012345678" in result.stdout


def test_dotenv_is_read_when_the_environment_is_silent(tmp_path):
    (tmp_path / "policy.toml").write_text("")
    (tmp_path / ".env").write_text("\n".join(f"{k}={v}" for k, v in GOOD.items()) + "\n")
    result = _run_check({}, tmp_path)
    assert result.returncode == 0, result.stderr
    missing = _run_check({}, tmp_path / "..")
    assert missing.returncode == 2 and "DISCORD_TOKEN is not set" in missing.stderr


def test_one_time_codes_need_a_secret_key_and_say_how_to_make_one(tmp_path):
    (tmp_path / "policy.toml").write_text("")
    env = {k: v for k, v in GOOD.items() if k != "HANDOFF_SECRET_KEY"}
    result = _run_check(env, tmp_path)
    assert result.returncode == 2
    assert (
        "HANDOFF_SECRET_KEY is not set" in result.stderr
        and "--generate-secret-key" in result.stderr
    )
    (tmp_path / "policy.toml").write_text("[mfa]\nenabled = false\n")
    assert _run_check(env, tmp_path).returncode == 0, "codes off: no key needed"
    with pytest.raises(ConfigError, match="HANDOFF_SECRET_KEY is not a valid key"):
        load_settings({**GOOD, "HANDOFF_SECRET_KEY": "not-a-key"})


def test_generate_secret_key_prints_a_usable_key():
    result = subprocess.run(
        [sys.executable, "bot.py", "--generate-secret-key"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    key = result.stdout.strip()
    assert result.returncode == 0 and len(key) == 44
    assert load_settings({**GOOD, "HANDOFF_SECRET_KEY": key}).secret_key == key


def test_the_unedited_template_reports_every_problem_in_one_run(tmp_path):
    (tmp_path / "policy.toml").write_text('[llm]\nmax_tokns = 1\n[summary]\ncron = "0 9 * * 8"\n')
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    result = _run_check({}, tmp_path)
    assert result.returncode == 2
    for named in (
        "DISCORD_TOKEN is not set",
        "DISCORD_GUILD_ID is not set",
        "DISCORD_STAFF_CHANNEL_ID is not set",
        "DISCORD_OPERATOR_ROLE_ID is not set",
        "policy.toml:2: unknown key 'max_tokns'",
        "policy.toml:4: [summary] cron = '0 9 * * 8'",
        "HANDOFF_SECRET_KEY is not set",
    ):
        assert named in result.stderr, f"{named!r} missing from:\n{result.stderr}"
    assert result.stderr.startswith("Configuration errors (7;")


@pytest.mark.parametrize(
    ("digits", "accepted"),
    [(15, False), (16, False), (17, True), (19, True), (20, True), (21, False)],
)
def test_discord_ids_have_17_to_20_digits_as_the_message_says(digits, accepted):
    env = {**GOOD, "DISCORD_GUILD_ID": "1" * digits}
    if accepted:
        assert load_settings(env).guild_id == int("1" * digits)
    else:
        with pytest.raises(ConfigError, match="is not a Discord ID \\(a number of 17-20 digits\\)"):
            load_settings(env)


def test_check_opens_the_database_and_names_handoff_db(tmp_path):
    (tmp_path / "policy.toml").write_text("")
    fresh = tmp_path / "new" / "handoff.db"
    result = _run_check({**GOOD, "HANDOFF_DB": str(fresh)}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert fresh.exists(), "--check creates the database as the bot would"

    (tmp_path / "a-file").write_text("not a folder")
    result = _run_check({**GOOD, "HANDOFF_DB": str(tmp_path / "a-file" / "handoff.db")}, tmp_path)
    assert result.returncode == 2 and "Configuration OK" not in result.stdout
    [line] = result.stderr.strip().splitlines()
    assert (
        line.startswith("Configuration error: HANDOFF_DB=") and "cannot create the folder" in line
    )

    (tmp_path / "notes.txt").write_text("this is not a database\n" * 200)
    result = _run_check({**GOOD, "HANDOFF_DB": str(tmp_path / "notes.txt")}, tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert (
        "HANDOFF_DB=" in line
        and "is not a Handoff database" in line
        and "Traceback" not in result.stderr
    )


async def test_a_different_secret_key_is_refused_before_it_locks_customers_out(tmp_path):
    from core.codes import KEY_CHECK, SecretBox, generate_key, secret_key_problem
    from storage import Database
    from storage.codes import CodeStore

    other_key = generate_key()
    db_path = tmp_path / "h.db"
    # a database from before the check: one enrolled secret only
    async with Database(db_path) as db:
        codes = CodeStore(db)
        customer = await codes.customer_id_for(100, "Ada", 0)
        await codes.start_setup(
            customer, SecretBox(TEST_SECRET_KEY).seal("JBSWY3DPEHPK3PXP"), 0, 900
        )
        assert "is not the key" in await secret_key_problem(SecretBox(other_key), db, codes, 0)
        assert await db.kept(KEY_CHECK) is None, "nothing is remembered for a key that does not fit"
        assert await secret_key_problem(SecretBox(TEST_SECRET_KEY), db, codes, 0) is None
        assert await db.kept(KEY_CHECK) is not None, (
            "the right key is remembered for the next start"
        )

    (tmp_path / "policy.toml").write_text("")
    wrong = await asyncio.to_thread(
        _run_check, {**GOOD, "HANDOFF_DB": str(db_path), "HANDOFF_SECRET_KEY": other_key}, tmp_path
    )
    assert wrong.returncode == 2 and "Configuration OK" not in wrong.stdout
    [line] = wrong.stderr.strip().splitlines()
    assert line.startswith("Configuration error: HANDOFF_SECRET_KEY is not the key")
    right = await asyncio.to_thread(_run_check, {**GOOD, "HANDOFF_DB": str(db_path)}, tmp_path)
    assert right.returncode == 0, right.stderr

    started = await asyncio.to_thread(
        run_bot_py,
        [],
        {**GOOD, "HANDOFF_DB": str(db_path), "HANDOFF_SECRET_KEY": other_key},
        tmp_path,
    )
    assert started.returncode == 2 and "HANDOFF_SECRET_KEY is not the key" in started.stderr


def test_the_typed_policy_sections_match_the_spec():
    """core/policy_sections.py is generated from SPEC: a key added to SPEC without regenerating
    fails here."""
    from core.policy import sections_source

    assert (ROOT / "core" / "policy_sections.py").read_text(
        encoding="utf-8"
    ) == sections_source(), "regenerate it: python -m core.policy > core/policy_sections.py"
    policy = parse_policy('[desk]\nnote_prefix = "%%"\nhours = ["mon-fri 09:00-17:00"]\n')
    assert policy.desk.note_prefix == "%%" and policy.desk.hours == ("mon-fri 09:00-17:00",)
    assert policy.llm.max_tokens == defaults().llm.max_tokens
