"""The domain every process shares: the Redis contract and the rules more than one process needs.

Django-free like sip/ (stdlib, and sip/ for header checks): the panel (dispatcher/), the prober
(probes/) and the proxy (proxy/) import it; it imports none of them.
"""
