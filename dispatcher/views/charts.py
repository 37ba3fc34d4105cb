"""Inline SVG charts, drawn on the server: no charting library, nothing to vendor, works without JS.

Charts over time place each sample at its time (not its index), so a gap in the samples is a gap
in the line, and carry a time axis in the panel's time zone.
"""

import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.utils import timezone

from lbcore import contract

WIDTH, HEIGHT, PAD = 600, 140, 28
HOUR = 3600
# Tick spacings a clock reader expects, seconds; the first that gives at most MAX_TICKS is used.
TICK_STEPS = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
MAX_TICKS = 7
# Samples further apart than this many intervals are a gap (no proxy reporting, or calls unknown).
GAP_INTERVALS = 3
SPARK_WIDTH, SPARK_HEIGHT = 160, 32


@dataclass
class Chart:
    width: int = WIDTH
    height: int = HEIGHT
    points: str = ""  # polyline "x,y x,y"
    lines: list = field(default_factory=list)  # polylines, one per run of samples without a gap
    dots: list = field(default_factory=list)  # (x, y) of a lone sample between two gaps
    marks: list = field(default_factory=list)  # (x, y) of probes that timed out or failed
    bars: list = field(default_factory=list)  # dicts: x, y, w, h, label, value
    ticks: list = field(default_factory=list)  # time axis: dicts x, label
    y_max: float = 0.0  # the top of the scale: never a figure to print (1 when nothing was measured)
    # the largest value measured: None when no sample carries one (every probe timed out); what a
    # caption may call the max. A scale is not a measurement: print this, never y_max.
    peak: float | None = None
    empty: bool = True
    count: int = 0
    baseline: float = HEIGHT - PAD
    last: float | None = None  # the newest value drawn

    @property
    def right(self):
        return self.width - PAD

    @property
    def tick_label_y(self):
        return self.baseline + 16


def _x(i, count):
    return PAD + (WIDTH - 2 * PAD) * i / max(count - 1, 1)


def _y(value, y_max):
    return HEIGHT - PAD - (HEIGHT - 2 * PAD) * value / y_max


def _time_x(start, end, left=PAD, right=WIDTH - PAD):
    span = max(end - start, 1e-9)
    return lambda t: left + (right - left) * (t - start) / span


def _clock(epoch, seconds):
    local = timezone.localtime(datetime.fromtimestamp(epoch, tz=UTC))
    return local.strftime("%H:%M:%S" if seconds else "%H:%M")


def time_ticks(start, end, x_of):
    """Ticks at round clock times (local time zone) between start and end: [{"x", "label"}]."""
    span = end - start
    if span <= 0:
        return []
    step = next((s for s in TICK_STEPS if span / s <= MAX_TICKS), TICK_STEPS[-1])
    # Round in local time, so hourly ticks fall on the hour in a +05:30 zone too.
    offset = timezone.localtime(datetime.fromtimestamp(start, tz=UTC)).utcoffset().total_seconds()
    t = math.ceil((start + offset) / step) * step - offset
    ticks = []
    while t <= end:
        ticks.append({"x": round(x_of(t), 1), "label": _clock(t, step < 60)})
        t += step
    return ticks


def rtt_chart(samples):
    """Last probes' RTT as a line; probes without an RTT (timeouts) as red marks on the axis."""
    chart = Chart()
    if not samples:
        return chart
    rtts = [s.get("rtt_ms") for s in samples]
    chart.peak = max((r for r in rtts if r is not None), default=None)
    chart.y_max = chart.peak or 1.0
    times = [s.get("t") for s in samples]
    timed = all(isinstance(t, int | float) for t in times) and times[-1] > times[0]
    if timed:
        x_of = _time_x(times[0], times[-1])
        chart.ticks = time_ticks(times[0], times[-1], x_of)
    coords = []
    for i, (sample, rtt) in enumerate(zip(samples, rtts, strict=True)):
        x = x_of(times[i]) if timed else _x(i, len(samples))
        code = sample.get("code")
        if rtt is None or (code is not None and code >= 300 and code != 404):
            chart.marks.append((round(x, 1), chart.baseline))
        if rtt is not None:
            coords.append(f"{x:.1f},{_y(rtt, chart.y_max):.1f}")
    chart.points = " ".join(coords)
    chart.count = len(samples)
    chart.empty = False
    return chart


