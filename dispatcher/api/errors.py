"""Errors the API answers with: JSON that names the field, 409 for what clashes with what exists."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from rest_framework import serializers, status
from rest_framework.exceptions import APIException

from dispatcher.services import ServerNameTaken, SetInUse


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This clashes with what is already configured."
    default_code = "conflict"


def field_errors(exc):
    """A django ValidationError as {field: [messages]}; errors not tied to a field go under non_field_errors."""
    if hasattr(exc, "error_dict"):
        return {("non_field_errors" if k == "__all__" else k): v for k, v in exc.message_dict.items()}
    return {"non_field_errors": exc.messages}


def call_service(func, *args, **kwargs):
    """Run a dispatcher.services writer; its ValidationError becomes 400, a name another server has,
    a lost uniqueness race or a set still in use 409."""
    try:
        return func(*args, **kwargs)
    except SetInUse as exc:
        raise Conflict({"setid": exc.reasons}) from None
    except ServerNameTaken as exc:
        raise Conflict(field_errors(exc)) from None
    except DjangoValidationError as exc:
        raise serializers.ValidationError(field_errors(exc)) from None
    except IntegrityError as exc:
        raise Conflict({"non_field_errors": [f"Another change got there first: {exc.__cause__ or exc}"]}) from None
