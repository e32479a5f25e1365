"""A household's points over time as a small server-side SVG (no JavaScript chart library).

One line per ledger: the running balance after each month that had a movement. The SVG has a <title>
and <desc> for screen readers, and the same numbers are in the page's history table.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT, PAD = 320, 140, 28
COLOURS = {"morality": "#0b6e2e", "credit": "#114b8a"}


def monthly_balances(movements: Sequence[tuple[str, str, int]], ledger: str) -> list[tuple[str, int]]:
    """[(YYYY-MM, balance at the end of that month)] for months with a movement on ``ledger``. Each movement
    is (time, ledger, signed amount) in date order; ``time`` may be a whole date-time or just YYYY-MM."""
    points: dict[str, int] = {}
    balance = 0
    for time, movement_ledger, amount in movements:
        if movement_ledger == ledger:
            balance += amount
            points[time[:7]] = balance
    return list(points.items())


def points_chart(movements: Sequence[tuple[str, str, int]], *, title: str, labels: dict[str, str]) -> str:
    """The SVG markup; ``labels`` names each ledger in the reader's language."""
    series = {ledger: monthly_balances(movements, ledger) for ledger in COLOURS}
    months = sorted({month for points in series.values() for month, _ in points})
    values = [value for points in series.values() for _, value in points] + [0]
    low, high = min(values), max(values)
    span = max(high - low, 1)

    def x(month: str) -> float:
        return PAD + (WIDTH - 2 * PAD) * (months.index(month) / max(len(months) - 1, 1))

    def y(value: int) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * (value - low) / span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" class="chart">',
        f"<title>{escape(title)}</title>",
        f"<desc>{escape(_describe(series, labels))}</desc>",
        f'<line x1="{PAD}" y1="{y(0):.1f}" x2="{WIDTH - PAD}" y2="{y(0):.1f}" stroke="#767676" stroke-dasharray="3"/>',
        f'<text x="2" y="{y(high) + 4:.1f}" font-size="11">{high}</text>',
        f'<text x="2" y="{y(low) + 4:.1f}" font-size="11">{low}</text>',
    ]
    if months:
        parts.append(f'<text x="{PAD}" y="{HEIGHT - 6}" font-size="11">{escape(months[0])}</text>')
        parts.append(f'<text x="{WIDTH - PAD}" y="{HEIGHT - 6}" font-size="11" text-anchor="end">{escape(months[-1])}</text>')
    for position, ledger in enumerate(COLOURS):
        parts.append(f'<text x="{WIDTH - PAD}" y="{14 + 14 * position}" font-size="12" text-anchor="end" '
                     f'fill="{COLOURS[ledger]}">— {escape(labels[ledger])}</text>')
    for ledger, points in series.items():
        if points:
            path = " ".join(f"{x(month):.1f},{y(value):.1f}" for month, value in points)
            parts.append(f'<polyline fill="none" stroke="{COLOURS[ledger]}" stroke-width="3" points="{path}"/>')
            parts.extend(f'<circle cx="{x(month):.1f}" cy="{y(value):.1f}" r="3" fill="{COLOURS[ledger]}"/>'
                         for month, value in points)
    parts.append("</svg>")
    return "".join(parts)


def _describe(series: dict[str, list[tuple[str, int]]], labels: dict[str, str]) -> str:
    return "; ".join(
        f"{labels[ledger]}: " + ", ".join(f"{month} {value}" for month, value in points)
        for ledger, points in series.items() if points
    )
