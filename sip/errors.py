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
