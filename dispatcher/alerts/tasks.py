"""The beat's alert task (lbpanel.celery schedules it every LBPANEL_ALERT_INTERVAL seconds)."""

from celery import shared_task

from dispatcher.alerts import engine


@shared_task(name="alerts.evaluate", ignore_result=True)
def evaluate():
    return engine.evaluate()
