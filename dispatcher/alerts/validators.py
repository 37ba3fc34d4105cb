"""Checks on what the alert settings store: a webhook URL is http(s) only, recipients are e-mail addresses."""

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email


def validate_webhook_url(value):
    """http or https only: the worker POSTs to it, so file:, ftp: or a bare host must not get through."""
    if not value:
        return
    scheme = urlsplit(value).scheme.lower()
    if scheme not in ("http", "https"):
        raise ValidationError(f"The webhook URL must start with http:// or https://, not {scheme or 'nothing'}:.")
    URLValidator(schemes=["http", "https"], message="Not a valid http(s) URL.")(value)


def recipient_list(text):
    return [item.strip() for item in text.replace("\n", ",").replace(";", ",").split(",") if item.strip()]


def validate_recipients(value):
    bad = []
    for address in recipient_list(value):
        try:
            validate_email(address)
        except ValidationError:
            bad.append(address)
    if bad:
        raise ValidationError(f"Not an e-mail address: {', '.join(bad)}.")
