// The workbench (hvc.gateway.workbench): one page, hash routes, the gateway's /v1 API with
// the signed-in user's bearer token. Every value from the API is put in the page as text
// (the `h` helper), never as HTML.
import { WORDS } from "./i18n.js";

const S = {
  token: sessionStorage.getItem("hvc.token"),
  lang: localStorage.getItem("hvc.lang") || "zh",
  cat: null,
  auth: null,
};

// -- words, names, formats ----------------------------------------------------------------

function t(key, vars = {}) {
  const s = (WORDS[S.lang] && WORDS[S.lang][key]) || WORDS.zh[key] || key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (vars[k] ?? ""));
}

function n(group, code) {
  if (code === null || code === undefined || code === "") return "—";
  const names = S.cat && S.cat.groups[group] && S.cat.groups[group][String(code)];
  return names ? names[S.lang] || names.zh : String(code);
}

function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(S.lang === "zh" ? "zh-CN" : "en-GB", {
    timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit",
  });
}

function pct(x) { return x === null || x === undefined ? "—" : `${(x * 100).toFixed(1)}%`; }

// -- elements -------------------------------------------------------------------------------

function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

function tierBadge(tier) { return h("span", { class: `badge tier-${tier || "NONE"}`, "data-tier": tier }, n("tier", tier || "NONE")); }
function slaBadge(state) {
  const cls = { BREACHED: "bad", AT_RISK: "warn", ON_TRACK: "ok" }[state] || "";
  return h("span", { class: `badge ${cls}` }, n("sla_state", state));
}

function table(headers, rows, onRow) {
  if (!rows.length) return h("p", { class: "empty" }, t("no_items"));
  return h("table", {},
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((r, i) => {
      const tr = h("tr", onRow ? { class: "click", tabindex: 0 } : {}, r.map((c) => h("td", {}, c)));
      if (onRow) {
        tr.addEventListener("click", () => onRow(i));
        tr.addEventListener("keydown", (e) => { if (e.key === "Enter") onRow(i); });
      }
      return tr;
    })));
}

function select(name, options, value, label) {
  return h("label", {}, label,
    h("select", { name }, options.map(([v, text]) => h("option", { value: v, selected: v === value }, text))));
}

function field(name, label, attrs = {}) {
  return h("label", {}, label, h("input", { name, ...attrs }));
}

function flash(text, kind = "ok") {
  const box = document.getElementById("flash");
  const msg = h("div", { class: `msg badge ${kind}`, role: kind === "bad" ? "alert" : "status" }, text);
  box.append(msg);
  setTimeout(() => msg.remove(), 6000);
}

