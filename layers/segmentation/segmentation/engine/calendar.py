"""Calendar days in the workspace's IANA time zone, as epoch-second boundaries."""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from segmentation.engine.model import DateValue


class Calendar:
    """Start-of-day instants in one zone (DST-aware), with the current day's answers cached."""

    def __init__(self, timezone: str = "UTC"):
        self.zone = ZoneInfo(timezone)
        # (today's start, tomorrow's start, today, {days ago: bounds}); replaced whole, never mutated
        # in a way that mixes two days, so concurrent readers see one consistent day.
        self._today: tuple[float, float, date, dict[float, tuple[float, float]]] | None = None

    def day_start(self, day: date) -> float:
        """The first instant of `day` in the zone (the instant of 00:00, or of the gap's end)."""
        try:
            return datetime.combine(day, time(), tzinfo=self.zone).timestamp()
        except (OverflowError, ValueError):
            return -math.inf if day.year < 5000 else math.inf

    def day_bounds(self, day: date) -> tuple[float, float]:
        """[start, end) of `day`."""
        try:
            following = day + timedelta(days=1)
        except OverflowError:
            return self.day_start(day), math.inf
        return self.day_start(day), self.day_start(following)

    def date_of(self, epoch: float) -> date:
        return datetime.fromtimestamp(epoch, self.zone).date()

    def days_ago_bounds(self, now: float, days: float) -> tuple[float, float]:
        """[start, end) of the calendar day `days` whole days before the day of `now`."""
        today = self._today
        if today is None or not today[0] <= now < today[1]:
            day = self.date_of(now)
            start, end = self.day_bounds(day)
            today = (start, end, day, {})
            self._today = today
        bounds = today[3].get(days)
        if bounds is None:
            bounds = self.day_bounds(today[2] - timedelta(days=int(days)))
            today[3][days] = bounds
        return bounds

    def instant(self, value: DateValue) -> float:
        """D of before/after: a date means the start of that day here."""
        return self.day_start(value.day) if value.day is not None else float(value.epoch or 0.0)

    def bounds_of(self, value: DateValue) -> tuple[float, float]:
        """[start, end) of the day of D (`on`): the date itself, or the local day of the instant."""
        if value.day is not None:
            return self.day_bounds(value.day)
        try:
            return self.day_bounds(self.date_of(float(value.epoch or 0.0)))
        except (OverflowError, ValueError, OSError):
            return math.inf, math.inf  # a day no stored timestamp can fall on
