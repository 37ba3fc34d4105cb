"""At most N log lines a second for one kind of event, and a count of the ones left out.

Whatever an untrusted address can make happen at line rate must not turn into a log flood:
the disk and the journal are shared with everything else on the host. The one rate limit
for the proxy's log lines: refusals, malformed messages, TCP limits, crashes.
"""


class LogQuota:
    def __init__(self, per_second, logger, what):
        self.per_second = per_second
        self.logger = logger
        self.what = what
        self._window = 0.0
        self._logged = 0
        self._quiet = 0

    def allow(self, now):
        """True when this event may be logged; `now` is a monotonic clock in seconds."""
        if now - self._window >= 1.0:
            self.flush(now)
            self._window, self._logged = now, 0
        if self._logged < self.per_second:
            self._logged += 1
            return True
        self._quiet += 1
        return False

    def warning(self, now, fmt, *args):
        if self.allow(now):
            self.logger.warning(fmt, *args)

    def flush(self, now):
        """Log the count of the events left out once their second is over. The next event
        does it too; a periodic sweep calls this so the count of a flood that stopped shows."""
        if self._quiet and now - self._window >= 1.0:
            self.logger.warning("%d more %s not logged", self._quiet, self.what)
            self._quiet = 0
