// The DemoApp's profile pages in a real browser against the dev IdP and its Graph-shaped
// resource server (issue 12, items 3 and 4): /profile shows Graph's /me read on the user's
// behalf; /profile/events needs Calendars.Read, which the sign-in did not ask for, so the
// browser goes through the IdP's consent page and comes back to the same page; a declined
// consent is a clear page, not a loop.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { startStack, signIn, shot } from './harness.mjs';

let stack;

before(async () => {
  stack = await startStack({ name: 'profile' });
});

after(async () => {
  await stack?.stop();
});

async function browserAs(login) {
  const context = await stack.browser.newContext();
  const page = await context.newPage();
  const cb = await signIn(stack, page, login, { shotPrefix: `profile-${login}` });
  assert.ok(cb.status() >= 300 && cb.status() < 400, `${login}: callback status ${cb.status()}`);
  return { context, page };
}

const path = (page) => new URL(page.url()).pathname;

test('/profile shows the Graph-shaped /me of the signed-in user', async () => {
  const { context, page } = await browserAs('carol');
  try {
    const res = await page.goto(`${stack.appUrl}/profile`);
    assert.equal(res.status(), 200);
    assert.equal(await page.locator('#profile-title').textContent(), 'Carol Reader');
    assert.equal(await page.locator('#profile-job-title').textContent(), 'Analyst');
    assert.equal(await page.locator('#profile-upn').textContent(), 'carol@rolegate.dev');
    await shot(page, 'profile-01-me');
    // No token in the page.
    assert.doesNotMatch(await page.content(), /eyJ[A-Za-z0-9_-]{10,}\./);
  } finally {
    await context.close();
  }
});

test('a new scope asked mid-session goes through consent and back to the same page', async () => {
  const { context, page } = await browserAs('bob');
  try {
    await page.goto(`${stack.appUrl}/profile`);
    await page.locator('#profile-events-link').click();
    // The IdP asks for the one scope the sign-in did not have.
    await page.waitForURL((u) => u.href.startsWith(`${stack.idpUrl}/interaction/`));
    const asked = await page.locator('#consent-scopes').textContent();
    assert.match(asked, /Calendars\.Read/);
    assert.doesNotMatch(asked, /User\.Read/, 'User.Read is already granted');
    await shot(page, 'profile-02-consent');
    await page.locator('#consent-accept').click();
    await page.waitForURL((u) => u.href.startsWith(`${stack.appUrl}/profile/events`));
    assert.equal(path(page), '/profile/events');
    const subjects = await page.locator('#event-list .event-subject').allTextContents();
    assert.deepEqual(subjects, ['Roles review', 'Release planning']);
    await shot(page, 'profile-03-events');

    // Granted once: the next visit needs no IdP round trip, and /profile still works.
    const again = await page.goto(`${stack.appUrl}/profile/events`);
    assert.equal(again.status(), 200);
    assert.equal(path(page), '/profile/events');
    assert.equal((await page.goto(`${stack.appUrl}/profile`)).status(), 200);
  } finally {
    await context.close();
  }
});

test('a declined consent is a clear page and the session stays', async () => {
  const { context, page } = await browserAs('alice');
  try {
    await page.goto(`${stack.appUrl}/profile/events`);
    await page.waitForURL((u) => u.href.startsWith(`${stack.idpUrl}/interaction/`));
    const back = page.waitForResponse((r) => new URL(r.url()).pathname === '/getAToken');
    await page.locator('#consent-decline').click();
    const callback = await back;
    await page.waitForLoadState('load');
    assert.equal(callback.status(), 403);
    assert.equal(path(page), '/getAToken', 'no redirect: the page stays');
    const reason = await page.locator('[data-reason]').first().getAttribute('data-reason');
    assert.equal(reason, 'consent_declined');
    await shot(page, 'profile-04-declined');
    // Still signed in, the rest works.
    assert.equal((await page.request.get(`${stack.appUrl}/api/me`)).status(), 200);
    assert.equal((await page.goto(`${stack.appUrl}/profile`)).status(), 200);
    const log = readFileSync(stack.logs.rolegate, 'utf8');
    assert.match(log, /reason="?consent_declined/);
  } finally {
    await context.close();
  }
});
