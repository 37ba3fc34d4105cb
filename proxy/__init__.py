"""The SIP proxy: UDP, TCP and TLS listeners, transactions, routing, failover, records."""

import hotpath

hotpath.install()  # before any module of this package loads: see hotpath/__init__.py
