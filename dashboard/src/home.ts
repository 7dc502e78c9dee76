// The main page: projects first (by the `servin.project` label), each
// with its services and their containers, then the containers outside
// projects. Live: re-rendered on every change the events bring.

import { type Container, act } from "./api";
import { confirmAction } from "./confirm";
import { onProjectChange, projectButtons, projectPanel } from "./project";
import { type Inspect, store } from "./state";
import { SERVICE_COLOURS, el, name, since, toast } from "./util";

const PROJECT = "servin.project";
const SERVICE = "servin.name";

type Verb = "start" | "stop" | "restart" | "remove";

/// Runs `verb` on every container of `list`, confirming removals first.
/// True when every container did it (false: cancelled, or a failure shown).
export async function run(verb: Verb, list: Container[], subject: string): Promise<boolean> {
  if (verb === "remove") {
    const names = list.map(name).join(", ");
    const ok = await confirmAction(
      `Remove ${subject}?`,
      `This stops and removes ${list.length === 1 ? "the container" : `${list.length} containers`} (${names}). Their volumes are kept.`,
      "Remove",
    );
    if (!ok) return false;
  }
  const results = await Promise.allSettled(
    list.map((c) => {
      if (verb !== "start") store.expect(c.Id);
      return verb === "remove"
        ? act("DELETE", `containers/${c.Id}`, `remove ${name(c)}`)
        : act("POST", `containers/${c.Id}/${verb}`, `${verb} ${name(c)}`);
    }),
  );
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed.length) toast(failed.map((f) => String(f.reason?.message ?? f.reason)).join("\n"));
  return !failed.length;
}

function actions(list: Container[], subject: string, key: string): HTMLElement {
  const running = list.some((c) => c.State === "running" || c.State === "restarting");
  const button = (verb: Verb, label: string, show: boolean) =>
    show &&
    el(
      "button",
      {
        type: "button",
        class: verb === "remove" ? "danger" : "",
        "data-key": `${key}:${verb}`,
        "data-action": verb,
        "aria-label": `${label} ${subject}`,
        onclick: () => void run(verb, list, subject),
      },
      label,
    );
  return el(
    "span",
    { class: "actions" },
    button("start", "Start", list.some((c) => c.State !== "running")),
    button("stop", "Stop", running),
    button("restart", "Restart", true),
    button("remove", "Remove", true),
  );
}

function stateBadge(c: Container, i?: Inspect): HTMLElement {
  // A stopped container's last health is history, not its state.
  const health = c.State === "running" ? (c.Health?.Status ?? i?.State?.Health?.Status) : undefined;
  return el(
    "span",
    { class: "badges" },
    el("span", { class: `state ${c.State}`, "data-role": "state" }, c.State),
    health && health !== "none" && el("span", { class: `health ${health}`, "data-role": "health" }, health),
  );
}

function ports(c: Container): HTMLElement {
  const seen = new Set<string>();
  const links = c.Ports.filter((p) => p.PublicPort).flatMap((p) => {
    const key = `${p.PublicPort}/${p.Type}`;
    if (seen.has(key)) return [];
    seen.add(key);
    if (p.Type !== "tcp") return [el("span", {}, `${p.PublicPort}/${p.Type}`)];
    const host = p.IP && p.IP !== "0.0.0.0" && p.IP !== "::" ? p.IP : "127.0.0.1";
    const url = `http://${host.includes(":") ? `[${host}]` : host}:${p.PublicPort}/`;
    return [el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, `${p.PublicPort}→${p.PrivatePort}`)];
  });
  return el("span", { class: "ports" }, ...links);
}

function uptime(c: Container, i?: Inspect): string {
  const started = i?.State?.StartedAt;
  if (c.State === "running" && started) {
    const t = Date.parse(started);
    if (!Number.isNaN(t)) return `up ${since(t / 1000)}`;
  }
  return c.Status;
}

