"""report.py: make bench's results as text tables, CSV, JSON and an SVG
chart (hand-written SVG, no plotting library).

  summarize(runs)               median, min and max of each measure
  write_csv(path, rows)         one row per workload and configuration
  write_json(path, doc)         everything, raw runs included
  write_svg(path, bars, lines)  bars: time relative to jemalloc per
                                workload and configuration (log scale);
                                lines: throughput against thread count
"""

import csv
import json
import math
import statistics
from xml.sax.saxutils import escape

PALETTE = ["#7f7f7f", "#1f77b4", "#2ca02c", "#17becf", "#9467bd",
           "#8c564b", "#e377c2", "#bcbd22", "#d62728", "#ff7f0e", "#393b79",
           "#637939", "#843c39"]


def summarize(values):
    """(median, min, max) of the non-None values, or None."""
    v = [x for x in values if x is not None]
    if not v:
        return None
    return statistics.median(v), min(v), max(v)


def fmt(x, digits=2, width=0):
    if x is None:
        return "-".rjust(width)
    if isinstance(x, float) and (math.isinf(x) or math.isnan(x)):
        return "-".rjust(width)
    if abs(x) >= 1000 and digits <= 2:
        s = f"{x:,.0f}"
    elif abs(x) >= 100 and digits <= 2:
        s = f"{x:.1f}"
    else:
        s = f"{x:.{digits}f}"
    return s.rjust(width)


def ratio(a, b):
    return a / b if a is not None and b else None


def table(header, rows, align=None):
    """Plain text table; header and rows are lists of strings."""
    n = len(header)
    w = [max(len(str(r[i])) for r in [header] + rows) for i in range(n)]
    align = align or ["<"] + [">"] * (n - 1)
    out = []
    for r in [header] + rows:
        out.append("  ".join(f"{str(c):{a}{wi}}"
                             for c, a, wi in zip(r, align, w)).rstrip())
    out.insert(1, "  ".join("-" * wi for wi in w))
    return out


def write_csv(path, rows):
    if not rows:
        return
    keys = list(rows[0].keys())
    with open(path, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=keys)
        wr.writeheader()
        for r in rows:
            wr.writerow({k: ("" if r.get(k) is None else r.get(k))
                         for k in keys})


def write_json(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False, default=str)
        f.write("\n")


def _text(x, y, s, size=11, anchor="start", extra=""):
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" '
            f'text-anchor="{anchor}" {extra}>{escape(str(s))}</text>')


def _bars(groups, configs, title, y0):
    """groups: [(workload, {config: ratio})].  Returns (svg parts, height)."""
    left, top, ph, bw, gap = 60, y0 + 40, 260, 7, 14
    ncfg = len(configs)
    width = left + len(groups) * (ncfg * bw + gap) + 20
    vals = [v for _, d in groups for v in d.values() if v and v > 0]
    lo = min([0.5] + vals)
    hi = max([2.0] + vals)
    lo = 2 ** math.floor(math.log2(lo))
    hi = 2 ** math.ceil(math.log2(hi))

    def y(v):
        return top + ph - (math.log2(v) - math.log2(lo)) / \
            (math.log2(hi) - math.log2(lo)) * ph

    parts = [_text(left, y0 + 20, title, 14, extra='font-weight="bold"')]
    t = lo
    while t <= hi * 1.0001:
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y(t):.1f}" '
                     f'y2="{y(t):.1f}" stroke="#ddd"/>')
        parts.append(_text(left - 6, y(t) + 4, f"{t:g}x", 10, "end"))
        t *= 2
    parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y(1):.1f}" '
                 f'y2="{y(1):.1f}" stroke="#000" stroke-width="1.2"/>')
    x = left + gap / 2
    for name, d in groups:
        for i, c in enumerate(configs):
            v = d.get(c)
            if v and v > 0:
                y1, yv = y(1), y(v)
                parts.append(
                    f'<rect x="{x + i * bw:.1f}" y="{min(y1, yv):.1f}" '
                    f'width="{bw - 1}" height="{max(abs(yv - y1), 0.8):.1f}" '
                    f'fill="{PALETTE[i % len(PALETTE)]}">'
                    f'<title>{escape(name)} {escape(c)}: {v:.3f}x</title>'
                    f'</rect>')
        parts.append(_text(x + ncfg * bw / 2, top + ph + 14, name, 10,
                           "middle"))
        x += ncfg * bw + gap
    ly = top + ph + 32
    lx = left
    for i, c in enumerate(configs):
        parts.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" '
                     f'fill="{PALETTE[i % len(PALETTE)]}"/>')
        parts.append(_text(lx + 14, ly, c, 10))
        lx += 14 + 8 * len(c) + 12
        if lx > width - 100:
            lx, ly = left, ly + 16
    return parts, ly + 20 - y0, width


