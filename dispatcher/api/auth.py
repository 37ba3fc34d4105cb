"""Who is calling: `Authorization: Token <key>` (or `Bearer <key>`) or the browser's session, and what they may do.

Roles are the panel's (dispatcher.roles): a viewer reads, an operator also changes admin state,
an admin also changes configuration. A token without write_enabled never writes, whatever its user's role.
"""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from dispatcher.models import ApiToken
from dispatcher.roles import ADMIN, VIEWER, has_role

KEYWORDS = (b"token", b"bearer")
# Writing last_used on every request would turn each read into a write; once a minute is enough to audit.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def client_address(request):
    """The caller's address, for token address limits and login throttling (django-axes).

    Behind the TLS front (LBPANEL_BEHIND_TLS) REMOTE_ADDR is the front's own address; the front
    appends the real one to X-Forwarded-For, so its last entry is the only one we can believe.
    """
    if settings.BEHIND_TLS:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").rsplit(",", 1)[-1].strip()
        if forwarded:
            return forwarded
    return request.META.get("REMOTE_ADDR", "")


class TokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() not in KEYWORDS:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Authorization header: use 'Token <key>' or 'Bearer <key>', one key, no spaces."
            )
        try:
            key = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Authorization header: the key has characters a key never has.") from None
        return self.authenticate_key(key, client_address(request))

    def authenticate_key(self, key, address):
        token = ApiToken.objects.select_related("user").filter(key_hash=ApiToken.hash_key(key)).first()
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if token.revoked is not None:
            raise exceptions.AuthenticationFailed("This token was revoked.")
        now = timezone.now()
        if token.has_expired(now):
            raise exceptions.AuthenticationFailed(f"This token expired at {token.expires.isoformat(timespec='seconds')}.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("This token's user is inactive.")
        if not token.allows_address(address):
            raise exceptions.AuthenticationFailed(f"This token may not be used from {address}.")
        if token.last_used is None or now - token.last_used > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used=now)
        return token.user, token

    def authenticate_header(self, request):
        # Makes DRF answer 401 (with WWW-Authenticate) rather than 403 when no credentials came.
        return 'Token realm="api"'


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "dispatcher.api.auth.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "`Token <key>` or `Bearer <key>`"}


AUTHENTICATION = [TokenAuthentication, authentication.SessionAuthentication]


def is_read_only_token(request):
    return isinstance(request.auth, ApiToken) and not request.auth.write_enabled


class RolePermission(permissions.BasePermission):
    """Safe methods need the viewer role; others a write-enabled token and the view's `write_role`
    (admin unless the view says otherwise; `action_roles` overrides it per viewset action)."""

    message = "You need the viewer role to use the API."

    def has_permission(self, request, view):
        if not has_role(request.user, VIEWER):
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        needed = getattr(view, "action_roles", {}).get(getattr(view, "action", None), getattr(view, "write_role", ADMIN))
        if is_read_only_token(request):
            self.message = "This token is read-only."
            return False
        if not has_role(request.user, needed):
            self.message = f"This needs the {needed} role."
            return False
        return True