def bar_chart(items):
    """items: [(label, value)] → vertical bars scaled to the largest."""
    chart = Chart()
    if not items:
        return chart
    chart.peak = max(v for _, v in items)
    chart.y_max = chart.peak or 1
    slot = (WIDTH - 2 * PAD) / len(items)
    usable_h = HEIGHT - 2 * PAD
    for i, (label, value) in enumerate(items):
        h = usable_h * value / chart.y_max
        chart.bars.append(
            {
                "x": round(PAD + i * slot + slot * 0.15, 1),
                "w": round(slot * 0.7, 1),
                "y": round(chart.baseline - h, 1),
                "h": round(h, 1),
                "label": label,
                "value": value,
                "cx": round(PAD + i * slot + slot / 2, 1),
            }
        )
    chart.empty = False
    return chart


def _series(chart, samples, *, start, end, left, right, top, bottom):
    """Fill chart.lines/dots with samples ({"t", "active"}, oldest first) inside [start, end]."""
    inside = [s for s in samples if start <= float(s.get("t", 0)) <= end]
    if not inside:
        return None
    values = [int(s.get("active", 0)) for s in inside]
    chart.peak = max(values)
    chart.y_max = chart.peak or 1
    x_of = _time_x(start, end, left, right)
    gap = GAP_INTERVALS * contract.CALLS_SAMPLE_SECONDS
    runs, previous = [], None
    for sample, value in zip(inside, values, strict=True):
        t = float(sample["t"])
        if previous is None or t - previous > gap:
            runs.append([])
        y = bottom - (bottom - top) * value / chart.y_max
        runs[-1].append((round(x_of(t), 1), round(y, 1)))
        previous = t
    for run in runs:
        if len(run) == 1:
            chart.dots.append(run[0])
        else:
            chart.lines.append(" ".join(f"{x},{y}" for x, y in run))
    chart.count, chart.last, chart.empty = len(inside), values[-1], False
    return x_of


def calls_chart(samples, now=None):
    """Active calls over the last hour, by time (samples: oldest first, {"t", "active"})."""
    chart = Chart()
    end = now or time.time()
    x_of = _series(chart, samples, start=end - HOUR, end=end, left=PAD, right=WIDTH - PAD, top=PAD, bottom=HEIGHT - PAD)
    if x_of:
        chart.ticks = time_ticks(end - HOUR, end, x_of)
        chart.points = " ".join(chart.lines)
    return chart


def sparkline(samples, now=None):
    """The last hour of active calls in a row's width: no axes; its title says the range."""
    chart = Chart(width=SPARK_WIDTH, height=SPARK_HEIGHT, baseline=SPARK_HEIGHT - 2)
    end = now or time.time()
    _series(chart, samples, start=end - HOUR, end=end, left=1, right=SPARK_WIDTH - 1, top=3, bottom=SPARK_HEIGHT - 2)
    return chart


def summed_samples(histories):
    """Per-destination call histories → one history of their sum, oldest first.

    A server's figure at time t is the sum of its destinations' samples at t (the beat samples
    them all at one t). A destination with no sample at t, though sampled before, was unknown then
    (the beat skips a figure no proxy vouches for), so t is left out: a gap, never a sum missing a
    part. Before its first sample a destination did not exist yet and counts nothing.
    """
    by_time = [{round(float(s["t"]), 1): int(s.get("active", 0)) for s in h} for h in histories if h]
    if not by_time:
        return []
    firsts = [min(h) for h in by_time]
    out = []
    for t in sorted(set().union(*by_time)):
        total = 0
        for h, first in zip(by_time, firsts, strict=True):
            if t in h:
                total += h[t]
            elif t >= first:
                break
        else:
            out.append({"t": t, "active": total})
    return out
