"""Inline SVG charts for the follow-up page, drawn on the server: no script, nothing fetched.

Withheld numbers are drawn as what they are: a grey cell or stub labelled "<5", never as zero.
Every chart carries a ``<title>`` and a text label per mark, so it reads without colour too.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

from broker.followup.publish import Quartiles

SERIES = ("#1f5f8b", "#e07b39", "#3c9d5d", "#8a5fb0")
WITHHELD = "#d9dee3"
FONT = 'font-family="system-ui, sans-serif"'
LEFT = 230  # room for "Hela samverkan / whole cooperation"


def _legend(series: Sequence[str], left: int) -> list[str]:
    return [
        f'<rect x="{left}" y="{4 + 16 * k}" width="10" height="10" '
        f'fill="{SERIES[k % len(SERIES)]}"/>'
        f'<text x="{left + 14}" y="{13 + 16 * k}">{escape(name)}</text>'
        for k, name in enumerate(series)
    ]


def _label(value: int | None) -> str:
    return "<5" if value is None else str(value)


def _shade(value: int, top: int) -> str:
    """From pale to the accent blue by the share of the largest value."""
    share = value / top if top else 0.0
    light, dark = (232, 241, 248), (31, 95, 139)
    r, g, b = (round(lo + (hi - lo) * share) for lo, hi in zip(light, dark, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(
    title: str, rows: Sequence[tuple[str, Sequence[int | None]]], columns: Sequence[str]
) -> Markup:
    """A grid: one row per label, one column per period; darker is more."""
    # Wide enough for the longest column head at about 7 px a character.
    cw = max(46, 7 * max((len(c) for c in columns), default=0) + 10)
    ch, left, top = 22, LEFT, 34
    width, height = left + cw * len(columns) + 4, top + ch * len(rows) + 4
    numbers = [v for _, values in rows for v in values if v is not None]
    most = max(numbers, default=0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" {FONT} '
        f'font-size="11"><title>{escape(title)}</title>'
    ]
    for j, col in enumerate(columns):
        x = left + j * cw + cw / 2
        parts.append(f'<text x="{x}" y="{top - 8}" text-anchor="middle">{escape(col)}</text>')
    for i, (label, values) in enumerate(rows):
        y = top + i * ch
        parts.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">{escape(label)}</text>')
        for j, value in enumerate(values):
            x = left + j * cw
            fill = WITHHELD if value is None else _shade(value, most)
            ink = "#fff" if value is not None and most and value / most > 0.55 else "#1d2733"
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cw - 2}" height="{ch - 2}" fill="{fill}">'
                f"<title>{escape(label)} {escape(columns[j])}: {escape(_label(value))}</title>"
                f"</rect>"
                f'<text x="{x + cw / 2 - 1}" y="{y + 15}" text-anchor="middle" fill="{ink}">'
                f"{escape(_label(value))}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it is escaped above


def bars(
    title: str,
    groups: Sequence[tuple[str, Sequence[int | None]]],
    series: Sequence[str],
) -> Markup:
    """Grouped horizontal bars: one group per label, one bar per series."""
    bh, gap, left, width = 14, 10, LEFT, 720
    legend = 16 * len(series) + 8
    height = legend + len(groups) * (bh * len(series) + gap) + 6
    numbers = [v for _, values in groups for v in values if v is not None]
    most = max(numbers, default=1) or 1
    scale = (width - left - 50) / most
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" {FONT} '
        f'font-size="11"><title>{escape(title)}</title>'
    ]
    parts += _legend(series, left)
    y = legend
    for label, values in groups:
        mid = y + bh * len(values) / 2 + 4
        parts.append(f'<text x="{left - 6}" y="{mid}" text-anchor="end">{escape(label)}</text>')
        for k, value in enumerate(values):
            w = 6 if value is None else max(1.0, value * scale)
            fill = WITHHELD if value is None else SERIES[k % len(SERIES)]
            parts.append(
                f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bh - 2}" fill="{fill}">'
                f"<title>{escape(label)}, {escape(series[k])}: {escape(_label(value))}</title>"
                f"</rect>"
                f'<text x="{left + w + 4:.1f}" y="{y + bh - 4}">{escape(_label(value))}</text>'
            )
            y += bh
        y += gap
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it is escaped above


def spreads(
    title: str,
    rows: Sequence[tuple[str, Sequence[Quartiles]]],
    series: Sequence[str],
) -> Markup:
    """Days from the first concern: a box from the first to the third quartile, a line at the
    median, per municipality and milestone; "<5" where fewer than five children are behind it."""
    bh, gap, left, width = 14, 10, LEFT, 720
    legend = 16 * len(series) + 8
    height = legend + len(rows) * (bh * len(series) + gap) + 24
    highest = [q.q3 for _, qs in rows for q in qs if q.q3 is not None]
    most = max(highest, default=1.0) or 1.0
    scale = (width - left - 60) / most
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" {FONT} '
        f'font-size="11"><title>{escape(title)}</title>'
    ]
    parts += _legend(series, left)
    y = legend
    for label, qs in rows:
        mid = y + bh * len(qs) / 2 + 4
        parts.append(f'<text x="{left - 6}" y="{mid}" text-anchor="end">{escape(label)}</text>')
        for k, q in enumerate(qs):
            colour = SERIES[k % len(SERIES)]
            if q.children is None or q.q1 is None or q.q3 is None or q.median is None:
                parts.append(
                    f'<rect x="{left}" y="{y}" width="6" height="{bh - 2}" fill="{WITHHELD}"/>'
                    f'<text x="{left + 10}" y="{y + bh - 4}">&lt;5</text>'
                )
            else:
                x1, x3, xm = left + q.q1 * scale, left + q.q3 * scale, left + q.median * scale
                text = f"{q.median:g} d (n={q.children})"
                parts.append(
                    f'<rect x="{x1:.1f}" y="{y}" width="{max(2.0, x3 - x1):.1f}" '
                    f'height="{bh - 2}" fill="{colour}" fill-opacity="0.35" stroke="{colour}">'
                    f"<title>{escape(label)}, {escape(series[k])}: Q1 {q.q1:g}, median "
                    f"{q.median:g}, Q3 {q.q3:g} d, n={q.children}</title></rect>"
                    f'<line x1="{xm:.1f}" x2="{xm:.1f}" y1="{y}" y2="{y + bh - 2}" '
                    f'stroke="{colour}" stroke-width="3"/>'
                    f'<text x="{max(x3, xm) + 6:.1f}" y="{y + bh - 4}">{escape(text)}</text>'
                )
            y += bh
        y += gap
    axis = height - 8
    parts.append(
        f'<text x="{left}" y="{axis}">0</text>'
        f'<text x="{width - 60}" y="{axis}" text-anchor="end">{most:g} dagar / days</text>'
        "</svg>"
    )
    return Markup("".join(parts))  # noqa: S704 - every text in it is escaped above
