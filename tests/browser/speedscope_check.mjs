// Loads profiles into speedscope in headless Chromium and reports, as JSON on
// stdout, what speedscope shows for each: every profile of the file (one per
// trace thread for trace-event JSON, one for folded stacks) with the rows of
// its Sandwich view (Total, Self, Symbol Name, as displayed), and the file
// speedscope's own Export button writes (its parsed profiles, exact weights).
//
//   node speedscope_check.mjs SPEEDSCOPE_INDEX_URL PROFILE_URL...
//
// SPEEDSCOPE_INDEX_URL is speedscope's index.html served over HTTP; each
// PROFILE_URL is fetched by speedscope itself (#profileURL=...), so it must
// be served by the same server.  Chromium is /usr/bin/chromium unless
// $CHROMIUM names another; it runs with a fresh, empty profile directory and
// never reaches the network.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const TIMEOUT_MS = 15000;
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

function die(msg) {
  process.stderr.write(`speedscope_check: ${msg}\n`);
  process.exit(2);
}

// Runs in the page: the Sandwich table's rows, and whether all are rendered
// (the list is virtualized: rows outside the viewport are not in the DOM).
function readSandwich() {
  const head = [...document.querySelectorAll('th')]
    .find((th) => th.textContent.trim() === 'Symbol Name');
  if (!head) return null;
  const view = head.closest('table').nextElementSibling;
  const rows = [...view.querySelectorAll('tr')]
    .map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent.trim()))
    .filter((cells) => cells.length === 3)
    .map(([total, self, name]) => ({ name, total, self }));
  const spacer = view.firstElementChild;
  const first = view.querySelector('tr');
  const listHeight = spacer ? spacer.getBoundingClientRect().height : 0;
  const rowHeight = first ? first.getBoundingClientRect().height : 0;
  return { rows, complete: rowHeight > 0 && rows.length * rowHeight >= listHeight - 0.5 };
}

// Runs in the page: the profiles of the file, from the profile selector's
// table (absent when the file holds one profile), and the active one's
// position, from the toolbar's "(i/N)".
function readProfiles() {
  const th = [...document.querySelectorAll('th')]
    .find((t) => t.textContent.trim() === 'Total Weight');
  const list = th ? [...th.closest('table').querySelectorAll('tbody tr')].map((tr) => {
    const td = [...tr.querySelectorAll('td')].map((c) => c.textContent.trim());
    return { name: td[1], weight: td[2] };
  }) : [];
  const pos = [...document.querySelectorAll('span')]
    .map((s) => /^\((\d+)\/(\d+)\)$/.exec(s.textContent.trim()))
    .find(Boolean);
  return { list, active: pos ? Number(pos[1]) : 1, count: pos ? Number(pos[2]) : 1 };
}

async function inspect(page, indexUrl, profileUrl) {
  const url = `${indexUrl}#profileURL=${encodeURIComponent(profileUrl)}&view=sandwich`;
  const errors = [];
  const onError = (e) => errors.push(String(e));
  page.on('pageerror', onError);
  await page.goto(url);
  try {
    await page.waitForFunction(() => {
      const th = [...document.querySelectorAll('th')]
        .find((t) => t.textContent.trim() === 'Symbol Name');
      return th && th.closest('table').nextElementSibling?.querySelector('td');
    }, null, { timeout: TIMEOUT_MS });
  } catch (e) {
    const body = (await page.textContent('body')).slice(0, 500);
    throw new Error(`speedscope showed no Sandwich table for ${profileUrl} ` +
      `(page errors: ${JSON.stringify(errors)}; page text: ${JSON.stringify(body)})`);
  }
  const title = (await page.title()).replace(/ - speedscope$/, '');
  const first = await page.evaluate(() => window.msprofReadProfiles());
  const profiles = [];
  for (let i = 1; i <= first.count; i++) {
    if (i > 1) {
      await page.keyboard.press('n');
      await page.waitForFunction((n) => window.msprofReadProfiles().active === n, i);
      // The table re-renders after the active profile changes.
      await page.waitForTimeout(50);
    }
    const sandwich = await page.evaluate(() => window.msprofReadSandwich());
    const name = first.list.length ? first.list[i - 1].name : title;
    const weight = first.list.length ? first.list[i - 1].weight : null;
    profiles.push({ index: i, name, weight, ...sandwich });
  }
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: TIMEOUT_MS }),
    page.evaluate(() => [...document.querySelectorAll('div')]
      .find((d) => d.lastChild?.nodeType === Node.TEXT_NODE && d.lastChild.textContent === 'Export')
      .click()),
  ]);
  const exported = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
  page.off('pageerror', onError);
  return { url: profileUrl, title, profiles, exported, errors };
}

async function main() {
  const [indexUrl, ...profileUrls] = process.argv.slice(2);
  if (!indexUrl || !profileUrls.length) die('usage: speedscope_check.mjs INDEX_URL PROFILE_URL...');
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!fs.existsSync(executablePath)) {
    die(`no Chromium at ${executablePath} (scripts/setup.sh installs Debian's chromium)`);
  }
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'msprof-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath, headless: true, args: ARGS, acceptDownloads: true,
      viewport: { width: 1400, height: 2000 }, timeout: TIMEOUT_MS,
    });
    await context.addInitScript(
      `window.msprofReadSandwich = ${readSandwich};\nwindow.msprofReadProfiles = ${readProfiles};`);
    const results = [];
    for (const u of profileUrls) {
      // A page per file: a new hash alone would not make speedscope reload.
      const page = await context.newPage();
      page.setDefaultTimeout(TIMEOUT_MS);
      results.push(await inspect(page, indexUrl, u));
      await page.close();
    }
    process.stdout.write(JSON.stringify({ results }) + '\n');
  } finally {
    if (context) await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

main().catch((e) => die(e.stack || String(e)));
