"""At most N log lines a second for one kind of event, and a count of the ones left out.

Whatever an untrusted address can make happen at line rate must not turn into a log flood:
the disk and the journal are shared with everything else on the host.
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
            if self._quiet:
                self.logger.warning("%d more %s not logged", self._quiet, self.what)
            self._window, self._logged, self._quiet = now, 0, 0
        if self._logged < self.per_second:
            self._logged += 1
            return True
        self._quiet += 1
        return False