function row(c: Container, colour?: string): HTMLElement {
  const i = store.inspects.get(c.Id);
  const n = name(c);
  return el(
    "tr",
    { "data-container": n, "data-state": c.State },
    el(
      "td",
      {},
      colour && el("span", { class: `dot ${colour}`, "aria-hidden": "true" }),
      el("a", { href: `#/container/${encodeURIComponent(n)}`, "data-key": `open:${n}` }, n),
    ),
    el("td", {}, stateBadge(c, i)),
    el("td", { class: "image" }, c.Image),
    el("td", {}, ports(c)),
    el("td", { class: "uptime" }, uptime(c, i)),
    el("td", { class: "num", title: "restarts", "data-label": "restarts" }, i ? String(i.RestartCount ?? 0) : "…"),
    el("td", {}, actions([c], n, `c:${n}`)),
  );
}

function table(rows: HTMLElement[]): HTMLElement {
  return el(
    "table",
    { class: "containers" },
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        el("th", { scope: "col" }, "Container"),
        el("th", { scope: "col" }, "State"),
        el("th", { scope: "col" }, "Image"),
        el("th", { scope: "col" }, "Ports"),
        el("th", { scope: "col" }, "Uptime"),
        el("th", { scope: "col" }, "Restarts"),
        el("th", { scope: "col" }, el("span", { class: "sr-only" }, "Actions")),
      ),
    ),
    el("tbody", {}, ...rows),
  );
}

function summary(list: Container[]): string {
  const running = list.filter((c) => c.State === "running").length;
  return `${running}/${list.length} running`;
}

function render(main: HTMLElement) {
  const projects = new Map<string, Map<string, Container[]>>();
  const loose: Container[] = [];
  const sorted = [...store.containers].sort((a, b) => name(a).localeCompare(name(b)));
  for (const c of sorted) {
    const p = c.Labels?.[PROJECT];
    if (!p) {
      loose.push(c);
      continue;
    }
    const services = projects.get(p) ?? new Map<string, Container[]>();
    projects.set(p, services);
    const s = c.Labels[SERVICE] ?? name(c);
    services.set(s, [...(services.get(s) ?? []), c]);
  }
  const sections: HTMLElement[] = [];
  for (const p of [...projects.keys()].sort()) {
    const services = projects.get(p) ?? new Map<string, Container[]>();
    const all = [...services.values()].flat();
    const names = [...services.keys()].sort();
    const rows = names.flatMap((s, i) => {
      const list = services.get(s) ?? [];
      const colour = SERVICE_COLOURS[i % SERVICE_COLOURS.length];
      return [
        el(
          "tr",
          { class: "service", "data-service": `${p}/${s}` },
          el("th", { colspan: "6", scope: "rowgroup" }, el("span", { class: `dot ${colour}` }), s, " ", el("small", {}, summary(list))),
          el("td", {}, actions(list, `service ${s} of ${p}`, `s:${p}/${s}`)),
        ),
        ...list.map((c) => row(c, colour)),
      ];
    });
    sections.push(
      el(
        "section",
        { class: "project", "data-project": p, "aria-label": `project ${p}` },
        el(
          "h2",
          {},
          p,
          " ",
          el("small", {}, summary(all)),
          actions(all, `project ${p}`, `p:${p}`),
          projectButtons(p, all),
        ),
        projectPanel(p),
        table(rows),
      ),
    );
  }
  if (loose.length) {
    sections.push(
      el(
        "section",
        { class: "project loose", "aria-label": "containers outside projects" },
        el("h2", {}, "Other containers ", el("small", {}, summary(loose))),
        table(loose.map((c) => row(c))),
      ),
    );
  }
  if (!sections.length) sections.push(el("p", { class: "empty" }, "No containers yet. Run one with `servin run` or bring a project up with `servin up`."));
  const focused = (document.activeElement as HTMLElement | null)?.dataset?.key;
  main.replaceChildren(el("h1", {}, "Projects and containers"), ...sections);
  if (focused) main.querySelector<HTMLElement>(`[data-key="${CSS.escape(focused)}"]`)?.focus();
}

export function home(main: HTMLElement): () => void {
  render(main);
  onProjectChange(() => render(main));
  const off = store.onChange(() => render(main));
  // Uptimes move on without events.
  const tick = window.setInterval(() => render(main), 30_000);
  return () => {
    off();
    onProjectChange(() => {});
    window.clearInterval(tick);
  };
}
