"""Rendezvous (highest random weight) hashing for dispatcher algorithms 0-3: the proxy routes by
it and JSON-RPC dispatcher.hash tells which destination a key maps to, so it is written once, here.

A key's order depends only on the key and each destination's id, so when a destination dies its
keys spread over all the others by their own scores rather than all landing on one neighbour
(Kamailio issue 2361).
"""

import zlib

_M64 = 0xFFFFFFFFFFFFFFFF


def _mix(x):
    # splitmix64 finaliser: good avalanche for rendezvous scores, and stable across processes
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def rendezvous(usable, key):
    h = zlib.crc32(key) | (zlib.adler32(key) << 32)
    return sorted(usable, key=lambda d: _mix(h ^ _mix(d.id)), reverse=True)
