"""Kamailio's dispatcher hash (dispatch.c ds_get_hash), bit for bit, for JSON-RPC dispatcher.hash.

Kamailio's algorithms 0-3 pick `hashid % number of destinations`; lbpanel's proxy uses rendezvous
hashing instead (proxy/selection.py), so a dead destination's keys spread over all the others. The
number is still Kamailio's, so scripts that compute slots with it get the same answer.
"""

_M32 = 0xFFFFFFFF


def _signed(byte):
    return byte - 256 if byte >= 128 else byte  # `char` is signed on the platforms Kamailio runs on


def _part(data):
    h, p, n = 0, 0, len(data)
    while p <= n - 4:
        c = [_signed(b) for b in data[p : p + 4]]
        v = ((c[0] << 24) + (c[1] << 16) + (c[2] << 8) + c[3]) & _M32
        h = (h + (v ^ (v >> 3))) & _M32
        p += 4
    v = 0
    for b in data[p:]:
        v = ((v << 8) + _signed(b)) & _M32
    return (h + (v ^ (v >> 3))) & _M32


def ds_get_hash(x, y=b""):
    """ds_get_hash(x, y): an unsigned 32-bit number, never 0."""
    h = (_part(x) + _part(y)) & _M32
    h = ((h + (h >> 11)) + ((h >> 13) + (h >> 23))) & _M32
    return h or 1