function uid() {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return "wb-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// -- the API --------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function api(path, { method = "GET", body, headers = {} } = {}) {
  const r = await fetch(path, {
    method,
    headers: {
      Accept: "application/json",
      ...(S.token ? { Authorization: `Bearer ${S.token}` } : {}),
      ...(body ? { "Content-Type": "application/json" } : {}),
      ...headers,
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await r.json().catch(() => ({}));
  if (r.status === 401 && S.token) {
    signOut();
    flash(t("signed_out"), "bad");
  }
  if (!r.ok) throw new ApiError(r.status, data);
  return { status: r.status, data };
}

async function get(path) { return (await api(path)).data; }

function claims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

function me() { return S.token ? claims(S.token) : null; }

function signOut() {
  S.token = null;
  sessionStorage.removeItem("hvc.token");
  location.hash = "#/signin";
}

// -- screens --------------------------------------------------------------------------------

const NAV = [
  ["#/find", "nav_find", ["agent", "manager", "supervisor", "admin"]],
  ["#/work", "nav_work", ["manager"]],
  ["#/desk", "nav_desk", ["agent", "supervisor"]],
  ["#/board", "nav_board", ["supervisor", "admin"]],
  ["#/reports", "nav_reports", ["manager", "supervisor", "admin"]],
  ["#/simulate", "nav_simulate", ["supervisor", "admin"]],
];

function chrome() {
  const who = me();
  const nav = document.getElementById("nav");
  nav.replaceChildren(...(who ? NAV.filter(([, , roles]) => roles.includes(who.role)) : []).map(([href, key]) =>
    h("a", { href, "aria-current": location.hash.startsWith(href) ? "page" : null }, t(key))));
  document.getElementById("who").textContent = who ? `${n("role", who.role)} ${who.sub}` : "";
  document.getElementById("signout").hidden = !who;
  document.getElementById("lang").textContent = t("lang");
  document.documentElement.lang = S.lang === "zh" ? "zh-CN" : "en";
  document.title = t("brand");
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
}

async function signinScreen(main) {
  const box = h("div", { class: "card signin" }, h("h1", {}, t("signin")));
  if (S.auth.login_url) {
    box.append(h("p", {}, h("a", { href: S.auth.login_url, id: "sso" }, t("signin_sso"))));
  }
  if (S.auth.dev_mode) {
    const form = h("form", { class: "inline", id: "dev-signin" },
      select("role", ["agent", "manager", "supervisor", "admin"].map((r) => [r, n("role", r)]), "agent", t("role")),
      field("sub", t("staff_id"), { value: "A001", required: true, pattern: "[A-Za-z0-9_\\-:.]+" }),
      field("manager_id", t("manager_id"), { placeholder: "M001", pattern: "[A-Za-z0-9_\\-:.]+" }),
      h("button", { type: "submit" }, t("enter")));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = new FormData(form);
      const body = { role: f.get("role"), sub: f.get("sub") };
      if (f.get("manager_id")) body.manager_id = f.get("manager_id");
      try {
        const { data } = await api("/auth/dev-token", { method: "POST", body });
        S.token = data.access_token;
        sessionStorage.setItem("hvc.token", S.token);
        location.hash = body.role === "manager" ? "#/work" : "#/find";
      } catch (err) {
        flash(err.message, "bad");
      }
    });
    box.append(h("h2", {}, t("signin_dev")), form);
  }
  main.append(box);
}

function findQuery(q) {
  const s = q.trim();
  if (/^\+?[0-9][0-9 \-]{3,}$/.test(s)) return ["msisdn", s.replace(/[ \-]/g, "")];
  if (/^[A-Za-z][A-Za-z0-9_\-:.]*[0-9][A-Za-z0-9_\-:.]*$/.test(s)) return ["customer_id", s];
  return ["name", s];
}

async function findScreen(main, params) {
  const q = params.get("q") || "";
  const form = h("form", { class: "inline", id: "find", role: "search" },
    h("label", {}, t("find_hint"), h("input", { name: "q", value: q, size: 40, autofocus: true, required: true })),
    h("button", { type: "submit" }, t("search")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = `#/find?q=${encodeURIComponent(new FormData(form).get("q"))}`;
  });
  const out = h("div", { id: "results" });
  main.append(h("h1", {}, t("find_title")), h("div", { class: "card" }, form), out);
  if (!q) return;
  const [key, value] = findQuery(q);
  const { items } = await get(`/v1/customers?${key}=${encodeURIComponent(value)}`);
  if (!items.length) {
    out.append(h("p", { class: "card empty" }, t("none_found")));
    return;
  }
  out.append(h("div", { class: "card" }, table(
    [t("customer_id"), t("name"), t("numbers"), t("tier"), t("manager")],
    items.map((c) => [c.customer_id, c.name || "—", (c.msisdns || []).join("，"), tierBadge(c.tier), c.manager_id || c.crm_manager_id || "—"]),
    (i) => { location.hash = `#/customer/${encodeURIComponent(items[i].customer_id)}`; })));
}

function componentDetail(source, params, detail) {
  // A tier component's detail in the display's language, from its values (the service's
  // own wording, in English, where the catalogue has no template for it).
  const tpl = template("component_detail", source);
  return (tpl && params && fill(tpl, params)) || detail || "";
}

function explainTier(tier) {
  const lines = [];
  const codes = tier.reason_codes || [];
  codes.forEach((r, i) => {
    const tpl = template("tier_reason", r.code);
    const values = r.code === "FROM_SOURCE" ? { ...r, detail: componentDetail(r.source, r, r.detail) } : r;
    lines.push((tpl && fill(tpl, values)) || (tier.reasons || [])[i] || r.code);
  });
  if (!codes.length) lines.push(...(tier.reasons || []));
  if (tier.source) lines.push(`${t("source")}：${n("tier_source", tier.source)}（${t("ruleset")} ${tier.ruleset_version}）`);
  const a = tier.annual;
  if (a) {
    lines.push(t("annual_line", { year: a.year, c: a.consumption_points, t: a.tenure_points, y: a.tenure_years, s: a.score }));
    const th = Object.entries(a.thresholds || {}).map(([k, v]) => `${n("tier", k)} ≥ ${v}`).join("，");
    if (th) lines.push(`${t("thresholds")}：${th}`);
    lines.push(a.next_tier ? t("to_next", { tier: n("tier", a.next_tier), n: a.points_to_next_tier }) : t("top_tier"));
  }
  const comps = (tier.components || []).map((c) => {
    const detail = componentDetail(c.source, c.params, c.detail);
    return `${n("tier_source", c.source)} → ${n("tier", c.tier)}${detail ? `（${detail}）` : ""}`;
  });
  if (comps.length > 1) lines.push(`${t("components")}：${comps.join("；")}`);
  return h("ul", { class: "explain" }, lines.map((l) => h("li", {}, l)));
}

function benefitRow(b) {
  let left = "—";
  if (b.quota !== undefined) left = t("remaining", { r: b.remaining, q: b.quota });
  else if (b.hours) left = `${b.hours} h`;
  const claims = (b.active_claims || []).filter((c) => c.valid_to).map((c) => when(c.valid_to));
  const until = claims.join("，") || (b.kind === "yearly_quota" && b.period ? `${t("period")} ${b.period}` : "—");
  return [n("benefit", b.code), b.eligible ? t("eligible") : t("not_eligible"), left, until];
}

// A catalogue template ({name}, {name:yuan|mb|date|<group>}) filled from `values`; null
// where it names a value that is not there.
function fill(tpl, values) {
  let missing = false;
  const out = tpl.replace(/\{(\w+)(?::(\w+))?\}/g, (_, k, f) => {
    const v = values[k];
    if (v === undefined || v === null || v === "") { missing = true; return ""; }
    if (f === "yuan") return (Number(v) / 100).toFixed(2);
    if (f === "mb") return (Number(v) / 1048576).toFixed(1);
    if (f === "date") return when(v).slice(0, 10);
    return f ? n(f, v) : String(v);
  });
  return missing ? null : out;
}

function template(group, code) {
  const tpl = S.cat.groups[group] && S.cat.groups[group][code];
  return tpl ? tpl[S.lang] || tpl.zh : null;
}

function evidence(task) {
  // Worded by the catalogue's template of its code, from its period, figures and notes; the
  // rule's own summary where the template names something the task does not carry.
  const tpl = template("evidence", task.code);
  const values = { period: task.period, ...(task.figures || {}), ...(task.notes || {}) };
  return (tpl && fill(tpl, values)) || task.summary || "—";
}

async function customerScreen(main, id) {
  const who = me();
  const [c, contacts, complaints] = await Promise.all([
    get(`/v1/customers/${encodeURIComponent(id)}`),
    get(`/v1/customers/${encodeURIComponent(id)}/contacts?limit=20`),
    get(`/v1/customers/${encodeURIComponent(id)}/complaints?limit=20`),
  ]);
  const p = c.profile || {};
  main.append(h("h1", { id: "customer-title" }, `${p.name || id} `, tierBadge(c.tier.effective_tier),
    h("span", { class: "muted" }, `  ${id}`)));
  const facts = h("dl", { class: "facts" },
    h("dt", {}, t("numbers")), h("dd", {}, (p.msisdns || []).join("，") || "—"),
    h("dt", {}, t("birthday")), h("dd", {}, p.birthday || "—"),
    h("dt", {}, t("joined_on")), h("dd", {}, p.joined_on || "—"),
    h("dt", {}, t("dnd")), h("dd", {}, p.do_not_disturb ? h("span", { class: "badge warn" }, t("yes")) : t("no")),
    h("dt", {}, t("key_person")), h("dd", {}, p.is_key_person ? t("yes") : t("no")),
    h("dt", {}, t("group")), h("dd", {}, p.group_id || "—"),
    h("dt", {}, t("crm_manager")), h("dd", {}, p.crm_manager_id || "—"),
    h("dt", {}, t("retention_manager")), h("dd", {}, p.manager_id || "—"));
  const actions = h("div", { class: "actions" });
  if (["agent", "supervisor"].includes(who.role)) {
    actions.append(h("a", { href: `#/desk?customer=${encodeURIComponent(id)}`, id: "file-for" }, t("file_for")));
  }
  const grid = h("div", { class: "grid" },
    h("section", { class: "card", "aria-labelledby": "h-profile" }, h("h2", { id: "h-profile" }, t("profile")), facts, actions),
    h("section", { class: "card", id: "tier-explain" }, h("h2", {}, t("tier_title")), explainTier(c.tier)),
    h("section", { class: "card", id: "benefits" }, h("h2", {}, t("benefits")),
      table([t("benefits"), t("eligible"), t("left"), t("valid_to")], (c.benefits || []).map(benefitRow))),
    h("section", { class: "card", id: "complaints" }, h("h2", {}, t("complaints")),
      table([t("filed"), t("category"), t("channel"), t("status"), t("sla"), t("due")],
        (complaints.items || []).map((k) => [when(k.creationDate), n("complaint_category", k.ticketType), n("complaint_channel", k.channel && k.channel.name), n("complaint_status", k.status), slaBadge(k.sla && k.sla.state), when(k.expectedResolutionDate)]))),
    h("section", { class: "card", id: "tasks" }, h("h2", {}, t("open_tasks")),
      table([t("code"), t("level"), t("evidence"), t("due_at")],
        (c.open_tasks || []).map((x) => [n("warning_code", x.code), n("warning_level", x.level), evidence(x), h("span", { class: x.overdue ? "badge bad" : "" }, when(x.due_at))]))),
    h("section", { class: "card", id: "contacts" }, h("h2", {}, t("contacts")),
      table([t("when"), t("channel"), t("direction"), t("by"), t("content"), t("outcome")],
        (contacts.items || []).map((x) => [when(x.at), n("contact_channel", x.channel), n("contact_direction", x.direction), x.by, x.content || "—", x.outcome || "—"]))));
  main.append(grid);
  if (who.role === "supervisor") main.append(overrideForm(id));
}

function overrideForm(id) {
  const form = h("form", { class: "inline", id: "override" },
    select("tier", ["DIAMOND", "PLATINUM", "GOLD", "SILVER", "VIP"].map((x) => [x, n("tier", x)]), "GOLD", t("tier")),
    field("reason", t("reason"), { required: true, minlength: 3, size: 30 }),
    field("expires", t("expires"), { type: "date", required: true }),
    h("button", { type: "submit" }, t("save")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const expires = new Date(`${f.get("expires")}T00:00:00+08:00`).toISOString();
    try {
      await api(`/v1/customers/${encodeURIComponent(id)}/tier/override`, {
        method: "PUT", body: { tier: f.get("tier"), reason: f.get("reason"), expires_at: expires },
        headers: { "Idempotency-Key": uid() },
      });
      flash(t("save"));
    } catch (err) { flash(err.message, "bad"); }
  });
  return h("section", { class: "card" }, h("h2", {}, t("override")), form);
}

async function workScreen(main, params) {
  const codes = Object.keys(S.cat.groups.warning_code);
  const tiers = ["DIAMOND", "PLATINUM", "GOLD", "SILVER", "VIP", "NONE"];
  const filters = h("form", { class: "inline card", id: "filters" },
    select("code", [["", t("all")], ...codes.map((c) => [c, n("warning_code", c)])], params.get("code") || "", t("filter_code")),
    select("tier", [["", t("all")], ...tiers.map((c) => [c, n("tier", c)])], params.get("tier") || "", t("filter_tier")),
    select("due", [["", t("all")], ["overdue", t("due_overdue")], ["today", t("due_today")], ["week", t("due_week")]], params.get("due") || "", t("filter_due")));
  filters.addEventListener("change", () => {
    const f = new URLSearchParams([...new FormData(filters)].filter(([, v]) => v));
    location.hash = `#/work?${f}`;
  });
  main.append(h("h1", {}, t("work_title")), filters);
  const q = new URLSearchParams([...params].filter(([k, v]) => ["code", "tier", "due"].includes(k) && v));
  const filters_only = new URLSearchParams(q);
  q.set("limit", "20");
  q.set("offset", params.get("offset") || "0");
  const page = await get(`/v1/worklist/cases?${q}`);
  main.append(h("p", { class: "muted", id: "case-count" }, t("cases", { n: page.total, t: page.open_tasks })));
  const month = monthsBack(0);
  const mine = await get(`/v1/reports/monthly/retention?from=${month}&to=${month}`);
  const o = (mine.items[0] || { outcomes: {} }).outcomes;
  const closed = OUTCOMES.reduce((a, k) => a + (o[k] || 0), 0);
  main.append(h("p", { class: "muted", id: "my-retention" },
    t("my_retention", { r: o.RETAINED || 0, t: closed, p: pct((mine.items[0] || {}).retention_rate) })));
  if (!page.items.length) main.append(h("p", { class: "card empty" }, t("no_items")));
  for (const c of page.items) main.append(caseCard(c));
  main.append(pager(page, filters_only));
  main.append(await callbacksCard());
}

async function callbacksCard() {
  // The quarter's callbacks (回访) on the manager's list, overdue first: each recorded once.
  const due = await get("/v1/worklist/callbacks?status=open&limit=50");
  const card = h("section", { class: "card", id: "callbacks" }, h("h2", {}, t("callbacks_title")));
  if (!due.items.length) card.append(h("p", { class: "muted" }, t("no_callbacks")));
  for (const cb of due.items) {
    const form = h("form", { class: "inline", "data-form": "callback" },
      h("select", { name: "outcome", "aria-label": t("outcome") },
        Object.keys(S.cat.groups.callback_outcome).map((x) => h("option", { value: x }, n("callback_outcome", x)))),
      h("input", { name: "notes", size: 24, placeholder: t("notes"), "aria-label": t("notes") }),
      h("button", { type: "submit" }, t("record_callback")));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = new FormData(form);
      try {
        await api(`/v1/callbacks/${encodeURIComponent(cb.callback_id)}/done`, {
          method: "POST", body: { outcome: f.get("outcome"), notes: f.get("notes") },
        });
        flash(t("callback_saved"));
        line.remove();
      } catch (err) { flash(err.message, "bad"); }
    });
    const line = h("div", { class: "task line", "data-callback": cb.callback_id },
      h("div", {}, cb.kind === "VISIT"
        ? h("span", { class: "badge" }, `${t("visit")} ${cb.group_name || cb.customer_id}`)
        : h("a", { href: `#/customer/${encodeURIComponent(cb.customer_id)}` }, cb.customer_id), " · ",
        n("callback_reason", cb.reason), " · ", `${t("planned_on")} ${cb.planned_on}`, " · ",
        h("span", { class: cb.overdue ? "badge bad" : "muted" }, `${t("due_at")} ${when(cb.due_at)}`)),
      form);
    card.append(line);
  }
  return card;
}

