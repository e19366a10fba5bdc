"""What the README promises about configuration, commands and deployment files stays true."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from bots.config import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _readme_variables() -> set[str]:
    table = README.split("## Configuration", 1)[1].split("## Architecture", 1)[0]
    names: set[str] = set()
    for row in table.splitlines():
        if row.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1]))
    return names


def test_configuration_table_matches_the_settings():
    code = {(f.alias or name).upper() for name, f in Settings.model_fields.items()}
    code |= {"BRIDGE_CONFIG"}
    assert _readme_variables() == code


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci/run").read_text()
    command = ci.strip().splitlines()[-1]
    assert command.startswith("python3 -m venv .venv") and "pytest" in command
    assert f"```sh\n{command}\n```" in README


def test_readme_run_command_starts_serve():
    assert "```sh\npython3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/dify-bridge serve\n```" in README


def test_console_script_and_python_floor():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["dify-bridge"] == "bots.cli:main"
    assert project["requires-python"] == ">=3.11"
    assert all(re.search(r">=\d", dep) for dep in project["dependencies"]), "dependencies are lower-bounded"
    assert "test" in project["optional-dependencies"]


def test_compose_file_keeps_the_readme_promises():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    bridge = compose["services"]["bridge"]
    assert bridge["env_file"] == ".env"
    assert any(v.endswith(":/app/data") for v in bridge["volumes"]), "a volume for data/"
    assert "/healthz" in " ".join(bridge["healthcheck"]["test"])
    assert "DATABASE_URL" in bridge["environment"]
    postgres = compose["services"]["postgres"]
    assert postgres["profiles"] == ["postgres"]
    env = postgres["environment"]
    promised = "postgresql+asyncpg://{u}:{p}@postgres:5432/{d}".format(
        u=env["POSTGRES_USER"], p=env["POSTGRES_PASSWORD"], d=env["POSTGRES_DB"]
    )
    assert promised in README
    assert "docker compose up -d" in README and "--profile postgres" in README


def test_dockerfile_is_slim_non_root_and_serves():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.1[1-9]-slim", dockerfile, re.M)
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M)
    assert 'CMD ["dify-bridge", "serve"]' in dockerfile and "/healthz" in dockerfile
