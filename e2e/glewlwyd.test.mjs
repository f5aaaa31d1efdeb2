// The core stories against a second real provider, glewlwyd (Debian's package, configured by
// dev/glewlwyd/start): each user's sign-in and the DemoApp's role gating, dave refused, sign-out
// through glewlwyd's end-session page back to rolegate (state checked), the Basic-only client
// with auth.client_auth_method=auto, the post-only client, and a pinned wrong method.
// Skips only when glewlwyd is missing and cannot be installed; ROLEGATE_REQUIRE_SERVICES=1
// turns that into a failure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { glewlwydEnv, startGlewlwydStack, signInGlewlwyd, shot } from './harness.mjs';

const found = glewlwydEnv();
const required = process.env.ROLEGATE_REQUIRE_SERVICES === '1';
const skip = found.missing && !required ? `skipped: ${found.missing}` : false;
if (skip) console.log(`# glewlwyd.test.mjs ${skip}`);

let stack;

before(async () => {
  if (found.missing) {
    if (required) throw new Error(`ROLEGATE_REQUIRE_SERVICES=1 but ${found.missing}`);
    return;
  }
  stack = await startGlewlwydStack({ name: 'glewlwyd', gl: found.env, client: 'BASIC', method: 'auto' });
});

after(async () => {
  await stack?.stop();
});

const path = (page) => new URL(page.url()).pathname;
const USERS = {
  alice: { name: 'Alice Admin', level: 'Admin', roles: ['DemoApp.Admin'] },
  bob: { name: 'Bob Writer', level: 'Write', roles: ['DemoApp.Write'] },
  carol: { name: 'Carol Reader', level: 'Read', roles: ['DemoApp.Read'] },
};

/** Runs `fn(page, context)` in a fresh browser context (own cookie jars) and closes it. */
async function withPage(fn) {
  const context = await stack.browser.newContext();
  try {
    return await fn(await context.newPage(), context);
  } finally {
    await context.close().catch(() => {});
  }
}

async function expectSignedIn(page, login) {
  const u = USERS[login];
  assert.equal(path(page), '/', `${login}: after sign-in on ${page.url()}`);
  assert.equal((await page.locator('#user-name').textContent()).trim(), u.name);
  assert.equal((await page.locator('#access-level').textContent()).trim(), u.level);
  assert.deepEqual((await page.locator('#roles li').allTextContents()).map((s) => s.trim()), u.roles);
}

for (const [login, u] of Object.entries(USERS)) {
  test(`glewlwyd: ${login} signs in (Basic client, method auto) and the DemoApp pages gate on ${u.level}`, { skip }, async () => {
    await withPage(async (page, context) => {
      const cb = await signInGlewlwyd(stack, page, login);
      assert.ok(cb.status() >= 300 && cb.status() < 400, `callback status ${cb.status()}`);
      await expectSignedIn(page, login);

      const me = await context.request.get(`${stack.appUrl}/api/me`, { headers: { accept: 'application/json' } });
      assert.equal(me.status(), 200);
      const body = await me.json();
      assert.equal(body.name, u.name);
      assert.ok(body.sub, 'a sub');

      // /notes: the form for Write and Admin, read-only for Read.
      const notes = await page.goto(`${stack.appUrl}/notes`);
      assert.equal(notes.status(), 200);
      await shot(page, `glewlwyd-${login}-04-notes`);
      const writer = u.level !== 'Read';
      assert.equal(await page.locator('form#note-form').count(), writer ? 1 : 0, `${login}: note form`);
      assert.equal(await page.locator('#read-only').count(), writer ? 0 : 1, `${login}: #read-only`);

      // /admin: Admin only.
      const admin = await page.goto(`${stack.appUrl}/admin`);
      await shot(page, `glewlwyd-${login}-05-admin`);
      if (u.level === 'Admin') {
        assert.equal(admin.status(), 200);
        assert.equal(await page.locator('table#sessions').count(), 1);
      } else {
        assert.equal(admin.status(), 403);
        assert.equal(await page.locator('#forbidden').count(), 1);
      }
    });
  });
}

test('glewlwyd: dave (no role) is refused at sign-in, no session', { skip }, async () => {
  await withPage(async (page, context) => {
    const cb = await signInGlewlwyd(stack, page, 'dave');
    assert.equal(cb.status(), 403);
    const err = page.locator('#auth-error');
    assert.equal(await err.count(), 1);
    assert.equal(await err.getAttribute('data-reason'), 'no_role');
    const me = await context.request.get(`${stack.appUrl}/api/me`, { headers: { accept: 'application/json' } });
    assert.equal(me.status(), 401);
  });
});

