"""Settings from the environment that fail fast: a value we do not understand stops the start."""

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def envstr(name, default=None):
    """`NAME`, or the contents of the file named by `NAME_FILE` (for Docker secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read: {exc}") from exc
    return os.environ.get(name, default)


def envbool(name, default):
    value = envstr(name, default).strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean: use one of 1/0, true/false, yes/no, on/off")


def envint(name, default):
    value = envstr(name, str(default))
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None


def envlist(name, default):
    return [item.strip() for item in envstr(name, default).split(",") if item.strip()]


def secret_key(var_dir):
    """LBPANEL_SECRET_KEY, else one generated once and kept in var/secret_key."""
    key = envstr("LBPANEL_SECRET_KEY")
    if key:
        return key
    path = var_dir / "secret_key"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def alert_interval():
    """LBPANEL_ALERT_INTERVAL: seconds between alert evaluations (beat reads it before Django's settings)."""
    seconds = envint("LBPANEL_ALERT_INTERVAL", 5)
    if not 1 <= seconds <= 300:
        raise ImproperlyConfigured(f"LBPANEL_ALERT_INTERVAL={seconds}: use 1 to 300 seconds")
    return seconds


def panel_url():
    """PANEL_URL: the panel's address as people reach it, put in front of the links alerts carry."""
    value = envstr("PANEL_URL", "").strip()
    if value and not value.startswith(("http://", "https://")):
        raise ImproperlyConfigured(f"PANEL_URL={value!r} must start with http:// or https://")
    return value.rstrip("/")
