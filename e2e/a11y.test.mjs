// Accessibility of every page in a real browser: axe-core (zero serious or critical
// violations) at a desktop and a phone width, no sideways scrolling of the page on the phone,
// sign-out and note posting with the keyboard only, the admin chart's text alternative.
// With ROLEGATE_SCREENSHOTS=1 (dev/screenshots) it also saves the README's pictures.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

import {
  startStack, signIn, shot, docShot, freePort, startMisconfiguredRolegate, stopProcess, LOG_DIR,
} from './harness.mjs';

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const DESKTOP = { width: 1024, height: 768 };
const PHONE = { width: 375, height: 740 };

let stack;

before(async () => {
  stack = await startStack({ name: 'a11y' });
});

after(async () => {
  await stack?.stop();
});

const path = (page) => new URL(page.url()).pathname;

/** A browser context (own cookie jar) at the desktop size; signed in as `login` unless null. */
async function openAs(login) {
  const context = await stack.browser.newContext({ viewport: DESKTOP });
  const page = await context.newPage();
  if (login) {
    const cb = await signIn(stack, page, login, { shotPrefix: `a11y-${login}` });
    assert.ok(cb.status() >= 300 && cb.status() < 400, `${login}: callback status ${cb.status()}`);
  }
  return { context, page };
}

/** Runs `fn(openAs)` and closes every context it opened, even on failure. */
async function withContexts(fn) {
  const opened = [];
  try {
    return await fn(async (login) => {
      const c = await openAs(login);
      opened.push(c.context);
      return c;
    });
  } finally {
    await Promise.all(opened.map((c) => c.close().catch(() => {})));
  }
}

/** axe-core on the page as it is; returns its violations. Injected through the DevTools
 * protocol (page.evaluate), so the page's CSP stays in force. */
async function axe(page) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations;
}

const describe = (violations) => violations.map((v) => `  [${v.impact}] ${v.id}: ${v.help} (${v.helpUrl})\n${
  v.nodes.slice(0, 5).map((n) => `      ${n.target.join(' ')}\n        ${n.failureSummary.replace(/\n/g, '\n        ')}`).join('\n')}`).join('\n');

/**
 * The page's accessibility contract, at the desktop and the phone width: no serious or critical
 * axe violation (minor and moderate ones are printed), and on the phone the page itself does not
 * scroll sideways (wide tables and the chart scroll inside their own container).
 */
