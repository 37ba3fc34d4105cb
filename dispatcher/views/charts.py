"""Inline SVG charts, drawn on the server: no charting library, nothing to vendor, works without JS."""

from dataclasses import dataclass, field

WIDTH, HEIGHT, PAD = 600, 140, 28


@dataclass
class Chart:
    width: int = WIDTH
    height: int = HEIGHT
    points: str = ""  # polyline "x,y x,y"
    marks: list = field(default_factory=list)  # (x, y) of probes that timed out or failed
    bars: list = field(default_factory=list)  # dicts: x, y, w, h, label, value
    y_max: float = 0.0
    empty: bool = True
    count: int = 0
    baseline: float = HEIGHT - PAD


def _x(i, count):
    return PAD + (WIDTH - 2 * PAD) * i / max(count - 1, 1)


def _y(value, y_max):
    return HEIGHT - PAD - (HEIGHT - 2 * PAD) * value / y_max


def rtt_chart(samples):
    """Last probes' RTT as a line; probes without an RTT (timeouts) as red marks on the axis."""
    chart = Chart()
    if not samples:
        return chart
    rtts = [s.get("rtt_ms") for s in samples]
    chart.y_max = max([r for r in rtts if r is not None], default=1.0) or 1.0
    coords = []
    for i, (sample, rtt) in enumerate(zip(samples, rtts, strict=True)):
        x = _x(i, len(samples))
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
    chart.y_max = max(v for _, v in items) or 1
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


def calls_chart(samples):
    """Active calls over time as a line (samples: oldest first, {"t", "active"})."""
    chart = Chart()
    if not samples:
        return chart
    values = [int(s.get("active", 0)) for s in samples]
    chart.y_max = max(values) or 1
    chart.points = " ".join(f"{_x(i, len(values)):.1f},{_y(v, chart.y_max):.1f}" for i, v in enumerate(values))
    chart.count = len(values)
    chart.empty = False
    return chart
