"""The panel's SVG charts: samples placed by time, gaps kept as gaps, a time axis on round clock times."""

from datetime import UTC, datetime

from django.test import override_settings

from dispatcher.views import charts

T0 = datetime(2025, 3, 4, 14, 0, tzinfo=UTC).timestamp()


def test_the_calls_chart_has_a_tick_every_ten_minutes_of_the_last_hour():
    chart = charts.calls_chart([{"t": T0 - 600, "active": 4}, {"t": T0 - 590, "active": 6}], now=T0)
    assert [t["label"] for t in chart.ticks] == ["13:00", "13:10", "13:20", "13:30", "13:40", "13:50", "14:00"]
    assert chart.ticks[0]["x"] == charts.PAD and chart.ticks[-1]["x"] == charts.WIDTH - charts.PAD


@override_settings(TIME_ZONE="Asia/Kolkata")
def test_ticks_fall_on_the_local_clock():
    chart = charts.calls_chart([{"t": T0 - 60, "active": 1}], now=T0)
    assert chart.ticks[0]["label"] == "18:30" and chart.ticks[-1]["label"] == "19:30"


def test_samples_sit_at_their_time_and_a_gap_breaks_the_line():
    samples = [{"t": T0 - 3000 + 10 * i, "active": i} for i in range(3)] + [{"t": T0 - 60, "active": 5}]
    chart = charts.calls_chart(samples, now=T0)
    assert len(chart.lines) == 1 and len(chart.dots) == 1  # the lone sample after the gap is a dot
    assert chart.dots[0][0] > 500  # 59 minutes into the hour, near the right edge
    assert chart.y_max == 5 and chart.last == 5


def test_samples_older_than_the_hour_are_left_out():
    assert charts.calls_chart([{"t": T0 - 4000, "active": 9}], now=T0).empty


def test_the_rtt_chart_gets_a_time_axis_when_probes_carry_times():
    samples = [{"t": T0 - 300 + 15 * i, "rtt_ms": 3.0, "code": 200} for i in range(21)]
    chart = charts.rtt_chart(samples)
    assert [t["label"] for t in chart.ticks] == ["13:55", "13:56", "13:57", "13:58", "13:59", "14:00"]


def test_a_server_history_sums_its_destinations_at_each_time():
    set1 = [{"t": 10, "active": 5}, {"t": 20, "active": 6}, {"t": 30, "active": 7}]
    set2 = [{"t": 20, "active": 1}, {"t": 30, "active": 2}]  # added at t=20
    assert charts.summed_samples([set1, set2]) == [{"t": 10, "active": 5}, {"t": 20, "active": 7}, {"t": 30, "active": 9}]


def test_a_destination_unknown_at_a_time_leaves_a_gap_not_a_smaller_sum():
    set1 = [{"t": 10, "active": 5}, {"t": 20, "active": 6}, {"t": 30, "active": 7}]
    set2 = [{"t": 10, "active": 3}, {"t": 30, "active": 2}]  # no sample at 20: calls unknown then
    assert [s["t"] for s in charts.summed_samples([set1, set2])] == [10, 30]
    assert charts.summed_samples([set1, [{"t": 10, "active": 1}]]) == [{"t": 10, "active": 6}]  # unknown since


def test_the_sparkline_fits_its_box():
    chart = charts.sparkline([{"t": T0 - 20, "active": 0}, {"t": T0 - 10, "active": 8}], now=T0)
    xs_ys = [tuple(map(float, p.split(","))) for p in chart.lines[0].split()]
    assert all(0 <= x <= charts.SPARK_WIDTH and 0 <= y <= charts.SPARK_HEIGHT for x, y in xs_ys)
    assert xs_ys[-1][1] < xs_ys[0][1]  # 8 calls drawn above 0


def test_a_chart_with_no_measured_value_has_no_peak_only_a_scale():
    """The scale needs a top (1); the caption's max must not be it: no reply, no max (issue: "max 1.0 ms")."""
    timeouts = charts.rtt_chart([{"t": T0 - 60 + i, "rtt_ms": None, "code": None} for i in range(33)])
    assert timeouts.peak is None and timeouts.y_max == 1.0 and len(timeouts.marks) == 33
    idle = charts.sparkline([{"t": T0 - 20, "active": 0}, {"t": T0 - 10, "active": 0}], now=T0)
    assert idle.peak == 0 and idle.y_max == 1
    assert charts.calls_chart([{"t": T0 - 60, "active": 0}], now=T0).peak == 0


def test_the_peak_is_the_largest_measured_value():
    chart = charts.rtt_chart([{"t": T0 - 2, "rtt_ms": 0.4, "code": 200}, {"t": T0 - 1, "rtt_ms": None, "code": None}])
    assert chart.peak == 0.4
    assert charts.sparkline([{"t": T0 - 20, "active": 3}, {"t": T0 - 10, "active": 7}], now=T0).peak == 7
