// The dashboard's page in headless Chromium, against a real engine, run by
// tests/dashboard.rs (which starts the engine, the project `shop` and
// `servin dashboard --no-open`). Every wait is for a condition, with a
// generous deadline: a loaded machine is slow, never wrong.
//
// Environment: DASHBOARD_URL (the login address), SERVIN_BIN and the
// sandbox's SERVIN_* variables (for the CLI calls), IMAGE, WEB_PORT,
// SCREENSHOTS (a folder), PROJECT_FILE (the project `shop`'s file).

import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const url = process.env.DASHBOARD_URL;
const image = process.env.IMAGE;
const shots = process.env.SCREENSHOTS;
const DEADLINE = 90_000;

function servin(...args) {
  return execFileSync(process.env.SERVIN_BIN, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function step(name) {
  console.log(`== ${name}`);
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
let failed = false;
try {
  const origin = new URL(url).origin;
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await context.grantPermissions(["notifications"], { origin });
  // Record the notifications the page shows.
  await context.addInitScript(() => {
    const Real = window.Notification;
    window.__notified = [];
    class Recorded extends Real {
      constructor(title, options) {
        super(title, options);
        window.__notified.push(title);
      }
    }
    window.Notification = Recorded;
  });
  context.setDefaultTimeout(DEADLINE);
  const page = await context.newPage();
  page.on("pageerror", (e) => console.log(`page error: ${e.message}`));

  step("log in: the secret becomes a cookie, the address loses it");
  await page.goto(url);
  await page.waitForURL((u) => !u.search.includes("secret"));
  const cookies = await context.cookies();
  const c = cookies.find((k) => k.name.startsWith("servin_dashboard_"));
  if (!c || !c.httpOnly || c.sameSite !== "Strict") throw new Error(`cookie ${JSON.stringify(cookies)}`);

  step("the project list, with the right states");
  const row = (name) => page.locator(`tr[data-container="${name}"]`);
  await page.locator('section[data-project="shop"]').waitFor();
  await row("shop-web-1").and(page.locator('[data-state="running"]')).waitFor();
  await row("shop-worker-1").and(page.locator('[data-state="running"]')).waitFor();
  await row("loner").and(page.locator('[data-state="created"]')).waitFor();
  await page.locator('tr[data-service="shop/web"]').waitFor();
  await row("shop-worker-1").locator('[data-role="health"]', { hasText: "healthy" }).waitFor();
  const link = row("shop-web-1").locator(`a[href="http://127.0.0.1:${process.env.WEB_PORT}/"]`);
  await link.waitFor();
  // The loner is below the project, outside it.
  const order = await page.locator("section.project").evaluateAll((s) => s.map((x) => x.getAttribute("aria-label")));
  if (order[0] !== "project shop" || order.at(-1) !== "containers outside projects") throw new Error(`sections ${order}`);
  await page.screenshot({ path: join(shots, "dashboard-projects.png"), fullPage: true });

  step("Plan shows the engine's plan: every container kept");
  const shop = page.locator('section[data-project="shop"]');
  const panel = shop.locator(".project-panel");
  const planRow = (name, kind) => panel.locator(`tr[data-plan-name="${name}"][data-plan-kind="${kind}"]`);
  await shop.locator('button[data-project-action="plan"]').click();
  await planRow("shop-web-1", "keep").waitFor();
  await planRow("shop-worker-1", "keep").waitFor();

  step("a project file that does not load: Plan shows why");
  const projectFile = process.env.PROJECT_FILE;
  const good = readFileSync(projectFile, "utf8");
  writeFileSync(projectFile, `${good}\n[containers.web]\n`);
  await shop.locator('button[data-project-action="plan"]').click();
  await panel.locator('[data-panel="error"], [role="alert"]').first().waitFor();
  const why = await panel.textContent();
  if (!why.includes(projectFile)) throw new Error(`the failure does not name the file: ${why}`);

  step("after an edit, Plan shows a recreate with its reason");
  writeFileSync(projectFile, good.replace("echo web up", "echo web again"));
  await shop.locator('button[data-project-action="plan"]').click();
  await planRow("shop-web-1", "recreate").waitFor();
  await planRow("shop-worker-1", "keep").waitFor();
  const reason = await planRow("shop-web-1", "recreate").locator(".reason").textContent();
  if (!reason.includes("command")) throw new Error(`the recreate's reason is ${reason}`);
  await page.screenshot({ path: join(shots, "dashboard-plan.png"), fullPage: true });

  step("Up from the page applies it");
  await shop.locator('button[data-project-action="up"]').click();
  await panel.locator("pre", { hasText: "1 recreated" }).waitFor();
  const web = JSON.parse(servin("inspect", "shop-web-1"));
  const cmd = (Array.isArray(web) ? web[0] : web).Config.Cmd.join(" ");
  if (!cmd.includes("echo web again")) throw new Error(`shop-web-1 runs ${cmd} after Up`);
  await row("shop-web-1").and(page.locator('[data-state="running"]')).waitFor();
  await shop.locator('button[data-project-action="plan"]').click();
  await planRow("shop-web-1", "keep").waitFor();

  step("a container started from the CLI appears without a reload");
  await page.evaluate(() => (window.__sameLoad = true));
  servin("run", "-d", "--name", "fresh", image, "sleep", "300");
  await row("fresh").and(page.locator('[data-state="running"]')).waitFor();
  if (!(await page.evaluate(() => window.__sameLoad === true))) throw new Error("the page reloaded");

  step("stopping a service from the page stops it");
  await page.locator('tr[data-service="shop/worker"] button[data-action="stop"]').click();
  await row("shop-worker-1").and(page.locator('[data-state="exited"]')).waitFor();
  const state = JSON.parse(servin("inspect", "shop-worker-1"));
  const status = (Array.isArray(state) ? state[0] : state).State.Status;
  if (status !== "exited") throw new Error(`shop-worker-1 is ${status} after the page stopped it`);
  if ((await page.evaluate(() => window.__notified.length)) !== 0) throw new Error("a stop the page asked for notified");

  step("a container killed from the CLI raises a notification");
  servin("kill", "fresh");
  await page.waitForFunction(() => window.__notified.some((t) => t.startsWith("fresh exited")), null, { timeout: DEADLINE });
  await row("fresh").and(page.locator('[data-state="exited"]')).waitFor();

  step("a container turning unhealthy raises a notification");
  servin("run", "-d", "--name", "sick", "--health-cmd", "false", "--health-interval", "1s", "--health-retries", "1", image, "sleep", "300");
  await page.waitForFunction(() => window.__notified.some((t) => t === "sick is unhealthy"), null, { timeout: DEADLINE });
  await row("sick").locator('[data-role="health"]', { hasText: "unhealthy" }).waitFor();

  step("logs stream, and survive a burst of 10,000 lines");
  servin(
    "run",
    "-d",
    "--name",
    "chatty",
    image,
    "sh",
    "-c",
    'echo ready; while [ ! -e /go ]; do sleep 0.1; done; i=0; while [ $i -lt 10000 ]; do echo "burst $i"; i=$((i+1)); done; echo done; sleep 300',
  );
  await page.goto(`${origin}/#/container/chatty`);
  const logs = page.locator('[data-role="logs"]');
  await logs.locator(".line", { hasText: "ready" }).waitFor();
  servin("exec", "chatty", "sh", "-c", ": > /go");
  await page.locator('[data-role="count"]', { hasText: "10002 lines" }).waitFor();
  await logs.locator(".line", { hasText: /done$/ }).waitFor();
  const last = await logs.locator(".line").last().textContent();
  if (!last.endsWith("done")) throw new Error(`the last line shown is ${last}`);
  await page.screenshot({ path: join(shots, "dashboard-logs.png") });
  await page.getByRole("searchbox", { name: "Search the logs" }).fill("burst 4242");
  await page.waitForFunction(() => {
    const lines = [...document.querySelectorAll('[data-role="logs"] .line')];
    return lines.length === 1 && lines[0].textContent.endsWith("burst 4242");
  });

  step("the terminal runs a command and shows its output");
  await page.getByRole("tab", { name: "Terminal" }).click();
  await page.locator(".xterm").waitFor();
  // The shell's prompt first: typing before it would be lost to nothing.
  await page.waitForFunction(() => /[#$]/.test(document.querySelector(".xterm-rows")?.textContent ?? ""));
  await page.locator(".xterm").click();
  await page.keyboard.type("echo $((6*7))-answer\n");
  await page.waitForFunction(() => (document.querySelector(".xterm-rows")?.textContent ?? "").includes("42-answer"));
  await page.screenshot({ path: join(shots, "dashboard-terminal.png") });

  step("the logs go on after a restart, without repeating");
  servin("run", "-d", "--name", "echoer", image, "sh", "-c", "echo started; sleep 300");
  await page.goto(`${origin}/#/container/echoer`);
  const started = page.locator('[data-role="logs"] .line', { hasText: "started" });
  await started.first().waitFor();
  servin("restart", "-t", "1", "echoer");
  await page.waitForFunction(() => document.querySelectorAll('[data-role="logs"] .line').length === 2);
  if ((await started.count()) !== 2) throw new Error(`${await started.count()} lines after a restart`);

  step("inspect and stats");
  await page.getByRole("tab", { name: "Inspect" }).click();
  await page.locator(".inspect h3", { hasText: "State" }).waitFor();
  await page.getByRole("tab", { name: "Stats" }).click();
  await page.locator(".chart figcaption", { hasText: "%" }).first().waitFor();
  await page.screenshot({ path: join(shots, "dashboard-stats.png") });

  step("unused volumes are removed from the page");
  await page.goto(`${origin}/#/resources`);
  const volumes = page.locator('section[data-kind="volumes"]');
  await volumes.locator('tr[data-name="spare"][data-used="no"]').waitFor();
  await volumes.locator('tr[data-name="shop_data"][data-used="yes"]').waitFor();
  await page.screenshot({ path: join(shots, "dashboard-resources.png"), fullPage: true });
  await volumes.locator('button[data-action="prune"]').click();
  await page.locator('dialog [data-confirm="ok"]').click();
  await volumes.locator('tr[data-name="spare"]').waitFor({ state: "detached" });
  await volumes.locator('tr[data-name="shop_data"]').waitFor();
  const left = servin("volume", "ls");
  if (left.includes("spare")) throw new Error(`spare is still there:\n${left}`);

  step("removing asks first; cancelled, nothing goes");
  await page.goto(`${origin}/#/`);
  await row("loner").locator('button[data-action="remove"]').click();
  await page.locator("dialog", { hasText: "Remove loner?" }).getByRole("button", { name: "Cancel" }).click();
  await page.locator("dialog").waitFor({ state: "detached" });
  if (!servin("ps", "-a").includes("loner")) throw new Error("a cancelled removal removed loner");
  await row("loner").locator('button[data-action="remove"]').click();
  await page.locator('dialog [data-confirm="ok"]').click();
  await row("loner").waitFor({ state: "detached" });
  if (servin("ps", "-a").includes("loner")) throw new Error("loner is still there");

  step("dark theme and a narrow window");
  await page.emulateMedia({ colorScheme: "dark" });
  await page.setViewportSize({ width: 420, height: 800 });
  await page.goto(`${origin}/#/`);
  await row("shop-web-1").waitFor();
  await page.screenshot({ path: join(shots, "dashboard-narrow-dark.png"), fullPage: true });

  step("Down asks first, then takes the project down");
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.emulateMedia({ colorScheme: "light" });
  await shop.locator('button[data-project-action="down"]').click();
  await page.locator("dialog", { hasText: "Take project shop down?" }).getByRole("button", { name: "Cancel" }).click();
  await page.locator("dialog").waitFor({ state: "detached" });
  if (!servin("ps", "-a").includes("shop-web-1")) throw new Error("a cancelled Down took shop down");
  await shop.locator('button[data-project-action="down"]').click();
  await page.locator('dialog [data-confirm="ok"]').click();
  await shop.waitFor({ state: "detached" });
  const after = servin("ps", "-a");
  if (after.includes("shop-")) throw new Error(`shop is still there after Down:\n${after}`);

  console.log("all checks passed");
} catch (e) {
  failed = true;
  console.log(`FAILED: ${e.stack ?? e}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