function caseCard(c) {
  // One case per customer: its tasks one line each (close each with its outcome), and one
  // contact form, recorded against the case's most urgent task.
  const card = h("section", { class: `card case${c.overdue ? " overdue" : ""}`, "data-customer": c.customer_id },
    h("h2", {}, `${c.name || c.customer_id} `, tierBadge(c.tier), " ",
      c.overdue ? h("span", { class: "badge bad" }, t("overdue")) : null, " ",
      h("span", { class: "muted" }, `${(c.msisdns || []).join("，")} · ${t("due_at")} ${when(c.due_at)}`), " ",
      h("a", { href: `#/customer/${encodeURIComponent(c.customer_id)}` }, t("open_360"))));
  for (const task of c.tasks) card.append(taskLine(task));
  card.append(contactForm(c.tasks[0]));
  return card;
}

function contactForm(task) {
  const form = h("form", { class: "inline", "data-form": "contact" },
    select("channel", Object.keys(S.cat.groups.contact_channel).map((x) => [x, n("contact_channel", x)]), "PHONE", t("channel")),
    field("content", t("content"), { size: 36 }),
    field("outcome", t("outcome"), { size: 16 }),
    h("button", { type: "submit", class: "secondary" }, t("log_contact")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    try {
      await api(`/v1/tasks/${encodeURIComponent(task.task_id)}/contacts`, {
        method: "POST",
        body: { contact_id: uid(), channel: f.get("channel"), content: f.get("content"), outcome: f.get("outcome") },
      });
      flash(t("contact_saved"));
      form.reset();
    } catch (err) { flash(err.message, "bad"); }
  });
  return h("div", { class: "task" }, form);
}

