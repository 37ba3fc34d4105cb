"""docker-compose, the Dockerfile and the Procfile only run commands this project really has.

There is no Docker engine on the build machines, so this is the check we can make:
every command names a program from requirements.txt or a real manage.py command.
"""

import re
import shlex
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS_FROM_REQUIREMENTS = {"gunicorn": "gunicorn", "celery": "celery", "honcho": "honcho"}


def requirement_names():
    names = set()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(re.split(r"[\[=<>]", line, maxsplit=1)[0].lower())
    return names


def check_command(argv):
    """Raise AssertionError naming what is wrong with one command line."""
    if argv[:2] == ["sh", "-c"]:
        for part in argv[2].split("&&"):
            check_command(shlex.split(part))
        return
    program = Path(argv[0]).name
    if program in ("python", "python3"):
        assert argv[1] == "manage.py", f"{argv}: python runs only manage.py here"
        assert argv[2] in get_commands(), f"manage.py has no command {argv[2]!r}"
        return
    assert program in PROGRAMS_FROM_REQUIREMENTS, f"{argv}: {program!r} is not a program this project installs"
    assert PROGRAMS_FROM_REQUIREMENTS[program] in requirement_names(), f"{program} is not in requirements.txt"
    if program == "celery":
        assert argv[1:3] == ["-A", "lbpanel"], f"{argv}: the Celery app is lbpanel"
        assert argv[3] in ("worker", "beat", "inspect"), f"{argv}: unknown celery subcommand"
    if program == "gunicorn":
        assert argv[1] == "lbpanel.wsgi:application"


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_every_process_of_the_design():
    services = compose()["services"]
    assert {"postgres", "redis", "web", "worker", "beat", "proxy"} <= set(services)
    assert "5060" in " ".join(services["proxy"]["command"]) or services["proxy"].get("network_mode") == "host"


@pytest.mark.parametrize("name", ["migrate", "web", "worker", "beat", "proxy"])
def test_compose_commands_exist(name):
    service = compose()["services"][name]
    check_command(service["command"])
    assert service.get("healthcheck") or name in ("migrate", "beat"), f"{name} has no healthcheck"


def test_compose_services_are_configured_from_the_environment():
    services = compose()["services"]
    for name in ("web", "worker", "beat", "proxy"):
        env = services[name]["environment"]
        assert {"DATABASE_URL", "REDIS_URL", "LBPANEL_SECRET_KEY"} <= set(env), name


def test_dockerfile_cmd_exists():
    text = (ROOT / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", text, re.MULTILINE).group(1)
    check_command(yaml.safe_load(cmd))


def test_procfile_commands_exist():
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip():
            _, command = line.split(":", 1)
            check_command(shlex.split(command))


def test_a_made_up_command_is_caught():
    with pytest.raises(AssertionError, match="no command 'runprox'"):
        check_command(["python", "manage.py", "runprox"])
    with pytest.raises(AssertionError, match="not a program"):
        check_command(["uwsgi", "--http", ":8000"])


def test_compose_serves_the_panel_only_through_the_tls_front():
    services = compose()["services"]
    assert "ports" not in services["web"], "gunicorn speaks plain HTTP: publish it only through caddy"
    assert services["web"]["environment"]["LBPANEL_BEHIND_TLS"] == "true"
    caddy = services["caddy"]
    assert "443:443" in caddy["ports"] and "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in caddy["volumes"]
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    assert re.search(r"^\{\$LBPANEL_DOMAIN\} \{\n\treverse_proxy web:8000\n\}", caddyfile, re.MULTILINE)
