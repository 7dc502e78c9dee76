// Small DOM and formatting helpers.

type Child = Node | string | null | undefined | false;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | boolean | ((e: Event) => void)> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (typeof v === "function") e.addEventListener(k.replace(/^on/, ""), v);
    else if (v === true) e.setAttribute(k, "");
    else if (v !== false) e.setAttribute(k, v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

export function name(c: { Names: string[]; Id: string }): string {
  return (c.Names[0] ?? c.Id.slice(0, 12)).replace(/^\//, "");
}

export function bytes(n: number | undefined): string {
  if (n === undefined || n < 0) return "—";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n < 10 && i > 0 ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
}

export function since(seconds: number): string {
  const s = Math.max(0, Math.floor(Date.now() / 1000 - seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d`;
}

let toastTimer = 0;
export function toast(msg: string) {
  const t = document.getElementById("toast");
  if (!t) return;
  t.textContent = msg;
  t.classList.add("shown");
  window.clearTimeout(toastTimer);
  toastTimer = window.setTimeout(() => t.classList.remove("shown"), 6000);
}

// The colours `servin logs` gives services, in the same order (ANSI 36,
// 33, 32, 35, 34, 31: cyan, yellow, green, magenta, blue, red).
export const SERVICE_COLOURS = ["cyan", "yellow", "green", "magenta", "blue", "red"];
