"""A new destination's weight: never 0 by accident, since 0 in a weighted set means "only when every
other destination fails" (issue 11). A dispatcher.list line without weight= still means 0, as in Kamailio."""

import re

from dispatcher.choices import Algorithm
from dispatcher.models import Destination, DispatcherSet
from dispatcher.services import import_dispatcher_list


def weight_field(html):
    return re.search(r'<input type="number" name="weight" value="(\d+)"', html).group(1)


def new_destination(cluster, **change):
    data = {"dset": cluster["set"].id, "uri": "sip:127.0.0.1:25090", "duid": "ast9", "priority": 0, "weight": 50}
    return {**data, "rweight": 0, "maxload": 0, **change}


def test_it_starts_with_the_weight_of_the_sets_rows(panel_admin, cluster, redis):
    assert weight_field(panel_admin.get(f"/config/destinations/new/?set={cluster['set'].id}").content.decode()) == "50"


def test_it_starts_with_1_when_the_set_is_not_known(panel_admin, cluster, redis):
    assert weight_field(panel_admin.get("/config/destinations/new/").content.decode()) == "1"
    assert weight_field(panel_admin.get("/config/destinations/new/?set=nope").content.decode()) == "1"


def test_an_edit_keeps_the_rows_weight(panel_admin, cluster, redis):
    Destination.objects.filter(pk=cluster["ast1"].pk).update(weight=0)
    assert weight_field(panel_admin.get(f"/config/destinations/{cluster['ast1'].pk}/").content.decode()) == "0"


def test_weight_0_among_weighted_rows_is_saved_with_a_warning(panel_admin, cluster, redis):
    response = panel_admin.post("/config/destinations/new/", new_destination(cluster, weight=0), follow=True)
    assert Destination.objects.get(duid="ast9").weight == 0
    assert "gets calls only when every weighted destination fails" in response.content.decode()


def test_a_usual_weight_is_saved_without_a_warning(panel_admin, cluster, redis):
    response = panel_admin.post("/config/destinations/new/", new_destination(cluster), follow=True)
    assert "Saved" in response.content.decode() and "weighted destination fails" not in response.content.decode()


def test_a_list_line_without_weight_keeps_kamailios_0(db, monkeypatch):
    monkeypatch.setattr("dispatcher.publisher.publish_table", lambda: None)
    import_dispatcher_list("1 sip:127.0.0.1:25091 0 0 duid=ast10\n")
    assert Destination.objects.get(duid="ast10").weight == 0


def test_the_weight_help_says_algorithm_11_weighs_by_rweight(panel_admin, cluster, redis):
    """It said the weight is the share of calls in sets using algorithm 4, 9 or 11; 11 uses rweight."""
    html = panel_admin.get(f"/config/destinations/new/?set={cluster['set'].id}").content.decode()
    assert "algorithm 4, 9 or 11" not in html
    assert "algorithm 11 uses rweight, and this weight only for a row whose rweight is 0" in html
    assert "Share of calls in sets using algorithm 11 (relative weight), 1-100; 0: the row&#x27;s weight is used." in html


def test_in_an_algorithm_11_set_a_row_with_an_rweight_is_no_backup(panel_admin, cluster, redis):
    DispatcherSet.objects.filter(pk=cluster["set"].pk).update(algorithm=Algorithm.RELATIVE_WEIGHT)
    response = panel_admin.post("/config/destinations/new/", new_destination(cluster, weight=0, rweight=50), follow=True)
    assert Destination.objects.get(duid="ast9").rweight == 50
    assert "weighted destination fails" not in response.content.decode()
    response = panel_admin.post(
        "/config/destinations/new/", new_destination(cluster, weight=0, duid="ast8", uri="sip:127.0.0.1:25091"), follow=True
    )
    assert (
        "has weight 0 and rweight 0: in set 1 it gets calls only when every weighted destination fails"
        in response.content.decode()
    )
