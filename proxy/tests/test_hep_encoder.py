"""The HEPv3 encoder: every chunk read back by hand from the bytes, at the offsets the HEP3
specification gives (header "HEP3" + total length, then vendor/type/length/value chunks)."""

import socket
import struct

import pytest

from proxy.hep import HEP_MAX, decode, encode, packed

SIP = b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nCall-ID: enc-1\r\nContent-Length: 0\r\n\r\n"


def _chunks(packet):
    """(vendor, type) -> raw value, walking the chunks without proxy.hep's decoder."""
    assert packet[:4] == b"HEP3"
    assert struct.unpack("!H", packet[4:6])[0] == len(packet)
    out, pos = {}, 6
    while pos < len(packet):
        vendor, kind, length = struct.unpack("!HHH", packet[pos : pos + 6])
        assert (vendor, kind) not in out, f"chunk 0x{kind:04x} twice"
        out[(vendor, kind)] = packet[pos + 6 : pos + length]
        pos += length
    assert pos == len(packet), "the last chunk runs past the packet"
    return out


def test_an_ipv4_udp_message_has_every_chunk_of_the_spec():
    packet = encode(17, packed("127.0.0.2"), 5062, packed("10.1.2.3"), 5060, SIP, 2001, 1700000000.25)
    c = _chunks(packet)
    assert c[(0, 0x01)] == b"\x02"  # IPv4
    assert c[(0, 0x02)] == b"\x11"  # UDP
    assert socket.inet_ntoa(c[(0, 0x03)]) == "127.0.0.2"
    assert socket.inet_ntoa(c[(0, 0x04)]) == "10.1.2.3"
    assert struct.unpack("!H", c[(0, 0x07)])[0] == 5062
    assert struct.unpack("!H", c[(0, 0x08)])[0] == 5060
    assert struct.unpack("!I", c[(0, 0x09)])[0] == 1700000000
    assert struct.unpack("!I", c[(0, 0x0A)])[0] == 250000
    assert c[(0, 0x0B)] == b"\x01"  # SIP
    assert struct.unpack("!I", c[(0, 0x0C)])[0] == 2001
    assert c[(0, 0x0F)] == SIP
    assert set(c) == {(0, t) for t in (1, 2, 3, 4, 7, 8, 9, 10, 11, 12, 15)}


def test_an_ipv6_tcp_message_uses_the_ipv6_chunks():
    packet = encode(6, packed("2001:db8::1"), 40000, packed("::1"), 5060, SIP, 7, 5.5)
    c = _chunks(packet)
    assert c[(0, 0x01)] == b"\x0a"
    assert c[(0, 0x02)] == b"\x06"
    assert socket.inet_ntop(socket.AF_INET6, c[(0, 0x05)]) == "2001:db8::1"
    assert socket.inet_ntop(socket.AF_INET6, c[(0, 0x06)]) == "::1"
    assert (0, 0x03) not in c and (0, 0x04) not in c


def test_an_ipv4_peer_of_an_ipv6_listener_is_sent_mapped():
    c = decode(encode(17, packed("192.0.2.7"), 1, packed("::1"), 2, SIP, 1, 0.0))
    assert (c[0x01], c[0x05], c[0x06]) == (0x0A, "::ffff:192.0.2.7", "::1")


def test_the_decoder_reads_what_the_encoder_wrote():
    c = decode(encode(17, packed("127.0.0.1"), 5060, packed("127.0.0.1"), 5080, SIP, 4294967295, 12.000001))
    assert (c[0x03], c[0x07], c[0x04], c[0x08]) == ("127.0.0.1", 5060, "127.0.0.1", 5080)
    assert (c[0x09], c[0x0A], c[0x0C], c[0x0F]) == (12, 1, 4294967295, SIP)


def test_a_message_too_large_for_the_length_field_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        encode(6, packed("127.0.0.1"), 1, packed("127.0.0.1"), 2, b"x" * HEP_MAX, 1, 0.0)


@pytest.mark.parametrize("junk", [b"HEP2\x00\x06", b"HEP3\x00\x07\x00", b"HEP3\x00\x0c\x00\x00\x00\x01\x00\x02"])
def test_the_decoder_refuses_junk(junk):
    with pytest.raises(ValueError):
        decode(junk)
