import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the user 'admin' on first run (LBPANEL_ADMIN_PASSWORD, else a generated one printed once)."

    def handle(self, **options):
        user_model = get_user_model()
        if user_model.objects.filter(username="admin").exists():
            # A later run must not leave people wondering where the password went: it was printed once.
            self.stdout.write(
                "user admin exists, password unchanged (it was printed on the first run);"
                " to set a new one: .venv/bin/python manage.py changepassword admin"
            )
            return
        password = os.environ.get("LBPANEL_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        user_model.objects.create_superuser("admin", "", password)
        shown = "from LBPANEL_ADMIN_PASSWORD" if os.environ.get("LBPANEL_ADMIN_PASSWORD") else password
        self.stdout.write(f"created user admin, password: {shown} (shown only now)")
