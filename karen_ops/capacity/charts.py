"""Charts of the report, drawn with matplotlib's Agg canvas: no display, no global pyplot
state, safe in any run worker."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from karen_ops.capacity.forecast import Forecast, ForecastStatus
from karen_ops.capacity.history import Series

# Small enough that six charts inlined into one markdown metadata entry stay well under a
# megabyte, large enough to read day-level detail over 90 days.
SIZE_INCHES = (7.0, 2.6)
DPI = 80


@dataclass(frozen=True)
class Chart:
    name: str  # file name stem in the store
    title: str
    png: bytes


def line_chart(
    name: str,
    title: str,
    series: Series,
    *,
    unit: str,
    scale: float = 1.0,
    forecast: Forecast | None = None,
) -> Chart:
    """One series over its days; gaps break the line instead of dropping to zero."""
    # Imported here: matplotlib adds most of a second to every load of the code location,
    # and only the weekly report draws.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=SIZE_INCHES, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    draw_series(figure.subplots(), title, series, unit=unit, scale=scale, forecast=forecast)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return Chart(name, title, buffer.getvalue())


def draw_series(
    axes, title: str, series: Series, *, unit: str, scale: float, forecast: Forecast | None
) -> None:
    values = [math.nan if v is None else v / scale for v in series.values]
    axes.plot(series.days, values, marker=".", markersize=3, linewidth=1.2, label=title)
    if forecast is not None and forecast.status is ForecastStatus.PROJECTED:
        _draw_forecast(axes, series, forecast, scale)

    if not series.observed():
        axes.text(0.5, 0.5, "no observations", transform=axes.transAxes, ha="center")
        # Nothing to scale to: frame the report's days, not matplotlib's default epoch, and
        # leave the value axis without invented numbers.
        if series.days:
            axes.set_xlim(series.days[0], series.days[-1])
        axes.set_yticks([])
    axes.set_title(f"{title} ({series.gaps} gap days)" if series.gaps else title, fontsize=9)
    axes.set_ylabel(unit, fontsize=8)
    axes.tick_params(labelsize=7)
    axes.grid(alpha=0.3)


def _draw_forecast(axes, series: Series, forecast: Forecast, scale: float) -> None:
    observed = series.observed()
    first, last = observed[0][0], series.days[-1]
    start = forecast.latest_fitted - forecast.slope_per_day * (last - first).days
    axes.plot(
        [first, last],
        [start / scale, forecast.latest_fitted / scale],
        linestyle="--",
        linewidth=1,
        label="linear trend",
    )
    axes.axhline(forecast.threshold / scale, color="tab:red", linewidth=0.8, label="threshold")
    axes.legend(loc="upper left", fontsize=7)
