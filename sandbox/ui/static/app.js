// landgate dashboard: one page, six views, no dependencies (works offline).
// Every value from the trail goes into the page as text (textContent), never as HTML.
"use strict";
const CSRF = document.querySelector('meta[name="landgate-csrf"]').content;
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
}
function table(head, rows, id) {
  const t = el("table", { id });
  t.append(el("tr", {}, ...head.map((h) => el("th", {}, h))));
  for (const r of rows) t.append(r);
  return t;
}
function td(v, cls) { return el("td", { class: cls }, v === null || v === undefined ? "" : v); }
function ts(t) { return t ? new Date(t * 1000).toLocaleString() : ""; }
async function getJSON(url) {
  const r = await fetch(url, { credentials: "same-origin" });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}
async function postJSON(url, obj) {
  const r = await fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-Landgate-CSRF": CSRF },
    body: JSON.stringify(obj),
  });
  const body = await r.json().catch(() => ({ error: r.statusText }));
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}
function msg(text, err) { return el("div", { class: err ? "msg err" : "msg", id: "msg" }, text); }
function diffView(diff) {
  const pre = el("pre", { class: "diff", id: "diff" });
  for (const line of diff.split("\n")) {
    const cls = line.startsWith("+") && !line.startsWith("+++") ? "add"
      : line.startsWith("-") && !line.startsWith("---") ? "del" : "";
    pre.append(el("span", { class: cls }, line + "\n"));
  }
  return pre;
}

// ---- the confirm dialog ------------------------------------------------------------
function confirmDialog(title, body, onConfirm) {
  $("modal-title").textContent = title;
  $("modal-body").replaceChildren(body);
  $("modal").hidden = false;
  const ok = $("modal-confirm"), cancel = $("modal-cancel");
  const close = () => { $("modal").hidden = true; ok.onclick = cancel.onclick = null; };
  cancel.onclick = close;
  ok.onclick = async () => { close(); await onConfirm(); };
}

// "allow this": preview (rule + diff + what the policy decides afterwards), then confirm.
async function allowThis(action, target, where) {
  let p;
  try { p = await postJSON("/api/allow/preview", { action, target }); }
  catch (e) { where.replaceChildren(msg("allow: " + e.message, true)); return; }
  const body = el("div", {},
    el("p", {}, "Adds this rule to ", el("code", {}, p.path), ":"),
    el("pre", { id: "proposed-rule" }, p.rule),
    el("p", {}, "Afterwards ", el("code", {}, action + " " + target), " is ",
      el("b", { class: p.decision_after }, p.decision_after), " (", p.decided_by, ")."),
    diffView(p.diff));
  confirmDialog("Allow this?", body, async () => {
    try {
      const r = await postJSON("/api/allow/apply", { action, target, base_sha256: p.base_sha256 });
      where.replaceChildren(msg(`written to ${r.path}: ${r.rule} (re-checked: ${r.decision_after})`));
    } catch (e) { where.replaceChildren(msg("not written: " + e.message, true)); }
  });
}

// ---- Live -----------------------------------------------------------------------------
const live = { rows: [], received: 0, rendered: 0, paused: false, held: 0, sessions: new Set(),
  layers: new Set(), dirty: false, source: null, view: null };
window.__landgate = live; // read by the browser tests and the bench
const LIVE_KEEP = 2000, LIVE_SHOW = 300;

