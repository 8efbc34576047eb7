"""The install is reproducible and its floors hold: every dependency is pinned in constraints.txt
(what the README's install and .ci/run use), at a version its floor in pyproject.toml admits."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def pinned() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_every_dependency_is_pinned_at_a_version_its_floor_admits():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [
        Requirement(r)
        for r in [
            *project["dependencies"],
            *project["optional-dependencies"]["test"],
            *project["optional-dependencies"]["integrations"],
        ]
    ]
    pins = pinned()
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in pins, (
            f"{requirement.name} is not in constraints.txt: remake it (see its header)"
        )
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {requirement.name}=={pins[name]},"
            f" outside {requirement.specifier}"
        )


def test_the_floors_leave_out_releases_with_known_advisories():
    pins = pinned()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floors = {
        canonicalize_name(Requirement(r).name): Requirement(r).specifier
        for r in project["dependencies"]
    }
    for name, fixed_in, before in [
        ("cryptography", "44.0.1", "44.0.0"),
        ("h11", "0.16.0", "0.14.0"),
        ("aiohttp", "3.12.14", "3.11.0"),
        ("starlette", "0.49.1", "0.47.0"),
    ]:
        assert floors[name].contains(fixed_in) and not floors[name].contains(before), name
        assert floors[name].contains(pins[name])