test('glewlwyd: sign-out goes through the end-session page and returns to rolegate with the state', { skip }, async () => {
  await withPage(async (page, context) => {
    await signInGlewlwyd(stack, page, 'bob', { shotPrefix: 'glewlwyd-logout' });
    await expectSignedIn(page, 'bob');

    const endSession = page.waitForRequest((r) => r.url().startsWith(`${stack.idpUrl}/end_session`));
    await page.locator('#sign-out').click();
    const sent = new URL((await endSession).url()).searchParams;
    assert.ok(sent.get('id_token_hint'), 'id_token_hint sent');
    assert.equal(sent.get('post_logout_redirect_uri'), `${stack.appUrl}/login`);
    assert.equal(sent.get('client_id'), found.env.BASIC_CLIENT_ID);
    const state = sent.get('state');
    assert.ok(state, 'state sent');

    // glewlwyd asks before it ends its session.
    const logout = page.getByRole('button', { name: 'Logout' }).first();
    await logout.waitFor({ state: 'visible', timeout: 15000 });
    await shot(page, 'glewlwyd-logout-04-end-session');
    await logout.click();
    await page.waitForURL((u) => u.href.startsWith(`${stack.appUrl}/login`), { timeout: 15000 });
    await shot(page, 'glewlwyd-logout-05-back');
    assert.equal(new URL(page.url()).searchParams.get('state'), state, 'the state came back');
    assert.equal(await page.locator('#signed-out').count(), 1, 'the signed-out notice (state matched)');
    const me = await context.request.get(`${stack.appUrl}/api/me`, { headers: { accept: 'application/json' } });
    assert.equal(me.status(), 401);

    // The glewlwyd session ended too: signing in again asks for the password.
    await page.locator('a#sign-in').click();
    await page.waitForURL((u) => u.href.startsWith(`${stack.idpOrigin}/login.html`));
    await page.locator('input#password').waitFor({ state: 'visible', timeout: 15000 });
  });
});

test('glewlwyd: a forged sign-out state shows no signed-out notice', { skip }, async () => {
  await withPage(async (page) => {
    await page.goto(`${stack.appUrl}/login?state=forged`);
    assert.equal(await page.locator('#signed-out').count(), 0);
    assert.equal(await page.locator('a#sign-in').count(), 1);
  });
});

test('glewlwyd: the post-only client signs in with client_secret_post', { skip }, async () => {
  await stack.restartRolegate('POST', 'client_secret_post');
  await withPage(async (page) => {
    const cb = await signInGlewlwyd(stack, page, 'carol', { shotPrefix: 'glewlwyd-post-carol' });
    assert.ok(cb.status() >= 300 && cb.status() < 400, `callback status ${cb.status()}`);
    await expectSignedIn(page, 'carol');
  });
});

for (const [client, method, used] of [
  ['BASIC', 'client_secret_post', 'client_secret_post'],
  // auto picks Basic (the OIDC default) for a non-Entra authority; glewlwyd's discovery lists
  // both methods but enforces the client's own, so the post-only client needs the pin.
  ['POST', 'auto', 'client_secret_basic'],
]) {
  test(`glewlwyd: the ${client.toLowerCase()}-only client with client_auth_method=${method} gets the configuration page`, { skip }, async () => {
    await stack.restartRolegate(client, method);
    await withPage(async (page, context) => {
      const cb = await signInGlewlwyd(stack, page, 'alice', { shotPrefix: `glewlwyd-wrong-${client}-${method}` });
      assert.equal(cb.status(), 503);
      const err = page.locator('#auth-error');
      assert.equal(await err.getAttribute('data-reason'), 'client_auth_rejected');
      const text = await page.locator('body').innerText();
      assert.match(text, /auth\.client_auth_method/, 'names the setting');
      assert.ok(!text.includes(found.env[`${client}_CLIENT_SECRET`]), 'no secret on the page');
      assert.ok(text.includes(used), `names the method used (${used})`);
      const me = await context.request.get(`${stack.appUrl}/api/me`, { headers: { accept: 'application/json' } });
      assert.equal(me.status(), 401);
    });
  });
}
