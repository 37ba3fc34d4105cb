"""SIP messages the tests parse, as a carrier or a dialer would send them."""

INVITE = (
    b"INVITE sip:service@127.0.0.1:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1-1-0;rport\r\n"
    b'From: "Agent, One" <sip:sipp@127.0.0.1:5061>;tag=abc\r\n'
    b"To: sut <sip:service@127.0.0.1:5060>\r\n"
    b"Call-ID: 1-123@127.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:sipp@127.0.0.1:5061>\r\n"
    b"Max-Forwards: 70\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\n"
)

COMPACT = (
    b"INVITE sip:service@[2001:db8::1]:5060 SIP/2.0\r\n"
    b"v: SIP/2.0/TCP [2001:db8::9]:5070;branch=z9hG4bKaa, SIP/2.0/UDP 10.1.1.1;branch=z9hG4bKbb\r\n"
    b"f: <sip:a@example.com>;tag=f1\r\n"
    b"t: <sip:b@example.com>;tag=t1\r\n"
    b"i: compact@host\r\n"
    b"CSeq: 7 INVITE\r\n"
    b"m: <sip:a@[2001:db8::9]:5070;transport=tcp>\r\n"
    b"l: 0\r\n"
    b"\r\n"
)

RESPONSE = (
    b"SIP/2.0 180 Ringing\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKproxy\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1-1-0;rport=5061;received=127.0.0.1\r\n"
    b"Record-Route: <sip:127.0.0.1:5060;lr>\r\n"
    b"From: <sip:sipp@127.0.0.1:5061>;tag=abc\r\n"
    b"To: <sip:service@127.0.0.1:5060>;tag=uas1\r\n"
    b"Call-ID: 1-123@127.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)
