"""Stacked bar charts as geometry for inline SVG (templates/charts.html draws them): rendered on
the server, so the console needs no script and makes no request of its own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Segment:
    x: float
    y: float
    width: float
    height: float
    series: str
    label: str
    value: int


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    segments: list[Segment]
    categories: list[Tick]
    scale: list[Tick]
    legend: list[tuple[str, str]]
    empty: bool


def nice_max(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value`` (at least 1)."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= value:
                return m * step
        step *= 10


def _scale(top: int) -> list[int]:
    """Gridlines at whole numbers: four or five steps, fewer for a small ``top``."""
    steps = next(d for d in (4, 5, 2, 1) if top % d == 0)
    return [top * n // steps for n in range(steps + 1)]


def columns(
    rows: Mapping[str, Mapping[str, int]],
    series: Sequence[tuple[str, str]],
    *,
    width: int = 900,
    height: int = 240,
    label_every: int = 1,
) -> Chart:
    """One stacked column per category (e.g. a day), series bottom up."""
    left, bottom, top_pad = 48, 24, 8
    plot_h = height - bottom - top_pad
    names = list(rows)
    top = nice_max(max((sum(r.get(k, 0) for k, _ in series) for r in rows.values()), default=0))
    slot = (width - left) / max(len(names), 1)
    segments: list[Segment] = []
    for i, name in enumerate(names):
        y = float(height - bottom)
        for key, label in series:
            value = rows[name].get(key, 0)
            if not value:
                continue
            h = plot_h * value / top
            y -= h
            x = left + i * slot + slot * 0.1
            segments.append(Segment(x, y, slot * 0.8, h, key, label, value))
    cats = [
        Tick(left + i * slot + slot / 2, name)
        for i, name in enumerate(names)
        if i % label_every == 0
    ]
    scale = [Tick(height - bottom - plot_h * v / top, str(v)) for v in _scale(top)]
    empty = not segments
    return Chart(width, height, segments, cats, scale, list(series), empty)


def bars(
    rows: Mapping[str, Mapping[str, int]],
    series: Sequence[tuple[str, str]],
    *,
    width: int = 900,
    bar: int = 22,
) -> Chart:
    """One stacked horizontal bar per category (e.g. an organisation), series left to right."""
    left, right, top_pad, bottom = 230, 16, 4, 22
    names = list(rows)
    height = top_pad + bottom + bar * max(len(names), 1)
    plot_w = width - left - right
    top = nice_max(max((sum(r.get(k, 0) for k, _ in series) for r in rows.values()), default=0))
    segments: list[Segment] = []
    for i, name in enumerate(names):
        x = float(left)
        for key, label in series:
            value = rows[name].get(key, 0)
            if not value:
                continue
            w = plot_w * value / top
            segments.append(Segment(x, top_pad + i * bar + 3, w, bar - 6, key, label, value))
            x += w
    cats = [Tick(top_pad + i * bar + bar / 2, name) for i, name in enumerate(names)]
    scale = [Tick(left + plot_w * v / top, str(v)) for v in _scale(top)]
    return Chart(width, height, segments, cats, scale, list(series), not segments)
