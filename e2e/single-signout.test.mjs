// Single sign-out (issue 12, item 6) in real browsers against the dev IdP (oidc-provider with
// back-channel logout): signing out at the IdP, not at rolegate, ends alice's rolegate sessions
// in both of her browsers, and nobody else's.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { startStack, signIn, shot } from './harness.mjs';

let stack;

before(async () => {
  stack = await startStack({ name: 'single-signout' });
});

after(async () => {
  await stack?.stop();
});

/** A browser (own cookie jar) signed in as `login`. */
async function browserAs(login, shotPrefix) {
  const context = await stack.browser.newContext();
  const page = await context.newPage();
  const cb = await signIn(stack, page, login, { shotPrefix });
  assert.ok(cb.status() >= 300 && cb.status() < 400, `${login}: callback status ${cb.status()}`);
  return { context, page };
}

const meStatus = async (page) => (await page.request.get(`${stack.appUrl}/api/me`)).status();

test('alice in two browsers signs out at the IdP: both rolegate sessions end, bob stays', async () => {
  const first = await browserAs('alice', 'sso-alice-1');
  const second = await browserAs('alice', 'sso-alice-2');
  const bob = await browserAs('bob', 'sso-bob');
  try {
    assert.equal(await meStatus(first.page), 200);
    assert.equal(await meStatus(second.page), 200);

    // Sign out at the identity provider itself (its end-session page), not through rolegate.
    await first.page.goto(`${stack.idpUrl}/session/end`);
    await first.page.locator('#idp-signed-out').waitFor({ timeout: 15000 });
    await shot(first.page, 'sso-01-idp-signed-out');

    assert.equal(await meStatus(first.page), 401, 'the browser that signed out at the IdP');
    assert.equal(await meStatus(second.page), 401, "alice's other browser");
    assert.equal(await meStatus(bob.page), 200, 'another user is untouched');

    // The page itself: a guarded page sends the ended session to sign in again.
    await second.page.goto(`${stack.appUrl}/notes`);
    assert.equal(new URL(second.page.url()).pathname, '/login');
    await shot(second.page, 'sso-02-other-browser-signed-out');

    const log = readFileSync(stack.logs.rolegate, 'utf8');
    assert.match(log, /signed out at the identity provider \(back-channel\)/);
    const idpLog = readFileSync(stack.logs.idp, 'utf8');
    assert.match(idpLog, /back-channel logout of \S+ sent to rolegate-dev/);
  } finally {
    await Promise.all([first, second, bob].map((b) => b.context.close().catch(() => {})));
  }
});
