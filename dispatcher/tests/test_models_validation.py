import pytest
from django.core.exceptions import ValidationError

from dispatcher.models import Destination, DispatcherSet, ProbeSettings, ProxySettings, SourceRule
from dispatcher.services import save_config
from dispatcher.validators import is_good_reply, parse_reply_codes


@pytest.fixture
def dset(db):
    return DispatcherSet.objects.create(setid=1, name="outbound")


@pytest.mark.parametrize(
    "uri",
    [
        "sip:127.0.0.1:5080",
        "sip:ast1.example.com",
        "sips:[2001:db8::1]:5061",
        "sip:127.0.0.1:5080;transport=tcp",
        "sip:asterisk@127.0.0.1",
    ],
)
def test_it_accepts_sip_uris(dset, uri):
    Destination(dset=dset, uri=uri).full_clean()


@pytest.mark.parametrize(
    "uri, words",
    [
        ("sip:", "no host"),
        ("http://127.0.0.1", "must start with sip: or sips:"),
        ("sip:127.0.0.1:99999", "port must be 1-65535"),
        ("sip:300.1.1.1", "not a valid IPv4 address"),
        ("sip:[zz::1]", "not an IPv6 address"),
        ("sip:127.0.0.1;transport=sctp", "transport must be udp, tcp or tls"),
    ],
)
def test_it_names_what_is_wrong_with_a_uri(dset, uri, words):
    with pytest.raises(ValidationError) as info:
        Destination(dset=dset, uri=uri).full_clean()
    assert "uri" in info.value.message_dict
    assert words in " ".join(info.value.message_dict["uri"])


def test_duid_is_unique_within_a_set(dset):
    save_config(Destination(dset=dset, uri="sip:127.0.0.1:5081", duid="ast1"))
    with pytest.raises(ValidationError, match="Another destination in this set has this DUID"):
        save_config(Destination(dset=dset, uri="sip:127.0.0.1:5082", duid="ast1"))
    other = DispatcherSet.objects.create(setid=2)
    save_config(Destination(dset=other, uri="sip:127.0.0.1:5082", duid="ast1"))


def test_rweight_range(dset):
    with pytest.raises(ValidationError) as info:
        Destination(dset=dset, uri="sip:127.0.0.1", rweight=101).full_clean()
    assert "rweight" in info.value.message_dict


def test_failover_codes_are_sip_codes(db):
    with pytest.raises(ValidationError) as info:
        DispatcherSet(setid=3, failover_codes="500,5o3").full_clean()
    assert "'5o3' is not a SIP response code" in info.value.message_dict["failover_codes"][0]


def test_source_rule_is_normalised(dset):
    rule = save_config(SourceRule(network="198.51.100.7/24", dset=dset))
    assert rule.network == "198.51.100.0/24"
    with pytest.raises(ValidationError) as info:
        SourceRule(network="carrier-a", dset=dset).full_clean()
    assert "not an IP address or CIDR" in info.value.message_dict["network"][0]


def test_reply_codes_in_kamailio_syntax():
    codes = parse_reply_codes("code=404;class=2")
    assert is_good_reply(200, codes) and is_good_reply(202, codes) and is_good_reply(404, codes)
    assert not is_good_reply(503, codes) and not is_good_reply(486, codes)
    assert parse_reply_codes("class2;class3;class4") == (frozenset({200}), frozenset({2, 3, 4}))
    assert not is_good_reply(404, parse_reply_codes(""))


def test_bad_reply_codes_name_the_item(db):
    settings = ProbeSettings.load()
    settings.ping_reply_codes = "code=404;klass=2"
    with pytest.raises(ValidationError) as info:
        settings.full_clean()
    assert "'klass=2'" in info.value.message_dict["ping_reply_codes"][0]


def test_trusted_networks_are_checked(db):
    proxy = ProxySettings.load()
    proxy.trusted_networks = "127.0.0.0/8, office"
    with pytest.raises(ValidationError) as info:
        proxy.full_clean()
    assert "'office' is not an IP address" in info.value.message_dict["trusted_networks"][0]


def test_flags_follow_kamailio(dset):
    dest = Destination(dset=dset, uri="sip:127.0.0.1", admin_state="inactive", probing=True, extra_flags=16)
    assert dest.flags == 1 | 8 | 16
    dest.admin_state = "disabled"
    assert dest.flags == 4 | 8 | 16
