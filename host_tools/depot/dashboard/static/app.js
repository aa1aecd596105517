// The fleet dashboard: fetch /api/overview, render tables and inline SVG charts.
// Nothing is loaded from anywhere but this station.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}

function yuan(fen) {
  return "\u00a5" + (fen / 100).toLocaleString("en", {minimumFractionDigits: 2,
                                                        maximumFractionDigits: 2});
}

function when(ts) {
  if (!ts) return "never";
  const d = new Date(ts * 1000);
  return d.toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

// Vertical bars: items [{label, value, title, sub}], one <rect class="bar"> per item.
// Drawn in a fixed-width coordinate system so text keeps its size whatever the count.
function barChart(items, fmt, height, width) {
  height = height || 180;
  const w = Math.max(width || 900, items.length * 40), pad = 34, top = 18;
  const s = svg("svg", {viewBox: `0 0 ${w} ${height + pad + top}`, role: "img"});
  const max = Math.max(1, ...items.map(i => i.value));
  const slot = (w - 20) / Math.max(1, items.length);
  const bw = Math.min(slot * 0.7, 90);
  items.forEach((it, i) => {
    const h = Math.round(height * it.value / max);
    const cx = 10 + i * slot + slot / 2, y = top + height - h;
    const r = svg("rect", {class: "bar", x: (cx - bw / 2).toFixed(1), y: y,
                           width: bw.toFixed(1), height: Math.max(h, 1),
                           "data-label": it.label, "data-value": it.value});
    r.appendChild(svg("title", {}, it.title || (it.label + ": " + fmt(it.value))));
    s.appendChild(r);
    s.appendChild(svg("text", {x: cx.toFixed(1), y: y - 4, "text-anchor": "middle"},
                      fmt(it.value)));
    s.appendChild(svg("text", {x: cx.toFixed(1), y: top + height + 14, "text-anchor": "middle"},
                      it.label));
    if (it.sub) s.appendChild(svg("text", {x: cx.toFixed(1), y: top + height + 28,
                                           "text-anchor": "middle", class: "sub"}, it.sub));
  });
  if (!items.length) s.appendChild(svg("text", {x: 10, y: 40, class: "none"}, "no records yet"));
  return s;
}

function render(o) {
  const st = o.station;
  const sEl = document.getElementById("station");
  if (st) {
    const s = st.stats;
    sEl.textContent = (st.listen ? `listening ${st.listen}${st.tls ? " (TLS)" : ""}`
                                 : "not accepting validators") + " \u00b7 " +
      `${s.active} syncing \u00b7 ${s.sessions_ok} sessions ok, ${s.sessions_failed} failed ` +
      `\u00b7 ${s.records_new} records received`;
  } else {
    sEl.textContent = "";
  }
  // fleet
  document.getElementById("n-devices").textContent = o.fleet.length;
  document.getElementById("states").textContent =
    `${o.states.ok} ok \u00b7 ${o.states.stale} stale (> ${o.stale_hours} h) \u00b7 ` +
    `${o.states.never} never synced`;
  const tb = document.querySelector("#fleet tbody");
  tb.replaceChildren();
  for (const d of o.fleet) {
    const tr = el("tr", {"data-device": d.device_id, "data-state": d.state});
    tr.appendChild(el("td", {}, d.device_id));
    tr.appendChild(el("td", {}, d.line ?? "-"));
    tr.appendChild(el("td", {}, d.vehicle ?? "-"));
    tr.appendChild(el("td", {}, d.depot ?? "-"));
    const td = el("td");
    td.appendChild(el("span", {class: "state state-" + d.state}, d.state));
    tr.appendChild(td);
    tr.appendChild(el("td", {}, when(d.last_sync)));
    const fw = d.firmware;
    let fwText = fw == null ? "-" : `${fw >> 16}.${(fw >> 8) & 255}.${fw & 255}`;
    if (d.expected_firmware != null && fw != null && d.expected_firmware !== fw) fwText += " (!)";
    tr.appendChild(el("td", {}, fwText));
    tr.appendChild(el("td", {}, d.acked_seq ?? "-"));
    tr.appendChild(el("td", {}, d.blacklist_version ?? "-"));
    tr.appendChild(el("td", {}, d.fares_version ?? "-"));
    tb.appendChild(tr);
  }
  // days
  const days = o.daily.days || [];
  const last = days.length ? days[days.length - 1] : null;
  document.getElementById("day-total").textContent = last ? yuan(last.amount_fen) : "-";
  document.getElementById("day-records").textContent =
    last ? `${last.day}: ${last.records.toLocaleString("en")} records` : "no records yet";
  const cd = document.getElementById("chart-days");
  cd.replaceChildren(barChart(days.slice(-31).map(d => ({label: d.day.slice(5),
      value: d.amount_fen, sub: `${d.records.toLocaleString("en")} rec`,
      title: `${d.day}: ${yuan(d.amount_fen)}, ${d.records} records`})), yuan));
  const lastDay = last ? last.day : null;
  const byLine = (o.daily.by_line || []).filter(r => r.day === lastDay);
  document.getElementById("chart-lines").replaceChildren(
    barChart(byLine.map(r => ({label: "line " + r.line, value: r.amount_fen,
      title: `line ${r.line}: ${yuan(r.amount_fen)}, ${r.records} records`})), yuan, 120, 440));
  const byIss = (o.daily.by_issuer || []).filter(r => r.day === lastDay);
  document.getElementById("chart-issuers").replaceChildren(
    barChart(byIss.map(r => ({label: r.issuer, value: r.amount_fen,
      title: `issuer ${r.issuer}: ${yuan(r.amount_fen)}, ${r.records} records`})), yuan, 120, 440));
  // pending
  const p = o.pending || {};
  document.getElementById("pending-amount").textContent =
    p.amount_fen != null ? yuan(p.amount_fen) : "-";
  document.getElementById("pending-records").textContent =
    p.records != null ? `${p.records.toLocaleString("en")} records` : "";
  // anomalies
  const an = o.anomalies || [];
  document.getElementById("n-anomalies").textContent = an.length ? an.length : "none";
  const ad = document.getElementById("anomalies");
  if (!an.length) {
    ad.replaceChildren(el("p", {class: "none"}, "none"));
  } else {
    const cols = Object.keys(an[0]);
    const t = el("table", {id: "anomaly-table"});
    const h = el("tr");
    cols.forEach(c => h.appendChild(el("th", {}, c)));
    t.appendChild(h);
    an.forEach(r => {
      const tr = el("tr");
      cols.forEach(c => tr.appendChild(el("td", {}, r[c])));
      t.appendChild(tr);
    });
    ad.replaceChildren(t);
  }
  // gray records (clearing's view: open until resolved)
  const g = o.grays || {};
  document.getElementById("n-gray-open").textContent = g.open ?? 0;
  document.getElementById("grays").textContent = Object.keys(g).length
    ? Object.keys(g).sort().map(k => `${g[k]} ${k}`).join(" \u00b7 ") : "no clearing yet";
  // blacklist proposals
  renderProposals(o.proposals || []);
  // versions
  const vd = document.getElementById("versions");
  const vt = el("table", {id: "versions-table"});
  const hr = el("tr");
  ["Content", "Published", "Held by the fleet (version: validators)"].forEach(
    c => hr.appendChild(el("th", {}, c)));
  vt.appendChild(hr);
  for (const k of ["blacklist", "fares", "whitelist", "config"]) {
    const held = (o.versions.held || {})[k] || {};
    const pub = (o.versions.published || {})[k];
    const tr = el("tr", {"data-kind": k});
    tr.appendChild(el("td", {}, k));
    tr.appendChild(el("td", {}, pub ?? "-"));
    tr.appendChild(el("td", {}, Object.keys(held).sort((a, b) => a - b)
      .map(v => `v${v}: ${held[v]}`).join(", ") || "-"));
    vt.appendChild(tr);
  }
  vd.replaceChildren(vt);
  document.body.setAttribute("data-loaded", "1");
}

function renderProposals(ps) {
  const pd = document.getElementById("proposals");
  if (!ps.length) {
    pd.replaceChildren(el("p", {class: "none"}, "none"));
    return;
  }
  const t = el("table", {id: "proposal-table"});
  const h = el("tr");
  ["#", "Card", "Reason", "State", "Decided by", "Version", ""].forEach(
    c => h.appendChild(el("th", {}, c)));
  t.appendChild(h);
  for (const p of ps) {
    const tr = el("tr", {"data-proposal": p.id});
    tr.appendChild(el("td", {}, p.id));
    tr.appendChild(el("td", {}, p.card));
    tr.appendChild(el("td", {}, p.reason));
    tr.appendChild(el("td", {class: "pstate"}, p.state));
    tr.appendChild(el("td", {}, p.approved_by ?? "-"));
    tr.appendChild(el("td", {}, p.version ?? "-"));
    const td = el("td");
    if (p.state === "proposed") {
      for (const v of ["approve", "reject"]) {
        const b = el("button", {class: v, type: "button"}, v);
        b.addEventListener("click", () => decide(p.id, v));
        td.appendChild(b);
      }
    }
    tr.appendChild(td);
    t.appendChild(tr);
  }
  pd.replaceChildren(t);
}

async function decide(id, verdict) {
  const by = document.getElementById("operator").value.trim();
  const msg = document.getElementById("station");
  if (!by) {
    msg.textContent = "name the operator before deciding";
    document.getElementById("operator").focus();
    return;
  }
  const r = await fetch(`/api/proposals/${id}/${verdict}`, {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({by: by})});
  const o = await r.json();
  if (!r.ok) msg.textContent = o.error || `refused (${r.status})`;
  await refresh();
}

async function refresh() {
  try {
    const r = await fetch("/api/overview", {cache: "no-store"});
    const o = await r.json();
    if (o.error) {
      document.getElementById("station").textContent = o.error;
    } else {
      render(o);
    }
  } catch (e) {
    document.getElementById("station").textContent = "station not answering: " + e;
  }
}

refresh();
setInterval(refresh, 5000);
