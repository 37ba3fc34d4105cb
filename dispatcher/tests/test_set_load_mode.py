"""A set's load_mode (algorithm 10): the seed's weighted load by default, Kamailio's plain call
count as an option; saved from the set form, published in the table, said on the configuration page."""

from dispatcher.models import DispatcherSet
from lbcore import contract


def _post_set(client, **extra):
    return client.post("/config/sets/new/", {"setid": 7, "algorithm": 10, "failover_codes": "500,503", **extra})


def test_the_set_form_offers_kamailios_load_and_publishes_it(panel_admin, redis, django_capture_on_commit_callbacks):
    page = panel_admin.get("/config/sets/new/").content.decode()
    assert 'name="load_mode"' in page and "as Kamailio&#x27;s algorithm 10 does" in page
    with django_capture_on_commit_callbacks(execute=True):
        assert _post_set(panel_admin, load_mode="calls").status_code == 302
    assert DispatcherSet.objects.get(setid=7).load_mode == "calls"
    assert contract.decode_table(redis.get(contract.TABLE_KEY)).sets[7].load_mode == "calls"


def test_a_set_saved_without_a_load_mode_keeps_the_seeds_and_the_page_says_so(panel_admin, redis):
    assert _post_set(panel_admin).status_code == 302
    assert DispatcherSet.objects.get(setid=7).load_mode == "weighted"
    page = panel_admin.get("/config/").content.decode()
    assert "load: calls per unit of weight (lbpanel), not Kamailio's plain call count" in page


def test_a_bad_load_mode_is_refused_on_its_field(panel_admin, redis):
    html = _post_set(panel_admin, load_mode="fastest").content.decode()
    assert 'data-field="load_mode"' in html and not DispatcherSet.objects.filter(setid=7).exists()
