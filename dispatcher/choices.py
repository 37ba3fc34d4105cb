"""Choices carry their badge colour and one line of meaning, so templates never decide (Kamailio's letters: lbcore.rules)."""

from django.db import models

from lbcore import contract


class Algorithm(models.IntegerChoices):
    HASH_CALLID = 0, "0 · hash over Call-ID"
    HASH_FROM = 1, "1 · hash over From URI"
    HASH_TO = 2, "2 · hash over To URI"
    HASH_RURI = 3, "3 · hash over Request-URI"
    ROUND_ROBIN = 4, "4 · weighted round-robin"
    RANDOM = 6, "6 · random"
    PRIORITY = 8, "8 · first by priority"
    WEIGHT = 9, "9 · weight (random by weight)"
    CALL_LOAD = 10, "10 · call load"
    RELATIVE_WEIGHT = 11, "11 · relative weight"
    LATENCY = 13, "13 · latency"


ALGORITHM_HELP = {
    0: "Same Call-ID, same server: retransmissions and re-INVITEs stick.",
    1: "Same caller (From URI), same server.",
    2: "Same callee (To URI), same server.",
    3: "Same Request-URI, same server.",
    4: "Each server in turn, as often as its weight says (50/30/20 → 50%/30%/20%).",
    6: "A server at random, all equal.",
    8: "Always the highest priority server that is up; the others only on failover.",
    9: "A server at random, in proportion to its weight.",
    10: "The server with the fewest active calls for its weight, never above maxload "
    "(Kamailio's alg 10 counts calls alone: the set's load mode \"calls\").",
    11: "A server at random, in proportion to its rweight among those up.",
    13: "Round-robin over the servers that answer probes fastest, priority lowered by latency as Kamailio does.",
}


class LoadMode(models.TextChoices):
    """How algorithm 10 counts load: the seed's (calls against weight) or Kamailio's (calls alone)."""

    WEIGHTED = contract.LOAD_WEIGHTED, "calls per unit of weight (lbpanel)"
    CALLS = contract.LOAD_CALLS, "fewest calls, weight ignored (Kamailio)"


class AdminState(models.TextChoices):
    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Inactive (maintenance)"
    DISABLED = "disabled", "Disabled"


ADMIN_STATE_COLOUR = {"active": "green", "inactive": "orange", "disabled": "grey"}

# A server's admin state is its rows' when they agree, else "mixed" (lbcore.rules.server_admin_state):
# drawn as an orange outline, partly in maintenance, beside the sets it names.
SERVER_STATE_COLOUR = {**ADMIN_STATE_COLOUR, "mixed": "orange-outline"}
SERVER_STATE_LABEL = {"active": "Active", "inactive": "Maintenance", "disabled": "Disabled", "mixed": "Mixed"}


class HealthState(models.TextChoices):
    UP = "up", "Up"
    DOWN = "down", "Down"
    SUSPECT = "suspect", "Suspect"
    UNKNOWN = "unknown", "Unknown"


HEALTH_COLOUR = {"up": "green", "down": "red", "suspect": "orange", "unknown": "grey"}


class Cause(models.TextChoices):
    USER = "user", "User"
    API = "api", "API"
    PROBE = "probe", "Probe"
    PROXY = "proxy", "Proxy"
    IMPORT = "import", "Import"
    ALERT = "alert", "Alert engine"
    UPGRADE = "upgrade", "Upgrade"  # a migration changed it (0020: a server's name another had too)


# Who caused a change, by colour: people orange, machines blue, bulk imports and upgrades grey.
CAUSE_COLOUR = {
    "user": "orange",
    "api": "blue",
    "probe": "blue",
    "proxy": "blue",
    "import": "grey",
    "alert": "blue",
    "upgrade": "grey",
}


class EventKind(models.TextChoices):
    ADMIN = "admin", "Admin state"
    HEALTH = "health", "Health"
    CONFIG = "config", "Configuration"
    ALERT = "alert", "Alert"


class ProbingMode(models.IntegerChoices):
    FLAGGED = contract.PROBE_FLAGGED, "0 · probe destinations with the P flag"
    ALL = contract.PROBE_ALL, "1 · probe every destination"
    INACTIVE = contract.PROBE_INACTIVE, "2 · probe destinations with the P flag while inactive or down"
    ONLYFLAGGED = contract.PROBE_ONLYFLAGGED, "3 · probe destinations with the P flag, continually"


PROBE_PRESETS = {
    "default": {"ping_interval": 15, "probing_threshold": 3, "label": "Default (15 s × 3, down within 45 s)"},
    "aggressive": {"ping_interval": 10, "probing_threshold": 2, "label": "Aggressive (10 s × 2, down within 20 s)"},
    "conservative": {"ping_interval": 30, "probing_threshold": 3, "label": "Conservative (30 s × 3, down within 90 s)"},
}
