// A container's page: its logs (live, searchable), a terminal into it,
// its inspect as readable sections and its CPU, memory and network over
// the last minutes.

import { demux, getJson, jsonLines, stream } from "./api";
import { run } from "./home";
import { type Inspect, store } from "./state";
import { SERVICE_COLOURS, el, toast } from "./util";

/// Lines kept for search and shown at most: a burst beyond this scrolls
/// the oldest away, never the newest.
const KEEP = 20_000;
const SHOW = 5_000;

function serviceColour(c: Inspect): string | undefined {
  const labels = c.Config?.Labels ?? {};
  const p = labels["servin.project"];
  const s = labels["servin.name"];
  if (!p || !s) return undefined;
  const services = [
    ...new Set(store.containers.filter((x) => x.Labels?.["servin.project"] === p).map((x) => x.Labels["servin.name"])),
  ].sort();
  const i = Math.max(0, services.indexOf(s));
  return SERVICE_COLOURS[i % SERVICE_COLOURS.length];
}

interface Line {
  time: string;
  text: string;
  err: boolean;
}

function logs(c: Inspect, signal: AbortSignal): HTMLElement {
  const lines: Line[] = [];
  const search = el("input", { type: "search", placeholder: "Search the logs", "aria-label": "Search the logs" });
  const follow = el("input", { type: "checkbox", checked: true, id: "follow" });
  const stamps = el("input", { type: "checkbox", id: "stamps" });
  const count = el("span", { class: "count", "data-role": "count" }, "0 lines");
  const view = el("div", { class: "logview", role: "log", tabindex: "0", "aria-label": "Logs", "data-role": "logs" });
  const colour = serviceColour(c);
  const label = c.Config?.Labels?.["servin.name"];
  let pending: Line[] = [];
  let total = 0;
  let scheduled = false;

  const lineEl = (l: Line) =>
    el(
      "div",
      { class: l.err ? "line err" : "line" },
      el("span", { class: "ts" }, l.time),
      label && el("span", { class: `prefix ${colour ?? ""}` }, `${label} |`),
      l.text,
    );
  const matches = (l: Line) => !search.value || l.text.toLowerCase().includes(search.value.toLowerCase());
  const redraw = () => {
    const shown = lines.filter(matches).slice(-SHOW);
    view.replaceChildren(...shown.map(lineEl));
    if (follow.checked) view.scrollTop = view.scrollHeight;
  };
  // New lines are drawn once a frame, however many came: a slow page
  // falls behind for a frame, then catches up in one go.
  const flush = () => {
    scheduled = false;
    const fresh = pending.filter(matches);
    pending = [];
    const frag = document.createDocumentFragment();
    for (const l of fresh.slice(-SHOW)) frag.append(lineEl(l));
    view.append(frag);
    while (view.childElementCount > SHOW) view.firstElementChild?.remove();
    count.textContent = `${total} lines`;
    if (follow.checked) view.scrollTop = view.scrollHeight;
  };
  const decoder = [new TextDecoder(), new TextDecoder(), new TextDecoder()];
  const partial = ["", "", ""];
  const take = (streamNo: number, data: Uint8Array) => {
    const k = streamNo === 2 ? 2 : 1;
    const text = partial[k] + decoder[k].decode(data, { stream: true });
    const parts = text.split("\n");
    partial[k] = parts.pop() ?? "";
    for (const p of parts) {
      if (skip > 0) {
        skip--;
        continue;
      }
      const sp = p.indexOf(" ");
      const l = { time: sp > 0 ? p.slice(0, sp) : "", text: sp > 0 ? p.slice(sp + 1) : p, err: k === 2 };
      lines.push(l);
      pending.push(l);
      total++;
    }
    if (lines.length > KEEP) lines.splice(0, lines.length - KEEP);
    if (!scheduled) {
      scheduled = true;
      requestAnimationFrame(flush);
    }
  };
  search.addEventListener("input", redraw);
  follow.addEventListener("change", redraw);
  stamps.addEventListener("change", () => view.classList.toggle("stamps", stamps.checked));
  // The stream ends when the container stops; when it starts again, the
  // log is read anew and the lines already shown are skipped.
  let skip = 0;
  const read = async () => {
    while (!signal.aborted) {
      skip = total;
      partial[1] = partial[2] = "";
      try {
        await stream(`containers/${c.Id}/logs?tail=all`, `logs of ${c.Name}`, signal, demux(c.Config?.Tty ?? false, take));
      } catch (e) {
        if (!signal.aborted) toast(String((e as Error).message ?? e));
        return;
      }
      await new Promise<void>((resolve) => {
        const off = store.onEvent((e) => {
          const id = e.Actor?.ID ?? e.id;
          if (id === c.Id && (e.Action ?? e.status) === "start") {
            off();
            resolve();
          }
        });
        signal.addEventListener("abort", () => {
          off();
          resolve();
        });
      });
    }
  };
  void read();
  return el(
    "div",
    { class: "panel" },
    el(
      "div",
      { class: "toolbar" },
      search,
      el("label", {}, follow, " Follow"),
      el("label", {}, stamps, " Timestamps"),
      count,
    ),
    view,
  );
}