function startLive() {
  if (live.source) return;
  live.source = new EventSource("/api/events");
  live.source.onmessage = (ev) => {
    const batch = JSON.parse(ev.data);
    live.received += batch.length;
    for (const e of batch) {
      if (e.session) live.sessions.add(e.session);
      if (e.layer) live.layers.add(e.layer);
    }
    if (live.paused) { live.held += batch.length; return; }
    live.rows.push(...batch);
    if (live.rows.length > LIVE_KEEP) live.rows.splice(0, live.rows.length - LIVE_KEEP);
    if (!live.dirty) { live.dirty = true; requestAnimationFrame(renderLive); }
  };
}
function liveFilter() {
  const f = (id) => ($(id) ? $(id).value : "");
  const s = f("f-session"), a = f("f-action"), r = f("f-result"), l = f("f-layer");
  const q = f("f-search").toLowerCase();
  return (e) => (!s || e.session === s) && (!a || e.action === a) && (!r || e.result === r) &&
    (!l || e.layer === l) && (!q || JSON.stringify(e).toLowerCase().includes(q));
}
function fillSelect(id, values) {
  const sel = $(id);
  if (!sel) return;
  const have = new Set([...sel.options].map((o) => o.value));
  for (const v of values) if (!have.has(v)) sel.append(el("option", { value: v }, v));
}
function renderLive() {
  live.dirty = false;
  const body = $("live-body");
  if (!body) return;
  fillSelect("f-session", live.sessions); fillSelect("f-layer", live.layers);
  const keep = liveFilter();
  const shown = [];
  for (let i = live.rows.length - 1; i >= 0 && shown.length < LIVE_SHOW; i--)
    if (keep(live.rows[i])) shown.push(live.rows[i]);
  const frag = document.createDocumentFragment();
  for (const e of shown) {
    const isDecision = e.type === "decision";
    const what = isDecision ? e.action : e.type.replace("_", " ");
    const target = isDecision ? e.target : (e.type === "session_start" ? (e.argv || []).join(" ")
      : "exit " + e.exit_status);
    frag.append(el("tr", { class: "live-row" }, td(e.seq, "n"), td(ts(e.ts)), td(e.session, "t"),
      td(what), td(e.result || "", e.result), td(e.layer || ""), td(target, "t"),
      td(e.rule || ""), td(e.mode === "simulate" ? "simulate" : "")));
  }
  body.replaceChildren(frag);
  live.rendered = live.received - live.held;
  $("live-count").textContent = `${live.received} received` +
    (live.paused ? `, ${live.held} held while paused` : "");
}
function viewLive(main) {
  startLive();
  const sel = (id, label, opts) => el("label", {}, label + " ",
    el("select", { id, onchange: renderLive }, el("option", { value: "" }, "all"),
      ...opts.map((o) => el("option", { value: o }, o))));
  main.append(el("h2", {}, "Live decisions"),
    el("div", { class: "bar" },
      sel("f-session", "session", []),
      sel("f-action", "action", ["file_read", "file_write", "shell_exec", "network"]),
      sel("f-result", "result", ["allow", "deny"]),
      sel("f-layer", "layer", []),
      el("input", { id: "f-search", placeholder: "search", oninput: renderLive }),
      el("button", { id: "pause", onclick: (ev) => {
        live.paused = !live.paused;
        ev.target.textContent = live.paused ? "Resume" : "Pause";
        if (!live.paused) live.held = 0;
        renderLive();
      } }, live.paused ? "Resume" : "Pause"),
      el("span", { id: "live-count", class: "muted" }, "")),
    table(["seq", "time", "session", "action", "result", "layer", "target", "rule", ""], [], "live"));
  $("live").append(el("tbody", { id: "live-body" }));
  renderLive();
}

// ---- Sessions -------------------------------------------------------------------------
async function viewSessions(main) {
  const { sessions } = await getJSON("/api/sessions");
  main.append(el("h2", {}, "Sessions"));
  if (!sessions.length) { main.append(el("p", {}, "No sessions yet: run `landgate run -- CMD`.")); return; }
  main.append(table(["session", "started", "mode", "command", "exit", "allow", "deny", "sealed"],
    sessions.map((s) => el("tr", { class: "click session-row", "data-id": s.id,
      onclick: () => { location.hash = "#session/" + s.id; } },
      td(s.id, "t"), td(ts(s.started)), td(s.mode), td(s.command, "t"),
      td(s.running ? "running" : s.exit_status), td(s.allow, "n"), td(s.deny, "n deny"),
      td(s.sealed ? "yes" : s.running ? "not yet" : "no"))), "sessions"));
}
async function viewSession(main, id) {
  const s = await getJSON("/api/session?id=" + encodeURIComponent(id));
  main.append(el("h2", {}, "Session ", el("code", { id: "session-id" }, s.id)),
    table(["", ""], [
      ["command", s.command], ["started", ts(s.started)], ["mode", s.mode], ["rung", s.rung],
      ["policy", s.policy], ["policy sha256", s.policy_sha256 + (s.policy_changed ? " (file changed since)" : "")],
      ["exit status", s.running ? "running" : s.exit_status], ["sealed", s.sealed ? "yes" : "no"],
      ["decisions", `${s.decisions} (${s.allow} allowed, ${s.deny} denied)`],
      ["durability", s.durability], ["kernel", `${s.kernel || "?"}, Landlock ABI ${s.landlock_abi ?? "?"}`],
    ].map(([k, v]) => el("tr", {}, el("th", {}, k), td(v, "t"))), "session-facts"),
    el("h3", {}, "Layers applied"),
    table(["layer", "state", "mechanism", "detail"], (s.layers || []).map((l) =>
      el("tr", {}, td(l.name), td(l.state), td(l.mechanism), td(l.detail))), "layers"),
    el("h3", {}, "Counts per action"),
    table(["action", "allow", "deny"], Object.entries(s.by_action || {}).map(([a, c]) =>
      el("tr", {}, td(a), td(c.allow, "n"), td(c.deny, "n deny"))), "by-action"));
  const where = el("div", {});
  main.append(el("h3", {}, "Denials"), where, denialGroups(s.denials, "items", where));
  if (s.policy_text !== null) main.append(el("h3", {}, "Policy"), el("pre", {}, s.policy_text));
}

