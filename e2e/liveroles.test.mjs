// Live roles in a real browser (issue 12, item 5): a role removed at the identity provider
// stops working once the roles are due for a re-check. The stack re-checks on every request
// (auth.roles_max_age_minutes = 0), so "after the max age" is the next page; the dev IdP's
// admin endpoint changes bob's roles as an admin would in Entra.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startStack, signIn, shot } from './harness.mjs';

let stack;

before(async () => {
  stack = await startStack({
    name: 'liveroles',
    rolegateEnv: () => ({ APP__AUTH__ROLES_MAX_AGE_MINUTES: '0' }),
  });
});

after(async () => {
  await stack?.stop();
});

async function setRoles(login, roles) {
  const res = await fetch(`${stack.idpUrl}/dev/users/${login}/roles`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ roles }),
  });
  assert.equal(res.status, 200, `set roles of ${login}`);
}

const me = async (page) => (await page.request.get(`${stack.appUrl}/api/me`)).json();

test('a role removed at the IdP disappears on the next re-check, and a new one appears', async () => {
  const context = await stack.browser.newContext();
  const page = await context.newPage();
  try {
    const cb = await signIn(stack, page, 'bob', { shotPrefix: 'liveroles-bob' });
    assert.ok(cb.status() >= 300 && cb.status() < 400);
    assert.deepEqual((await me(page)).roles, ['DemoApp.Write']);
    await page.goto(`${stack.appUrl}/notes`);
    assert.equal(await page.locator('#note-form').count(), 1, 'Write: the new-note form');

    await setRoles('bob', ['DemoApp.Read']);
    const res = await page.goto(`${stack.appUrl}/notes`);
    assert.equal(res.status(), 200);
    assert.equal(await page.locator('#note-form').count(), 0, 'Read only: no form any more');
    assert.deepEqual((await me(page)).roles, ['DemoApp.Read']);
    await shot(page, 'liveroles-01-read-only');

    await setRoles('bob', ['DemoApp.Admin']);
    assert.equal((await page.goto(`${stack.appUrl}/admin`)).status(), 200, 'the new role works at once');
    const audit = await page.locator('#audit').textContent();
    assert.match(audit, /roles_changed/, 'each change is an audit row');
    await shot(page, 'liveroles-02-admin');
  } finally {
    await setRoles('bob', ['DemoApp.Write']).catch(() => {});
    await context.close();
  }
});