function terminal(c: Inspect, signal: AbortSignal): HTMLElement {
  const box = el("div", { class: "terminal", "data-role": "terminal" });
  const status = el("p", { class: "hint" }, "A shell in the container (sh, or bash when it has one).");
  const start = async () => {
    // xterm.js is loaded with the first terminal, not with every page.
    const { Terminal, FitAddon } = await import("./xterm");
    if (signal.aborted) return;
    const term = new Terminal({ cursorBlink: true, fontSize: 13, convertEol: false });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(box);
    fit.fit();
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/containers/${encodeURIComponent(
      c.Id,
    )}/terminal?cols=${term.cols}&rows=${term.rows}`;
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    const enc = new TextEncoder();
    ws.onmessage = (m) => term.write(typeof m.data === "string" ? m.data : new Uint8Array(m.data));
    ws.onclose = () => {
      status.textContent = "The shell ended. Reopen the tab for a new one.";
      term.write("\r\n[the shell ended]\r\n");
    };
    term.onData((d) => ws.readyState === WebSocket.OPEN && ws.send(enc.encode(d)));
    term.onResize(({ cols, rows }) => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ cols, rows })));
    const resize = () => fit.fit();
    window.addEventListener("resize", resize);
    signal.addEventListener("abort", () => {
      window.removeEventListener("resize", resize);
      ws.close();
      term.dispose();
    });
    term.focus();
  };
  // Opened when the tab is first shown, so that it fits its box.
  (box as HTMLElement & { open?: () => void }).open = () => void start();
  return el("div", { class: "panel" }, status, box);
}

function value(v: unknown): Node {
  if (v === null || v === undefined || v === "") return document.createTextNode("—");
  if (Array.isArray(v)) {
    if (!v.length) return document.createTextNode("—");
    if (v.every((x) => typeof x !== "object")) return el("ul", {}, ...v.map((x) => el("li", {}, String(x))));
  }
  if (typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>);
    if (!entries.length) return document.createTextNode("—");
    return el("dl", {}, ...entries.flatMap(([k, x]) => [el("dt", {}, k), el("dd", {}, value(x))]));
  }
  return document.createTextNode(String(v));
}

function inspect(c: Inspect): HTMLElement {
  const get = (k: string) => (c as Record<string, unknown>)[k];
  const cfg = (c.Config ?? {}) as Record<string, unknown>;
  const host = (get("HostConfig") ?? {}) as Record<string, unknown>;
  const net = (get("NetworkSettings") ?? {}) as Record<string, unknown>;
  const sections: [string, Record<string, unknown>][] = [
    ["General", { ID: c.Id, Name: c.Name.replace(/^\//, ""), Created: get("Created"), Image: cfg.Image, "Image ID": get("Image"), Restarts: c.RestartCount }],
    ["State", (c.State ?? {}) as Record<string, unknown>],
    ["Command", { Entrypoint: cfg.Entrypoint, Cmd: cfg.Cmd, WorkingDir: cfg.WorkingDir, User: cfg.User, Tty: cfg.Tty }],
    ["Environment", { Env: cfg.Env }],
    ["Labels", (cfg.Labels ?? {}) as Record<string, unknown>],
    ["Network", { Ports: net.Ports, Networks: net.Networks }],
    ["Mounts", { Mounts: get("Mounts") }],
    ["Limits and restart", { RestartPolicy: host.RestartPolicy, Memory: host.Memory, NanoCpus: host.NanoCpus, PidsLimit: host.PidsLimit }],
  ];
  return el(
    "div",
    { class: "panel inspect" },
    ...sections.map(([title, obj]) => el("section", {}, el("h3", {}, title), value(obj))),
    el("details", {}, el("summary", {}, "Raw JSON"), el("pre", {}, JSON.stringify(c, null, 2))),
  );
}

interface Point {
  t: number;
  cpu: number;
  mem: number;
  rx: number;
  tx: number;
}

/// The last minutes of the stats stream, drawn as lines.
function stats(c: Inspect, signal: AbortSignal): HTMLElement {
  const WINDOW_MS = 5 * 60 * 1000;
  const points: Point[] = [];
  const charts = {
    cpu: el("canvas", { width: "600", height: "140", "aria-label": "CPU" }),
    mem: el("canvas", { width: "600", height: "140", "aria-label": "Memory" }),
    net: el("canvas", { width: "600", height: "140", "aria-label": "Network" }),
  };
  const now = { cpu: el("span"), mem: el("span"), net: el("span") };
  let last: { rx: number; tx: number; t: number } | undefined;
  const draw = (canvas: HTMLCanvasElement, series: number[][], colours: string[], fmt: (n: number) => string) => {
    const g = canvas.getContext("2d");
    if (!g) return;
    const w = canvas.width;
    const h = canvas.height;
    g.clearRect(0, 0, w, h);
    const max = Math.max(1e-9, ...series.flat());
    const style = getComputedStyle(document.body);
    g.fillStyle = style.color;
    g.font = "11px system-ui";
    g.fillText(fmt(max), 4, 12);
    const end = Date.now();
    const t0 = Math.max(end - WINDOW_MS, points[0]?.t ?? end);
    const span = Math.max(1000, end - t0);
    g.fillText(`last ${Math.round(span / 1000)} s`, w - 70, h - 4);
    series.forEach((s, k) => {
      g.strokeStyle = colours[k];
      g.lineWidth = 1.5;
      g.beginPath();
      s.forEach((v, i) => {
        const x = ((points[i].t - t0) / span) * w;
        const y = h - (v / max) * (h - 16);
        if (i === 0) g.moveTo(x, y);
        else g.lineTo(x, y);
      });
      g.stroke();
    });
  };
  type Stats = {
    read?: string;
    cpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number; online_cpus?: number };
    precpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number };
    memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
    networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }>;
  };
  const take = (s: Stats) => {
    const t = Date.now();
    const cpuDelta = (s.cpu_stats?.cpu_usage?.total_usage ?? 0) - (s.precpu_stats?.cpu_usage?.total_usage ?? 0);
    const sysDelta = (s.cpu_stats?.system_cpu_usage ?? 0) - (s.precpu_stats?.system_cpu_usage ?? 0);
    const cpus = s.cpu_stats?.online_cpus ?? 1;
    const cpu = sysDelta > 0 && cpuDelta > 0 ? (cpuDelta / sysDelta) * cpus * 100 : 0;
    const ms = s.memory_stats ?? {};
    const mem = Math.max(0, (ms.usage ?? 0) - (ms.stats?.inactive_file ?? ms.stats?.total_inactive_file ?? 0));
    let rx = 0;
    let tx = 0;
    for (const n of Object.values(s.networks ?? {})) {
      rx += n.rx_bytes ?? 0;
      tx += n.tx_bytes ?? 0;
    }
    const secs = last ? Math.max(0.001, (t - last.t) / 1000) : 1;
    const rate = last ? { rx: Math.max(0, rx - last.rx) / secs, tx: Math.max(0, tx - last.tx) / secs } : { rx: 0, tx: 0 };
    last = { rx, tx, t };
    points.push({ t, cpu, mem, rx: rate.rx, tx: rate.tx });
    while (points.length && points[0].t < t - WINDOW_MS) points.shift();
    const fmtB = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(1)} kB`);
    now.cpu.textContent = `${cpu.toFixed(1)} %`;
    now.mem.textContent = `${fmtB(mem)}${ms.limit ? ` of ${fmtB(ms.limit)}` : ""}`;
    now.net.textContent = `in ${fmtB(rate.rx)}/s, out ${fmtB(rate.tx)}/s`;
    draw(charts.cpu, [points.map((p) => p.cpu)], ["#2a7ae2"], (n) => `${n.toFixed(1)} %`);
    draw(charts.mem, [points.map((p) => p.mem)], ["#8e44ad"], fmtB);
    draw(charts.net, [points.map((p) => p.rx), points.map((p) => p.tx)], ["#27ae60", "#e67e22"], (n) => `${fmtB(n)}/s`);
  };
  void stream(`containers/${c.Id}/stats`, `stats of ${c.Name}`, signal, jsonLines<Stats>(take)).catch((e) => {
    if (!signal.aborted) toast(String(e.message ?? e));
  });
  const chart = (title: string, canvas: HTMLCanvasElement, current: HTMLElement, legend?: string) =>
    el("figure", { class: "chart" }, el("figcaption", {}, title, ": ", current, legend ? ` (${legend})` : ""), canvas);
  return el(
    "div",
    { class: "panel charts" },
    chart("CPU", charts.cpu, now.cpu),
    chart("Memory", charts.mem, now.mem),
    chart("Network", charts.net, now.net, "green in, orange out"),
  );
}

