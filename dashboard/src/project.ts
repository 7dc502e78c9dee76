// A whole project's Plan, Up and Down (see src/dashboard/project.rs). The
// page names the project; the server finds its file in the containers'
// `servin.project-file` label. What each call answered stays shown under
// the project's heading until the next call.

import { ApiError, type Container } from "./api";
import { confirmAction } from "./confirm";
import { store } from "./state";
import { el, toast } from "./util";

export const PROJECT_FILE = "servin.project-file";

interface Action {
  kind: string;
  object: string;
  name: string;
  service?: string;
  reason: string;
}

interface Plan {
  project: string;
  actions: Action[];
  resources?: Action[];
}

type Shown =
  | { what: "busy"; text: string }
  | { what: "plan"; plan: Plan }
  | { what: "done"; text: string }
  | { what: "error"; text: string };

const shown = new Map<string, Shown>();
let redraw: () => void = () => {};

/// Called by the main page: how to draw again when an answer arrives.
export function onProjectChange(f: () => void) {
  redraw = f;
}

function show(project: string, s: Shown) {
  shown.set(project, s);
  redraw();
}

async function call(method: "GET" | "POST", project: string, op: string): Promise<unknown> {
  const r = await fetch(`/api/projects/${encodeURIComponent(project)}/${op}`, {
    method,
    credentials: "same-origin",
  });
  const text = await r.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // plain text: kept as it is
  }
  if (!r.ok) {
    const msg = (body as { message?: string } | null)?.message ?? (text.trim() || `${r.status} ${r.statusText}`);
    throw new ApiError(r.status, msg);
  }
  return body;
}

async function plan(project: string) {
  show(project, { what: "busy", text: `Planning project ${project}…` });
  try {
    show(project, { what: "plan", plan: (await call("GET", project, "plan")) as Plan });
  } catch (e) {
    show(project, { what: "error", text: `Plan of project ${project}: ${(e as Error).message}` });
  }
}

/// Up recreates and removes containers, Down removes them all: their
/// exits are the page's doing, not news to notify.
function expectExits(list: Container[]) {
  for (const c of list) store.expect(c.Id);
}

async function up(project: string, list: Container[]) {
  expectExits(list);
  show(project, { what: "busy", text: `Applying project ${project} (servin up -d)…` });
  try {
    const r = (await call("POST", project, "up")) as { output?: string };
    show(project, { what: "done", text: r.output?.trim() || `project ${project} is up` });
  } catch (e) {
    show(project, { what: "error", text: `Up of project ${project}: ${(e as Error).message}` });
    toast(`Up of project ${project} failed`);
  }
}

async function down(project: string, list: Container[]) {
  const count = list.length;
  const ok = await confirmAction(
    `Take project ${project} down?`,
    `This stops and removes its ${count === 1 ? "container" : `${count} containers`} and its networks, as \`servin down\` does. Its volumes are kept.`,
    "Down",
  );
  if (!ok) return;
  expectExits(list);
  show(project, { what: "busy", text: `Taking project ${project} down…` });
  try {
    await call("POST", project, "down");
    show(project, { what: "done", text: `project ${project} is down` });
  } catch (e) {
    show(project, { what: "error", text: `Down of project ${project}: ${(e as Error).message}` });
    toast(`Down of project ${project} failed`);
  }
}

/// The Plan, Up and Down buttons of a project (its containers `list`);
/// Plan and Up only when they record its file.
export function projectButtons(project: string, list: Container[]): HTMLElement {
  const recorded = list.some((c) => Boolean(c.Labels?.[PROJECT_FILE]));
  // One call at a time per project: a second Up while one runs would
  // only wait for the first.
  const busy = shown.get(project)?.what === "busy";
  const button = (op: string, label: string, onclick: () => void, danger = false) =>
    el(
      "button",
      {
        type: "button",
        class: danger ? "danger" : "",
        disabled: busy,
        "data-key": `p:${project}:${op}`,
        "data-project-action": op,
        "aria-label": `${label} project ${project}`,
        onclick,
      },
      label,
    );
  return el(
    "span",
    { class: "actions project-actions" },
    recorded && button("plan", "Plan", () => void plan(project)),
    recorded && button("up", "Up", () => void up(project, list)),
    button("down", "Down", () => void down(project, list), true),
  );
}

function planTable(p: Plan): HTMLElement {
  const changes = (p.resources ?? []).filter((a) => a.kind !== "keep");
  const rows = [...p.actions, ...changes].map((a) =>
    el(
      "tr",
      { "data-plan-kind": a.kind, "data-plan-name": a.name },
      el("td", {}, el("span", { class: `plan-kind ${a.kind}` }, a.kind)),
      el("td", {}, a.object === "container" ? a.name : `${a.object} ${a.name}`),
      el("td", {}, a.service ?? "-"),
      el("td", { class: "reason" }, a.reason),
    ),
  );
  if (!rows.length) return el("p", {}, `project ${p.project} has no containers`);
  return el(
    "table",
    { class: "plan" },
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        el("th", { scope: "col" }, "Action"),
        el("th", { scope: "col" }, "Object"),
        el("th", { scope: "col" }, "Service"),
        el("th", { scope: "col" }, "Reason"),
      ),
    ),
    el("tbody", {}, ...rows),
  );
}

/// What the last call on `project` answered, if anything.
export function projectPanel(project: string): HTMLElement | false {
  const s = shown.get(project);
  if (!s) return false;
  const close = el(
    "button",
    {
      type: "button",
      class: "close",
      "data-key": `p:${project}:close`,
      "aria-label": `Close the panel of project ${project}`,
      onclick: () => {
        shown.delete(project);
        redraw();
      },
    },
    "×",
  );
  const body =
    s.what === "plan"
      ? planTable(s.plan)
      : el("pre", { role: s.what === "error" ? "alert" : "status" }, s.text);
  return el("div", { class: `project-panel ${s.what}`, "data-panel": s.what }, close, body);
}
