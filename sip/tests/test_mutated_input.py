"""Fuzz-ish: mutated messages raise SipSyntaxError or parse; nothing else escapes."""

import random

from sip.errors import SipSyntaxError
from sip.framing import StreamFramer
from sip.message import parse_message
from sip.tests.fixtures import COMPACT, INVITE, RESPONSE

SPECIAL = b':;,<>"\\ \r\n\t=@[]/'


def _mutations(rng, raw, n):
    for _ in range(n):
        data = bytearray(raw)
        for _ in range(rng.randint(1, 6)):
            op = rng.random()
            pos = rng.randrange(len(data))
            if op < 0.3:
                data[pos] = rng.randrange(256)
            elif op < 0.6:
                data[pos] = rng.choice(SPECIAL)
            elif op < 0.8:
                del data[pos : pos + rng.randint(1, 8)]
            else:
                data[pos:pos] = bytes(rng.choice(SPECIAL) for _ in range(rng.randint(1, 4)))
        yield bytes(data)


def _exercise(msg):
    msg.check()
    msg.via.branch
    msg.via.received
    msg.get_all(b"via")
    msg.get_all(b"route")
    msg.get_all(b"contact")
    msg.uri_of(b"from")
    msg.pop_first(b"via")
    msg.to_bytes()


def test_it_survives_random_mutations():
    rng = random.Random(3261)
    for raw in (INVITE, COMPACT, RESPONSE):
        for data in _mutations(rng, raw, 1500):
            try:
                _exercise(parse_message(data))
            except SipSyntaxError:
                pass


def test_the_framer_survives_random_streams():
    rng = random.Random(5626)
    for data in _mutations(rng, INVITE + RESPONSE, 500):
        framer = StreamFramer()
        try:
            for i in range(0, len(data), 37):
                for msg in framer.feed(data[i : i + 37]):
                    try:
                        _exercise(parse_message(msg, stream=True))
                    except SipSyntaxError:
                        pass
        except SipSyntaxError:
            pass
