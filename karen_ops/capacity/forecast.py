"""Linear forecasts of a daily series: the trend, when it reaches a threshold, and where it
stands 3, 6 and 12 months on."""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import Enum

from karen_ops.capacity.history import Series

# A straight line through fewer points, or over a shorter span, says more about the week's
# noise than about growth.
MIN_OBSERVATIONS = 14
MIN_SPAN_DAYS = 14

HORIZONS_MONTHS = (3, 6, 12)


class ForecastStatus(Enum):
    PROJECTED = "projected"  # a trend was fitted to enough observations
    NOT_ENOUGH_DATA = "not enough data"  # too few observations, or over too short a span


@dataclass(frozen=True)
class Forecast:
    name: str
    threshold: float
    status: ForecastStatus
    observations: int
    slope_per_day: float | None = None
    latest_fitted: float | None = None
    crossing: date | None = None  # the first day the trend is at or above the threshold
    projections: dict[int, float] = field(default_factory=dict)  # months ahead -> value

    def crossing_text(self, as_of: date) -> str:
        if self.status is ForecastStatus.NOT_ENOUGH_DATA:
            return (
                f"not enough data ({self.observations} daily observations; a forecast needs "
                f"{MIN_OBSERVATIONS}, spread over at least {MIN_SPAN_DAYS} days)"
            )
        if self.crossing is None:
            return "not reached at the current trend (flat or falling)"
        if self.crossing <= as_of:
            return f"already reached (trend at or above since {self.crossing})"
        return f"{self.crossing} (in {(self.crossing - as_of).days} days)"


def linear_forecast(series: Series, threshold: float, as_of: date) -> Forecast:
    """Fit value = a + b * day by least squares over the observed days (gaps are skipped)."""
    points = series.observed()
    span = (points[-1][0] - points[0][0]).days if points else 0
    if len(points) < MIN_OBSERVATIONS or span < MIN_SPAN_DAYS:
        return Forecast(series.name, threshold, ForecastStatus.NOT_ENOUGH_DATA, len(points))

    origin = points[0][0]
    xs = [(day - origin).days for day, _ in points]
    ys = [value for _, value in points]
    slope, intercept = _least_squares(xs, ys)

    def at(day: date) -> float:
        return intercept + slope * (day - origin).days

    crossing = None
    if slope > 0:
        # Round away float noise before ceil: an exact line must cross on its exact day.
        crossing = origin + timedelta(days=math.ceil(round((threshold - intercept) / slope, 6)))
    elif at(as_of) >= threshold:
        crossing = points[0][0]
    return Forecast(
        series.name,
        threshold,
        ForecastStatus.PROJECTED,
        len(points),
        slope_per_day=slope,
        latest_fitted=at(as_of),
        crossing=crossing,
        projections={m: at(add_months(as_of, m)) for m in HORIZONS_MONTHS},
    )


def add_months(day: date, months: int) -> date:
    """The same day of the month ``months`` later, or that month's last day."""
    year, month_index = divmod(day.month - 1 + months, 12)
    year += day.year
    last = calendar.monthrange(year, month_index + 1)[1]
    return date(year, month_index + 1, min(day.day, last))


def _least_squares(xs: list[int], ys: list[float]) -> tuple[float, float]:
    n = len(xs)
    mean_x = sum(xs) / n
    mean_y = sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    return slope, mean_y - slope * mean_x
