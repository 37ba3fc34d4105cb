"""CPU per HEP copy: proxy/hep.py's sender encoding and sending one SIP message, against a
socket on loopback that never reads (the kernel drops what does not fit; our send() is the
same). process_time, so other work on the host weighs less than in the call ladder.

    .venv/bin/python bench/hep_copy.py [--copies 200000] [--port 29990] [--size 600]
"""

import argparse
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proxy.hep import HepSender


class _Listener:
    host = advertised = "127.0.0.1"
    port = 5060


def main(argv=None):
    p = argparse.ArgumentParser(prog="bench/hep_copy.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--copies", type=int, default=200_000)
    p.add_argument("--port", type=int, default=29990, help="a free loopback UDP port for the sink")
    p.add_argument("--size", type=int, default=600, help="bytes of SIP per message (an INVITE with SDP is 600-900)")
    args = p.parse_args(argv)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", args.port))
        sender = HepSender(("127.0.0.1", args.port), 2001)
        data, lis = b"x" * args.size, _Listener()
        peers = [("127.0.0.1", 5080 + n) for n in range(4)]
        start = time.process_time()
        for n in range(args.copies):
            sender.outbound(data, lis, peers[n & 3], False)
        copy_us = (time.process_time() - start) / args.copies * 1e6
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        raw.setblocking(False)
        raw.connect(("127.0.0.1", args.port))
        packet = b"x" * (args.size + 90)
        start = time.process_time()
        for _ in range(args.copies):
            try:
                raw.send(packet)
            except BlockingIOError:
                pass
        send_us = (time.process_time() - start) / args.copies * 1e6
        raw.close()
        sender.close()
    print(
        f"{args.copies} copies of {args.size} bytes: {copy_us:.2f} us CPU per copy "
        f"({send_us:.2f} us of it the bare send()); sent {sender.sent}, dropped {sender.dropped}, failed {sender.failed}"
    )


if __name__ == "__main__":
    main()
