// Opens an `msprof report --html` page in headless Chromium, offline, and
// reports as JSON on stdout what a person would see and do there:
//
//   node html_report_check.mjs REPORT_HTML SCREENSHOT_DIR
//
// - load_ms: from navigation until every plotly chart has been drawn;
// - errors: console errors, page errors, and any request that left the file
//   (the page must open offline: every such request is refused);
// - sections: each <section>'s id, title, and whether it holds a chart;
// - flame: a click on the largest frame below the root, and the icicle's
//   root (`level`) before and after (plotly zooms into the clicked frame);
//   a search for SEARCH_TEXT and the line the page answers with;
// - hover: the hover box shown over the widest kernel of the timeline's first
//   trace (rank 0's compute kernels when there are any).
// Screenshots (the whole page, each section, the zoomed flamegraph, the
// timeline's hover)
// go to SCREENSHOT_DIR.  Chromium is /usr/bin/chromium unless $CHROMIUM
// names another; it runs with a fresh, empty profile directory.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const TIMEOUT_MS = Number(process.env.HTML_CHECK_TIMEOUT_MS || 60000);
const SEARCH_TEXT = process.env.HTML_CHECK_SEARCH || 'MatMul';
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

function die(msg) {
  process.stderr.write(`html_report_check: ${msg}\n`);
  process.exit(2);
}

async function plotsDrawn(page) {
  await page.waitForFunction(() => {
    const divs = [...document.querySelectorAll('.plotly-graph-div')];
    return divs.length > 0 && divs.every((d) => d._fullLayout && d.querySelector('.main-svg'));
  }, null, { timeout: TIMEOUT_MS, polling: 50 });
}

// In the page: the visible icicle trace's index, root level and its largest child.
function flameState() {
  const gd = document.getElementById('flame-plot');
  const i = gd.data.findIndex((t) => t.type === 'icicle' && t.visible !== false);
  const tr = gd.data[i];
  const root = tr.ids[0];
  let best = -1;
  tr.ids.forEach((id, k) => {
    if (tr.parents[k] === root && (best < 0 || tr.values[k] > tr.values[best])) best = k;
  });
  return { trace: i, level: tr.level === undefined ? root : tr.level, root,
           child: best >= 0 ? { id: tr.ids[best], label: tr.labels[best] } : null };
}

async function clickFlame(page) {
  const before = await page.evaluate(flameState);
  if (!before.child) return { before, clicked: null };
  // plotly draws each frame as a <g class="slice"> holding its label
  const slices = page.locator('#flame-plot g.slice');
  const n = await slices.count();
  let target = null;
  for (let k = 0; k < n; k++) {
    const text = (await slices.nth(k).textContent()) || '';
    if (text.trim() === before.child.label) { target = slices.nth(k); break; }
  }
  if (!target) return { before, clicked: null, error: `no frame drawn for ${before.child.label}` };
  const box = await target.boundingBox();
  await page.mouse.click(box.x + Math.min(20, box.width / 2), box.y + box.height / 2);
  await page.waitForFunction((want) => {
    const gd = document.getElementById('flame-plot');
    return gd.data.some((t) => t.type === 'icicle' && t.visible !== false && t.level === want);
  }, before.child.id, { timeout: TIMEOUT_MS }).catch(() => {});
  await page.waitForTimeout(900);   // the zoom animates for 750 ms
  const after = await page.evaluate(flameState);
  const rootText = await page.evaluate(() => {
    const s = document.querySelector('#flame-plot g.slice');
    return s ? s.textContent.trim() : null;
  });
  return { before, clicked: before.child, after, first_drawn_frame: rootText };
}

async function hoverTimeline(page) {
  await page.locator('#timeline-plot').scrollIntoViewIfNeeded();
  // the first trace: rank 0's kernels of the first kind drawn (compute, when any)
  const bars = page.locator('#timeline-plot .barlayer g.trace').first().locator('g.point path');
  const n = await bars.count();
  if (!n) return { bars: 0, text: null };
  let best = -1;
  let bestW = -1;
  for (let k = 0; k < Math.min(n, 400); k++) {
    const b = await bars.nth(k).boundingBox();
    if (b && b.width > bestW && b.height > 2) { best = k; bestW = b.width; }
  }
  // mid-screen, clear of the sticky navigation bar
  await bars.nth(best).evaluate((el) => el.scrollIntoView({ block: 'center' }));
  const b = await bars.nth(best).boundingBox();
  await page.mouse.move(b.x + b.width / 2, b.y + b.height / 2, { steps: 4 });
  const box = page.locator('#timeline-plot .hoverlayer .hovertext');
  await box.first().waitFor({ timeout: 10000 }).catch(() => {});
  const text = (await box.count()) ? await box.first().textContent() : null;
  return { bars: n, text };
}

async function main() {
  const [file, shots] = process.argv.slice(2);
  if (!file || !shots) die('usage: html_report_check.mjs REPORT_HTML SCREENSHOT_DIR');
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!fs.existsSync(executablePath)) {
    die(`no Chromium at ${executablePath} (scripts/setup.sh installs Debian's chromium)`);
  }
  fs.mkdirSync(shots, { recursive: true });
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'msprof-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath, headless: true, args: ARGS, viewport: { width: 1400, height: 1000 },
      timeout: TIMEOUT_MS,
    });
    const errors = [];
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith('file:') || url.startsWith('data:')) return route.continue();
      errors.push(`network request: ${url}`);
      return route.abort();
    });
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT_MS);
    page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
    page.on('pageerror', (e) => errors.push(`page error: ${e}`));
    const t0 = Date.now();
    await page.goto(pathToFileURL(path.resolve(file)).href, { timeout: TIMEOUT_MS });
    await plotsDrawn(page);
    const loadMs = Date.now() - t0;
    const sections = await page.evaluate(() => [...document.querySelectorAll('section')].map((s) => ({
      id: s.id, title: s.querySelector('h2')?.textContent, chart: !!s.querySelector('.js-plotly-plot'),
      missing: s.querySelector('.missing')?.textContent || null,
    })));
    // the sticky navigation bar would cover the top of each section's screenshot
    await page.addStyleTag({ content: 'nav{position:static !important}' });
    await page.screenshot({ path: path.join(shots, 'report.png'), fullPage: true });
    for (const s of sections) {
      await page.locator(`section#${s.id}`).screenshot({ path: path.join(shots, `section_${s.id}.png`) });
    }
    let flame = null;
    let search = null;
    if (await page.locator('#flame-plot').count()) {
      await page.locator('#flame-plot').scrollIntoViewIfNeeded();
      flame = await clickFlame(page);
      await page.locator('#flame').screenshot({ path: path.join(shots, 'flame_zoomed.png') });
      await page.fill('#flame-search', SEARCH_TEXT);
      await page.waitForTimeout(300);
      search = { text: SEARCH_TEXT, answer: await page.textContent('#flame-match') };
    }
    let hover = null;
    if (await page.locator('#timeline-plot').count()) {
      hover = await hoverTimeline(page);
      await page.locator('#timeline').screenshot({ path: path.join(shots, 'timeline_hover.png') });
    }
    process.stdout.write(JSON.stringify({ load_ms: loadMs, errors, sections, flame, search, hover,
      bytes: fs.statSync(file).size }) + '\n');
  } finally {
    if (context) await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

main().catch((e) => die(e.stack || String(e)));
