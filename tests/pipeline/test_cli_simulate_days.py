"""The simulator's default days have all happened: a demo run at any hour of the day passes its checks."""

from __future__ import annotations

from datetime import date

from risk_pipeline.cli import build_parser, first_simulated_day


def test_default_days_end_yesterday_whatever_their_number() -> None:
    today = date(2026, 11, 30)
    for days in (1, 3, 5):
        args = build_parser().parse_args(["simulate", "--days", str(days)])
        first = first_simulated_day(args.start, args.days, today)
        assert first == date(2026, 11, 30 - days)  # the last simulated day is the 29th
    explicit = build_parser().parse_args(["demo", "--start", "2026-03-02"])
    assert first_simulated_day(explicit.start, explicit.days, today) == date(2026, 3, 2)