export function containerPage(main: HTMLElement, ref: string): () => void {
  const ctrl = new AbortController();
  main.replaceChildren(el("p", {}, "Loading…"));
  void (async () => {
    let c: Inspect;
    try {
      c = await getJson<Inspect>(`containers/${encodeURIComponent(ref)}`, `inspect ${ref}`);
    } catch (e) {
      main.replaceChildren(el("h1", {}, ref), el("p", { class: "error" }, String((e as Error).message)), el("a", { href: "#/" }, "Back"));
      return;
    }
    if (ctrl.signal.aborted) return;
    const title = c.Name.replace(/^\//, "");
    const state = el("span", { class: `state ${c.State?.Status ?? ""}`, "data-role": "state" }, c.State?.Status ?? "");
    const summary = () => store.containers.find((x) => x.Id === c.Id);
    const buttons = new Map<string, HTMLButtonElement>();
    const showState = () => {
      const s = summary();
      const now = s?.State ?? (store.containers.length ? "removed" : (c.State?.Status ?? ""));
      state.textContent = now;
      state.className = `state ${now}`;
      const running = now === "running" || now === "restarting";
      buttons.get("start")?.toggleAttribute("hidden", running);
      buttons.get("stop")?.toggleAttribute("hidden", !running);
    };
    const off = store.onChange(showState);
    ctrl.signal.addEventListener("abort", off);
    const verb = (v: "start" | "stop" | "restart" | "remove", label: string) => {
      const b = el("button", { type: "button", "data-action": v, class: v === "remove" ? "danger" : "", onclick: () => {
        const s = summary();
        if (s)
          void run(v, [s], title).then((done) => {
            if (done && v === "remove") location.hash = "#/";
          });
      } }, label);
      buttons.set(v, b);
      return b;
    };
    const panels: [string, HTMLElement][] = [
      ["Logs", logs(c, ctrl.signal)],
      ["Terminal", terminal(c, ctrl.signal)],
      ["Inspect", inspect(c)],
      ["Stats", stats(c, ctrl.signal)],
    ];
    const tabs = panels.map(([label], i) =>
      el("button", { type: "button", role: "tab", id: `tab-${label}`, "aria-controls": `panel-${label}`, "aria-selected": i === 0 ? "true" : "false", tabindex: i === 0 ? "0" : "-1" }, label),
    );
    const show = (k: number) => {
      panels.forEach(([label, p], i) => {
        p.hidden = i !== k;
        p.id = `panel-${label}`;
        p.setAttribute("role", "tabpanel");
        tabs[i].setAttribute("aria-selected", i === k ? "true" : "false");
        tabs[i].tabIndex = i === k ? 0 : -1;
      });
      const box = panels[k][1].querySelector(".terminal") as (HTMLElement & { open?: () => void }) | null;
      if (box?.open) {
        const open = box.open;
        box.open = undefined;
        open();
      }
    };
    tabs.forEach((t, i) => {
      t.addEventListener("click", () => show(i));
      t.addEventListener("keydown", (e) => {
        const k = (e as KeyboardEvent).key;
        const d = k === "ArrowRight" ? 1 : k === "ArrowLeft" ? -1 : 0;
        if (!d) return;
        const n = (i + d + tabs.length) % tabs.length;
        tabs[n].focus();
        show(n);
      });
    });
    main.replaceChildren(
      el("nav", { class: "crumbs" }, el("a", { href: "#/" }, "All containers"), " / ", title),
      el("h1", {}, title, " ", state, " ", el("small", {}, c.Config?.Image ?? "")),
      el("div", { class: "actions" }, verb("start", "Start"), verb("stop", "Stop"), verb("restart", "Restart"), verb("remove", "Remove")),
      el("div", { role: "tablist", "aria-label": "Container views" }, ...tabs),
      ...panels.map(([, p]) => p),
    );
    showState();
    show(location.hash.endsWith("/terminal") ? 1 : 0);
  })();
  return () => ctrl.abort();
}
