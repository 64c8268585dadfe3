// The dashboard in Debian's Chromium, driven by playwright-core. Started by .ci/browser.sh
// with a seeded node (UI_URL, UI_TOKEN, UI_VIEWER_TOKEN); prints `N passed, N failed` and
// exits 1 on any failure. Every page is walked, checked with axe (no serious or critical
// violation), and saved as a screenshot; console errors, dialogs (an XSS would open one)
// and any request leaving 127.0.0.1 fail the run.
import { chromium } from "playwright-core";
import AxeBuilder from "@axe-core/playwright";

const URL_ = process.env.UI_URL;
const TOKEN = process.env.UI_TOKEN;
const VIEWER = process.env.UI_VIEWER_TOKEN;
const CLUSTER = process.env.UI_CLUSTER_URL;
const SHOTS = process.env.SHOTS || "docs/screenshots";
const results = [];
const problems = { console: [], outside: [], dialogs: [] };

async function check(name, fn) {
  try {
    await fn();
    results.push(true);
    console.log(`ok   ${name}`);
  } catch (e) {
    results.push(false);
    console.log(`FAIL ${name}: ${e.message.split("\n")[0]}`);
  }
}

function assert(cond, what) {
  if (!cond) throw new Error(what);
}

async function api(method, path, body, base = URL_) {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: body && JSON.stringify(body),
  });
  assert(res.ok, `${method} ${path}: ${res.status}`);
  return res.json();
}

async function axe(page, name) {
  const { violations } = await new AxeBuilder({ page }).analyze();
  const bad = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert(bad.length === 0, `${name}: ${bad.map((v) => `${v.id} (${v.nodes.length})`).join(", ")}`);
}

async function shot(page, name) {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

async function session(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === "127.0.0.1") return route.continue();
    problems.outside.push(url.href);
    return route.abort();
  });
  const page = await context.newPage();
  page.on("console", (m) => m.type() === "error" && problems.console.push(`${page.url()}: ${m.text()}`));
  page.on("pageerror", (e) => problems.console.push(`${page.url()}: ${e.message}`));
  page.on("dialog", (d) => { problems.dialogs.push(d.message()); d.dismiss(); });
  return { context, page };
}

