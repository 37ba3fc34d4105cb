"""python manage.py create_api_token USER [--read-only] [--name N] [--allow CIDR ...]: the key alone on the last line."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from dispatcher.models import ApiToken
from dispatcher.roles import role_of


class Command(BaseCommand):
    help = "Create an API token for a user and print its key (shown once; only a hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--read-only", action="store_true", help="The token can only read, whatever the user's role.")
        parser.add_argument("--name", default="", help="What the token is for.")
        parser.add_argument("--allow", action="append", default=[], metavar="CIDR", help="Only from this address or network (repeatable).")

    def handle(self, *args, username, read_only, name, allow, **options):
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"There is no user {username!r}.") from None
        try:
            token, key = ApiToken.issue(user, name=name, write_enabled=not read_only, allowed_networks=",".join(allow))
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        role = role_of(user) or "no role (the token will be refused until the user gets one)"
        self.stdout.write(f"Token {token.prefix}… for {user.username}, role {role}, {'read-only' if read_only else 'read-write'}.")
        self.stdout.write("Store it now; it cannot be shown again:")
        self.stdout.write(key)