function taskLine(task) {
  const close = h("form", { class: "inline", "data-form": "close" },
    h("select", { name: "outcome", "aria-label": t("outcome") },
      Object.keys(S.cat.groups.task_outcome).map((x) => h("option", { value: x }, n("task_outcome", x)))),
    h("input", { name: "note", size: 16, placeholder: t("note"), "aria-label": t("note") }),
    h("button", { type: "submit" }, t("close_task")));
  close.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(close);
    try {
      await api(`/v1/tasks/${encodeURIComponent(task.task_id)}/close`, {
        method: "POST", body: { outcome: f.get("outcome"), note: f.get("note") },
      });
      flash(t("task_closed"));
      route();
    } catch (err) { flash(err.message, "bad"); }
  });
  return h("div", { class: "task line", "data-task": task.task_id },
    h("div", {}, h("strong", {}, n("warning_code", task.code)), " · ", n("warning_level", task.level), " · ",
      task.category ? `${n("warning_category", task.category)} · ` : "",
      h("span", { class: task.overdue ? "badge bad" : "muted" }, `${t("due_at")} ${when(task.due_at)}`),
      h("div", { class: "muted" }, `${t("evidence")}：${evidence(task)}`)),
    close);
}

function pager(page, base) {
  const more = page.offset + page.items.length < page.total;
  if (!page.offset && !more) return null;
  const go = (offset) => { const q = new URLSearchParams(base); q.set("offset", offset); location.hash = `#/work?${q}`; };
  return h("div", { class: "actions" },
    h("button", { type: "button", class: "secondary", disabled: !page.offset, onclick: () => go(Math.max(0, page.offset - page.limit)) }, t("prev")),
    h("span", { class: "muted" }, `${page.offset + 1}–${page.offset + page.items.length} / ${page.total}`),
    h("button", { type: "button", class: "secondary", disabled: !more, onclick: () => go(page.offset + page.limit) }, t("next")));
}

