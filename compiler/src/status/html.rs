//! The status as one self-contained HTML page (no external assets, a few
//! lines of plain JavaScript for the filters): it works offline and as a
//! CI artifact. The counts, the table of clusters filtered by state, and
//! the timeline of each cluster's latest upgrade on one time axis, so
//! the waves and the cluster that dragged show at a glance.

use std::fmt::Write as _;

use super::{Cluster, Fleet, Health, Span};

/// `<`, `>`, `&` and quotes escaped, for text and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The state a row is filtered by.
fn state(c: &Cluster) -> &'static str {
    match c.health {
        Health::Degraded => "degraded",
        Health::Upgrading => "upgrading",
        Health::Absent => "not-created",
        Health::Unknown => "no-status",
        Health::Healthy => "healthy",
    }
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1f24}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.5em}
.counts span{display:inline-block;margin-right:1em}
.filters button{margin:0 .3em .6em 0;padding:.2em .7em;border:1px solid #999;border-radius:1em;background:#fff;cursor:pointer}
.filters button.on{background:#1b1f24;color:#fff}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
.degraded{color:#b00020;font-weight:600}.upgrading{color:#8a5a00;font-weight:600}.healthy{color:#1a7f37}
.not-created,.no-status{color:#555}.pending{color:#8a5a00}
.tl{display:grid;grid-template-columns:12em 1fr 6em;gap:2px .5em;align-items:center}
.track{position:relative;height:.9em;background:#f3f3f3}
.bar{position:absolute;top:0;bottom:0;min-width:2px;background:#4a78c2}
.bar.pool{background:#7fb27f;top:25%;bottom:25%}.bar.open{background:repeating-linear-gradient(45deg,#d9a400,#d9a400 4px,#f0c850 4px,#f0c850 8px)}
.axis{display:flex;justify-content:space-between;color:#555;font-size:.85em}
small{color:#555}.key{display:inline-block;width:1.5em;height:.7em;margin:0 .3em 0 .8em;background:#4a78c2}
.key.pool{background:#7fb27f}.key.open{background:#d9a400}";

/// Shows the rows of the chosen state (`all`: every row); `page.html#degraded`
/// opens with that filter chosen, for a link from an alert.
const SCRIPT: &str = "document.querySelectorAll('.filters button').forEach(function(b){b.onclick=function(){
var f=b.dataset.filter;document.querySelectorAll('.filters button').forEach(function(o){o.classList.toggle('on',o===b)});
document.querySelectorAll('tr[data-state]').forEach(function(r){r.hidden=!(f==='all'||r.dataset.state===f||(f==='out-of-sync'&&r.dataset.sync==='out-of-sync'))})}});
var h=document.querySelector('.filters button[data-filter=\"'+location.hash.slice(1)+'\"]');if(h)h.click();";

/// The page.
pub fn page(fleet: &Fleet) -> String {
    let mut out = String::new();
    let title = fleet.counts.line();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        esc(&title)
    );
    let _ = writeln!(out, "<h1>Fleet status</h1><p><small>observed {}</small></p>", esc(&fleet.observed));
    let c = &fleet.counts;
    let _ = write!(out, "<p class=\"counts\" id=\"counts\"><span><b>{}</b> clusters</span>", c.clusters);
    for (n, class, word) in [
        (c.healthy, "healthy", "healthy"),
        (c.upgrading, "upgrading", "upgrading"),
        (c.degraded, "degraded", "degraded"),
        (c.not_created, "not-created", "not created"),
        (c.no_status, "no-status", "no status"),
        (c.out_of_sync, "pending", "out of sync"),
    ] {
        let _ = write!(out, "<span class=\"{class}\" data-count=\"{class}\"><b>{n}</b> {word}</span>");
    }
    out += "</p>\n";
    if let Some(s) = &fleet.rollout {
        let _ = writeln!(out, "<p id=\"rollout\">{}</p>", esc(&s.summary()));
    }
    out += "<div class=\"filters\">";
    for (filter, word) in [
        ("all", "all"),
        ("degraded", "degraded"),
        ("upgrading", "upgrading"),
        ("out-of-sync", "out of sync"),
        ("not-created", "not created"),
        ("healthy", "healthy"),
    ] {
        let on = if filter == "all" { " class=\"on\"" } else { "" };
        let _ = write!(out, "<button data-filter=\"{filter}\"{on}>{word}</button>");
    }
    out += "</div>\n<table id=\"clusters\"><thead><tr><th>Cluster</th><th>State</th><th>Sync</th><th>Control plane</th><th>Node pools</th><th>Roll-out</th></tr></thead><tbody>\n";
    let several = fleet.clusters.iter().any(|x| x.target != fleet.clusters[0].target);
    for cl in &fleet.clusters {
        row(&mut out, cl, several);
    }
    out += "</tbody></table>\n";
    timeline(&mut out, fleet);
    let _ = write!(out, "<script>{SCRIPT}</script>\n</body></html>\n");
    out
}

fn row(out: &mut String, c: &Cluster, several: bool) {
    let sync = if c.sync.out_of_sync() { "out-of-sync" } else { "in-sync" };
    let _ = write!(out, "<tr data-state=\"{}\" data-sync=\"{sync}\" data-cluster=\"{}\">", state(c), esc(&c.name));
    let target = if several { format!("<br><small>{}</small>", esc(&c.target)) } else { String::new() };
    let _ = write!(out, "<td>{}{target}</td>", esc(&c.name));
    let conditions: Vec<String> = c.conditions.iter().map(|x| esc(&x.line())).collect();
    let _ = write!(
        out,
        "<td><span class=\"{}\">{}</span>{}</td>",
        state(c),
        c.health.word(),
        conditions.iter().map(|l| format!("<br><small>{l}</small>")).collect::<String>()
    );
    let class = if c.sync.out_of_sync() { " class=\"pending\"" } else { "" };
    let _ = write!(out, "<td{class}>{}</td>", esc(&c.sync.line()));
    let v = &c.version;
    let cp = match (v.running.as_str(), v.state.as_str()) {
        (_, "") => "—".to_string(),
        (running, "Completed") if running == v.desired || v.desired.is_empty() => running.to_string(),
        ("", state) => format!("installing {} ({state})", v.desired),
        (running, state) => format!("{running} → {} ({state})", v.desired),
    };
    let _ = write!(out, "<td>{}</td><td>", esc(&cp));
    for p in &c.node_pools {
        let _ = write!(out, "{}", esc(&p.line()));
        for cond in &p.conditions {
            let _ = write!(out, "<br><small>{}</small>", esc(&cond.line()));
        }
        out.push_str("<br>");
    }
    let rollout = c.rollout.as_ref().map(super::Rollout::line).unwrap_or_default();
    let _ = writeln!(out, "</td><td>{}</td></tr>", esc(&rollout));
}

/// `2026-12-08 05:12:00 UTC`.
fn clock(t: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(t)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// `1h 5m`, `42s`.
fn duration(secs: i64) -> String {
    match secs {
        s if s >= 3600 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        s if s >= 60 => format!("{}m {}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

/// Each cluster's latest upgrade on one axis, in the order they started.
fn timeline(out: &mut String, fleet: &Fleet) {
    let now = fleet.observed.parse::<k8s_openapi::jiff::Timestamp>().map(|t| t.as_second()).unwrap_or_default();
    let end_of = |s: &Span| s.completed.unwrap_or(now);
    let spans = fleet.clusters.iter().flat_map(|c| c.timeline.iter().filter(|s| s.started.is_some()));
    let (Some(first), Some(last)) = (spans.clone().filter_map(|s| s.started).min(), spans.map(&end_of).max()) else {
        out.push_str("<h2>Latest upgrades</h2><p id=\"timeline\">No upgrade reported yet.</p>\n");
        return;
    };
    let width = (last - first).max(1) as f64;
    let pct = |t: i64| (t - first) as f64 * 100.0 / width;
    let _ = writeln!(
        out,
        "<h2>Latest upgrades</h2><p><small><span class=\"key cp\"></span> control plane <span class=\"key pool\"></span> node pool <span class=\"key open\"></span> under way; in the order they started</small></p><div class=\"axis\"><span>{}</span><span>{}</span></div><div class=\"tl\" id=\"timeline\">",
        clock(first),
        clock(last)
    );
    let mut ordered: Vec<&Cluster> = fleet.clusters.iter().filter(|c| !c.timeline.is_empty()).collect();
    ordered.sort_by_key(|c| (c.timeline[0].started.unwrap_or(i64::MAX), c.name.clone()));
    for c in ordered {
        let started = c.timeline.iter().filter_map(|s| s.started).min().unwrap_or(first);
        let ended = c.timeline.iter().map(&end_of).max().unwrap_or(started);
        let open = c.timeline.iter().any(|s| s.completed.is_none());
        let _ = write!(out, "<div>{}</div><div>", esc(&c.name));
        for (i, s) in c.timeline.iter().enumerate() {
            let Some(from) = s.started else { continue };
            let to = end_of(s).max(from);
            let class = match (i, s.completed.is_none()) {
                (0, false) => "bar",
                (0, true) => "bar open",
                (_, false) => "bar pool",
                (_, true) => "bar pool open",
            };
            let done = s.completed.map_or_else(|| "under way".to_string(), clock);
            let _ = write!(
                out,
                "<div class=\"track\"><div class=\"{class}\" data-what=\"{}\" style=\"left:{:.2}%;width:{:.2}%\" title=\"{} {} {}: {} – {}\"></div></div>",
                esc(&s.what),
                pct(from),
                pct(to) - pct(from),
                esc(&c.name),
                esc(&s.what),
                esc(&s.version),
                clock(from),
                esc(&done)
            );
        }
        let took = duration(ended - started) + if open { " so far" } else { "" };
        let _ = writeln!(out, "</div><div><small>{}</small></div>", esc(&took));
    }
    out.push_str("</div>\n");
}
