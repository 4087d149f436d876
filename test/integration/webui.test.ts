/**
 * The web view of `kiln serve` (/ui) in a real browser: Debian's chromium driven headless by playwright-core against
 * a real server on a free loopback port with a temp root. Sign in with a key, watch a running build's steps turn
 * CACHED/DONE live, open a miss reason, see templates and cache figures; a wrong key shows an error, not data.
 * Screenshots go to a temp artifacts dir (its path is printed).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { cleanup, newRoot, requireIntegration } from '../helpers/kiln.js';
import { api, newTeamKey, startServe, waitBuild, type ServeProcess } from '../helpers/serve.js';

const CHROMIUM = '/usr/bin/chromium';

/** In the page: every element with its own text whose colour is below 4.5:1 against its background (plain JS). */
const CONTRAST_SCRIPT = `(() => {
      const rgb = (c) => (c.match(/[0-9.]+/g) ?? []).map(Number);
      const lum = (c) => {
        const [r, g, b] = c.slice(0, 3).map((v) => { const s = v / 255; return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4; });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
      };
      const bgOf = (el) => {
        for (let e = el; e; e = e.parentElement) {
          const c = rgb(getComputedStyle(e).backgroundColor);
          if (c.length >= 3 && (c.length < 4 || c[3] > 0)) return c;
        }
        return [255, 255, 255];
      };
      const out = [];
      let checked = 0;
      for (const el of Array.from(document.querySelectorAll('body *'))) {
        if (el.closest('svg') || !Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
        checked++;
        const a = lum(rgb(getComputedStyle(el).color));
        const b = lum(bgOf(el));
        const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        if (ratio < 4.5) out.push(\`\${el.tagName}.\${el.className}: \${ratio.toFixed(2)}\`);
      }
      return { checked, poor: out };
    })()`;