async function deskScreen(main, params) {
  const channels = Object.keys(S.cat.groups.complaint_channel);
  const categories = Object.keys(S.cat.groups.complaint_category);
  const form = h("form", { id: "file-complaint" },
    h("div", { class: "inline" },
      field("customer_id", t("customer_id"), { value: params.get("customer") || "", required: true, pattern: "[A-Za-z0-9_\\-:.]+" }),
      select("channel", channels.map((x) => [x, n("complaint_channel", x)]), "HOTLINE_10086", t("channel")),
      select("category", categories.map((x) => [x, n("complaint_category", x)]), "NETWORK", t("category"))),
    h("label", {}, t("text"), h("textarea", { name: "text", required: true, maxlength: 4000 })),
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("file"))));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    try {
      const { data } = await api("/v1/complaints", {
        method: "POST",
        body: { customer_id: f.get("customer_id"), channel: f.get("channel"), category: f.get("category"), text: f.get("text") },
        headers: { "Idempotency-Key": uid() },
      });
      flash(t("filed_ok", { id: data.id }));
      location.hash = `#/complaint/${encodeURIComponent(data.id)}`;
    } catch (err) { flash(err.message, "bad"); }
  });
  main.append(h("h1", {}, t("desk_title")), h("section", { class: "card" }, h("h2", {}, t("file_title")), form));
  const status = params.get("status") || "";
  const filter = h("form", { class: "inline" }, select("status", [["", t("all")], ...Object.keys(S.cat.groups.complaint_status).map((x) => [x, n("complaint_status", x)])], status, t("status")));
  filter.addEventListener("change", () => { location.hash = `#/desk?status=${new FormData(filter).get("status")}`; });
  const page = await get(`/v1/complaints?limit=50${status ? `&status=${status}` : ""}`);
  main.append(h("section", { class: "card", id: "complaint-list" }, h("h2", {}, t("list_title")), filter,
    complaintTable(page.items || [])));
}

