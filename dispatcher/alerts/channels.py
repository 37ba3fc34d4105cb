"""The two channels: a webhook (JSON with a Slack/Mattermost `text` field and the structured fields)
and e-mail through Django's EMAIL_* settings. Each send either returns or raises ChannelError with a
line a person can act on; the engine logs it and tries again next round.
"""

import json
import urllib.error
import urllib.request

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from dispatcher.alerts.models import EMAIL, FIRING, WEBHOOK

SEND_TIMEOUT_SECONDS = 5  # a channel that hangs must not hold up the next evaluation for long
STATE_WORDS = {FIRING: "FIRING", "resolved": "RESOLVED", "test": "TEST"}


class ChannelError(Exception):
    pass


def _line(notice):
    return f"[{STATE_WORDS.get(notice.state, notice.state.upper())}] {notice.title}"


def _fields(notice):
    return {
        "rule": notice.rule,
        "key": notice.key,
        "state": notice.state,
        "title": notice.title,
        "detail": notice.text,
        "link": notice.link,
        "at": notice.created.isoformat(),
    }


def single(notice):
    """(subject, text, json) of a message about one notice."""
    text = f"{_line(notice)}\n{notice.text}" + (f"\n{notice.link}" if notice.link else "")
    return f"[lbpanel] {_line(notice)}", text, {"text": text, **_fields(notice)}


def digest(notices, limit):
    """(subject, text, json) of one message for the notices the rate limit held back: none is lost."""
    head = f"{len(notices)} alert{'s' if len(notices) != 1 else ''} held back by the rate limit ({limit} messages a minute):"
    lines = [f"• {_line(n)}" + (f" {n.link}" if n.link else "") for n in notices]
    text = "\n".join([head, *lines])
    body = {"text": text, "state": "digest", "count": len(notices), "alerts": [_fields(n) for n in notices]}
    return f"[lbpanel] {head[:-1]}", text, body


def post_webhook(url, body):
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=SEND_TIMEOUT_SECONDS) as response:  # http(s) only: validated where stored
            response.read(1024)
    except urllib.error.HTTPError as exc:
        raise ChannelError(f"webhook {url} answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ChannelError(f"webhook {url} not reached: {reason}") from None


def send_email(recipients, subject, text):
    connection = get_connection(fail_silently=False, timeout=SEND_TIMEOUT_SECONDS)
    message = EmailMessage(subject, text, settings.DEFAULT_FROM_EMAIL, recipients, connection=connection)
    try:
        message.send()
    except (OSError, ValueError) as exc:  # smtplib's errors are OSErrors
        where = f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
        raise ChannelError(f"e-mail through {where} not sent: {exc}") from None


def send(channel, config, subject, text, body):
    """One message on one channel; raises ChannelError."""
    if channel == WEBHOOK:
        post_webhook(config.webhook_url, body)
    elif channel == EMAIL:
        send_email(config.recipients, subject, text)
    else:
        raise ChannelError(f"unknown channel {channel!r}")