// ---- Denials (grouped) ----------------------------------------------------------------
function itemRow(it, where, extra) {
  return el("tr", { class: "denial" }, td(it.n ?? it.count, "n"), td(it.action), td(it.target, "t"),
    td(it.rule || ""), extra || null,
    el("td", {}, el("button", { class: "small allow-this",
      onclick: () => allowThis(it.action, it.target, where) }, "allow this")));
}
function denialGroups(groups, by, where) {
  const box = el("div", { id: "denial-groups" });
  if (!groups || !groups.items.length) { box.append(el("p", {}, "Nothing was denied.")); return box; }
  if (by === "items") {
    box.append(table(["count", "action", "target", "rule", ""], groups.items.map((it) =>
      itemRow(it, where)), "denial-items"));
    return box;
  }
  const index = new Map(groups.items.map((i) => [i.action + "\u0000" + i.target, i]));
  for (const g of groups[by]) {
    box.append(el("div", { class: "group" },
      el("b", {}, g.key), " ", el("span", { class: g.matters ? "tag matters" : "tag" },
        g.matters ? "policy deny" : "default deny"), " ", el("span", { class: "muted" }, g.count + " denied"),
      table(["count", "action", "target", "rule", ""], g.items.map((x) =>
        itemRow({ ...index.get(x.action + "\u0000" + x.target), n: x.n }, where)))));
  }
  return box;
}
async function viewDenials(main) {
  const sid = new URLSearchParams(location.hash.split("?")[1] || "").get("session") || "";
  const d = await getJSON("/api/denials" + (sid ? "?session=" + encodeURIComponent(sid) : ""));
  const where = el("div", {});
  const holder = el("div", {});
  const by = el("select", { id: "group-by", onchange: () =>
    holder.replaceChildren(denialGroups(d.groups, by.value, where)) },
    el("option", { value: "by_rule" }, "by rule"), el("option", { value: "by_directory" }, "by directory"),
    el("option", { value: "by_program" }, "by program"), el("option", { value: "items" }, "every target"));
  main.append(el("h2", {}, "Denials" + (sid ? " in " + sid : ", all sessions")),
    el("p", { class: "muted" }, "Denials by an explicit rule (a secret, a blocked tool) first; then the ones that only fell to a default, most frequent first."),
    el("div", { class: "bar" }, el("label", {}, "group ", by)), where, holder);
  holder.replaceChildren(denialGroups(d.groups, by.value, where));
}