async function login(page, token, name, base = URL_) {
  await page.goto(`${base}/ui/login`);
  await page.fill("#token", token);
  await page.fill("#name", name);
  await Promise.all([page.waitForURL(`${base}/ui`), page.click("button[type=submit]")]);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const { page } = await session(browser);

await check("a page asks for the token first; a wrong token is refused", async () => {
  await page.goto(`${URL_}/ui/tasks`);
  assert(page.url().endsWith("/ui/login"), `landed on ${page.url()}`);
  await axe(page, "login");
  await shot(page, "login");
  await page.fill("#token", "wrong");
  await page.click("button[type=submit]");
  await page.getByRole("alert").waitFor();
  problems.console = problems.console.filter((m) => !m.includes("401"));
});

await check("the operator logs in and sees the overview with counts and queues", async () => {
  await login(page, TOKEN, "ci");
  await page.locator("#counts .n").first().waitFor();
  assert((await page.locator("header .who").innerText()).includes("ui:ci · operator"), "who");
  assert(await page.locator("#queues td", { hasText: "default" }).count() > 0, "the default queue");
});

await check("the overview updates live without a reload, and pauses while hidden", async () => {
  await page.locator("#live-state", { hasText: "live" }).waitFor({ timeout: 10000 });
  await page.evaluate(() => { window.__noReload = true; });
  const paused = page.locator('#counts a[href$="state=paused"] .n');
  const before = Number(await paused.innerText());
  await api("POST", "/v1/tasks", { kind: "echo", args: { live: 1 }, auto_start: false });
  await page.waitForFunction((n) => Number(document.querySelector('#counts a[href$="state=paused"] .n').textContent) === n + 1, before, { timeout: 10000 });
  assert(await page.evaluate(() => window.__noReload === true), "the page was replaced");
  for (let i = 0; i < 20; i++) await api("POST", "/v1/tasks", { kind: "echo", args: { burst: i } });
  await page.waitForFunction(() => {
    const rate = [...document.querySelectorAll("#rates .rate")].find((r) => r.textContent.includes("succeeded"));
    return rate && Number(rate.querySelector(".n").textContent) > 0;
  }, null, { timeout: 10000 });
  assert(await page.locator("#rates table.latency td", { hasText: "submit → start" }).count() === 1, "latency");
  const setHidden = (hidden) => page.evaluate((h) => {
    Object.defineProperty(document, "hidden", { value: h, configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  }, hidden);
  await setHidden(true);
  await page.locator("#live-state", { hasText: "paused while hidden" }).waitFor();
  const frozen = await page.locator("#updated").innerText();
  await setHidden(false);
  await page.locator("#live-state", { hasText: "live" }).waitFor({ timeout: 10000 });
  await page.waitForFunction((old) => document.querySelector("#updated").innerText !== old, frozen, { timeout: 10000 });
  await axe(page, "overview");
  await shot(page, "overview");
});

await check("the task list filters by state in the URL", async () => {
  await page.goto(`${URL_}/ui/tasks`);
  await axe(page, "tasks");
  await shot(page, "tasks");
  await page.selectOption("select[name=state]", "succeeded");
  await page.waitForURL(/state=succeeded/);
  await page.waitForFunction(() => [...document.querySelectorAll("table.tasks tbody tr")].every((r) => r.innerText.includes("succeeded")));
  const rows = await page.locator("table.tasks tbody tr").count();
  assert(rows >= 5, `${rows} succeeded rows`);
  await page.reload();
  assert(await page.locator("select[name=state]").inputValue() === "succeeded", "the filter survives a reload");
});

await check("an operator cancels a selection in bulk: a dry-run count, then live progress", async () => {
  const a = await api("POST", "/v1/tasks", { kind: "echo", args: { bulk: 1 }, auto_start: false, title: "bulk one" });
  const b = await api("POST", "/v1/tasks", { kind: "echo", args: { bulk: 2 }, auto_start: false, title: "bulk two" });
  await page.goto(`${URL_}/ui/tasks?state=paused`);
  await page.check(`input[name=id][value="${a.id}"]`);
  await page.check(`input[name=id][value="${b.id}"]`);
  await page.selectOption("form#bulk select[name=action]", "cancel");
  await page.click("form#bulk button[type=submit]");
  await page.locator("#bulk-count strong", { hasText: "2" }).waitFor();
  await axe(page, "bulk dry run");
  await page.click("button:has-text('Start: cancel 2 task(s)')");
  await page.waitForURL(/\/ui\/bulk\/\d+$/);
  await page.locator("#live-state", { hasText: "live" }).waitFor({ timeout: 10000 });
  await page.locator("#bulk-state", { hasText: "finished" }).waitFor({ timeout: 10000 });
  assert((await page.locator("#bulk-counts").innerText()).includes("2 of 2 processed: 2 changed"), "progress");
  await axe(page, "bulk progress");
  await shot(page, "bulk");
  await page.goto(`${URL_}/ui/tasks/${a.id}`);
  const events = await page.locator("li.ev").allInnerTexts();
  assert(events.some((e) => e.includes("cancelled") && e.includes("by ui:ci")), `events: ${events.join(" | ")}`);
});

await check("a hostile task is shown as text, and the failed one shows its attempts", async () => {
  await page.goto(`${URL_}/ui/tasks?kind=echo`);
  const all = await api("GET", "/v1/tasks?kind=echo&limit=100");
  const hostile = all.tasks.find((t) => t.args.note);
  await page.goto(`${URL_}/ui/tasks/${hostile.id}`);
  assert((await page.locator("pre.json").first().innerText()).includes("<script>alert(1)</script>"), "args as text");
  const failed = (await api("GET", "/v1/tasks?kind=fail")).tasks[0];
  await api("GET", `/v1/tasks/${failed.id}/wait?timeout_ms=20000`);
  await page.goto(`${URL_}/ui/tasks/${failed.id}`);
  assert(await page.locator("li.lane h3", { hasText: "Attempt 2" }).count() === 1, "a lane per attempt");
  await axe(page, "task");
  await shot(page, "task");
});

await check("the error filter lives in the URL; an operator retries failed tasks and deletes cancelled ones in bulk", async () => {
  await page.goto(`${URL_}/ui/tasks`);
  await page.fill("#filter-error", "said 503");
  await page.press("#filter-error", "Enter");
  await page.waitForURL(/error=said(\+|%20)503/);
  await page.locator("table.tasks tbody tr").first().waitFor();
  const rows = await page.locator("table.tasks tbody tr").allInnerTexts();
  assert(rows.length === 1 && rows[0].includes("upstream said 503"), `rows: ${rows.join(" | ")}`);
  assert((await page.locator("#task-list .summary").innerText()).includes("whose last error contains"), "the summary says what was searched");
  await page.reload();
  assert(await page.locator("#filter-error").inputValue() === "said 503", "the filter survives a reload");
  await page.selectOption("form#bulk select[name=action]", "retry");
  await page.check("form#bulk input[name=scope][value=filter]");
  await page.click("form#bulk button[type=submit]");
  await page.locator("#bulk-count strong").waitFor();
  await page.click("button:has-text('Start: retry')");
  await page.locator("#bulk-state", { hasText: "finished" }).waitFor({ timeout: 10000 });
  assert((await page.locator("#bulk-counts").innerText()).includes("1 changed"), await page.locator("#bulk-counts").innerText());
  const failed = (await api("GET", "/v1/tasks?kind=fail")).tasks[0];
  await page.goto(`${URL_}/ui/tasks/${failed.id}`);
  const events = await page.locator("li.ev").allInnerTexts();
  assert(events.some((e) => e.includes("restarted") && e.includes("by ui:ci")), `events: ${events.join(" | ")}`);

  await page.goto(`${URL_}/ui/tasks?state=cancelled`);
  const cancelled = await page.locator("table.tasks tbody tr").count();
  assert(cancelled >= 2, `${cancelled} cancelled`);
  await page.selectOption("form#bulk select[name=action]", "delete");
  await page.check("form#bulk input[name=scope][value=filter]");
  await page.click("form#bulk button[type=submit]");
  await page.locator("#bulk-count strong", { hasText: String(cancelled) }).waitFor();
  await page.click("button:has-text('Start: delete')");
  await page.locator("#bulk-state", { hasText: "finished" }).waitFor({ timeout: 10000 });
  assert((await page.locator("#bulk-counts").innerText()).includes(`${cancelled} changed`), await page.locator("#bulk-counts").innerText());
  await page.goto(`${URL_}/ui/tasks?state=cancelled`);
  await page.locator("p.empty", { hasText: "No task matches." }).waitFor();
});

await check("an operator pauses a queue; a task in it updates live, then is paused, resumed and cancelled", async () => {
  await page.goto(`${URL_}/ui/queues`);
  await page.click("button:text-is('Pause')");
  await page.locator("td .badge.paused").waitFor();
  assert(await page.locator("table.gates td a", { hasText: "fail" }).count() === 1, "a row per kind in the breaker table");
  assert(await page.locator("table.gates th", { hasText: "tokens left" }).count() === 1, "the rate limits' tokens");
  await axe(page, "queues");
  await shot(page, "queues");
  const held = await api("POST", "/v1/tasks", { kind: "echo", args: { held: 2 }, title: "waits in a paused queue" });
  await page.goto(`${URL_}/ui/tasks/${held.id}`);
  await page.locator("#live-state", { hasText: "live" }).waitFor({ timeout: 10000 });
  await page.evaluate(() => { window.__noReload = true; });
  await api("POST", `/v1/tasks/${held.id}/pause`);
  await page.locator("#task-live .badge.state-paused").waitFor({ timeout: 10000 });
  assert(await page.evaluate(() => window.__noReload === true), "the task page was replaced");
  await page.reload();
  await page.click("button:text-is('Resume')");
  await page.locator(".notice", { hasText: "Resume done" }).waitFor();
  await page.click("button:text-is('Pause')");
  await page.locator(".notice", { hasText: "Pause done" }).waitFor();
  await page.click("button:text-is('Resume')");
  await page.locator(".notice", { hasText: "Resume done" }).waitFor();
  await page.click("button:text-is('Cancel…')");
  await page.fill("#reason", "not needed");
  await page.click("button:text-is('Cancel the task')");
  await page.locator(".badge.state-cancelled").first().waitFor();
  const events = await page.locator("li.ev").allInnerTexts();
  for (const what of ["paused", "resumed", "cancelled"]) {
    assert(events.some((e) => e.includes(what) && e.includes("by ui:ci")), `${what}: ${events.join(" | ")}`);
  }
  await page.goto(`${URL_}/ui/queues`);
  await page.click("button:text-is('Resume')");
  await page.locator(".notice", { hasText: "Resume done" }).waitFor();
});

await check("the overview's chart marks the queue's pause and resume", async () => {
  await page.goto(`${URL_}/ui`);
  await page.locator("#live-state", { hasText: "live" }).waitFor({ timeout: 10000 });
  await page.locator("#rates svg.chart").waitFor({ timeout: 10000 });
  const seen = (whats) => {
    const marks = [...document.querySelectorAll("#rates ol.marks li")].map((li) => li.textContent);
    return whats.every((w) => marks.some((m) => m.includes(w)));
  };
  await page.waitForFunction(seen, ["queue default paused", "queue default resumed"], { timeout: 10000 });
  assert(await page.locator("#rates svg.chart line.mark-paused").count() >= 1, "a mark line for the pause");
  assert(await page.locator("#rates svg.chart polyline.s-succeeded").count() === 1, "a line for succeeded");
  await axe(page, "overview with marks");
  await shot(page, "overview");
});

await check("schedules show their next fires and fire a slot on demand", async () => {
  await page.goto(`${URL_}/ui/schedules`);
  const card = page.locator("section.schedule", { hasText: "nightly-report" });
  assert((await card.locator("table.fires tbody tr").count()) === 5, "five next fires");
  const text = await card.innerText();
  assert(text.includes("CET") || text.includes("CEST"), "Berlin time");
  assert(/Next daylight-saving change[\s\S]*Clocks go (forward|back)/.test(text), "the DST change in words");
  const yours = await card.locator("table.fires time.local").first().innerText();
  assert(!yours.includes("needs JavaScript") && yours.length > 5, `the viewer's zone: ${yours}`);
  assert((await card.locator(".words").innerText()) === "at 02:30 every day", "the expression in words");
  await axe(page, "schedules");
  await shot(page, "schedules");
  await card.locator("button:text-is('Fire the next slot now')").click();
  await page.locator(".notice", { hasText: "Slot fired" }).waitFor();
  const events = await page.locator("li.ev").allInnerTexts();
  assert(events.some((e) => e.includes("created") && e.includes("by ui:ci")), `events: ${events.join(" | ")}`);
});

await check("an operator fires a chosen missed slot once: firing it again shows the same task", async () => {
  const past = new Date(Date.now() - 30 * 60000);
  past.setUTCSeconds(0, 0);
  const slot = past.toISOString().slice(0, 19);
  const fire = async () => {
    await page.goto(`${URL_}/ui/schedules`);
    const card = page.locator("section.schedule", { hasText: "every-minute" });
    await card.locator("input[type=datetime-local][name=slot]").fill(slot);
    await card.locator("button:text-is('Fire this slot')").click();
    await page.waitForURL(/\/ui\/tasks\/[0-9a-f-]+\?done=/);
    return page.url();
  };
  const first = await fire();
  assert(first.endsWith("?done=fire"), first);
  await page.locator(".notice", { hasText: "Slot fired: this is its task" }).waitFor();
  const events = await page.locator("li.ev").allInnerTexts();
  assert(events.some((e) => e.includes("created") && e.includes("by ui:ci")), `events: ${events.join(" | ")}`);
  const second = await fire();
  assert(second === first.replace("?done=fire", "?done=fired-before"), `${second} after ${first}`);
  await page.locator(".notice", { hasText: "That slot had fired before" }).waitFor();
  const same = await api("GET", `/v1/tasks?kind=noop&limit=100`);
  const key = `cron:every-minute:${slot}Z`;
  assert(same.tasks.filter((t) => t.unique_key === key).length === 1, `one task with ${key}`);
});

await check("an operator adds a schedule and edits it from the UI", async () => {
  await page.goto(`${URL_}/ui/schedules`);
  await page.click("a:text-is('Add a schedule')");
  await page.fill("#s-name", "weekday-digest");
  await page.fill("#s-cron", "0 */15 * * * Mon-Fri");
  await page.fill("#s-kind", "noop");
  await page.fill("#s-args", "{}");
  await axe(page, "schedule form");
  await page.click("button:text-is('Save the schedule')");
  await page.locator(".notice", { hasText: "Schedule saved" }).waitFor();
  const card = page.locator("section.schedule", { hasText: "weekday-digest" });
  assert((await card.locator(".words").innerText()) === "every 15 minutes on Mon through Fri", "words");
  await card.locator("a:text-is('Edit')").click();
  await page.fill("#s-zone", "Asia/Tokyo");
  await page.click("button:text-is('Save the schedule')");
  await page.locator(".notice", { hasText: "Schedule saved" }).waitFor();
  const text = await page.locator("section.schedule", { hasText: "weekday-digest" }).innerText();
  assert(text.includes("Asia/Tokyo"), "the edit shows");
});

await check("in a cluster the task list filters by the node a task ran on", async () => {
  if (!CLUSTER) {
    assert(process.env.TASKMESH_BROWSER_NO_PG === "1", "no cluster to check: PostgreSQL was not running");
    return;
  }
  // The seeded echo tasks end within a second; poll the API against a deadline.
  const deadline = Date.now() + 20000;
  let ended;
  for (;;) {
    ended = (await api("GET", "/v1/tasks?kind=echo&state=succeeded&limit=100", undefined, CLUSTER)).tasks;
    if (ended.length >= 6) break;
    assert(Date.now() < deadline, `seeded cluster tasks ended: ${ended.length} of 6`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const node = ended[0].node;
  assert(node === "c1" || node === "c2", `a task's node: ${node}`);
  const want = ended.filter((t) => t.node === node).length;
  const c = await session(browser);
  await login(c.page, TOKEN, "ci", CLUSTER);
  await c.page.goto(`${CLUSTER}/ui/tasks?kind=echo`);
  assert(await c.page.locator("table.tasks th", { hasText: /^node$/ }).count() === 1, "a node column");
  await c.page.selectOption("#filter-node", node);
  await c.page.waitForURL(new RegExp(`node=${node}`));
  await c.page.locator("#task-list .summary", { hasText: `${want} matching` }).waitFor();
  const cells = await c.page.locator("table.tasks tbody tr td:nth-child(7)").allInnerTexts();
  assert(cells.length === want && cells.every((n) => n === node), `rows of ${node}: ${cells.join(",")}`);
  await axe(c.page, "tasks by node");
  await c.context.close();
});

await check("the cluster page shows both nodes up and the cron leader live, and drains this node", async () => {
  if (!CLUSTER) {
    await page.goto(`${URL_}/ui/cluster`);
    assert((await page.locator("main").innerText()).includes("not in a cluster"), "a node alone says so");
    assert(process.env.TASKMESH_BROWSER_NO_PG === "1", "no cluster to check: PostgreSQL was not running");
    return;
  }
  const c = await session(browser);
  await login(c.page, TOKEN, "ci", CLUSTER);
  await c.page.goto(`${CLUSTER}/ui/cluster`);
  await c.page.locator("#live-state", { hasText: "live" }).waitFor({ timeout: 10000 });
  await c.page.waitForFunction(() => {
    const rows = [...document.querySelectorAll("table.nodes tbody tr")];
    return rows.length === 2 && rows.every((r) => r.querySelector(".badge.node-up"));
  }, null, { timeout: 20000 });
  assert(await c.page.locator("table.nodes tr.this", { hasText: "c1" }).count() === 1, "this node is c1");
  await c.page.locator(".cron-leader strong", { hasText: /^c[12]$/ }).waitFor({ timeout: 20000 });
  assert(/epoch \d+, lease \d+\.\d s left/.test(await c.page.locator(".cron-leader").innerText()), "the lease's epoch and time left");
  await axe(c.page, "cluster");
  await shot(c.page, "cluster");
  await c.page.click("button:text-is('Drain this node')");
  await c.page.click("button:text-is('Drain the node')");
  await c.page.locator(".notice", { hasText: "Drain started" }).waitFor();
  await c.page.locator("table.nodes tr.this .badge.node-draining").waitFor({ timeout: 10000 });
  await c.page.locator("#nodes .notice", { hasText: "Draining: empty" }).waitFor({ timeout: 10000 });
  await c.context.close();
});

await check("keyboard shortcuts move between pages", async () => {
  await page.goto(`${URL_}/ui`);
  await page.keyboard.press("g");
  await page.keyboard.press("t");
  await page.waitForURL(`${URL_}/ui/tasks`);
  await page.keyboard.press("/");
  assert(await page.evaluate(() => document.activeElement.name === "state"), "/ focuses the filter");
});

await check("a viewer sees the pages and no action", async () => {
  const viewer = await session(browser);
  await login(viewer.page, VIEWER, "val");
  const one = (await api("GET", "/v1/tasks?state=paused")).tasks[0];
  await viewer.page.goto(`${URL_}/ui/tasks/${one.id}`);
  assert(await viewer.page.locator("section.actions").count() === 0, "no actions");
  await viewer.page.goto(`${URL_}/ui/tasks`);
  assert(await viewer.page.locator("form#bulk, input[name=id]").count() === 0, "no bulk form");
  await viewer.page.goto(`${URL_}/ui/queues`);
  assert(await viewer.page.locator("form.action").count() === 0, "no queue actions");
  await viewer.context.close();
});

await check("no console error, no dialog, no request left 127.0.0.1", async () => {
  assert(problems.console.length === 0, `console: ${problems.console.join(" | ")}`);
  assert(problems.dialogs.length === 0, `dialogs: ${problems.dialogs.join(" | ")}`);
  assert(problems.outside.length === 0, `outside: ${problems.outside.join(" | ")}`);
});

await browser.close();
const passed = results.filter(Boolean).length;
const failed = results.length - passed;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