function complaintTable(items) {
  return table([t("filed"), t("customer_id"), t("category"), t("channel"), t("status"), t("sla"), t("due")],
    items.map((k) => [when(k.creationDate), k.customer_id, n("complaint_category", k.ticketType), n("complaint_channel", k.channel && k.channel.name), n("complaint_status", k.status), slaBadge(k.sla && k.sla.state), when(k.expectedResolutionDate)]),
    (i) => { location.hash = `#/complaint/${encodeURIComponent(items[i].id)}`; });
}

async function complaintScreen(main, id) {
  let k;
  try {
    k = await get(`/v1/complaints/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err.status !== 404) throw err;
    // Filed a moment ago: the complaints service files it from its topic.
    main.append(h("p", { class: "card", id: "pending" }, t("pending")));
    setTimeout(() => { if (location.hash === `#/complaint/${encodeURIComponent(id)}`) route(); }, 1000);
    return;
  }
  main.append(h("h1", { id: "complaint-title" }, `${n("complaint_category", k.ticketType)} · `,
    h("span", { id: "complaint-status" }, n("complaint_status", k.status)), " ", slaBadge(k.sla.state)));
  main.append(h("div", { class: "grid" },
    h("section", { class: "card" }, h("dl", { class: "facts" },
      h("dt", {}, t("customer_id")), h("dd", {}, h("a", { href: `#/customer/${encodeURIComponent(k.customer_id)}` }, k.customer_id)),
      h("dt", {}, t("channel")), h("dd", {}, n("complaint_channel", k.channel.name)),
      h("dt", {}, t("filed")), h("dd", {}, when(k.creationDate)),
      h("dt", {}, t("due")), h("dd", {}, when(k.expectedResolutionDate)),
      h("dt", {}, t("escalated")), h("dd", {}, n("escalation", k.sla.escalatedTo)),
      h("dt", {}, t("satisfaction")), h("dd", {}, k.satisfaction ?? "—"),
      h("dt", {}, t("text")), h("dd", {}, k.description)),
    ),
    h("section", { class: "card" }, h("h2", {}, t("history")),
      table([t("status"), t("when")], (k.statusChangeHistory || []).map((x) => [n("complaint_status", x.status), when(x.changeDate)])),
      h("h2", {}, t("work_orders")),
      table([t("department"), t("when")], (k.workOrders || []).map((w) => [w.department || "—", when(w.dispatched_at)])))));
  if (!["agent", "supervisor"].includes(me().role)) return;
  const next = k.nextStatuses || [];
  const form = h("form", { class: "inline", id: "transition" },
    select("to", next.map((x) => [x, n("complaint_status", x)]), next[0], t("move_to")),
    field("department", t("department"), { size: 12, placeholder: "network-ops" }),
    select("satisfaction", [["", "—"], ...["5", "4", "3", "2", "1"].map((x) => [x, x])], "", t("satisfaction")),
    field("note", t("note"), { size: 24 }),
    h("button", { type: "submit", disabled: !next.length }, t("save")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const body = { to: f.get("to"), note: f.get("note"), transition_id: uid() };
    if (f.get("department")) body.department = f.get("department");
    if (f.get("satisfaction")) body.satisfaction = Number(f.get("satisfaction"));
    try {
      const { status } = await api(`/v1/complaints/${encodeURIComponent(id)}/transitions`, { method: "POST", body });
      flash(status === 202 ? t("pending") : t("moved", { s: n("complaint_status", body.to) }));
      setTimeout(route, status === 202 ? 1000 : 0);
    } catch (err) { flash(err.message, "bad"); }
  });
  main.append(h("section", { class: "card" }, h("h2", {}, t("move_to")), form));
}

async function boardScreen(main) {
  main.append(h("h1", {}, t("board_title"), " ", h("button", { type: "button", class: "secondary", onclick: () => route() }, t("refresh"))));
  const [risk, breached] = await Promise.all([
    get("/v1/complaints?sla_state=AT_RISK&limit=100"),
    get("/v1/complaints?sla_state=BREACHED&limit=100"),
  ]);
  const open = (p) => (p.items || []).filter((k) => !["RESOLVED", "CALLBACK_DONE", "CLOSED"].includes(k.status));
  const count = (key) => {
    const out = {};
    for (const k of [...open(risk), ...open(breached)]) {
      const v = key(k);
      out[v] = out[v] || { AT_RISK: 0, BREACHED: 0 };
      out[v][k.sla.state] += 1;
    }
    return Object.entries(out);
  };
  const dims = [
    ["board-tiers", t("tier"), count((k) => k.sla.tier), (v) => tierBadge(v)],
    ["board-channels", t("channel"), count((k) => k.channel.name), (v) => n("complaint_channel", v)],
    ["board-categories", t("category"), count((k) => k.ticketType), (v) => n("complaint_category", v)],
  ];
  main.append(h("div", { class: "grid three" }, dims.map(([id, title, rows, label]) =>
    h("section", { class: "card", id }, h("h2", {}, title),
      table([title, t("at_risk"), t("breached")], rows.map(([k, v]) => [label(k), v.AT_RISK, v.BREACHED]))))));
  main.append(h("div", { class: "grid" },
    h("section", { class: "card", id: "board-breached" }, h("h2", {}, t("breached")), complaintTable(open(breached))),
    h("section", { class: "card", id: "board-risk" }, h("h2", {}, t("at_risk")), complaintTable(open(risk)))));
}

// Reports month by month (the services' pre-aggregated monthly views): each its title, and
// how its answer becomes a table (header row, then a row per month). The first number
// after the month is the chart's.
const HELD = ["DIAMOND", "PLATINUM", "GOLD", "SILVER", "VIP"];
const OUTCOMES = ["RETAINED", "CHURNED", "UNREACHABLE", "NOT_NEEDED"];
const MONTHLY = {
  tiers: ["rep_tiers", (r) => [[t("month"), ...HELD.map((x) => n("tier", x)), t("decisions")],
    r.items.map((i) => [i.month, ...HELD.map((x) => i.distribution[x] || 0), i.decisions])]],
  warnings: ["rep_warnings", (r) => {
    const codes = [...new Set(r.items.flatMap((i) => Object.keys(i.by_code)))].sort();
    const kinds = ["CARE", "SERVICE_MARKETING"];
    return [[t("month"), t("total"), ...kinds.map((c) => n("warning_category", c)), ...codes.map((c) => n("warning_code", c))],
      r.items.map((i) => [i.month, i.total, ...kinds.map((c) => (i.by_category || {})[c] || 0), ...codes.map((c) => i.by_code[c] || 0)])];
  }],
  retention: ["rep_retention", (r) => [[t("month"), ...OUTCOMES.map((o) => n("task_outcome", o)), t("retention_rate")],
    r.items.map((i) => [i.month, ...OUTCOMES.map((o) => i.outcomes[o] || 0), pct(i.retention_rate)])]],
  sla: ["rep_sla", (r) => {
    const tiers = [...new Set(r.items.flatMap((i) => Object.keys(i.by_tier)))];
    return [[t("month"), t("filed_n"), t("breached"), t("compliance"), ...tiers.map((x) => n("tier", x))],
      r.items.map((i) => [i.month, i.filed, i.breached, pct(i.compliance), ...tiers.map((x) => pct((i.by_tier[x] || {}).compliance))])];
  }],
  satisfaction: ["rep_satisfaction", (r) => [[t("month"), t("responses"), t("mean"), "1", "2", "3", "4", "5"],
    r.items.map((i) => [i.month, i.responses, i.mean ?? "—", ...["1", "2", "3", "4", "5"].map((k) => i.distribution[k])])]],
};

function monthsBack(k) {
  const d = new Date();
  const local = new Date(d.getTime() + 8 * 3600 * 1000); // the operator's calendar (UTC+8)
  const y = local.getUTCFullYear();
  const m = local.getUTCMonth() - k;
  const first = new Date(Date.UTC(y, m, 1));
  return `${first.getUTCFullYear()}-${String(first.getUTCMonth() + 1).padStart(2, "0")}`;
}

function csv(rows) {
  const cell = (v) => {
    const s = String(v ?? "");
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return "\ufeff" + rows.map((r) => r.map(cell).join(",")).join("\r\n") + "\r\n";
}

function exportButton(name, rows) {
  const button = h("button", { type: "button", id: "export", class: "secondary" }, t("export_csv"));
  button.addEventListener("click", () => {
    const blob = new Blob([csv(rows)], { type: "text/csv;charset=utf-8" });
    const a = h("a", { href: URL.createObjectURL(blob), download: `hvc-${name}.csv` });
    document.body.append(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 0);
  });
  return button;
}

function bars(rows, label) {
  const numbers = rows.map((r) => Number(String(r[1]).replace("%", "")) || 0);
  const top = Math.max(1, ...numbers);
  const chart = h("div", { class: "bars", id: "chart", role: "img", "aria-label": label },
    rows.map((r, i) => h("div", { class: "bar" }, h("span", {}, r[0]),
      h("div", {}, h("div", { class: "fill", "data-w": numbers[i] / top })), h("span", {}, r[1]))));
  // Widths through the CSSOM: the page's policy refuses inline style attributes.
  for (const fill of chart.querySelectorAll(".fill")) fill.style.width = `${Number(fill.dataset.w) * 100}%`;
  return chart;
}

async function reportsScreen(main, params) {
  const who = me();
  const names = who.role === "manager" ? ["retention"] : Object.keys(MONTHLY);
  const name = names.includes(params.get("name")) ? params.get("name") : names[0];
  const first = params.get("from") || monthsBack(11);
  const last = params.get("to") || monthsBack(0);
  const pick = h("form", { class: "inline card", id: "report-range" },
    select("name", names.map((k) => [k, t(MONTHLY[k][0])]), name, t("report")),
    field("from", t("from"), { type: "month", value: first, required: true }),
    field("to", t("to"), { type: "month", value: last, required: true }),
    h("button", { type: "submit" }, t("search")));
  pick.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = `#/reports?${new URLSearchParams(new FormData(pick))}`;
  });
  main.append(h("h1", {}, t("reports_title")), pick);
  const [title, shape] = MONTHLY[name];
  const data = await get(`/v1/reports/monthly/${name}?from=${first}&to=${last}`);
  const [head, rows] = shape(data);
  main.append(h("section", { class: "card", id: "report" },
    h("h2", {}, `${t(title)}（${first} – ${last}）`, " ", exportButton(`${name}-${first}-${last}`, [head, ...rows])),
    bars(rows, t(title)), table(head, rows)));
  if (name === "retention" && who.role !== "manager") main.append(retentionByManager(data));
}

