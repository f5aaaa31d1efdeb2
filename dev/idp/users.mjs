// Test users of the local dev IdP. Development only: the password is ignored.
import { createHash } from 'node:crypto';

// Fixed tenant id of the dev "directory" (an Entra-style GUID).
export const TENANT_ID = '5b0f3a1e-7c2d-4e8f-9a6b-1d2c3e4f5a60';

// `roles: undefined` means the token carries NO roles claim at all (erin).
const RAW = [
  { login: 'alice', name: 'Alice Admin', oid: 'a1c3e0f2-4b6d-48a9-8c1e-2f3a4b5c6d71', roles: ['DemoApp.Admin'] },
  { login: 'bob', name: 'Bob Writer', oid: 'b0b2d4f6-8a1c-4e3b-9d5f-7a9b1c3d5e82', roles: ['DemoApp.Write'] },
  { login: 'carol', name: 'Carol Reader', oid: 'c4a7e1b3-5d9f-4c2a-8e6b-0f1a2b3c4d93', roles: ['DemoApp.Read'] },
  { login: 'dave', name: 'Dave NoRole', oid: 'd8e2f4a6-1b3c-4d5e-8f7a-9b0c1d2e3fa4', roles: [] },
  { login: 'erin', name: 'Erin Unassigned', oid: 'e3f5a7b9-2c4d-4e6f-8a0b-1c2d3e4f5ab5', roles: undefined },
];

// Opaque, stable subject per user (like Entra's pairwise `sub`): not the login name.
function subjectFor(oid) {
  return createHash('sha256').update(`rolegate-dev-idp:${TENANT_ID}:${oid}`).digest('base64url').slice(0, 43);
}

export const USERS = RAW.map((u) => ({
  ...u,
  sub: subjectFor(u.oid),
  preferred_username: `${u.login}@rolegate.dev`,
  email: `${u.login}@rolegate.dev`,
}));

export function findByLogin(login) {
  const key = String(login ?? '').trim().toLowerCase();
  return USERS.find((u) => u.login === key);
}

export function findBySub(sub) {
  return USERS.find((u) => u.sub === sub);
}

// All claims a user has; oidc-provider filters them by granted scope (see `claims` in server.mjs).
export function claimsOf(user) {
  const claims = {
    sub: user.sub,
    name: user.name,
    preferred_username: user.preferred_username,
    email: user.email,
    email_verified: true,
    oid: user.oid,
    tid: TENANT_ID,
  };
  if (user.roles !== undefined) claims.roles = [...user.roles];
  return claims;
}

export function describeRoles(user) {
  if (user.roles === undefined) return '(no roles claim)';
  if (user.roles.length === 0) return '[] (empty roles)';
  return user.roles.join(', ');
}