async function checkPage(page, label) {
  const problems = [];
  for (const [size, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await page.setViewportSize(viewport);
    const violations = await axe(page);
    const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    const other = violations.filter((v) => !bad.includes(v));
    if (other.length) console.log(`# ${label} (${size}): minor/moderate axe findings\n${describe(other)}`);
    if (bad.length) problems.push(`${label} (${size}, ${page.url()}): ${bad.length} serious/critical axe violation(s)\n${describe(bad)}`);
    if (size === 'phone') {
      await shot(page, `a11y-${label}-phone`);
      const { scrollWidth, innerWidth, wide } = await page.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth,
        innerWidth: window.innerWidth,
        wide: [...document.querySelectorAll('body *')]
          .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
          .filter((el) => !el.closest('.scroll'))
          .slice(0, 5)
          .map((el) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${el.className ? `.${String(el.className).replace(/ /g, '.')}` : ''}`),
      }));
      if (scrollWidth > innerWidth) {
        problems.push(`${label}: the page scrolls sideways at ${innerWidth} px (scrollWidth ${scrollWidth}); too wide: ${wide.join(', ')}`);
      }
    }
  }
  await page.setViewportSize(DESKTOP);
  assert.equal(problems.length, 0, problems.join('\n'));
}

/** Presses Tab until `selector` has the focus; fails after `max` presses. Returns the presses. */
async function tabTo(page, selector, max = 40) {
  for (let i = 1; i <= max; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return i;
  }
  const at = await page.evaluate(() => document.activeElement?.outerHTML.slice(0, 120));
  throw new Error(`${selector} not reached with ${max} Tab presses (focus on ${at})`);
}

/** The focused element shows a focus indicator (outline or box-shadow). */
async function assertFocusVisible(page, what) {
  const style = await page.evaluate(() => {
    const s = getComputedStyle(document.activeElement);
    return { outline: `${s.outlineStyle} ${s.outlineWidth}`, shadow: s.boxShadow };
  });
  assert.ok(!style.outline.startsWith('none') || style.shadow !== 'none', `${what}: no visible focus (${JSON.stringify(style)})`);
}

test('login page (anonymous) and the not-found page', async () => {
  await withContexts(async (open) => {
    const { page } = await open(null);
    const res = await page.goto(`${stack.appUrl}/login`);
    assert.equal(res.status(), 200);
    await docShot(page, 'login');
    await checkPage(page, 'login');
    const missing = await page.goto(`${stack.appUrl}/no-such-page`);
    assert.equal(missing.status(), 404);
    await checkPage(page, 'not-found');
  });
});

test('keyboard only: bob posts a note with Tab, typing and Enter; notes page with and without errors', async () => {
  await withContexts(async (open) => {
    const { page } = await open('bob');
    await page.goto(`${stack.appUrl}/notes`);
    await checkPage(page, 'notes-write');

    // The validation page: an empty title (the browser's own `required` check is what a
    // keyboard user meets first, so it is removed to reach the server's 422 page).
    await page.locator('#note-title').evaluate((el) => el.removeAttribute('required'));
    await page.keyboard.press('Escape');
    await page.evaluate(() => document.activeElement?.blur());
    await tabTo(page, '#note-submit', 60);
    const [invalid] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/notes'),
      page.keyboard.press('Enter'),
    ]);
    assert.equal(invalid.status(), 422);
    // Wait for the 422 page itself: 'load' can still be the old page's under load.
    await page.locator('#form-errors li').first().waitFor({ timeout: 10000 });
    await checkPage(page, 'notes-errors');

    // A fresh page: Tab to the title, type, Tab to the text, type, Tab to the button, Enter.
    await page.goto(`${stack.appUrl}/notes`);
    const title = `Keyboard note ${randomUUID().slice(0, 8)}`;
    await tabTo(page, '#note-title', 60);
    await assertFocusVisible(page, '#note-title');
    await page.keyboard.type(title);
    await page.keyboard.press('Tab');
    assert.ok(await page.evaluate(() => document.activeElement?.id === 'note-body'), 'Tab from the title goes to the text');
    await page.keyboard.type('Posted with the keyboard only.');
    await page.keyboard.press('Tab');
    assert.ok(await page.evaluate(() => document.activeElement?.id === 'note-submit'), 'Tab from the text goes to the button');
    await assertFocusVisible(page, '#note-submit');
    const [posted] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/notes'),
      page.keyboard.press('Enter'),
    ]);
    assert.ok(posted.status() >= 300 && posted.status() < 400, `POST /notes: ${posted.status()}`);
    // Wait for the page after the redirect (the list with the new note), not the old one.
    await page.locator('#note-list article.note h2', { hasText: title }).first().waitFor({ timeout: 10000 });
    assert.equal(path(page), '/notes');
    const first = (await page.locator('#note-list article.note h2').first().textContent()).trim();
    assert.equal(first, title, 'the keyboard note is the newest');
    await shot(page, 'a11y-keyboard-note-posted');
    await docShot(page, 'notes');
    await checkPage(page, 'notes-with-note');
  });
});

test('signed-in pages of each role: index, notes (read only), reports, dashboard; forbidden', async () => {
  await withContexts(async (open) => {
    const alice = await open('alice');
    await alice.page.goto(`${stack.appUrl}/`);
    await docShot(alice.page, 'index');
    await checkPage(alice.page, 'index-admin');

    const carol = await open('carol');
    await checkPage(carol.page, 'index-read');
    await carol.page.goto(`${stack.appUrl}/notes`);
    assert.equal(await carol.page.locator('#read-only').count(), 1);
    await checkPage(carol.page, 'notes-read');
    await carol.page.goto(`${stack.appUrl}/reports`);
    await checkPage(carol.page, 'reports');
    await carol.page.goto(`${stack.appUrl}/dash/`);
    await carol.page.waitForFunction(() => /^\d+$/.test(document.getElementById('note-count')?.textContent.trim() ?? ''));
    await checkPage(carol.page, 'dash');

    const denied = await carol.page.goto(`${stack.appUrl}/admin`);
    assert.equal(denied.status(), 403);
    assert.equal(await carol.page.locator('#forbidden').count(), 1);
    await docShot(carol.page, 'forbidden');
    await checkPage(carol.page, 'forbidden');
  });
});

test('sign-in error pages: a callback with a bad state, dave without a role', async () => {
  await withContexts(async (open) => {
    const { page } = await open(null);
    const res = await page.goto(`${stack.appUrl}/getAToken?code=abc&state=not-a-state-we-issued`);
    assert.ok(res.status() >= 400 && res.status() < 500, `bad state: ${res.status()}`);
    assert.equal(await page.locator('#auth-error').count(), 1);
    await docShot(page, 'auth-error');
    await checkPage(page, 'auth-error-state');

    const dave = await open(null);
    const cb = await signIn(stack, dave.page, 'dave', { shotPrefix: 'a11y-dave' });
    assert.equal(cb.status(), 403);
    assert.equal(await dave.page.locator('#auth-error[data-reason=no_role]').count(), 1);
    await checkPage(dave.page, 'auth-error-no-role');
  });
});

test('admin console: axe, the chart has a table of its numbers and readable labels, tables fit a phone', async () => {
  await withContexts(async (open) => {
    const { page } = await open('alice');
    const res = await page.goto(`${stack.appUrl}/admin`);
    assert.equal(res.status(), 200);
    await docShot(page, 'admin');
    await checkPage(page, 'admin');

    // The chart is an image with a name; its numbers are also a table with caption and headers.
    const svg = page.locator('figure#chart svg');
    assert.equal(await svg.getAttribute('role'), 'img');
    assert.match(await svg.getAttribute('aria-label') ?? '', /sign-ins/);
    const table = page.locator('figure#chart table#chart-data');
    assert.equal(await table.count(), 1, 'the chart has a data table');
    assert.match(await table.locator('caption').textContent(), /per hour/i);
    const headers = (await table.locator('thead th[scope=col]').allTextContents()).map((s) => s.trim());
    assert.deepEqual(headers, ['Hour (UTC)', 'Sign-ins', 'Refused sign-ins', 'Access denied']);
    assert.ok(await table.locator('tbody tr th[scope=row]').count() >= 1, 'a row per hour with events');
    // Reachable from the keyboard: Tab to the summary, Enter opens the table.
    await tabTo(page, '#chart-data-details > summary', 60);
    await page.keyboard.press('Enter');
    assert.ok(await table.isVisible(), 'Enter on the summary shows the table');
    // The same numbers as the audit log (every event of this run is within the 7 days).
    const totals = (await table.locator('tfoot td').allTextContents()).map(Number);
    const auditCount = async (ev) => page.locator(`table#audit tr.event-${ev}`).count();
    assert.deepEqual(totals, [
      await auditCount('sign_in'), await auditCount('sign_in_refused'), await auditCount('access_denied'),
    ], 'chart table totals = audit rows of each event');
    assert.ok(totals[0] >= 3 && totals[1] >= 1 && totals[2] >= 1, `events of the earlier tests: ${totals}`);

    // Readable labels: every text in the chart is drawn at 12 px or more, on a phone too.
    for (const viewport of [DESKTOP, PHONE]) {
      await page.setViewportSize(viewport);
      const smallest = await svg.evaluate((el) => Math.min(...[...el.querySelectorAll('text')]
        .map((t) => parseFloat(getComputedStyle(t).fontSize) * (el.getBoundingClientRect().width / el.viewBox.baseVal.width))));
      assert.ok(smallest >= 12, `chart labels at ${viewport.width} px: smallest ${smallest.toFixed(1)} px`);
    }
    await page.setViewportSize(PHONE);
    await docShot(page, 'admin-phone');
    await page.setViewportSize(DESKTOP);
  });
});

test('keyboard only: sign out with Tab and Enter, the signed-out page', async () => {
  await withContexts(async (open) => {
    const { page } = await open('bob');
    assert.equal(path(page), '/');
    await tabTo(page, '#sign-out');
    await assertFocusVisible(page, '#sign-out');
    await page.keyboard.press('Enter');
    await page.waitForURL((u) => u.href.startsWith(`${stack.appUrl}/login`), { timeout: 15000 });
    assert.equal(await page.locator('#signed-out').count(), 1, 'the signed-out message');
    await checkPage(page, 'signed-out');
    const res = await page.goto(`${stack.appUrl}/`);
    assert.equal(path(page), '/login', `signed out: GET / ends on ${page.url()} (${res.status()})`);
  });
});

test('profile page', async () => {
  await withContexts(async (open) => {
    const { page } = await open('alice');
    const res = await page.goto(`${stack.appUrl}/profile`);
    assert.equal(res.status(), 200, `GET /profile: ${res.status()}`);
    await page.locator('#profile-title').waitFor();
    await checkPage(page, 'profile');
  });
});

test('"Almost there" page of a Development start with broken settings', async () => {
  const port = await freePort();
  const app = await startMisconfiguredRolegate({
    bin: stack.bin,
    port,
    idpUrl: stack.idpUrl,
    workDir: stack.workDir,
    logFile: join(LOG_DIR, 'a11y-misconfigured-rolegate.log'),
    extraEnv: {
      APP__SERVER__PUBLIC_URL: `http://127.0.0.1:${port}`,
      APP__AUTH__CLIENT_ID: '',
      APP__SESSION__IDLE_TIMEOUT_MINUTES: 'soon',
    },
  });
  try {
    await withContexts(async (open) => {
      const { page } = await open(null);
      const res = await page.goto(`${app.url}/`);
      assert.equal(res.status(), 503);
      assert.equal(await page.locator('#config-error').count(), 1);
      assert.ok(await page.locator('#problems li').count() >= 1);
      await docShot(page, 'config-error');
      await checkPage(page, 'config-error');
    });
  } finally {
    await stopProcess(app.proc);
  }
});