function retentionByManager(data) {
  const sums = {};
  for (const i of data.items) {
    for (const [m, v] of Object.entries(i.by_manager)) {
      sums[m] = sums[m] || {};
      for (const o of OUTCOMES) sums[m][o] = (sums[m][o] || 0) + (v[o] || 0);
    }
  }
  const rate = (v) => {
    const judged = (v.RETAINED || 0) + (v.CHURNED || 0) + (v.UNREACHABLE || 0);
    return judged ? (v.RETAINED || 0) / judged : null;
  };
  const rows = Object.entries(sums).map(([m, v]) => [m, ...OUTCOMES.map((o) => v[o] || 0), pct(rate(v))]);
  return h("section", { class: "card", id: "by-manager" }, h("h2", {}, t("by_manager")),
    table([t("manager"), ...OUTCOMES.map((o) => n("task_outcome", o)), t("retention_rate")], rows));
}

async function simulateScreen(main) {
  const current = await get("/v1/tiering/rulesets/current");
  const candidate = { ...current, version: `${current.version}-candidate` };
  const form = h("form", { id: "simulation" },
    h("label", {}, t("candidate"), h("textarea", { name: "ruleset", rows: 12, spellcheck: "false" }, JSON.stringify(candidate, null, 2))),
    h("div", { class: "inline" }, field("year", t("year"), { type: "number", value: new Date().getFullYear() - 1, min: 2000, max: 2100 }),
      h("button", { type: "submit" }, t("simulate"))));
  const out = h("div", { id: "simulation-result" });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    let ruleset;
    try { ruleset = JSON.parse(f.get("ruleset")); } catch (err) { flash(err.message, "bad"); return; }
    try {
      const { data } = await api("/v1/tiering/simulations", { method: "POST", body: { ruleset, year: Number(f.get("year")) } });
      const tiers = Object.keys(data.matrix);
      out.replaceChildren(h("section", { class: "card" },
        h("h2", {}, t("sim_summary", { c: data.customers, m: data.moved, u: data.upgraded, d: data.downgraded })),
        table([t("from_to"), ...tiers.map((x) => n("tier", x))],
          tiers.map((a) => [n("tier", a), ...tiers.map((b) => data.matrix[a][b])]))));
    } catch (err) { flash(err.message, "bad"); }
  });
  main.append(h("h1", {}, t("simulate_title")), h("section", { class: "card" }, form), out);
}

