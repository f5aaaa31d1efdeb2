// Entra-shaped authorities of the dev IdP (home tenant, /organizations, a second tenant, an
// External ID shape and a B2C shape), served on the same port as the oidc-provider root issuer.
// A small hand-written OIDC server: discovery, JWKS, authorize (login page), token
// (authorization_code + PKCE, refresh_token, client_credentials), end-session. DEVELOPMENT ONLY.
import { createHash, randomBytes, randomUUID, X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import * as jose from 'jose';

import { USERS, TENANT_ID } from './users.mjs';

export const FABRIKAM_TENANT_ID = 'f4b71c2e-9d3a-4b6f-8e1c-7a2b3c4d5e6f';
export const EXTERNAL_TENANT_ID = 'e7a1d3c5-2b4f-4a6e-9c8d-0f1e2d3c4b5a';
export const B2C_TENANT_ID = 'b2c0ffee-1a2b-4c3d-8e4f-5a6b7c8d9e0f';
export const B2C_DOMAIN = 'rolegateb2c.onmicrosoft.com';
export const B2C_POLICIES = ['B2C_1_signupsignin', 'B2C_1_profileedit', 'B2C_1_passwordreset'];
export const API_CLIENT_ID = 'rolegate-dev';
export const API_APP_ID_URI = 'api://rolegate-dev';
export const API_SCOPE = 'access_as_user';
export const CERT_CLIENT_ID = 'rolegate-dev-cert';
export const AADB2C90118 = 'AADB2C90118: The user has forgotten their password.';
const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

const now = () => Math.floor(Date.now() / 1000);
const opaque = () => randomBytes(18).toString('base64url');
const sha256url = (s) => createHash('sha256').update(s).digest('base64url');
// Deterministic GUID-shaped id from a seed (stable oids across restarts).
function guidOf(seed) {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

// ---------------------------------------------------------------- directories

const homeUsers = USERS.map((u) => ({ login: u.login, name: u.name, oid: u.oid, roles: u.roles, tid: TENANT_ID, upn: `${u.login}@rolegate.dev` }));
const fabrikamUsers = [
  { login: 'mallory', name: 'Mallory Fabrikam', oid: guidOf('fabrikam:mallory'), roles: ['DemoApp.Admin'], tid: FABRIKAM_TENANT_ID, upn: 'mallory@fabrikam.example' },
];
const tenantUsers = (tid, domain) => USERS.map((u) => ({ login: u.login, name: u.name, oid: guidOf(`${tid}:${u.login}`), roles: u.roles, tid, upn: `${u.login}@${domain}` }));
const externalUsers = tenantUsers(EXTERNAL_TENANT_ID, 'rolegateext.example');
const b2cUsers = tenantUsers(B2C_TENANT_ID, 'rolegateb2c.example');

/** The tenants (authorities) served; `key` is the first path segment(s). */
export function tenants(port) {
  const ip = `http://127.0.0.1:${port}`;
  const lh = `http://localhost:${port}`;
  const list = [
    { key: TENANT_ID, origin: ip, prefix: `/${TENANT_ID}`, tid: TENANT_ID, users: homeUsers, kind: 'home' },
    { key: FABRIKAM_TENANT_ID, origin: ip, prefix: `/${FABRIKAM_TENANT_ID}`, tid: FABRIKAM_TENANT_ID, users: fabrikamUsers, kind: 'fabrikam' },
    { key: 'organizations', origin: ip, prefix: '/organizations', tid: null, users: [...homeUsers, ...fabrikamUsers], kind: 'organizations' },
    { key: EXTERNAL_TENANT_ID, origin: lh, prefix: `/${EXTERNAL_TENANT_ID}`, tid: EXTERNAL_TENANT_ID, users: externalUsers, kind: 'external' },
    ...B2C_POLICIES.map((p) => ({ key: `${B2C_DOMAIN}/${p}`, origin: lh, prefix: `/${B2C_DOMAIN}/${p}`, tid: B2C_TENANT_ID, users: b2cUsers, kind: 'b2c', policy: p })),
  ];
  for (const t of list) {
    t.authority = `${t.origin}${t.prefix}/v2.0`;
    t.endpoint = (name) => `${t.origin}${t.prefix}/oauth2/v2.0/${name}`;
    t.jwksUri = `${t.origin}${t.prefix}/discovery/v2.0/keys`;
    // Issuer of tokens for a user of tenant `tid`.
    t.issuerFor = (tid) => {
      if (t.kind === 'external') return `http://${EXTERNAL_TENANT_ID}.localhost:${port}/${EXTERNAL_TENANT_ID}/v2.0`;
      if (t.kind === 'b2c') return `${lh}/${B2C_TENANT_ID}/v2.0/`;
      return `${ip}/${tid}/v2.0`;
    };
    t.discoveryIssuer = t.kind === 'organizations' ? `${ip}/{tenantid}/v2.0` : t.issuerFor(t.tid);
    t.v1IssuerFor = (tid) => `${ip}/${tid}/`;
  }
  return list;
}

// ---------------------------------------------------------------- keys and certificate

async function loadKeys(dataDir) {
  const file = join(dataDir, 'entra-jwks.json');
  let jwk;
  if (existsSync(file)) {
    [jwk] = JSON.parse(readFileSync(file, 'utf8')).keys;
  } else {
    const { privateKey } = await jose.generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
    jwk = await jose.exportJWK(privateKey);
    jwk.kid = await jose.calculateJwkThumbprint(jwk);
    jwk.alg = 'RS256';
    jwk.use = 'sig';
    writeFileSync(file, `${JSON.stringify({ keys: [jwk] }, null, 2)}\n`, { mode: 0o600 });
  }
  const { d, p, q, dp, dq, qi, ...pub } = jwk;
  return { key: await jose.importJWK(jwk, 'RS256'), kid: jwk.kid, publicJwks: { keys: [pub] } };
}

/** Generates client-cert.pem / client-key.pem (1 year, RSA 2048) once; returns their paths. */
export function ensureClientCertificate(dataDir) {
  const certFile = join(dataDir, 'client-cert.pem');
  const keyFile = join(dataDir, 'client-key.pem');
  if (!existsSync(certFile) || !existsSync(keyFile)) {
    const r = spawnSync('/usr/bin/openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256',
      '-keyout', keyFile, '-out', certFile, '-days', '365', '-subj', `/CN=${CERT_CLIENT_ID}`], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  }
  const cert = new X509Certificate(readFileSync(certFile));
  return {
    certFile,
    keyFile,
    publicKey: cert.publicKey,
    x5tS256: createHash('sha256').update(cert.raw).digest('base64url'),
    x5t: createHash('sha1').update(cert.raw).digest('base64url'),
    privateKey: () => createPrivateKey(readFileSync(keyFile)),
  };
}

// ---------------------------------------------------------------- clients

function clients(rp) {
  const web = { redirect_uris: [`${rp}/getAToken`], post_logout_redirect_uris: [`${rp}/login`, `${rp}/`] };
  return {
    // Entra's "Front-channel logout URL" of the app registration.
    'rolegate-dev': { ...web, auth: 'secret', secret: 'rolegate-dev-secret', frontchannel_logout_uri: `${rp}/frontchannel-logout` },
    'rolegate-cli': { redirect_uris: ['http://127.0.0.1/cli-callback'], post_logout_redirect_uris: [], auth: 'none' },
    [CERT_CLIENT_ID]: { ...web, auth: 'private_key_jwt' },
    'rolegate-daemon': { auth: 'secret', secret: 'rolegate-daemon-secret', appRoles: ['DemoApp.Read'], redirect_uris: [], post_logout_redirect_uris: [] },
    'rolegate-daemon-norole': { auth: 'secret', secret: 'rolegate-daemon-norole-secret', appRoles: [], redirect_uris: [], post_logout_redirect_uris: [] },
  };
}

// ---------------------------------------------------------------- HTML

const STYLE = 'body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}label{display:block;margin:.6rem 0 .2rem}input{font-size:1rem;padding:.3rem;width:100%;box-sizing:border-box}button{margin-top:1rem}table{border-collapse:collapse;margin-top:1rem}td,th{border:1px solid #ccc;padding:.2rem .5rem}.err{color:#a00}';
const html = (title, body) => `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title><style>${STYLE}</style></head><body>${body}</body></html>`;

function loginPage(tenant, txnId, txn, error) {
  const rows = tenant.users.map((u) => `<tr><td><code>${esc(u.login)}</code></td><td>${esc(u.name)}</td><td><code>${esc(u.tid)}</code></td><td>${esc(u.roles === undefined ? '(no roles claim)' : u.roles.join(', ') || '[]')}</td></tr>`).join('');
  const action = `${tenant.prefix}/oauth2/v2.0/login`;
  const profile = tenant.policy === 'B2C_1_profileedit';
  return html(`Sign in - ${tenant.kind}`, `
<h1 id="entra-login">rolegate dev IdP (Entra-shaped): ${esc(tenant.kind)}${tenant.policy ? ` ${esc(tenant.policy)}` : ''}</h1>
<p>Authority <code id="authority">${esc(tenant.authority)}</code>, client <code>${esc(txn.client_id)}</code>.</p>
${error ? `<p id="login-error" class="err" role="alert">${esc(error)}</p>` : ''}
<form id="login-form" method="post" action="${esc(action)}" autocomplete="off">
  <input type="hidden" name="txn" value="${esc(txnId)}">
  <label for="login">User name</label><input id="login" name="login" required autofocus>
  <label for="password">Password (ignored)</label><input id="password" name="password" type="password">
  ${profile ? '<label for="display_name">Display name (profile edit)</label><input id="display_name" name="display_name">' : ''}
  <button id="submit" type="submit">${profile ? 'Save profile' : 'Sign in'}</button>
</form>
${tenant.kind === 'b2c' && tenant.policy === 'B2C_1_signupsignin' ? `<p><a id="forgot-password" href="${esc(action)}?txn=${esc(txnId)}&forgot=1">Forgot your password?</a></p>` : ''}
<table id="test-users"><tr><th>user</th><th>name</th><th>tid</th><th>roles</th></tr>${rows}</table>`);
}

// ---------------------------------------------------------------- server

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > 64 * 1024) throw new Error('body too large');
    chunks.push(c);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/**
 * Builds the Entra-shaped handler. Returns `handle(req, res)`: a promise when the path belongs
 * to an Entra-shaped authority, `false` otherwise (then oidc-provider answers).
 */
export async function createEntra({ port, dataDir, rpPublicUrl, log = () => {} }) {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const keys = await loadKeys(dataDir);
  const cert = ensureClientCertificate(dataDir);
  const list = tenants(port);
  const reg = clients(rpPublicUrl.replace(/\/+$/, ''));
  const txns = new Map(); // txn id -> authorize request
  const codes = new Map(); // code -> { txn, user, tenant, sid }
  const refresh = new Map(); // refresh token -> { user, tenant, clientId, scope, sid }
  const seenJti = new Map(); // assertion jti -> exp
  // Browser sessions, as Entra keeps them: cookie `entra_sso` = sid, shared by every app the
  // browser signs in to; sid -> Map(clientId -> issuer) for front-channel logout.
  const sessions = new Map();
  const servicePrincipalOid = (clientId, tid) => guidOf(`sp:${tid}:${clientId}`);

  const sign = (payload, typ = 'JWT') => new jose.SignJWT(payload)
    .setProtectedHeader({ alg: 'RS256', typ, kid: keys.kid })
    .sign(keys.key);

  function send(res, status, body, headers = {}) {
    res.writeHead(status, { 'cache-control': 'no-store', ...headers });
    res.end(body);
  }
  const json = (res, status, obj) => send(res, status, JSON.stringify(obj), { 'content-type': 'application/json' });
  const page = (res, status, title, body) => send(res, status, html(title, body), { 'content-type': 'text/html; charset=utf-8' });
  const oauthError = (res, status, error, description) => {
    log(`entra refused: ${error} (${description})`);
    json(res, status, { error, error_description: description });
  };
  const redirect = (res, url) => send(res, 302, '', { location: url });
  function redirectBack(res, redirectUri, params) {
    const u = new URL(redirectUri);
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) u.searchParams.set(k, v);
    redirect(res, u.href);
  }

  function discovery(t) {
    return {
      issuer: t.discoveryIssuer,
      authorization_endpoint: t.endpoint('authorize'),
      token_endpoint: t.endpoint('token'),
      end_session_endpoint: t.endpoint('logout'),
      jwks_uri: t.jwksUri,
      response_types_supported: ['code'],
      response_modes_supported: ['query'],
      grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
      subject_types_supported: ['pairwise'],
      code_challenge_methods_supported: ['S256'],
      id_token_signing_alg_values_supported: ['RS256'],
      token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic', 'private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ['RS256', 'PS256'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'nbf', 'nonce', 'oid', 'tid', 'ver', 'name', 'preferred_username', 'email', 'roles', 'sid', 'login_hint', ...(t.kind === 'b2c' ? ['tfp'] : [])],
      tenant_region_scope: 'EU',
      ...(t.tid ? { tenant_id: t.tid } : {}),
    };
  }

  // ---- token building

  function userBase(t, u, clientId) {
    return {
      sub: sha256url(`${clientId}:${u.tid}:${u.oid}`).slice(0, 43), // pairwise per app
      oid: u.oid,
      tid: u.tid,
      name: u.name,
      preferred_username: u.upn,
      ...(u.roles !== undefined && u.roles.length ? { roles: [...u.roles] } : {}),
      ...(t.kind === 'b2c' ? { tfp: t.policy } : {}),
    };
  }

  async function idToken(t, u, clientId, { nonce, sid }) {
    const iat = now();
    return sign({
      ...userBase(t, u, clientId),
      aud: clientId,
      iss: t.issuerFor(u.tid),
      iat, nbf: iat, exp: iat + 3600,
      ...(nonce ? { nonce } : {}),
      ver: '2.0',
      email: u.upn,
      sid,
      login_hint: Buffer.from(`O.${u.oid}.${u.tid}`).toString('base64url'),
      uti: opaque(), rh: opaque(), aio: opaque(),
    });
  }

  async function accessToken(t, u, clientId, { version, scp, azpacr }) {
    const iat = now();
    const base = userBase(t, u, API_CLIENT_ID);
    delete base.tfp;
    const common = { ...base, iat, nbf: iat, exp: iat + 3600, scp, uti: opaque(), rh: opaque(), aio: opaque() };
    if (version === 1) {
      return sign({
        ...common, iss: t.v1IssuerFor(u.tid), aud: API_APP_ID_URI, appid: clientId, appidacr: String(azpacr), ver: '1.0', upn: u.upn, unique_name: u.upn,
      });
    }
    return sign({ ...common, iss: t.issuerFor(u.tid), aud: API_CLIENT_ID, azp: clientId, azpacr: String(azpacr), ver: '2.0' });
  }

  async function appOnlyToken(t, clientId, client, { version, azpacr }) {
    const iat = now();
    const oid = servicePrincipalOid(clientId, t.tid);
    const common = {
      sub: oid, oid, tid: t.tid, iat, nbf: iat, exp: iat + 3600, idtyp: 'app',
      ...(client.appRoles.length ? { roles: [...client.appRoles] } : {}), uti: opaque(), rh: opaque(), aio: opaque(),
    };
    if (version === 1) return sign({ ...common, iss: t.v1IssuerFor(t.tid), aud: API_APP_ID_URI, appid: clientId, appidacr: String(azpacr), ver: '1.0' });
    return sign({ ...common, iss: t.issuerFor(t.tid), aud: API_CLIENT_ID, azp: clientId, azpacr: String(azpacr), ver: '2.0' });
  }

  // Graph-shaped access token when the API was not asked for (not meant for rolegate).
  async function graphToken(t, u, clientId) {
    const iat = now();
    return sign({ aud: '00000003-0000-0000-c000-000000000000', iss: `http://127.0.0.1:${port}/${u.tid}/`, iat, nbf: iat, exp: iat + 3600, oid: u.oid, tid: u.tid, appid: clientId, scp: 'openid profile email User.Read', ver: '1.0' });
  }

  const wantsApi = (scopes) => scopes.some((s) => s === `${API_APP_ID_URI}/${API_SCOPE}` || s === API_SCOPE || s === `${API_APP_ID_URI}/.default`);

  // ---- client authentication at the token endpoint

  async function authenticateClient(t, req, form) {
    const authz = req.headers.authorization || '';
    let clientId = form.get('client_id');
    let secret = form.get('client_secret');
    let method = secret ? 'client_secret_post' : 'none';
    if (/^Basic /i.test(authz)) {
      const raw = Buffer.from(authz.slice(6).trim(), 'base64').toString('utf8');
      const i = raw.indexOf(':');
      if (i < 0) return { error: 'malformed Basic credentials' };
      const id = decodeURIComponent(raw.slice(0, i));
      if (clientId && clientId !== id) return { error: 'client_id differs from the Basic credentials' };
      clientId = id;
      secret = decodeURIComponent(raw.slice(i + 1));
      method = 'client_secret_basic';
    }
    if (form.get('client_assertion') || form.get('client_assertion_type')) {
      if (form.get('client_assertion_type') !== CLIENT_ASSERTION_TYPE) return { error: 'AADSTS50027: client_assertion_type must be jwt-bearer' };
      const assertion = form.get('client_assertion') || '';
      let header;
      let claims;
      try {
        header = jose.decodeProtectedHeader(assertion);
        claims = jose.decodeJwt(assertion);
      } catch {
        return { error: 'AADSTS50027: client_assertion is not a JWT' };
      }
      clientId = clientId || claims.iss;
      const client = reg[clientId];
      if (!client || client.auth !== 'private_key_jwt') return { error: `AADSTS700027: client ${clientId} has no certificate credential` };
      if (header['x5t#S256'] !== cert.x5tS256 && header.x5t !== cert.x5t) return { error: 'AADSTS700027: x5t#S256 does not match the registered certificate' };
      try {
        await jose.jwtVerify(assertion, cert.publicKey, {
          algorithms: ['RS256', 'PS256'], audience: t.endpoint('token'), issuer: clientId, subject: clientId, requiredClaims: ['exp', 'jti'], clockTolerance: 30,
        });
      } catch (err) {
        return { error: `AADSTS700027: client assertion refused: ${err.code || ''} ${err.message}` };
      }
      if (claims.exp - now() > 600 + 30) return { error: 'AADSTS700024: client assertion valid for more than 10 minutes' };
      for (const [j, exp] of seenJti) if (exp < now() - 60) seenJti.delete(j);
      if (seenJti.has(claims.jti)) return { error: 'AADSTS700025: client assertion jti replayed' };
      seenJti.set(claims.jti, claims.exp);
      return { clientId, client, azpacr: 2 };
    }
    const client = reg[clientId];
    if (!client) return { error: `AADSTS700016: application ${clientId} not found` };
    if (client.auth === 'none') {
      if (secret) return { error: 'AADSTS700025: public client must not send a secret' };
      return { clientId, client, azpacr: 0 };
    }
    if (client.auth === 'private_key_jwt') return { error: 'AADSTS7000218: client_assertion is required for this client' };
    if (method === 'none' || secret !== client.secret) return { error: 'AADSTS7000215: invalid client secret' };
    return { clientId, client, azpacr: 1 };
  }

  // ---- endpoints

  async function authorize(t, req, res, url) {
    const q = url.searchParams;
    const clientId = q.get('client_id');
    const client = reg[clientId];
    const redirectUri = q.get('redirect_uri');
    if (!client || !client.redirect_uris.length) return page(res, 400, 'Error', `<h1>AADSTS700016</h1><p id="entra-error">Application ${esc(clientId)} not found.</p>`);
    if (!redirectUri || !client.redirect_uris.includes(redirectUri)) return page(res, 400, 'Error', `<h1>AADSTS50011</h1><p id="entra-error">The redirect URI ${esc(redirectUri)} does not match the redirect URIs configured for ${esc(clientId)}.</p>`);
    const state = q.get('state') ?? undefined;
    const back = (error, description) => { log(`entra authorize refused: ${error} (${description})`); redirectBack(res, redirectUri, { error, error_description: description, state }); };
    if (q.get('response_type') !== 'code') return back('unsupported_response_type', 'AADSTS70005: only response_type=code is supported');
    if (q.get('response_mode') && q.get('response_mode') !== 'query') return back('invalid_request', 'AADSTS90003: only response_mode=query is supported here');
    const scopes = (q.get('scope') || '').split(' ').filter(Boolean);
    if (!scopes.includes('openid')) return back('invalid_request', 'AADSTS900144: scope must include openid');
    if (!q.get('code_challenge')) return back('invalid_request', 'AADSTS9002325: Proof Key for Code Exchange is required');
    if (q.get('code_challenge_method') !== 'S256') return back('invalid_request', 'AADSTS501491: code_challenge_method must be S256');
    const txnId = opaque();
    txns.set(txnId, {
      client_id: clientId, redirect_uri: redirectUri, state, nonce: q.get('nonce') ?? undefined, scopes,
      code_challenge: q.get('code_challenge'), created: now(), login_hint: q.get('login_hint'),
    });
    return page(res, 200, 'Sign in', loginPage(t, txnId, txns.get(txnId)));
  }

  async function login(t, req, res, url) {
    const form = req.method === 'POST' ? await readBody(req) : url.searchParams;
    const txnId = form.get('txn');
    const txn = txns.get(txnId);
    if (!txn || txn.created < now() - 3600) return page(res, 400, 'Expired', '<h1>Sign-in expired</h1><p id="entra-error">Go back to the application and start again.</p>');
    if (form.get('forgot') === '1' && t.kind === 'b2c') {
      txns.delete(txnId);
      return redirectBack(res, txn.redirect_uri, { error: 'access_denied', error_description: AADB2C90118, state: txn.state });
    }
    if (req.method !== 'POST') return page(res, 405, 'Method', '<p>POST the form.</p>');
    const loginName = String(form.get('login') || '').trim().toLowerCase();
    const found = t.users.find((u) => u.login === loginName);
    if (!found) return page(res, 401, 'Sign in', loginPage(t, txnId, txn, `Unknown user "${loginName}" in this tenant. Use one of the test users below.`));
    const user = { ...found };
    const displayName = String(form.get('display_name') || '').trim();
    if (t.policy === 'B2C_1_profileedit' && displayName) user.name = displayName.slice(0, 64);
    txns.delete(txnId);
    const code = opaque();
    const known = ssoCookie(req);
    const sid = known && sessions.has(known) ? known : randomUUID();
    if (!sessions.has(sid)) sessions.set(sid, new Map());
    sessions.get(sid).set(txn.client_id, t.issuerFor(user.tid));
    codes.set(code, { txn, user, tenant: t, sid, created: now() });
    log(`entra signed in ${user.login} (tid ${user.tid}) for ${txn.client_id}`);
    res.setHeader('set-cookie', `entra_sso=${sid}; Path=/; HttpOnly; SameSite=Lax`);
    return redirectBack(res, txn.redirect_uri, { code, state: txn.state, ...(t.kind === 'organizations' || t.tid ? { session_state: randomUUID() } : {}) });
  }

  async function tokenResponse(t, user, clientId, azpacr, { scopes, nonce, sid, version, withId }) {
    const out = { token_type: 'Bearer', expires_in: 3600, ext_expires_in: 3600, scope: scopes.filter((s) => s !== 'openid').join(' ') };
    out.access_token = wantsApi(scopes)
      ? await accessToken(t, user, clientId, { version, scp: API_SCOPE, azpacr })
      : await graphToken(t, user, clientId);
    if (withId && scopes.includes('openid')) out.id_token = await idToken(t, user, clientId, { nonce, sid });
    if (scopes.includes('offline_access')) {
      const rt = opaque() + opaque();
      refresh.set(rt, { user, tenant: t, clientId, scopes, sid });
      out.refresh_token = rt;
    }
    return out;
  }

  async function token(t, req, res, url) {
    if (req.method !== 'POST') return oauthError(res, 405, 'invalid_request', 'AADSTS900561: POST required');
    const form = await readBody(req);
    const auth = await authenticateClient(t, req, form);
    if (auth.error) return oauthError(res, 401, 'invalid_client', auth.error);
    const { clientId, client, azpacr } = auth;
    const version = (form.get('token_version') || url.searchParams.get('token_version')) === '1' ? 1 : 2;
    const grant = form.get('grant_type');
    if (grant === 'authorization_code') {
      const entry = codes.get(form.get('code') || '');
      if (entry) codes.delete(form.get('code'));
      if (!entry || entry.created < now() - 600 || entry.tenant !== t) return oauthError(res, 400, 'invalid_grant', 'AADSTS70008: the code is expired, used or unknown');
      if (entry.txn.client_id !== clientId) return oauthError(res, 400, 'invalid_grant', 'AADSTS70000: the code was issued to another client');
      if (form.get('redirect_uri') !== entry.txn.redirect_uri) return oauthError(res, 400, 'invalid_grant', 'AADSTS50148: redirect_uri differs from the authorization request');
      const verifier = form.get('code_verifier');
      if (!verifier) return oauthError(res, 400, 'invalid_request', 'AADSTS50148: code_verifier is required (PKCE)');
      if (sha256url(verifier) !== entry.txn.code_challenge) return oauthError(res, 400, 'invalid_grant', 'AADSTS501481: the code_verifier does not match the code_challenge');
      return json(res, 200, await tokenResponse(t, entry.user, clientId, azpacr, {
        scopes: entry.txn.scopes, nonce: entry.txn.nonce, sid: entry.sid, version, withId: true,
      }));
    }
    if (grant === 'refresh_token') {
      const rt = form.get('refresh_token') || '';
      const entry = refresh.get(rt);
      if (!entry || entry.clientId !== clientId || entry.tenant !== t) return oauthError(res, 400, 'invalid_grant', 'AADSTS700082: the refresh token is expired, revoked or unknown');
      refresh.delete(rt); // rotated
      const current = entry.tenant.users.find((u) => u.oid === entry.user.oid);
      if (!current) return oauthError(res, 400, 'invalid_grant', 'AADSTS50105: user not assigned');
      const asked = (form.get('scope') || '').split(' ').filter(Boolean);
      const scopes = asked.length ? asked : entry.scopes;
      return json(res, 200, await tokenResponse(t, { ...current, name: entry.user.name }, clientId, azpacr, {
        scopes: [...new Set([...scopes, ...(entry.scopes.includes('offline_access') ? ['offline_access'] : [])])], sid: entry.sid, version, withId: true,
      }));
    }
    if (grant === 'client_credentials') {
      if (!t.tid || t.kind === 'b2c') return oauthError(res, 400, 'invalid_request', 'AADSTS90002: client_credentials needs a tenant-specific authority');
      if (azpacr === 0) return oauthError(res, 401, 'invalid_client', 'AADSTS7000218: a public client cannot use client_credentials');
      const scope = form.get('scope') || '';
      if (scope !== `${API_APP_ID_URI}/.default`) return oauthError(res, 400, 'invalid_scope', `AADSTS1002012: scope must be ${API_APP_ID_URI}/.default for client_credentials`);
      return json(res, 200, {
        token_type: 'Bearer', expires_in: 3600, ext_expires_in: 3600,
        access_token: await appOnlyToken(t, clientId, { appRoles: client.appRoles || [] }, { version, azpacr }),
      });
    }
    return oauthError(res, 400, 'unsupported_grant_type', `AADSTS70003: grant_type ${grant} is not supported`);
  }

  function ssoCookie(req) {
    const m = /(?:^|;\s*)entra_sso=([0-9a-f-]{36})(?:;|$)/.exec(req.headers.cookie || '');
    return m ? m[1] : undefined;
  }

  /**
   * Like Entra: ends the browser's session and loads every signed-in app's front-channel
   * logout URL (`?iss=..&sid=..`) in a hidden frame, then goes on to the registered
   * post_logout_redirect_uri (or says "signed out").
   */
  function logout(t, req, res, url) {
    const q = url.searchParams;
    const target = q.get('post_logout_redirect_uri');
    const registered = !target || Object.values(reg).some((c) => c.post_logout_redirect_uris.includes(target));
    if (!registered) return page(res, 400, 'Error', `<h1>AADSTS50011</h1><p id="entra-error">post_logout_redirect_uri ${esc(target)} is not registered.</p>`);
    let next;
    if (target) {
      next = new URL(target);
      if (q.get('state')) next.searchParams.set('state', q.get('state'));
    }
    const sid = ssoCookie(req);
    const apps = sid ? [...(sessions.get(sid) || new Map())] : [];
    if (sid) sessions.delete(sid);
    const frames = apps
      .filter(([clientId]) => reg[clientId]?.frontchannel_logout_uri)
      .map(([clientId, iss]) => {
        const f = new URL(reg[clientId].frontchannel_logout_uri);
        f.searchParams.set('iss', iss);
        f.searchParams.set('sid', sid);
        log(`entra front-channel logout of sid ${sid} at ${clientId}`);
        return f.href;
      });
    res.setHeader('set-cookie', 'entra_sso=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0');
    if (!frames.length && next) return redirect(res, next.href);
    const iframes = frames.map((f) => `<iframe class="frontchannel" hidden src="${esc(f)}"></iframe>`).join('');
    const onward = next ? `<p><a id="continue" href="${esc(next.href)}">Continue</a></p>` : '';
    // Go on once every frame has loaded (the page's load event waits for its frames), as Entra
    // waits for them too.
    const script = next
      ? `<script>window.addEventListener('load',()=>{location.href=${JSON.stringify(next.href)};});</script>`
      : '';
    return page(res, 200, 'Signed out', `<h1 id="idp-signed-out">You signed out of your account</h1>${iframes}${onward}${script}`);
  }

  // Longest prefix first (B2C keys have two segments).
  const ordered = [...list].sort((a, b) => b.prefix.length - a.prefix.length);

  function handle(req, res) {
    const url = new URL(req.url || '/', 'http://x');
    const t = ordered.find((x) => url.pathname.startsWith(`${x.prefix}/`));
    if (!t) return false;
    const rest = url.pathname.slice(t.prefix.length);
    const run = async () => {
      switch (rest) {
        case '/v2.0/.well-known/openid-configuration': return json(res, 200, discovery(t));
        case '/discovery/v2.0/keys': return send(res, 200, JSON.stringify(keys.publicJwks), { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
        case '/oauth2/v2.0/authorize': return authorize(t, req, res, url);
        case '/oauth2/v2.0/login': return login(t, req, res, url);
        case '/oauth2/v2.0/token': return token(t, req, res, url);
        case '/oauth2/v2.0/logout': return logout(t, req, res, url);
        default: return json(res, 404, { error: 'not_found', error_description: `no Entra-shaped endpoint ${url.pathname}` });
      }
    };
    return run().catch((err) => {
      console.error(`idp entra error ${url.pathname}: ${err.stack || err}`);
      if (!res.headersSent) json(res, 500, { error: 'server_error', error_description: 'dev IdP error' });
    });
  }

  return { handle, tenants: list, certificate: cert, jwks: keys.publicJwks };
}
