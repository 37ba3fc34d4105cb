import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lbpanel.settings")

app = Celery("lbpanel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The tick is cheap and decides itself whether a probe round is due (probes/claims.py),
# so a changed ping_interval applies without restarting beat. A tick nobody took
# within two seconds is worthless: the next one is already queued.
app.conf.beat_schedule = {
    "probe-tick": {"task": "probes.tick", "schedule": 1.0, "options": {"expires": 2}},
}
