// Measures the dashboard's page in headless Chromium; run by
// bench/dashboard.sh (see there). playwright-core is the dashboard's
// (dashboard/node_modules).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const { chromium } = createRequire(new URL("../dashboard/package.json", import.meta.url))("playwright-core");

const url = process.env.DASHBOARD_URL;
const runs = Number(process.env.RUNS ?? 11);
const expect = Number(process.env.EXPECT ?? 50);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const ms = (x) => `${x.toFixed(1)} ms`;

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
// The moment the page shows every project container with its buttons.
await context.addInitScript((n) => {
  const seen = () => document.querySelectorAll('section[data-project] tr[data-container] button[data-action="restart"]').length >= n;
  // ... and with what only each container's inspect tells (restarts).
  const complete = () => seen() && ![...document.querySelectorAll("td.num")].some((td) => td.textContent === "…");
  new MutationObserver((_, obs) => {
    if (window.__ready === undefined && seen()) window.__ready = performance.now();
    if (complete()) {
      window.__complete = performance.now();
      obs.disconnect();
    }
  }).observe(document, { childList: true, subtree: true, characterData: true });
}, expect);
const page = await context.newPage();
await page.goto(url); // logs in: the cookie
const origin = new URL(url).origin;

const loads = [];
const completes = [];
for (let i = 0; i <= runs; i++) {
  // The time is taken in the page, from its own request: waiting for
  // `load` here only keeps one navigation from cutting into the next.
  await page.goto(`${origin}/`);
  await page.waitForFunction(() => window.__complete !== undefined, null, { timeout: 60_000 });
  const [t, c] = await page.evaluate(() => [window.__ready, window.__complete]);
  if (i > 0) {
    loads.push(t);
    completes.push(c);
  }
}
console.log(`main page interactive (${expect} containers), ${runs} loads: ${loads.map((x) => x.toFixed(0)).join(" ")}`);
console.log(`  median ${ms(median(loads))}, min ${ms(Math.min(...loads))}, max ${ms(Math.max(...loads))}`);
console.log(`  with every restart count: median ${ms(median(completes))}, min ${ms(Math.min(...completes))}, max ${ms(Math.max(...completes))}`);

await page.goto(`${origin}/#/container/ticker`);
await page.locator('[data-role="logs"] .line').first().waitFor();
const lags = await page.evaluate(
  () =>
    new Promise((resolve) => {
      const out = [];
      const view = document.querySelector('[data-role="logs"]');
      new MutationObserver((records, obs) => {
        // Drawn: after the next frame.
        requestAnimationFrame(() => {
          const now = Date.now();
          for (const r of records)
            for (const n of r.addedNodes) {
              const ts = n.querySelector?.(".ts")?.textContent;
              if (!ts) continue;
              const t = Date.parse(ts.replace(/(\.\d{3})\d*/, "$1"));
              if (!Number.isNaN(t)) out.push(now - t);
            }
          if (out.length >= 100) {
            obs.disconnect();
            resolve(out);
          }
        });
      }).observe(view, { childList: true });
    }),
);
console.log(`a line printed, visible on the page, ${lags.length} lines: median ${ms(median(lags))}, min ${ms(Math.min(...lags))}, max ${ms(Math.max(...lags))}`);

const status = readFileSync(`/proc/${process.env.DASHBOARD_PID}/status`, "utf8");
const field = (k) => status.match(new RegExp(`^${k}:\\s+(\\d+) kB`, "m"))?.[1];
console.log(`dashboard memory with the page open: VmRSS ${(field("VmRSS") / 1024).toFixed(1)} MB, peak VmHWM ${(field("VmHWM") / 1024).toFixed(1)} MB`);
await browser.close();
