"""The panel's proxy settings and the proxy's contract defaults agree, so a proxy that reads
a table without a setting behaves as the panel says it would."""

from dispatcher.models import ProxySettings
from lbcore.contract import DEFAULT_SETTINGS


def test_every_shared_setting_has_the_same_default():
    shared = [f for f in ProxySettings._meta.get_fields() if f.name in DEFAULT_SETTINGS and f.name != "default_set"]
    assert len(shared) >= 15
    for field in shared:
        default = field.get_default()
        if field.name == "trusted_networks":
            default = [n.strip() for n in default.split(",")]
        assert default == DEFAULT_SETTINGS[field.name], field.name
