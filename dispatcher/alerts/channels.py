"""The two channels: a webhook (JSON with a Slack/Mattermost `text` field and the structured fields)
and e-mail through Django's EMAIL_* settings. Each send either returns or raises ChannelError with a
line a person can act on; the engine logs it and tries again next round.

ChannelError's text names the whole webhook URL (for the log and the admin's test button); its
`reason` is the short cause without the URL's path, which chat webhooks use for their secret: "connection
refused to 127.0.0.1:5099", "SMTP 550 5.1.1 no such user (ops@example.test)". The engine records the
reason where every panel page shows it (dispatcher/alerts/status.py).
"""

import http.client
import json
import smtplib
import socket
import ssl
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from dispatcher.alerts.models import EMAIL, FIRING, WEBHOOK

SEND_TIMEOUT_SECONDS = 5  # a channel that hangs must not hold up the next evaluation for long
STATE_WORDS = {FIRING: "FIRING", "resolved": "RESOLVED", "test": "TEST"}


class ChannelError(Exception):
    def __init__(self, message, reason=None):
        super().__init__(message)
        self.reason = reason or message


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


def _network_reason(exc, where, host):
    """Why a connection to `where` (host:port) failed, in a few words."""
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused to {where}"
    if isinstance(exc, TimeoutError):
        return f"no answer from {where} within {SEND_TIMEOUT_SECONDS} s"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {host}: {exc.strerror or exc}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate of {where} refused: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS with {where} failed: {exc.reason or exc}"
    if isinstance(exc, http.client.RemoteDisconnected):
        return f"{where} closed the connection without answering"
    if isinstance(exc, ConnectionResetError):
        return f"{where} reset the connection"
    if isinstance(exc, http.client.HTTPException):
        return f"{where} did not answer HTTP ({type(exc).__name__})"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{where} not reached: {exc.strerror}"
    return f"{where} not reached: {exc}"


def _webhook_where(url):
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "the webhook URL", "the webhook URL"
    return f"{parts.hostname}:{port}", parts.hostname


def _without_secret(reason, url):
    """The reason is shown on every page: whatever an error quoted of the URL goes, but its host."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return reason.replace(url, "the webhook URL")
    secret = url[len(f"{parts.scheme}://{parts.netloc}") :]
    reason = reason.replace(url, f"{parts.scheme}://{parts.netloc}/…")
    return reason.replace(secret, "/…") if len(secret) > 1 else reason


def post_webhook(url, body):
    data = json.dumps(body).encode()
    where, host = _webhook_where(url)
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=SEND_TIMEOUT_SECONDS) as response:  # http(s) only: validated where stored
            response.read(1024)
    except urllib.error.HTTPError as exc:
        reason = f"{where} answered HTTP {exc.code} {exc.reason}"
        raise ChannelError(f"webhook {url} answered {exc.code} {exc.reason}", _without_secret(reason, url)) from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        # urlopen wraps a failed connect in URLError; a bad answer (garbage, closed early) comes bare.
        cause = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        reason = _network_reason(cause, where, host) if isinstance(cause, BaseException) else f"{where} not reached: {cause}"
        raise ChannelError(f"webhook {url} not reached: {cause}", _without_secret(reason, url)) from None


def _smtp_text(error):
    return (error.decode(errors="replace") if isinstance(error, bytes) else str(error)).replace("\n", " ")


def _smtp_reason(exc, where, host):
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
        (address, (code, error)), *more = exc.recipients.items()
        others = f" and {len(more)} more" if more else ""
        return f"SMTP {code} {_smtp_text(error)} ({address}{others})"
    if isinstance(exc, smtplib.SMTPResponseException):  # refused sender, data, authentication, HELO
        return f"SMTP {exc.smtp_code} {_smtp_text(exc.smtp_error)} from {where}"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"{where} closed the SMTP connection: {exc}".rstrip(": ")
    if isinstance(exc, smtplib.SMTPException):
        return f"SMTP {where}: {exc}"
    if isinstance(exc, OSError):
        return _network_reason(exc, where, host)
    return str(exc)


def send_email(recipients, subject, text):
    connection = get_connection(fail_silently=False, timeout=SEND_TIMEOUT_SECONDS)
    message = EmailMessage(subject, text, settings.DEFAULT_FROM_EMAIL, recipients, connection=connection)
    try:
        message.send()
    except (OSError, ValueError) as exc:  # smtplib's errors are OSErrors
        where = f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
        reason = _smtp_reason(exc, where, settings.EMAIL_HOST)
        raise ChannelError(f"e-mail through {where} not sent: {exc}", reason) from None


def send(channel, config, subject, text, body):
    """One message on one channel; raises ChannelError, whatever went wrong: a failure must be
    recorded and retried, never end the evaluation (and the other channel's turn) with a traceback."""
    try:
        if channel == WEBHOOK:
            post_webhook(config.webhook_url, body)
        elif channel == EMAIL:
            send_email(config.recipients, subject, text)
        else:
            raise ChannelError(f"unknown channel {channel!r}")
    except ChannelError:
        raise
    except Exception as exc:  # not blind: re-raised as a ChannelError (see above)
        raise ChannelError(f"{channel} not sent: {type(exc).__name__}: {exc}") from exc