// -- routing --------------------------------------------------------------------------------

async function route() {
  const main = document.getElementById("main");
  const [path, query] = (location.hash.slice(1) || "/").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const who = me();
  if (!who || (who.exp && who.exp * 1000 < Date.now())) {
    if (parts[0] !== "signin") { signOut(); return; }
  }
  chrome();
  main.replaceChildren(h("p", { class: "muted" }, t("loading")));
  const page = h("div", {});
  try {
    const screens = {
      signin: () => signinScreen(page),
      find: () => findScreen(page, params),
      customer: () => customerScreen(page, parts[1]),
      work: () => workScreen(page, params),
      desk: () => deskScreen(page, params),
      complaint: () => complaintScreen(page, parts[1]),
      board: () => boardScreen(page),
      reports: () => reportsScreen(page, params),
      simulate: () => simulateScreen(page),
    };
    const screen = screens[parts[0]] || (() => { location.hash = who && who.role === "manager" ? "#/work" : "#/find"; });
    await screen();
  } catch (err) {
    page.replaceChildren(h("div", { class: "card", role: "alert" },
      h("h2", {}, err.status === 403 ? t("forbidden") : t("error")), h("p", { id: "error-detail" }, err.message)));
  }
  main.replaceChildren(page);
  main.dataset.ready = parts[0] || "";
}

async function start() {
  [S.cat, S.auth] = await Promise.all([get("/v1/catalogue"), get("/auth/config")]);
  const fragment = new URLSearchParams(location.hash.startsWith("#access_token=") ? location.hash.slice(1) : "");
  if (fragment.get("access_token")) {
    // Back from the identity provider (workbench_login_url): keep the token, drop it from the URL.
    S.token = fragment.get("access_token");
    sessionStorage.setItem("hvc.token", S.token);
    history.replaceState(null, "", location.pathname + "#/find");
  }
  document.getElementById("lang").addEventListener("click", () => {
    S.lang = S.lang === "zh" ? "en" : "zh";
    localStorage.setItem("hvc.lang", S.lang);
    route();
  });
  document.getElementById("signout").addEventListener("click", signOut);
  window.addEventListener("hashchange", route);
  await route();
}

start();
