"""Forecasts and scaling triggers on series whose answers are known in advance."""

from __future__ import annotations

from datetime import date, timedelta

from matplotlib.dates import date2num
from matplotlib.figure import Figure

from karen_ops.capacity.charts import draw_series
from karen_ops.capacity.forecast import ForecastStatus, add_months, linear_forecast
from karen_ops.capacity.history import Series
from karen_ops.capacity.triggers import TriggerState, evaluate_triggers

START = date(2026, 1, 1)


def _series(name: str, values: list[float | None], start: date = START) -> Series:
    return Series(name, [start + timedelta(days=i) for i in range(len(values))], values)


def test_a_known_linear_series_crosses_its_threshold_on_the_known_day():
    # 50% + 0.5 points a day reaches 85% after exactly 70 days; every 9th day is a gap.
    values = [None if i % 9 == 4 else 50 + 0.5 * i for i in range(90)]
    series = _series("disk_used_percent", values)
    as_of = series.days[-1]

    forecast = linear_forecast(series, 85.0, as_of)

    assert forecast.status is ForecastStatus.PROJECTED
    assert forecast.crossing == START + timedelta(days=70) == date(2026, 3, 12)
    assert forecast.crossing_text(as_of) == "already reached (trend at or above since 2026-03-12)"
    assert abs(forecast.slope_per_day - 0.5) < 1e-9
    for months in (3, 6, 12):
        days_ahead = (add_months(as_of, months) - START).days
        assert abs(forecast.projections[months] - (50 + 0.5 * days_ahead)) < 1e-6


def test_a_crossing_ahead_is_given_with_the_days_left():
    series = _series("database_size_bytes", [10.0 + 2 * i for i in range(30)])
    as_of = series.days[-1]  # 2026-01-30, value 68

    forecast = linear_forecast(series, 100.0, as_of)

    assert forecast.crossing == date(2026, 2, 15)  # day 45: 10 + 2 * 45 = 100
    assert forecast.crossing_text(as_of) == "2026-02-15 (in 16 days)"


def test_flat_or_falling_series_never_cross_and_short_ones_are_not_enough_data():
    falling = linear_forecast(_series("d", [70.0 - 0.1 * i for i in range(30)]), 85.0, START)
    assert falling.crossing is None
    assert falling.crossing_text(START) == "not reached at the current trend (flat or falling)"

    short = _series("d", [None] * 80 + [float(i) for i in range(10)])
    forecast = linear_forecast(short, 85.0, short.days[-1])
    assert forecast.status is ForecastStatus.NOT_ENOUGH_DATA
    assert forecast.crossing_text(short.days[-1]) == (
        "not enough data (10 daily observations; a forecast needs 14, spread over at least 14 days)"
    )


def test_add_months_keeps_the_day_or_takes_the_months_last():
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert add_months(date(2026, 6, 15), 12) == date(2027, 6, 15)


def _week(cpu, memory, connections, disk) -> dict[str, Series]:
    return {
        "cpu_percent": _series("cpu_percent", cpu),
        "memory_used_percent": _series("memory_used_percent", memory),
        "connections_percent": _series("connections_percent", connections),
        "disk_used_percent": _series("disk_used_percent", disk),
    }


def test_triggers_are_met_not_met_or_not_enough_data_from_what_was_observed():
    week = _week(
        cpu=[90.0, 91.0, 95.0, 88.0, 85.0, 92.0, None],  # above 80% in all 6 samples
        memory=[50.0] * 7,
        connections=[10.0, 85.0, None, None, None, None, None],  # over 80% once
        disk=[80.0, 84.0, 86.5, None, None, None, None],  # newest sample over 85%
    )
    states = {t.rule: (t.state, t.evidence) for t in evaluate_triggers(week, 85.0)}

    assert states["CPU over 70% for an hour"][0] is TriggerState.NOT_ENOUGH_DATA
    assert states["memory over 80% for 30 minutes"][0] is TriggerState.NOT_ENOUGH_DATA
    assert states["response time over 2 s for 15 minutes"][0] is TriggerState.NOT_ENOUGH_DATA
    assert states["connections over 80% of the pool"] == (
        TriggerState.MET,
        "highest 85.0% on 2026-01-02, 2 samples",
    )
    assert states["sustained CPU or memory use over 80%"] == (
        TriggerState.MET,
        "cpu_percent above 80% in all 6 samples",
    )
    assert states["storage over 85%"] == (TriggerState.MET, "86.5% on 2026-01-03")


def test_sustained_use_is_ruled_out_by_one_low_sample_and_undecided_by_too_few():
    low = _week([90.0, 40.0] + [None] * 5, [85.0, 70.0] + [None] * 5, [5.0] * 7, [10.0] * 7)
    states = {t.rule: t for t in evaluate_triggers(low, 85.0)}
    assert states["sustained CPU or memory use over 80%"].state is TriggerState.NOT_MET
    assert states["connections over 80% of the pool"].state is TriggerState.NOT_MET
    assert states["storage over 85%"].state is TriggerState.NOT_MET

    few = _week([90.0] * 3 + [None] * 4, [90.0] * 3 + [None] * 4, [None] * 7, [None] * 7)
    states = {t.rule: t for t in evaluate_triggers(few, 85.0)}
    sustained = states["sustained CPU or memory use over 80%"]
    assert sustained.state is TriggerState.NOT_ENOUGH_DATA
    assert sustained.evidence == (
        "cpu_percent: 3 daily sample(s), 5 needed; memory_used_percent: 3 daily sample(s), 5 needed"
    )
    assert states["connections over 80% of the pool"].state is TriggerState.NOT_ENOUGH_DATA
    assert states["storage over 85%"].evidence == "no snapshot this week"


def test_a_chart_without_observations_frames_the_reports_days():
    days = [date(2026, 9, 1) + timedelta(days=i) for i in range(90)]
    axes = Figure().subplots()
    draw_series(
        axes, "Disk use", Series("disk", days, [None] * 90), unit="%", scale=1.0, forecast=None
    )

    assert axes.get_xlim() == (date2num(days[0]), date2num(days[-1]))
    assert list(axes.get_yticks()) == []
    assert axes.get_title() == "Disk use (90 gap days)"
