// The dashboard's page: a hash router over three views, the live event
// stream they share, and the browser notifications.

import "./style.css";
import { containerPage } from "./container";
import { home } from "./home";
import { resources } from "./resources";
import { type EngineEvent, store } from "./state";
import { el } from "./util";

const main = document.getElementById("main") as HTMLElement;
let leave: (() => void) | undefined;

function route() {
  leave?.();
  const hash = location.hash.replace(/^#/, "") || "/";
  const m = hash.match(/^\/container\/([^/]+)/);
  for (const a of document.querySelectorAll<HTMLAnchorElement>("[data-nav]")) {
    const current = (a.dataset.nav === "resources") === hash.startsWith("/resources") && !m;
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (m) leave = containerPage(main, decodeURIComponent(m[1]));
  else if (hash.startsWith("/resources")) leave = resources(main);
  else leave = home(main);
}

// Notifications: a container that exits with a non-zero code the page did
// not ask for, or turns unhealthy.
const notifyButton = document.getElementById("notify") as HTMLButtonElement;
function showPermission() {
  const p = "Notification" in window ? Notification.permission : "denied";
  notifyButton.textContent = p === "granted" ? "Notifications on" : p === "denied" ? "Notifications blocked" : "Turn on notifications";
  notifyButton.disabled = p !== "default";
}
notifyButton.addEventListener("click", async () => {
  if ("Notification" in window) await Notification.requestPermission();
  showPermission();
});
showPermission();

/// The notifications shown, newest last (the tests read them).
const shown: { title: string; body: string }[] = [];
(window as unknown as { servinNotifications: typeof shown }).servinNotifications = shown;

function notify(title: string, body: string, tag: string) {
  shown.push({ title, body });
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  const n = new Notification(title, { body, tag });
  n.onclick = () => {
    window.focus();
    location.hash = `#/container/${encodeURIComponent(tag)}`;
  };
}

store.onEvent((e: EngineEvent) => {
  const action = e.Action ?? e.status ?? "";
  const attrs = e.Actor?.Attributes ?? {};
  const id = e.Actor?.ID ?? e.id ?? "";
  const cname = attrs.name ?? id.slice(0, 12);
  if (action === "die") {
    const code = attrs.exitCode ?? "";
    const asked = store.expected.get(id);
    if (asked && Date.now() - asked < 60_000) return;
    if (code !== "" && code !== "0") notify(`${cname} exited (${code})`, `The container ${cname} exited with code ${code}.`, cname);
  } else if (action.startsWith("health_status") && action.includes("unhealthy")) {
    notify(`${cname} is unhealthy`, `The container ${cname} failed its health check.`, cname);
  }
});

// Keyboard: `/` searches (the logs), `g` then `c` or `r` goes to the
// containers or the resources, `j`/`k` move between containers, `?` helps.
let pendingG = false;
document.addEventListener("keydown", (e) => {
  const t = e.target as HTMLElement;
  if (e.ctrlKey || e.metaKey || e.altKey || t.closest("input, textarea, .terminal, dialog")) return;
  if (pendingG) {
    pendingG = false;
    if (e.key === "c") location.hash = "#/";
    if (e.key === "r") location.hash = "#/resources";
    return;
  }
  if (e.key === "g") pendingG = true;
  else if (e.key === "/") {
    const s = main.querySelector<HTMLInputElement>("input[type=search]");
    if (s) {
      e.preventDefault();
      s.focus();
    }
  } else if (e.key === "j" || e.key === "k") {
    const links = [...main.querySelectorAll<HTMLAnchorElement>("[data-container] a[data-key]")];
    if (!links.length) return;
    const at = links.indexOf(document.activeElement as HTMLAnchorElement);
    const next = e.key === "j" ? Math.min(links.length - 1, at + 1) : Math.max(0, at < 0 ? 0 : at - 1);
    links[next].focus();
    e.preventDefault();
  } else if (e.key === "?") {
    const help = el(
      "dialog",
      { class: "confirm" },
      el("h2", {}, "Keys"),
      el(
        "dl",
        {},
        ...[
          ["j / k", "next / previous container"],
          ["Enter", "open it"],
          ["g c", "containers"],
          ["g r", "images, volumes, networks"],
          ["/", "search the logs"],
          ["← →", "switch a container's views"],
          ["Esc", "close this"],
        ].flatMap(([k, v]) => [el("dt", {}, el("kbd", {}, k)), el("dd", {}, v)]),
      ),
    );
    help.addEventListener("close", () => help.remove());
    document.body.append(help);
    help.showModal();
  }
});

window.addEventListener("hashchange", route);
route();
void store.follow();
