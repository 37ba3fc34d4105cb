"""The destination form edits a destination's dispatcher.list attributes (socket, ping_from, and any
others a Kamailio list carried), which only the import and the API could set before.

weight, rweight, duid and maxload have their own fields: the attrs box shows the others, and a
save writes the fields back into the attributes. Typing one of them into the box would have been
overwritten silently, so the form says which field to use. A socket or ping_from that could make
the proxy send from somewhere else is refused by the model's validator, named on the attrs field."""

import html
import re

import pytest

from dispatcher.models import Destination
from dispatcher.services import import_dispatcher_list


@pytest.fixture
def imported(db, monkeypatch):
    monkeypatch.setattr("dispatcher.publisher.publish_table", lambda: None)
    import_dispatcher_list("1 sip:127.0.0.1:25092 0 0 weight=50;duid=ast12;socket=udp:127.0.0.1:25060;x-site=east\n")
    return Destination.objects.get(duid="ast12")


def attrs_field(page):
    return html.unescape(re.search(r'<input type="text" name="attrs" value="([^"]*)"', page).group(1))


def form_data(dest, **change):
    data = {"dset": dest.dset_id, "uri": dest.uri, "duid": dest.duid, "priority": dest.priority}
    return {**data, "weight": dest.weight, "rweight": dest.rweight, "maxload": dest.maxload, "attrs": "", **change}


def test_the_form_shows_the_attributes_that_have_no_field_of_their_own(panel_admin, imported, redis):
    page = panel_admin.get(f"/config/destinations/{imported.pk}/").content.decode()
    assert attrs_field(page) == "socket=udp:127.0.0.1:25060;x-site=east"


def test_a_changed_weight_and_new_attributes_are_saved_together(panel_admin, imported, redis):
    change = {"weight": 20, "attrs": "socket=udp:127.0.0.1:25061;x-site=west;ping_from=sip:lb@127.0.0.1"}
    response = panel_admin.post(f"/config/destinations/{imported.pk}/", form_data(imported, **change), follow=True)
    assert "Saved" in response.content.decode()
    saved = Destination.objects.get(pk=imported.pk)
    assert saved.weight == 20
    assert saved.attrs == "socket=udp:127.0.0.1:25061;x-site=west;ping_from=sip:lb@127.0.0.1;weight=20;duid=ast12"


def test_an_attribute_with_its_own_field_is_refused_in_the_box(panel_admin, imported, redis):
    response = panel_admin.post(f"/config/destinations/{imported.pk}/", form_data(imported, attrs="weight=90;x-site=east"))
    page = html.unescape(response.content.decode())
    assert "weight=90: set this in the Weight field" in page
    assert Destination.objects.get(pk=imported.pk).attrs == imported.attrs  # nothing saved


def test_a_socket_that_is_no_address_is_refused_with_the_attribute_named(panel_admin, imported, redis):
    response = panel_admin.post(f"/config/destinations/{imported.pk}/", form_data(imported, attrs="socket=udp:evil.example:5060"))
    page = html.unescape(response.content.decode())
    assert '<p class="field-error" data-field="attrs">socket: ' in page and "is not an IP address" in page
    assert Destination.objects.get(pk=imported.pk).attrs == imported.attrs


def test_control_characters_never_reach_the_attributes(panel_admin, imported, redis):
    response = panel_admin.post(f"/config/destinations/{imported.pk}/", form_data(imported, attrs="x-site=east\r\nVia: evil"))
    assert 'data-field="attrs"' in response.content.decode()
    assert Destination.objects.get(pk=imported.pk).attrs == imported.attrs
