// Single sign-out (issue 12, item 6) in real browsers against the dev IdP: signing out at the
// IdP (oidc-provider, back-channel logout), not at rolegate, ends alice's rolegate sessions in
// both of her browsers and nobody else's; and Entra's front-channel logout (the Entra-shaped
// authority's sign-out page frames /frontchannel-logout?iss=..&sid=..) ends that browser's.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { startStack, signIn, submitIdpLogin, shot } from './harness.mjs';
import { TENANT_ID } from '../dev/idp/users.mjs';

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

test('Entra front-channel logout: the sign-out page frames /frontchannel-logout and ends that sid only', async () => {
  const entra = await startStack({
    name: 'single-signout-entra',
    rolegateEnv: (idpUrl) => ({
      APP__AUTH__AUTHORITY: `${idpUrl}/organizations/v2.0`,
      APP__AUTH__ALLOWED_TENANTS: TENANT_ID,
    }),
  });
  const opened = [];
  const entraBrowser = async (login) => {
    const context = await entra.browser.newContext();
    opened.push(context);
    const page = await context.newPage();
    await page.goto(`${entra.appUrl}/login`);
    await page.locator('a#sign-in').click();
    await page.waitForURL((u) => u.pathname.endsWith('/oauth2/v2.0/authorize'));
    const callback = page.waitForResponse((r) => new URL(r.url()).pathname === '/getAToken');
    await submitIdpLogin(page, login);
    assert.equal((await callback).status(), 302, `${login} signs in`);
    return page;
  };
  const status = async (page) => (await page.request.get(`${entra.appUrl}/api/me`)).status();
  try {
    const first = await entraBrowser('alice');
    const second = await entraBrowser('alice');
    assert.equal(await status(first), 200);

    // Sign out at the Entra-shaped authority itself, in the first browser.
    const framed = first.waitForResponse((r) => new URL(r.url()).pathname === '/frontchannel-logout');
    await first.goto(`${entra.idpUrl}/organizations/oauth2/v2.0/logout`);
    const frame = await framed;
    assert.equal(frame.status(), 200);
    const headers = frame.headers();
    assert.match(headers['content-security-policy'], new RegExp(`frame-ancestors ${new URL(entra.idpUrl).origin}`));
    assert.equal(headers['x-frame-options'], undefined, 'the IdP may frame this route');
    const q = new URL(frame.url()).searchParams;
    assert.equal(q.get('iss'), `${entra.idpUrl}/${TENANT_ID}/v2.0`, "the user's tenant issuer");
    await first.locator('#idp-signed-out').waitFor();
    await shot(first, 'sso-03-entra-signed-out');

    assert.equal(await status(first), 401, 'the browser that signed out at Entra');
    assert.equal(await status(second), 200, "another browser is another Entra session (sid)");
    const log = readFileSync(entra.logs.rolegate, 'utf8');
    assert.match(log, /signed out at the identity provider \(front-channel\)/);
  } finally {
    await Promise.all(opened.map((c) => c.close().catch(() => {})));
    await entra.stop();
  }
});