describe('kiln serve web view', () => {
  let root: string;
  let server: ServeProcess | undefined;
  let browser: Browser | undefined;
  let key: string;
  let otherKey: string;
  let artifacts: string;
  let ok = true;

  before(async (t) => {
    ok = requireIntegration(t as never);
    if (!ok) return;
    if (!existsSync(CHROMIUM)) {
      if (process.env.CI === 'true') throw new Error(`web view test cannot run under CI: ${CHROMIUM} is missing (apt-get install chromium)`);
      ok = false;
      (t as unknown as { skip(m: string): void }).skip('chromium is not installed');
      return;
    }
    root = await newRoot();
    key = newTeamKey(root, 'web');
    otherKey = newTeamKey(root, 'other');
    server = await startServe(root, ['--max-builds', '2']);
    artifacts = mkdtempSync(path.join(tmpdir(), 'kiln-webui-artifacts-'));
    process.stdout.write(`# web view screenshots: ${artifacts}\n`);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      // playwright gives chromium a fresh --user-data-dir of its own (a temp dir it removes at close) and refuses one passed here
    });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    await cleanup(...(root ? [root] : []));
  });

  async function signIn(page: Page, k: string): Promise<void> {
    await page.goto(`${server!.url}/ui/`);
    await page.getByLabel('API key').fill(k);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  test('a wrong key shows an error view and no data', async (t) => {
    if (!ok) return t.skip('integration');
    // a build of this team exists, so a data leak would be visible
    const b = await api(server!.url, key, 'POST', '/v1/builds', { dockerfile: 'FROM busybox:latest\nRUN echo seen > /s\n', context: [], name: 'secret-of-web' });
    assert.equal(b.status, 202, b.text);
    await waitBuild(server!.url, key, (b.body as { id: string }).id);
    const ctx = await browser!.newContext();
    const page = await ctx.newPage();
    // keyboard only: the key field has focus on load, Enter submits
    await page.goto(`${server!.url}/ui/`);
    await page.waitForFunction("document.activeElement?.id === 'api-key'");
    await page.keyboard.type('kiln_k00000000_not-a-real-key');
    await page.keyboard.press('Enter');
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.innerText(), /not accepted.*not valid/s);
    assert.equal(await page.locator('table').count(), 0, 'no table of data');
    assert.doesNotMatch(await page.content(), /secret-of-web/);
    assert.equal(await page.evaluate<string | null>("sessionStorage.getItem('kiln.apiKey')"), null, 'a wrong key is not kept');
    // the JSON views refuse it too
    assert.equal((await api(server!.url, 'kiln_k00000000_nope', 'GET', '/ui/api/builds')).status, 401);
    assert.equal((await api(server!.url, undefined, 'GET', '/ui/api/cache')).status, 401);
    await page.screenshot({ path: path.join(artifacts, 'wrong-key.png'), fullPage: true });
    await ctx.close();
  });

  test('sign in, follow a running build live: CACHED and DONE steps, a miss reason, logs, then templates and cache', async (t) => {
    if (!ok) return t.skip('integration');
    const url = server!.url;
    const first = 'FROM busybox:latest\nRUN echo base > /base\nRUN echo v1 > /v\n';
    const b1 = await api(url, key, 'POST', '/v1/builds', { dockerfile: first, context: [], name: 'webapp' });
    assert.equal(b1.status, 202, b1.text);
    const done1 = await waitBuild(url, key, (b1.body as { id: string }).id);
    assert.equal(done1.status, 'success', done1.error ?? '');

    const ctx = await browser!.newContext({ viewport: { width: 1100, height: 900 } });
    const page = await ctx.newPage();
    await signIn(page, key);
    await page.getByTestId('team').waitFor();
    assert.equal(await page.getByTestId('team').innerText(), 'web');
    assert.equal(await page.evaluate<string | null>("sessionStorage.getItem('kiln.apiKey')"), key, 'the key is kept in the session');
    const keyId = /^kiln_(k[0-9a-f]+)_/.exec(key)![1]!;
    const row1 = page.locator(`tr[data-build="${(b1.body as { id: string }).id}"]`);
    await row1.waitFor();
    // FROM (the base image, cached) and two RUNs that ran
    assert.match(await row1.innerText(), /webapp[\s\S]*success[\s\S]*1\/3/);
    assert.match(await row1.innerText(), new RegExp(keyId), 'who started it: the key id');
    // kept with the build in the store (every API node shows it), not in a file of this node's team root
    const view1 = await api(url, key, 'GET', `/v1/builds/${(b1.body as { id: string }).id}`);
    assert.equal((view1.body as { startedBy: string | null }).startedBy, keyId);
    const { readdirSync } = await import('node:fs');
    const teamFiles = readdirSync(path.join(root, 'teams')).flatMap((d) => readdirSync(path.join(root, 'teams', d)));
    assert.ok(!teamFiles.some((f) => f.includes('starters')), `no starters file (${teamFiles.join(', ')})`);

    // the second build reuses the first RUN and reruns the changed one, slowly enough to be watched running
    const second = 'FROM busybox:latest\nRUN echo base > /base\nRUN for i in 1 2 3 4 5 6 7 8; do echo tick $i; sleep 0.4; done; echo v2 > /v\n';
    const b2 = await api(url, key, 'POST', '/v1/builds', { dockerfile: second, context: [], name: 'webapp' });
    assert.equal(b2.status, 202, b2.text);
    const id2 = (b2.body as { id: string }).id;
    await page.locator(`tr[data-build="${id2}"] a`).click();
    const steps = page.locator('li.step');
    const slow = page.locator('li.step', { hasText: 'tick' });
    await slow.locator('[data-state="running"]').waitFor({ timeout: 60_000 });
    await page.screenshot({ path: path.join(artifacts, 'build-running.png'), fullPage: true });
    const cachedStep = page.locator('li.step', { hasText: 'echo base' });
    assert.equal(await cachedStep.locator('.mark').innerText(), 'CACHED');
    // logs stream in while it runs
    await slow.locator('pre', { hasText: 'tick 2' }).waitFor({ timeout: 30_000 });
    await slow.locator('[data-state="done"]').waitFor({ timeout: 60_000 });
    assert.equal(await slow.locator('.mark').innerText(), 'DONE');
    await page.locator('.status-success').first().waitFor({ timeout: 30_000 });
    assert.ok((await steps.count()) >= 2);
    // why it missed: the explain data of the finished build
    const summary = slow.getByText('Why it ran');
    await summary.waitFor({ timeout: 30_000 });
    await summary.focus();
    await page.keyboard.press('Enter');
    const reason = slow.locator('.miss-reason');
    await reason.waitFor();
    const api2 = (await api(url, key, 'GET', `/v1/builds/${id2}`)).body as { result: { steps: Array<{ name: string; cached: boolean; missReason?: string }> } };
    const expected = api2.result.steps.find((s) => !s.cached && s.name.includes('tick'))?.missReason;
    assert.ok(expected, 'the API gives a miss reason for the changed step');
    assert.equal(await reason.innerText(), expected);
    assert.equal(await cachedStep.getByText('Why it ran').count(), 0, 'a cached step has no miss reason');
    // the step chart shows what the cached RUN saved: what it took in the first build
    const took = done1.result!.steps.find((s) => s.name.includes('echo base'))!.durationMs;
    const stepChart = page.locator('figure.chart', { hasText: 'Step durations' });
    await stepChart.locator('rect.bar-saved').first().waitFor();
    assert.equal(await stepChart.locator('rect.bar-saved').count(), 1, 'one cached RUN that ran before (FROM never ran)');
    const saved = (await api(url, key, 'GET', `/ui/api/builds/${id2}/saved`)).body as { steps: Array<{ name: string; savedMs: number | null }> };
    assert.equal(saved.steps.find((s) => s.name.includes('echo base'))?.savedMs, took);
    await page.screenshot({ path: path.join(artifacts, 'build-finished.png'), fullPage: true });
    // contrast: every text on the page (marks, statuses, links, muted text) is at least 4.5:1 against its background
    const contrast = (await page.evaluate(CONTRAST_SCRIPT)) as { checked: number; poor: string[] };
    assert.ok(contrast.checked >= 10, `checked ${contrast.checked} texts`);
    assert.deepEqual(contrast.poor, [], 'text contrast below 4.5:1');

    // templates with tags and sizes
    await page.getByRole('link', { name: 'Templates' }).click();
    const tpl = page.locator('tr[data-template="webapp"][data-loaded="yes"]');
    await tpl.waitFor();
    assert.match(await tpl.innerText(), /latest[\s\S]*\d+(\.\d)? (B|KiB|MiB)/);
    await page.screenshot({ path: path.join(artifacts, 'templates.png'), fullPage: true });

    // the cache: hit rate per template, time saved, the chart
    await page.getByRole('link', { name: 'Cache' }).click();
    const row = page.locator('tr', { hasText: 'webapp' });
    await row.waitFor();
    // two builds of webapp: 1/3 then 2/3 steps cached (the earlier secret-of-web build is its own template)
    assert.match(await row.innerText(), /webapp\s+2\s+3\/6\s+50%/);
    assert.ok((await page.locator('figure.chart rect.bar-saved').count()) >= 1, 'the second build saved time');
    assert.match(await page.getByTestId('cache-size').innerText(), /^\d+(\.\d)? (KiB|MiB|GiB)$/);
    // cache size over builds: one point per successful build, never shrinking (bytes held now, by when added)
    const line = page.locator('figure.chart', { hasText: 'Cache size over builds' });
    assert.equal(await line.locator('circle.dot').count(), 3);
    const ys = await line.locator('circle.dot').evaluateAll((els) => els.map((e) => Number(e.getAttribute('cy'))));
    assert.ok(ys[0]! >= ys[1]! && ys[1]! >= ys[2]!, `growing: ${ys.join(', ')}`);
    await page.screenshot({ path: path.join(artifacts, 'cache.png'), fullPage: true });

    // phone width: the same page, laid out in one column, without a horizontal scroll bar
    await page.setViewportSize({ width: 375, height: 800 });
    await page.getByRole('link', { name: 'Builds' }).click();
    await page.locator(`tr[data-build="${id2}"]`).waitFor();
    const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    assert.ok(overflow <= 0, `no horizontal scrolling at phone width (${overflow}px over)`);
    await page.screenshot({ path: path.join(artifacts, 'builds-phone.png'), fullPage: true });

    // another team's key sees none of it
    const other = await browser!.newContext();
    const op = await other.newPage();
    await signIn(op, otherKey);
    await op.getByTestId('team').waitFor();
    await op.getByText('No builds yet.').waitFor();
    await other.close();
    await ctx.close();
  });
});
