"""The household's points chart: running balances by month, drawn as SVG for screen readers too."""

from __future__ import annotations

from web.chart import monthly_balances, points_chart

MOVEMENTS = [
    ("2026-01-03T08:00:00Z", "morality", 5), ("2026-01-20T08:00:00Z", "morality", 3),
    ("2026-02-02T08:00:00Z", "credit", 10), ("2026-03-09T08:00:00Z", "morality", -6),
]
LABELS = {"morality": "道德银行积分", "credit": "信用积分"}


def test_the_chart_keeps_the_balance_at_the_end_of_each_month_per_ledger() -> None:
    assert monthly_balances(MOVEMENTS, "morality") == [("2026-01", 8), ("2026-03", 2)]
    assert monthly_balances(MOVEMENTS, "credit") == [("2026-02", 10)]


def test_the_chart_describes_its_numbers_for_screen_readers() -> None:
    svg = points_chart(MOVEMENTS, title="积分变化", labels=LABELS)
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"') and 'role="img"' in svg
    assert "<title>积分变化</title>" in svg
    assert "<desc>道德银行积分: 2026-01 8, 2026-03 2; 信用积分: 2026-02 10</desc>" in svg
    assert svg.count("<polyline") == 2 and svg.count("<circle") == 3


def test_a_household_without_points_gets_an_empty_chart_not_an_error() -> None:
    svg = points_chart([], title="积分变化", labels=LABELS)
    assert "<polyline" not in svg and "<desc></desc>" in svg
