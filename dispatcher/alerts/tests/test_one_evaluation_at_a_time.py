"""Two workers never evaluate (or send) at once: while another connection holds the AlertSettings row,
an evaluation does nothing, so a notice is never queued or sent twice."""

import psycopg
import pytest
from django.db import connection

from dispatcher.alerts import engine
from dispatcher.alerts.models import AlertEpisode
from dispatcher.tests.panel_support import write_health
from lbcore import contract

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_an_evaluation_skips_while_another_holds_the_lock(healthy, alert_config, webhook, redis):
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL only (SQLite runs one worker)")
    write_health(redis, healthy["ast1"].id, contract.DOWN)
    params = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k in ("dbname", "user", "password", "host", "port")}) as other:
        other.execute("SELECT id FROM dispatcher_alertsettings WHERE id = 1 FOR UPDATE")
        assert engine.evaluate() is None
        assert not webhook.bodies and not AlertEpisode.objects.exists()
    assert engine.evaluate() == 2  # the server and its set, once the lock is free
    assert len(webhook.bodies) == 2
