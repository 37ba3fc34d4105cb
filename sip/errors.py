class SipSyntaxError(ValueError):
    """A SIP message or URI is malformed.

    `reason` is short enough to go into a 400 reason phrase; `header` names the
    header at fault when there is one, `offset` the byte where parsing stopped.
    """

    def __init__(self, reason, *, header=None, offset=None):
        self.reason = reason
        self.header = header
        self.offset = offset
        where = f" in {header}" if header else ""
        at = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"{reason}{where}{at}")


class UnsafeHeaderValue(ValueError):
    """A value we were about to write into a SIP message would break out of its header.

    CR or LF would end the header (and start one of the sender's choosing), NUL ends the
    message for many parsers: we refuse to send rather than send what someone injected.
    """

    def __init__(self, header, value, why="contains CR, LF, NUL or another control character"):
        self.header = header
        self.value = value
        super().__init__(f"refusing to write {header}: {value!r} {why}")
