"""Roles: viewer < operator < admin, from Django groups; superusers count as admin."""

VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
RANK = {None: 0, VIEWER: 1, OPERATOR: 2, ADMIN: 3}


def role_of(user):
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return ADMIN
    cached = getattr(user, "_lbpanel_role", False)
    if cached is not False:
        return cached
    names = set(user.groups.values_list("name", flat=True))
    role = next((r for r in (ADMIN, OPERATOR, VIEWER) if r in names), None)
    user._lbpanel_role = role
    return role


def has_role(user, needed):
    """True when the user's role is `needed` or above."""
    return RANK[role_of(user)] >= RANK[needed]
