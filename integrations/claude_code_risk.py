"""Which of Claude Code's tool uses need a person: pure rules, no SDK (see claude_agent_sdk.py).

A floor, not a sandbox: a shell command is read word by word (programs after separators, wrappers
and ``sh -c``), not run; what it cannot parse goes to a person. Deployers pass their own rules.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

# Programs whose use needs a person: they delete, change owners or rights, run as root, rewrite
# history or publish, or fetch and run code. A floor, not a sandbox: pass your own ``risky``.
RISKY_PROGRAMS = {
    "rm", "rmdir", "shred", "dd", "mkfs", "sudo", "su", "doas", "chmod", "chown", "kill",
    "pkill", "killall", "shutdown", "reboot", "curl", "wget", "scp", "rsync", "docker", "kubectl",
}  # fmt: skip
RISKY_GIT = {"push", "reset", "clean", "rebase", "filter-branch"}
WRITING_TOOLS = {"Write": "file_path", "Edit": "file_path", "MultiEdit": "file_path",
                 "NotebookEdit": "notebook_path"}  # fmt: skip
WRAPPERS = {"xargs", "env", "nohup", "time", "exec", "nice", "timeout", "command", "builtin"}
SHELLS = {"sh", "bash", "zsh", "dash"}


def why_risky(tool_name: str, tool_input: dict[str, Any], project_dir: Path) -> str | None:
    """Why this tool use needs a person, or None."""
    if tool_name == "Bash":
        return _risky_command(str(tool_input.get("command", "")), project_dir)
    if tool_name in WRITING_TOOLS:
        path = str(tool_input.get(WRITING_TOOLS[tool_name], ""))
        if not _inside(path, project_dir):
            return f"writes outside the project ({project_dir}): {path}"
    return None


def _risky_command(command: str, project_dir: Path) -> str | None:
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
    except ValueError:  # unbalanced quotes: what this check cannot read, a person reads
        return f"a shell command this check cannot parse: {command[:200]}"
    expect_program = True
    for i, word in enumerate(words):
        after = words[i + 1 : i + 3]
        if set(word) <= set(";&|()<>`$"):  # a separator or a redirection
            target = after[0] if after else ""
            if ">" in word and target not in ("", "/dev/null") and not _inside(target, project_dir):
                return f"writes outside the project: {word} {target}"
            expect_program = ">" not in word and "<" not in word
            continue
        if not expect_program:
            if word in ("-delete", "-exec", "-execdir") and "find" in words[:i]:
                return f"runs find {word}: {command[:200]}"
            continue
        if ("=" in word and not word.startswith("=")) or word.isdigit():
            continue  # VAR=value before the program; timeout's seconds
        program = Path(word).name
        if program in RISKY_PROGRAMS:
            return f"runs {program}: {command[:200]}"
        if program == "git" and after and after[0] in RISKY_GIT:
            return f"runs git {after[0]}: {command[:200]}"
        if program in SHELLS and after[:1] == ["-c"] and len(after) == 2:
            if found := _risky_command(after[1], project_dir):
                return found
        expect_program = program in WRAPPERS  # their next word is the program they run
    return None


def _inside(path: str, project_dir: Path) -> bool:
    target = (project_dir / Path(path).expanduser()).resolve()
    return target.is_relative_to(project_dir.resolve())
