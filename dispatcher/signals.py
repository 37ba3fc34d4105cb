"""Every new account and every password change lands in the audit log, however it happened:
the panel, the Django admin, `createsuperuser`, `changepassword`, `ensure_admin`.

Whoever knows the acting user sets `person._lbpanel_actor` before saving (the panel and the
Django admin do); otherwise the row has no actor and says so in its reason.
"""

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from dispatcher import services


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="lbpanel-audit-accounts")
def audit_account(sender, instance, created, raw=False, **kwargs):
    if raw:  # loaddata
        return
    actor = getattr(instance, "_lbpanel_actor", None)
    reason = "" if actor is not None else "on the server (manage.py or a script)"
    if created:
        services.record_user_created(instance, actor=actor, reason=reason)
    elif getattr(instance, "_password", None) is not None:
        # AbstractBaseUser.set_password keeps the raw password here until the save completes.
        services.record_password_changed(instance, actor=actor, reason=reason)