def _lines(series, title, x0, y0, colors, w=420, h=220):
    """series: {config: [(threads, throughput)]}; colors: {config: colour},
    the same as the bars'."""
    parts = [_text(x0, y0 + 16, title, 13, extra='font-weight="bold"')]
    left, top = x0 + 50, y0 + 30
    pts = [p for s in series.values() for p in s if p[1]]
    if not pts:
        return parts
    xs = sorted({p[0] for p in pts})
    ymax = max(p[1] for p in pts) * 1.1
    lx0, lx1 = math.log2(xs[0]), math.log2(xs[-1]) if len(xs) > 1 else 1

    def px(t):
        if len(xs) == 1:
            return left + w / 2
        return left + (math.log2(t) - lx0) / (lx1 - lx0) * w

    def py(v):
        return top + h - v / ymax * h

    parts.append(f'<rect x="{left}" y="{top}" width="{w}" height="{h}" '
                 f'fill="none" stroke="#999"/>')
    for t in xs:
        parts.append(_text(px(t), top + h + 14, t, 10, "middle"))
    parts.append(_text(left + w / 2, top + h + 28, "threads", 10, "middle"))
    for k in range(5):
        v = ymax * k / 4
        parts.append(_text(left - 4, py(v) + 4, f"{v:.3g}", 9, "end"))
    for i, (c, s) in enumerate(series.items()):
        col = colors.get(c, PALETTE[i % len(PALETTE)])
        s = [p for p in s if p[1]]
        if not s:
            continue
        path = " ".join(f"{px(t):.1f},{py(v):.1f}" for t, v in s)
        parts.append(f'<polyline points="{path}" fill="none" '
                     f'stroke="{col}" stroke-width="1.8"/>')
        for t, v in s:
            parts.append(f'<circle cx="{px(t):.1f}" cy="{py(v):.1f}" r="2.5" '
                         f'fill="{col}"><title>{escape(c)} {t} threads: '
                         f'{v:.3g}</title></circle>')
        parts.append(_text(left + w + 8, top + 12 + 13 * i, c, 10,
                           extra=f'fill="{col}"'))
    return parts


def write_svg(path, title, groups, configs, scaling):
    """groups: [(workload, {config: time ratio to jemalloc})];
    scaling: {workload: {config: [(threads, throughput)]}}."""
    parts, h, width = _bars(groups, configs,
                            "Time relative to jemalloc (log scale; "
                            "lower is faster)", 30)
    y = 30 + h
    if scaling:
        x = 10
        for wl, series in scaling.items():
            parts += _lines(series, f"Thread scaling: {wl} "
                            "(throughput, higher is better)", x, y,
                            {c: PALETTE[i % len(PALETTE)]
                             for i, c in enumerate(configs)})
            x += 600
        y += 290
        width = max(width, x)
    head = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{y}" font-family="sans-serif">',
            '<rect width="100%" height="100%" fill="white"/>',
            _text(10, 20, title, 15, extra='font-weight="bold"')]
    with open(path, "w") as f:
        f.write("\n".join(head + parts + ["</svg>"]) + "\n")