// ---- Simulation review ------------------------------------------------------------------
async function viewReview(main) {
  const r = await getJSON("/api/review");
  const where = el("div", {});
  main.append(el("h2", {}, "Simulation review"));
  if (!r.session) {
    main.append(el("p", {}, "No simulated session yet: run `landgate run --simulate -- CMD`."));
  } else {
    main.append(el("p", {}, "Would-denies of ", el("code", {}, r.session),
      ": accept (allow it) or reject (keep it denied), then switch to enforce."), where);
    const rows = r.groups.items.map((it) => el("tr", { class: "review-row" },
      td(it.count, "n"), td(it.action), td(it.target, "t"), td(it.rule),
      el("td", {},
        el("button", { class: "small accept", onclick: () => allowThis(it.action, it.target, where) }, "accept"),
        " ", el("button", { class: "small reject", onclick: (ev) => {
          ev.target.closest("tr").classList.add("muted"); ev.target.textContent = "rejected: stays denied";
        } }, "reject"))));
    main.append(table(["count", "action", "target", "rule", ""], rows, "review"));
  }
  main.append(el("p", {}, "Policy ", el("code", {}, r.policy), " is in mode ",
    el("b", { id: "policy-mode" }, r.policy_mode || "?"), "."),
  el("button", { id: "enforce", class: "primary", onclick: async () => {
    let p;
    try { p = await postJSON("/api/mode/preview", { mode: "enforce" }); }
    catch (e) { where.replaceChildren(msg(e.message, true)); return; }
    confirmDialog("Switch to enforce?", diffView(p.diff), async () => {
      try {
        await postJSON("/api/mode/apply", { mode: "enforce", base_sha256: p.base_sha256 });
        where.replaceChildren(msg(`${p.path}: mode: enforce written and re-checked`));
        $("policy-mode").textContent = "enforce";
      } catch (e) { where.replaceChildren(msg("not written: " + e.message, true)); }
    });
  } }, "Switch to enforce"));
}

// ---- Trail --------------------------------------------------------------------------------
async function viewTrail(main) {
  const t = await getJSON("/api/trail");
  main.append(el("h2", {}, "Audit trail"),
    el("p", { id: "verify", class: t.ok ? "ok" : "bad" }, t.summary),
    table(["", ""], [["directory", t.directory], ["first bad seq", t.first_bad_seq ?? "none"],
      ["what", t.kind ? `${t.kind}: ${t.message}` : "intact"],
      ["unsealed sessions", (t.unsealed || []).join(", ") || "none"]]
      .map(([k, v]) => el("tr", {}, el("th", {}, k), td(v, "t"))), "trail"));
  for (const n of t.notes || []) main.append(el("p", { class: "muted" }, n));
}

// ---- Policy --------------------------------------------------------------------------------
async function viewPolicy(main) {
  const p = await getJSON("/api/policy");
  main.append(el("h2", {}, "Policy ", el("code", {}, p.path)));
  if (!p.exists) { main.append(el("p", {}, "No policy file here: run `landgate init`.")); return; }
  const out = el("pre", { id: "explain-out" }, "");
  const action = el("select", { id: "explain-action" },
    ...["file_read", "file_write", "shell_exec", "network"].map((a) => el("option", { value: a }, a)));
  const target = el("input", { id: "explain-target", placeholder: "/path, command line or host:port", size: 50 });
  main.append(el("h3", {}, "Explain"), el("div", { class: "bar" }, action, target,
    el("button", { id: "explain", onclick: async () => {
      try {
        const r = await getJSON(`/api/explain?action=${encodeURIComponent(action.value)}&target=${encodeURIComponent(target.value)}`);
        out.textContent = r.text; out.className = r.effect;
      } catch (e) { out.textContent = e.message; }
    } }, "Explain")), out,
    el("h3", {}, "Effective rules (preset, extends and this file)"),
    el("pre", { id: "policy-check", class: p.ok ? "" : "bad" }, p.check),
    el("h3", {}, "The file"), el("pre", { id: "policy-text" }, p.text));
}

// ---- routing ---------------------------------------------------------------------------------
const VIEWS = { live: viewLive, sessions: viewSessions, denials: viewDenials, review: viewReview,
  trail: viewTrail, policy: viewPolicy };
async function route() {
  const h = (location.hash || "#live").slice(1);
  const [name, arg] = h.split("?")[0].split("/");
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("on", a.id === "nav-" + (name === "session" ? "sessions" : name));
  const main = $("main");
  main.replaceChildren();
  main.dataset.view = "loading";
  try {
    if (name === "session") await viewSession(main, decodeURIComponent(arg || ""));
    else await (VIEWS[name] || viewLive)(main);
  } catch (e) { main.append(msg(e.message, true)); }
  main.dataset.view = name || "live";
}
window.addEventListener("hashchange", route);
route();
