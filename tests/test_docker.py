"""The Dockerfile's promises, checked without a Docker daemon: a non-root user, a HEALTHCHECK
on /healthz at the port served, the database, lock and output on the /data volume (through
the env overrides the config reader knows), the config from /app/config, `aggregator run`
usable in the image, and a .dockerignore that keeps local data and secrets out."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from pathlib import Path, PurePosixPath

import pytest

from aggregator.config import ENV_OVERRIDES, load_config
from aggregator.core import Aggregator

ROOT = Path(__file__).resolve().parent.parent


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def one(name: str) -> str:
    found = [args for word, args in instructions() if word == name]
    assert found, f"the Dockerfile has no {name}"
    return found[-1]


def env() -> dict[str, str]:
    values: dict[str, str] = {}
    for word, args in instructions():
        if word == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                values[key] = value
    return values


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), "exec form (a JSON list), so the process gets SIGTERM"
    return [str(v) for v in value]


def test_base_image_matches_the_python_the_project_needs() -> None:
    image = one("FROM")
    match = re.match(r"python:(\d+)\.(\d+)", image)
    assert match, image
    needed = re.search(r'requires-python = ">=(\d+)\.(\d+)"',
                       (ROOT / "pyproject.toml").read_text())
    assert needed
    assert (int(match[1]), int(match[2])) >= (int(needed[1]), int(needed[2]))


def test_runs_as_a_non_root_user_that_owns_the_volume() -> None:
    steps = instructions()
    users = [(n, args) for n, (word, args) in enumerate(steps) if word == "USER"]
    assert users, "no USER: the process would run as root"
    last, user = users[-1]
    assert user not in ("root", "0") and not user.startswith("0:")
    runs_after = [args for word, args in steps[last:] if word == "RUN"]
    assert not runs_after, "RUN after USER would need root"
    created = " ".join(args for word, args in steps[:last] if word == "RUN")
    assert re.search(rf"useradd .*\b{user}\b", created), created
    assert re.search(rf"chown (-R )?{user} /data", created), "the volume must be the user's"
    assert steps.index(("CMD", one("CMD"))) > last


def test_database_lock_and_output_live_on_the_volume(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    variables = env()
    volumes = json.loads(one("VOLUME"))
    assert volumes == ["/data"]
    assert set(variables) >= {"AGGREGATOR_CONFIG", "AGGREGATOR_DATABASE",
                              "AGGREGATOR_OUTPUT_DIR"}
    for name in ("AGGREGATOR_DATABASE", "AGGREGATOR_OUTPUT_DIR"):
        assert name in ENV_OVERRIDES, f"{name} is no override the config reader knows"
        assert PurePosixPath(variables[name]).is_relative_to("/data"), name
    # the shipped config read with the image's environment (the volume mapped to tmp_path)
    mapped = {k: v.replace("/data", str(tmp_path / "data")) for k, v in variables.items()
              if k in ENV_OVERRIDES}
    for key, value in mapped.items():
        monkeypatch.setenv(key, value)
    config_in_image = PurePosixPath(variables["AGGREGATOR_CONFIG"])
    assert config_in_image.is_relative_to("/app/config")
    local = ROOT / "config" / config_in_image.relative_to("/app/config")
    settings = load_config(local).settings
    assert settings.database == mapped["AGGREGATOR_DATABASE"]
    assert settings.output_dir == mapped["AGGREGATOR_OUTPUT_DIR"]
    agg = Aggregator(load_config(local))  # opens (creates) the database on the volume
    try:
        assert agg.lock_path().parent == tmp_path / "data"  # the run lock too
        assert Path(mapped["AGGREGATOR_DATABASE"]).exists()
    finally:
        agg.close()


def test_config_comes_from_the_folder_that_is_copied_and_mounted() -> None:
    workdir = one("WORKDIR")
    copies = [shlex.split(args) for word, args in instructions() if word == "COPY"]
    targets = {str(PurePosixPath(workdir) / dst): src for *srcs, dst in copies for src in srcs}
    assert targets.get("/app/config") == "config", copies
    for *srcs, _ in copies:
        for src in srcs:
            assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
    assert env()["AGGREGATOR_CONFIG"] == "/app/config/aggregator.toml"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert ":/app/config:ro" in readme and "-v aggregator-data:/data" in readme


def test_serves_on_the_exposed_port_and_checks_health_there() -> None:
    cmd = exec_form(one("CMD"))
    assert cmd[:2] == ["aggregator", "serve"]
    port = cmd[cmd.index("--port") + 1]
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert one("EXPOSE") == port
    health = one("HEALTHCHECK")
    assert re.search(r"--interval=\d+s", health) and "--timeout=" in health
    check = exec_form(health.split("CMD", 1)[1].strip())
    assert f"http://127.0.0.1:{port}/healthz" in " ".join(check)
    assert check[0] == "python"  # no curl in the slim image
    # the README's `docker run` maps that port and runs `aggregator run` in the same image
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"-p {port}:{port}" in readme
    assert re.search(r"docker run [^\n]*aggregator aggregator run", readme)


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    patterns = [line.strip() for line in
                (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")]

    def ignored(path: str) -> bool:
        return any(fnmatch.fnmatch(path, p) or path.split("/")[0] == p.rstrip("/")
                   for p in patterns)

    for path in (".git", "data", "public", ".venv", "tests", ".env", "x.db", "x.db-wal"):
        assert ignored(path), path
    for path in ("pyproject.toml", "README.md", "aggregator", "config"):  # what COPY needs
        assert not ignored(path), path
