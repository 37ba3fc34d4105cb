"""python manage.py create_api_token USER [--role R] [--read-only] [--name N] [--allow CIDR ...] [--expires-in-days D].

The key is alone on the last line. With --role, a USER that does not exist is created as a service
account (no password: it cannot log in, only its tokens act) holding that role.
"""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from dispatcher import services
from dispatcher.roles import ADMIN, OPERATOR, VIEWER, role_of


class Command(BaseCommand):
    help = "Create an API token for a user and print its key (shown once; only a hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--role",
            choices=(VIEWER, OPERATOR, ADMIN),
            help="Create USER with this role when there is no such user (a service account without a password).",
        )
        parser.add_argument("--read-only", action="store_true", help="The token can only read, whatever the user's role.")
        parser.add_argument("--name", default="", help="What the token is for.")
        parser.add_argument(
            "--allow", action="append", default=[], metavar="CIDR", help="Only from this address or network (repeatable)."
        )
        parser.add_argument(
            "--expires-in-days",
            type=int,
            default=None,
            metavar="D",
            help="The token stops working after D days (default: until revoked).",
        )

    def handle(self, *args, username, role, read_only, name, allow, expires_in_days, **options):
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError(f"--expires-in-days must be 1 or more, got {expires_in_days}.")
        expires = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
        user = self._user(username, role)
        try:
            token, key = services.issue_token(
                user,
                reason="manage.py create_api_token",
                name=name,
                write_enabled=not read_only,
                allowed_networks=",".join(allow),
                expires=expires,
            )
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        role = role_of(user) or "no role (the token will be refused until the user gets one)"
        until = f"expires {token.expires:%Y-%m-%d %H:%M %Z}" if token.expires else "no expiry"
        self.stdout.write(
            f"Token {token.prefix}… for {user.username}, role {role}, {'read-only' if read_only else 'read-write'}, {until}."
        )
        self.stdout.write("Store it now; it cannot be shown again:")
        self.stdout.write(key)

    def _user(self, username, role):
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            if role is None:
                raise CommandError(
                    f"There is no user {username!r}. Add --role viewer|operator|admin to create it as a service account."
                ) from None
            try:
                get_user_model().username_validator(username)
            except ValidationError as exc:
                raise CommandError(f"{username!r} cannot be a user name: {' '.join(exc.messages)}") from None
            # No password: a service account acts only through its tokens, never through the login page.
            user = services.create_user(username, None, role)
            self.stdout.write(f"Created service account {username} ({role}, no password: it cannot log in).")
            return user
        # A role given for an existing account is checked, not applied: roles change in the panel, audited there.
        if role is not None and role_of(user) != role:
            raise CommandError(
                f"User {username!r} exists with role {role_of(user) or 'none'}, not {role}; change roles in the panel (Users)."
            )
        return user
