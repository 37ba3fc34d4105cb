import logging
import os

from celery import Celery
from celery.app.trace import LOG_RECEIVED, LOG_SUCCESS

from lbpanel.env import alert_interval

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lbpanel.settings")

ALERT_INTERVAL = alert_interval()
app = Celery("lbpanel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["dispatcher.alerts"])  # dispatcher/alerts/tasks.py: not an app of its own

# The tick is cheap and decides itself whether a probe round is due (probes/claims.py),
# so a changed ping_interval applies without restarting beat. A tick nobody took
# within two seconds is worthless: the next one is already queued.
app.conf.beat_schedule = {
    "probe-tick": {"task": "probes.tick", "schedule": 1.0, "options": {"expires": 2}},
    # Alerts judge the live snapshot every few seconds (dispatcher/alerts); a late one is replaced by the next.
    "alerts": {"task": "alerts.evaluate", "schedule": float(ALERT_INTERVAL), "options": {"expires": ALERT_INTERVAL}},
}


class CeleryChatter(logging.Filter):
    """Celery's INFO lines for every task received and succeeded, and beat's for every task sent, are DEBUG here.

    With a tick a second they were three lines a second, and buried the admin password ensure_admin
    prints once. LBPANEL_LOG_LEVEL=DEBUG (with --loglevel DEBUG) shows them again; warnings and
    task failures are other records and pass untouched.
    """

    CHATTER = (LOG_RECEIVED, LOG_SUCCESS, "Scheduler: Sending due task %s (%s)")

    def filter(self, record):
        if record.levelno != logging.INFO or record.msg not in self.CHATTER:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


# On the loggers themselves (filters on a logger survive Celery's and Django's logging setup),
# at import, which worker and beat both do (-A lbpanel).
for _name in ("celery.worker.strategy", "celery.app.trace", "celery.beat"):
    logging.getLogger(_name).addFilter(CeleryChatter())
