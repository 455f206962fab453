"""The dashboard: one HTML page, no external scripts, fonts or styles, its charts
drawn as inline SVG from the same numbers the JSON routes return (``StatsService``).

Live by default: one small inline script (allowed by its hash in the page's
Content-Security-Policy, and nothing else may run) asks for the same page again every
``refresh`` seconds while the tab is visible, and swaps the figures in place (no
reload), showing when they were last updated. ``refresh=0`` serves the page with no
script at all.

Every chart element carries its value in a ``data-`` attribute (``data-bytes``,
``data-percent``, ...), so a test, or a curious operator, can read the numbers the
drawing shows.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from shelflife.domain.charts import cost_chart
from shelflife.domain.records import RunRecord
from shelflife.domain.units import human_bytes, usd
from shelflife.services.cleanup import CleanupHealth
from shelflife.services.stats import BucketUsageReport, Recommendation, StoreStats

# Colours of the tiers and of the lifecycle counts (colour-blind safe, Okabe-Ito).
TIER_COLOURS = {"temp": "#E69F00", "hot": "#D55E00", "cold": "#0072B2"}
RUN_COUNTS = {
    "promoted": "#E69F00",
    "archived": "#0072B2",
    "restored": "#CC79A7",
    "deleted": "#555555",
}
HEALTH_COLOURS = {"ok": "#009E73", "warning": "#E69F00", "alarm": "#D55E00"}
# Charts shrink with their box on narrow screens.
FIT = 'style="max-width:100%;height:auto"'
# The page allows nothing to load: inline styles and data: images only.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
# The live page's script: the same URL again (its query, and whatever credentials the
# browser sends, included), the figures (#live) swapped in place; nothing while hidden.
LIVE_SCRIPT = """(() => {
  const every = Number(document.body.dataset.refresh) * 1000;
  const status = document.getElementById("updated");
  async function refresh() {
    if (document.hidden) return;
    try {
      const answer = await fetch(location.href, {cache: "no-store"});
      if (!answer.ok) throw new Error("HTTP " + answer.status);
      const page = new DOMParser().parseFromString(await answer.text(), "text/html");
      const fresh = page.getElementById("live");
      if (!fresh) throw new Error("no figures in the answer");
      document.getElementById("live").replaceWith(document.adoptNode(fresh));
      status.textContent = "updated " + fresh.dataset.generated + " UTC";
      status.dataset.state = "ok";
    } catch (error) {
      status.textContent = "not updated (" + error.message + "), figures of "
        + document.getElementById("live").dataset.generated + " UTC";
      status.dataset.state = "failed";
    }
  }
  setInterval(refresh, every);
  document.addEventListener("visibilitychange", refresh);
})();"""
LIVE_SCRIPT_HASH = base64.b64encode(hashlib.sha256(LIVE_SCRIPT.encode()).digest()).decode()
# Refresh every minute unless asked otherwise: one API request a minute while the tab
# is visible.
DEFAULT_REFRESH_SECONDS = 60


def content_security_policy(refresh_seconds: int) -> str:
    """The page's policy: nothing loads; when it refreshes, its own script runs and
    may ask this origin for the page again."""
    if not refresh_seconds:
        return CONTENT_SECURITY_POLICY
    return f"{CONTENT_SECURITY_POLICY}; script-src 'sha256-{LIVE_SCRIPT_HASH}'; connect-src 'self'"


@dataclass(frozen=True)
class DashboardData:
    stats: StoreStats
    buckets: Sequence[BucketUsageReport]
    runs: Sequence[RunRecord]
    cleanup: CleanupHealth | None
    recommendations: Sequence[Recommendation]
    cleanup_threshold_percent: float
    overflow_threshold_percent: float
    generated_at: datetime
    # The last pricing of the workload by strategy (``shelflife recommend``), if any.
    pricing: RunRecord | None = None


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def tier_sizes_svg(stats: StoreStats) -> str:
    width, height, bar = 480, 40 + 44 * len(stats.tiers), 26
    biggest = max((tier.bytes for tier in stats.tiers), default=0) or 1
    rows = []
    for index, tier in enumerate(stats.tiers):
        y = 20 + index * 44
        # A tier with anything in it stays visible next to a much bigger one.
        length = max(round(240 * tier.bytes / biggest, 1), 2.0 if tier.bytes else 0.0)
        rows.append(
            f'<text x="0" y="{y + 18}" class="label">{escape(tier.tier.upper())}</text>'
            f'<rect class="bar" data-tier="{_attr(tier.tier)}" data-bytes="{tier.bytes}" '
            f'data-photos="{tier.photos}" x="60" y="{y}" width="{length}" height="{bar}" '
            f'fill="{TIER_COLOURS.get(tier.tier, "#999")}"><title>{escape(tier.tier)}: '
            f"{tier.photos} photos, {human_bytes(tier.bytes)}</title></rect>"
            f'<text x="{60 + length + 6}" y="{y + 18}" class="value">'
            f"{human_bytes(tier.bytes)} · {tier.photos} photos</text>"
        )
    return (
        f'<svg id="tier-sizes" role="img" aria-label="Stored bytes per tier" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" {FIT}>'
        f"{''.join(rows)}</svg>"
    )


def bucket_fill_svg(
    buckets: Sequence[BucketUsageReport], cleanup_percent: float, overflow_percent: float
) -> str:
    left, scale, row = 0, 400, 46
    height = 34 + row * max(1, len(buckets))
    width = left + scale + 90
    parts = []
    for index, bucket in enumerate(buckets):
        y = 8 + index * row
        shown = min(bucket.percent, 100.0)
        # Past a threshold a bucket stands out: amber past cleanup, red past overflow.
        level = (
            "overflow"
            if bucket.percent >= overflow_percent
            else "cleanup"
            if bucket.percent >= cleanup_percent
            else "ok"
        )
        colour = {
            "overflow": HEALTH_COLOURS["alarm"],
            "cleanup": HEALTH_COLOURS["warning"],
        }.get(level, TIER_COLOURS.get(bucket.tier, "#999"))
        parts.append(
            f'<text x="{left}" y="{y + 12}" class="label{"" if level == "ok" else " past"}">'
            f"{escape(bucket.name)} "
            f'<tspan class="value">({escape(bucket.tier)}, {escape(bucket.status)})</tspan></text>'
            f'<rect x="{left}" y="{y + 18}" width="{scale}" height="18" fill="#eee"/>'
            f'<rect class="fill" data-bucket="{_attr(bucket.name)}"'
            f' data-tier="{_attr(bucket.tier)}" data-percent="{bucket.percent}"'
            f' data-status="{_attr(bucket.status)}" data-level="{level}" x="{left}"'
            f' y="{y + 18}" width="{round(scale * shown / 100, 1)}" height="18" fill="{colour}">'
            f"<title>{escape(bucket.name)}: {bucket.percent:.1f}% of "
            f"{human_bytes(bucket.capacity_bytes)} ({escape(bucket.status)})</title></rect>"
            f'<text x="{left + scale + 6}" y="{y + 32}" class="value">{bucket.percent:.1f}%</text>'
        )
    for percent, name in ((cleanup_percent, "cleanup"), (overflow_percent, "overflow")):
        x = left + scale * percent / 100
        anchor = "end" if name == "cleanup" else "start"
        parts.append(
            f'<line class="threshold" data-threshold="{name}" data-percent="{percent:g}" '
            f'x1="{x}" x2="{x}" y1="20" y2="{height - 14}" stroke="#333" stroke-dasharray="4 3"/>'
            f'<text x="{x + (-3 if anchor == "end" else 3)}" y="{height - 2}" '
            f'text-anchor="{anchor}" class="value">{name} {percent:g}%</text>'
        )
    if not buckets:
        parts.append('<text x="0" y="30" class="value">no buckets recorded yet</text>')
    return (
        f'<svg id="bucket-fill" role="img" aria-label="Fill of each bucket" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" {FIT}>'
        f"{''.join(parts)}</svg>"
    )


def costs_svg(stats: StoreStats) -> str:
    biggest = max(stats.all_hot_monthly_cost, stats.monthly_cost) or 1
    bars = []
    for index, (kind, label, amount) in enumerate(
        (
            ("actual", "shelflife", stats.monthly_cost),
            ("all-hot", "all in HOT", stats.all_hot_monthly_cost),
        )
    ):
        y = 10 + index * 40
        length = round(260 * amount / biggest, 1)
        bars.append(
            f'<text x="0" y="{y + 18}" class="label">{label}</text>'
            f'<rect class="cost" data-kind="{kind}" data-usd="{amount}" x="100" y="{y}" '
            f'width="{length}" height="26" fill="{"#009E73" if kind == "actual" else "#999"}"/>'
            f'<text x="{100 + length + 6}" y="{y + 18}" class="value">{usd(amount)}/month</text>'
        )
    return (
        '<svg id="costs" role="img" aria-label="Monthly cost against keeping everything in HOT" '
        f'viewBox="0 0 480 90" width="480" height="90" {FIT}>{"".join(bars)}</svg>'
    )


def lifecycle_runs_svg(runs: Sequence[RunRecord]) -> str:
    width, height, base = 480, 200, 170
    shown = [run for run in runs if not run.dry_run][-30:]
    totals = [sum(run.counts.get(name, 0) for name in RUN_COUNTS) for run in shown]
    biggest = max(totals, default=0) or 1
    # Bars no wider than a month's worth would make them: one run is not a wall.
    step = (width - 40) / max(30, len(shown))
    parts = [
        f'<line x1="30" x2="{width}" y1="{base}" y2="{base}" stroke="#333"/>',
        f'<text x="0" y="24" class="value">{biggest}</text>'
        f'<text x="0" y="{base}" class="value">0</text>',
    ]
    if shown:
        parts.append(
            f'<text x="34" y="{base + 14}" class="value">{shown[0].started_at:%m-%d}</text>'
            f'<text x="{width}" y="{base + 14}" text-anchor="end" class="value">'
            f"{shown[-1].started_at:%m-%d}</text>"
        )
    for index, run in enumerate(shown):
        x = 34 + index * step
        y = float(base)
        group = []
        for name, colour in RUN_COUNTS.items():
            count = run.counts.get(name, 0)
            if not count:
                continue
            h = round(150 * count / biggest, 1)
            y -= h
            group.append(
                f'<rect class="count" data-count="{name}" data-value="{count}" x="{x:.1f}" '
                f'y="{y:.1f}" width="{max(2.0, step - 4):.1f}" height="{h}" fill="{colour}">'
                f"<title>{name}: {count}</title></rect>"
            )
        if not group:  # a run that had nothing to do is still a run
            group.append(
                f'<rect class="idle" x="{x:.1f}" y="{base - 2}" '
                f'width="{max(2.0, step - 4):.1f}" height="2" fill="#999"/>'
            )
        label = f"{run.started_at:%m-%d %H:%M}"
        parts.append(
            f'<g class="run" data-run="{_attr(run.id)}" data-started="{run.started_at.isoformat()}"'
            f' data-status="{_attr(run.status.value)}"><title>{escape(label)} UTC</title>'
            f"{''.join(group)}</g>"
        )
    if not shown:
        parts.append('<text x="40" y="90" class="value">no lifecycle runs yet</text>')
    legend = "".join(
        f'<rect x="{120 + i * 90}" y="188" width="10" height="10" fill="{colour}"/>'
        f'<text x="{134 + i * 90}" y="197" class="value">{name}</text>'
        for i, (name, colour) in enumerate(RUN_COUNTS.items())
    )
    return (
        f'<svg id="lifecycle-runs" role="img" aria-label="Lifecycle runs over time" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" {FIT}>'
        f"{''.join(parts)}{legend}</svg>"
    )


def cleanup_health_html(health: CleanupHealth | None) -> str:
    if health is None:
        return '<div id="cleanup-health" data-status="unknown">not available</div>'
    colour = HEALTH_COLOURS.get(health.status, "#999")
    reasons = "".join(f"<li>{escape(reason)}</li>" for reason in health.reasons)
    return (
        f'<div id="cleanup-health" data-status="{_attr(health.status)}" '
        f'data-dead-letters="{health.dead_letters if health.dead_letters is not None else ""}" '
        f'data-pending="{health.pending}">'
        f'<svg width="18" height="18" viewBox="0 0 18 18"><circle cx="9" cy="9" r="8" '
        f'fill="{colour}"/></svg> <strong>{escape(health.status.upper())}</strong> · '
        f"{health.dead_letters if health.dead_letters is not None else 'no'} dead letters · "
        f"{health.pending} pending retries · {health.failed_last_hour} failed in the last hour"
        f"<ul>{reasons}</ul></div>"
    )


def pricing_html(pricing: RunRecord | None) -> str:
    """Monthly cost by strategy on this deployment's measured workload, as
    ``shelflife recommend`` priced it with the simulator (the chart ``shelflife
    simulate`` draws), or how to get one."""
    if pricing is None or not pricing.details:
        return (
            '<p id="pricing" data-priced="false">Not priced yet: run <code>shelflife '
            "recommend</code> (it replays this deployment's measured workload under each "
            "configuration and keeps the result here).</p>"
        )
    details = pricing.details
    strategies = details.get("strategies", {})
    series = {name: figures["monthly_usd"] for name, figures in strategies.items()}
    steady = {name: figures["steady_monthly_usd"] for name, figures in strategies.items()}
    measured = details.get("measured", {})
    title = f"USD a month by strategy, priced {pricing.started_at:%Y-%m-%d}"
    return (
        f'<div id="pricing" data-priced="true" data-choose="{_attr(details.get("choose"))}">'
        f"{cost_chart(series, title, steady=steady, width=700, height=360)}"
        f"<p><small>Replayed by the simulator on the workload measured over "
        f"{escape(str(measured.get('days', '?')))} days "
        f"({escape(str(measured.get('uploads_per_month', '?')))} uploads a month, "
        f"{escape(str(measured.get('views_per_published', '?')))} view-days per published "
        f"photo); steady = the mean of the last 12 months. Recommended: "
        f"<b>{escape(str(details.get('choose')))}</b>.</small></p></div>"
    )


def render(data: DashboardData, refresh_seconds: int = 0) -> str:
    """The page; with ``refresh_seconds``, live (see the module)."""
    stats = data.stats
    advice = (
        "".join(
            f'<li class="{_attr(item.severity)}" data-code="{_attr(item.code)}">'
            f"<b>{escape(item.severity)}</b> {escape(item.message)}</li>"
            for item in data.recommendations
        )
        or "<li>nothing to look at</li>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{content_security_policy(refresh_seconds)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>shelflife dashboard</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1100px; }}
h1 {{ font-size: 22px; margin: 0 0 4px; }} h2 {{ font-size: 16px; margin: 0 0 10px; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 18px; }}
section {{ border: 1px solid #ddd; border-radius: 8px; padding: 14px; }}
.label {{ font-size: 13px; fill: #222; }} .value {{ font-size: 12px; fill: #555; }}
.figures {{ display: flex; gap: 28px; margin: 8px 0; }}
.figures b {{ display: block; font-size: 20px; }}
li.critical b {{ color: #D55E00; }} li.warning b {{ color: #B07000; }} small {{ color: #666; }}
.label.past {{ font-weight: bold; }} #updated[data-state="failed"] {{ color: #D55E00; }}
</style></head><body data-refresh="{refresh_seconds}">
<h1>shelflife</h1><small id="updated" data-state="ok">{
        f"live: every {refresh_seconds} s while visible; generated "
        if refresh_seconds
        else "generated "
    }{data.generated_at:%Y-%m-%d %H:%M:%S} UTC</small>
<div id="live" data-generated="{data.generated_at:%Y-%m-%d %H:%M:%S}">
<div class="figures" id="figures" data-photos="{stats.photos}" data-bytes="{stats.bytes}"
 data-monthly-cost="{stats.monthly_cost}" data-monthly-savings="{stats.monthly_savings}">
<div><b>{stats.photos}</b>photos</div><div><b>{human_bytes(stats.bytes)}</b>stored</div>
<div><b>{usd(stats.monthly_cost)}</b>per month</div>
<div><b>{usd(stats.monthly_savings)}</b>saved against all in HOT</div>
<div><b>{usd(stats.stack_fixed_monthly_cost)}</b>the stack's own fixed bill</div></div>
<p><small>Savings against {escape(stats.baseline)}. Prices checked
{escape(stats.prices_checked)}.</small></p>
<div class="grid">
<section><h2>Stored per tier</h2>{tier_sizes_svg(stats)}</section>
<section><h2>Monthly cost</h2>{costs_svg(stats)}</section>
<section><h2>Bucket fill (cleanup at {data.cleanup_threshold_percent:g} %, overflow at
{data.overflow_threshold_percent:g} %)</h2>
{bucket_fill_svg(data.buckets, data.cleanup_threshold_percent, data.overflow_threshold_percent)}
</section>
<section><h2>Lifecycle runs</h2>{lifecycle_runs_svg(data.runs)}</section>
<section><h2>Cleanup health</h2>{cleanup_health_html(data.cleanup)}</section>
<section><h2>Recommendations</h2><ul id="recommendations">{advice}</ul></section>
<section><h2>Cost by strategy (shelflife recommend)</h2>{pricing_html(data.pricing)}</section>
</div></div>{f"<script>{LIVE_SCRIPT}</script>" if refresh_seconds else ""}</body></html>
"""
