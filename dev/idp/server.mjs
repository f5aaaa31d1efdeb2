#!/usr/bin/env node
// Local OpenID provider for running and testing rolegate. DEVELOPMENT ONLY.
//
//   node dev/idp/server.mjs
//
// Env: IDP_PORT (default 9400; 0 = pick a free port), IDP_HOST (default 127.0.0.1),
//      RP_PUBLIC_URL (default http://127.0.0.1:8000), IDP_DATA_DIR (default dev/idp/.data),
//      IDP_QUIET=1 to drop the per-request log lines.
// Prints `idp ready http://127.0.0.1:<port>` on stdout once listening.
import { createServer } from 'node:http';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Provider, errors } from 'oidc-provider';
import * as jose from 'jose';

import { createEntra } from './entra.mjs';
import { createGraph, GRAPH_RESOURCE, GRAPH_SCOPES } from './graph.mjs';
import { USERS, findByLogin, findBySub, claimsOf, describeRoles } from './users.mjs';

const here = dirname(fileURLToPath(import.meta.url));

const HOST = process.env.IDP_HOST || '127.0.0.1';
const PORT = Number.parseInt(process.env.IDP_PORT ?? '9400', 10);
const RP_PUBLIC_URL = (process.env.RP_PUBLIC_URL || 'http://127.0.0.1:8000').replace(/\/+$/, '');
const DATA_DIR = resolve(process.env.IDP_DATA_DIR || join(here, '.data'));
const QUIET = process.env.IDP_QUIET === '1';

export const RP_CLIENT_ID = 'rolegate-dev';
export const RP_CLIENT_SECRET = 'rolegate-dev-secret';
export const CLI_CLIENT_ID = 'rolegate-cli';
export const CLI_REDIRECT_URI = 'http://127.0.0.1/cli-callback';
export const API_RESOURCE = 'api://rolegate-dev';
export const API_SCOPE = 'access_as_user';

// ---------------------------------------------------------------- persisted keys

async function loadOrCreateKeys(dir) {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const jwksFile = join(dir, 'jwks.json');
  const cookieFile = join(dir, 'cookie-keys.json');

  let jwks;
  if (existsSync(jwksFile)) {
    jwks = JSON.parse(readFileSync(jwksFile, 'utf8'));
  } else {
    const { privateKey } = await jose.generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
    const jwk = await jose.exportJWK(privateKey);
    jwk.kid = await jose.calculateJwkThumbprint(jwk);
    jwk.alg = 'RS256';
    jwk.use = 'sig';
    jwks = { keys: [jwk] };
    writeFileSync(jwksFile, `${JSON.stringify(jwks, null, 2)}\n`, { mode: 0o600 });
  }

  let cookieKeys;
  if (existsSync(cookieFile)) {
    cookieKeys = JSON.parse(readFileSync(cookieFile, 'utf8'));
  } else {
    cookieKeys = [randomBytes(32).toString('base64url')];
    writeFileSync(cookieFile, `${JSON.stringify(cookieKeys)}\n`, { mode: 0o600 });
  }
  return { jwks, cookieKeys };
}

// ---------------------------------------------------------------- grants (no consent screen)

// Graph scopes granted without asking (as if an admin consented for the tenant); any other
// Graph scope needs the user's consent on the consent page, so incremental consent can be seen.
const PRECONSENTED_GRAPH_SCOPES = ['User.Read'];

// Every client here is first-party: grant whatever OIDC scopes, claims and API scopes the
// authorization request asked for, except Graph scopes beyond PRECONSENTED_GRAPH_SCOPES, which
// only `accepted` (the user clicked Accept on the consent page) grants.
async function autoGrant(provider, { accountId, clientId, params, grantId, accepted = false }) {
  let grant = grantId ? await provider.Grant.find(grantId) : undefined;
  if (!grant || grant.accountId !== accountId || grant.clientId !== clientId) {
    grant = new provider.Grant({ accountId, clientId });
  }
  const requested = String(params.scope || '').split(' ').filter(Boolean);
  const oidcScopes = requested.filter((s) => ['openid', 'profile', 'email', 'offline_access'].includes(s));
  if (oidcScopes.length) grant.addOIDCScope(oidcScopes.join(' '));
  if (params.claims) {
    try {
      const claims = JSON.parse(params.claims);
      const names = new Set([...Object.keys(claims.id_token || {}), ...Object.keys(claims.userinfo || {})]);
      if (names.size) grant.addOIDCClaims([...names]);
    } catch { /* malformed claims are rejected by the provider itself */ }
  }
  const resources = [].concat(params.resource || []);
  for (const resource of resources) {
    if (resource === API_RESOURCE) grant.addResourceScope(API_RESOURCE, API_SCOPE);
  }
  const graph = graphScopesAsked(params)
    .filter((s) => accepted || PRECONSENTED_GRAPH_SCOPES.includes(s));
  if (graph.length) grant.addResourceScope(GRAPH_RESOURCE, graph.join(' '));
  return grant.save().then((id) => { grant.jti = id; return grant; });
}

// The Graph scopes an authorization request names (bare, like Entra's `User.Read`, or as
// `https://graph.microsoft.com/User.Read`).
function graphScopesAsked(params) {
  const asked = String(params.scope || '').split(' ').filter(Boolean)
    .map((s) => (s.startsWith(`${GRAPH_RESOURCE}/`) ? s.slice(GRAPH_RESOURCE.length + 1) : s));
  return [...new Set(asked.filter((s) => GRAPH_SCOPES.includes(s)))];
}

// ---------------------------------------------------------------- HTML

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

const STYLE = `body{font-family:system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}label{display:block;margin:.6rem 0 .2rem}input{font-size:1rem;padding:.3rem;width:100%;box-sizing:border-box}
button{margin-top:1rem;font-size:1rem;padding:.4rem 1.2rem}.err{color:#a00;font-weight:bold}
table{border-collapse:collapse;margin-top:1.5rem;font-size:.9rem}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}
.note{color:#666;font-size:.85rem}`;

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>${STYLE}</style></head>
<body>${body}</body></html>`;
}

function loginPage({ uid, clientId, login = '', error }) {
  const rows = USERS.map((u) => `<tr><td><code>${esc(u.login)}</code></td><td>${esc(u.name)}</td><td>${esc(describeRoles(u))}</td></tr>`).join('');
  return page('Sign in - rolegate dev IdP', `
<h1>rolegate dev IdP: sign in</h1>
<p class="note">Local development identity provider. Signing in to <code>${esc(clientId)}</code>.</p>
${error ? `<p id="login-error" class="err" role="alert">${esc(error)}</p>` : ''}
<form id="login-form" method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
  <label for="login">User name</label>
  <input id="login" name="login" value="${esc(login)}" autofocus required>
  <label for="password">Password (ignored)</label>
  <input id="password" name="password" type="password">
  <button id="submit" type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${esc(uid)}/abort"><button id="cancel" type="submit">Cancel</button></form>
<table id="test-users"><tr><th>user</th><th>name</th><th>roles claim</th></tr>${rows}</table>
<p class="note">Any other user name is refused. The password is not checked.</p>`);
}

function consentPage({ uid, clientId, scopes }) {
  const items = scopes.map((s) => `<li><code>${esc(s)}</code></li>`).join('');
  return page('Permissions requested - rolegate dev IdP', `
<h1>Permissions requested</h1>
<p><code>${esc(clientId)}</code> asks for access to your data in Microsoft Graph (dev):</p>
<ul id="consent-scopes">${items}</ul>
<form method="post" action="/interaction/${esc(uid)}/consent"><button id="consent-accept" type="submit">Accept</button></form>
<form method="post" action="/interaction/${esc(uid)}/abort"><input type="hidden" name="reason" value="consent">
<button id="consent-decline" type="submit">Cancel</button></form>`);
}

// ---------------------------------------------------------------- interaction routes

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function interactions(provider) {
  return async function interactionRoutes(ctx, next) {
    const m = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|consent|abort))?$/.exec(ctx.path);
    if (!m) return next();
    const [, uid, action] = m;
    const { req, res } = ctx;
    ctx.set('cache-control', 'no-store');

    let details;
    try {
      details = await provider.interactionDetails(req, res);
    } catch (err) {
      ctx.status = 400;
      ctx.type = 'html';
      ctx.body = page('Sign-in expired', `<h1>Sign-in expired</h1><p id="interaction-error">${esc(err.message)}. Go back to the application and start again.</p>`);
      return undefined;
    }
    if (details.uid !== uid) {
      ctx.status = 400;
      ctx.type = 'html';
      ctx.body = page('Sign-in mismatch', '<h1>Sign-in mismatch</h1><p id="interaction-error">This sign-in page does not belong to this browser\'s pending sign-in.</p>');
      return undefined;
    }
    const { prompt, params, session } = details;

    if (!action && ctx.method === 'GET') {
      if (prompt.name === 'login') {
        ctx.type = 'html';
        ctx.body = loginPage({ uid, clientId: params.client_id });
        return undefined;
      }
      // consent: ask for Graph scopes that are not pre-consented, auto-grant the rest.
      const accountId = session?.accountId;
      const missing = (prompt.details?.missingResourceScopes || {})[GRAPH_RESOURCE] || [];
      const needsUser = missing.filter((s) => !PRECONSENTED_GRAPH_SCOPES.includes(s));
      if (needsUser.length) {
        ctx.type = 'html';
        ctx.body = consentPage({ uid, clientId: params.client_id, scopes: needsUser });
        return undefined;
      }
      const grant = await autoGrant(provider, {
        accountId, clientId: params.client_id, params, grantId: details.grantId,
      });
      ctx.respond = false;
      await provider.interactionFinished(req, res, { consent: { grantId: grant.jti } }, { mergeWithLastSubmission: true });
      return undefined;
    }

    if (action === 'login' && ctx.method === 'POST') {
      if (prompt.name !== 'login') {
        ctx.redirect(`/interaction/${uid}`);
        return undefined;
      }
      const form = await readForm(req);
      const login = form.get('login') || '';
      const user = findByLogin(login);
      if (!user) {
        ctx.status = 401;
        ctx.type = 'html';
        ctx.body = loginPage({ uid, clientId: params.client_id, login, error: `Unknown user "${login}". Use one of the test users below.` });
        return undefined;
      }
      const grant = await autoGrant(provider, {
        accountId: user.sub, clientId: params.client_id, params, grantId: details.grantId,
      });
      ctx.respond = false;
      await provider.interactionFinished(req, res, {
        login: { accountId: user.sub, amr: ['pwd'] },
        consent: { grantId: grant.jti },
      }, { mergeWithLastSubmission: false });
      return undefined;
    }

    if (action === 'consent' && ctx.method === 'POST') {
      const grant = await autoGrant(provider, {
        accountId: session?.accountId, clientId: params.client_id, params, grantId: details.grantId, accepted: true,
      });
      ctx.respond = false;
      await provider.interactionFinished(req, res, { consent: { grantId: grant.jti } }, { mergeWithLastSubmission: true });
      return undefined;
    }

    if (action === 'abort' && ctx.method === 'POST') {
      const form = await readForm(req);
      const declined = form.get('reason') === 'consent';
      ctx.respond = false;
      await provider.interactionFinished(req, res, {
        error: declined ? 'consent_required' : 'access_denied',
        // Entra's wording for a declined consent.
        error_description: declined ? 'AADSTS65004: User declined to consent to access the app.' : 'End-User aborted the sign-in',
      }, { mergeWithLastSubmission: false });
      return undefined;
    }

    ctx.status = 405;
    return undefined;
  };
}

// ---------------------------------------------------------------- token endpoint, Entra-shaped

/**
 * The refresh-token grant as Entra answers it. `offline_access` in the scope of a refresh is
 * accepted and ignored (oidc-provider keeps it out of the grant, then refuses it here), and a
 * scope the user never consented to is Entra's `invalid_grant` with AADSTS65001 (consent
 * required: send an interactive request) instead of oidc-provider's `invalid_scope`.
 */
function entraShapedRefresh() {
  return async (ctx, next) => {
    if (ctx.method !== 'POST' || ctx.path !== '/token') return next();
    const raw = await new Promise((ok, fail) => {
      const chunks = [];
      ctx.req.on('data', (c) => chunks.push(c));
      ctx.req.on('end', () => ok(Buffer.concat(chunks).toString('utf8')));
      ctx.req.on('error', fail);
    });
    const form = new URLSearchParams(raw);
    const refresh = form.get('grant_type') === 'refresh_token';
    if (refresh && form.has('scope')) {
      form.set('scope', form.get('scope').split(' ').filter((s) => s && s !== 'offline_access').join(' '));
    }
    ctx.req.body = form.toString();
    await next();
    if (refresh && ctx.status === 400 && ctx.body?.error === 'invalid_scope') {
      ctx.body = {
        error: 'invalid_grant',
        error_description: `AADSTS65001: The user or administrator has not consented to use the application with ID '${form.get('client_id') || ''}'. Send an interactive authorization request for this user and resource.`,
        error_codes: [65001],
        suberror: 'consent_required',
      };
    }
    return undefined;
  };
}

// ---------------------------------------------------------------- provider

export function configuration({ jwks, cookieKeys, rpPublicUrl }) {
  return {
    jwks,
    cookies: { keys: cookieKeys },
    clients: [
      {
        client_id: RP_CLIENT_ID,
        client_secret: RP_CLIENT_SECRET,
        client_name: 'rolegate (dev)',
        application_type: 'web',
        token_endpoint_auth_method: 'client_secret_post',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [`${rpPublicUrl}/getAToken`],
        post_logout_redirect_uris: [`${rpPublicUrl}/login`],
        id_token_signed_response_alg: 'RS256',
        // Single sign-out: signing out here POSTs a logout token to rolegate. Without
        // session_required the token names only `sub`, so every rolegate session of that
        // user ends (alice in two browsers: both).
        backchannel_logout_uri: `${rpPublicUrl}/backchannel-logout`,
        backchannel_logout_session_required: false,
      },
      {
        // Public native client for dev/idp/get-token.mjs (loopback redirect, PKCE).
        client_id: CLI_CLIENT_ID,
        client_name: 'rolegate CLI (dev)',
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: [CLI_REDIRECT_URI],
        id_token_signed_response_alg: 'RS256',
      },
    ],
    // oidc-provider refuses outgoing requests to loopback addresses (SSRF protection); the
    // back-channel logout goes to rolegate, which runs on loopback in development, so that one
    // origin (and only it) is let through.
    async fetch(url, options) {
      if (new URL(url).origin === new URL(rpPublicUrl).origin) delete options.dispatcher;
      return fetch(url, options);
    },
    // Like Entra: `offline_access` asked for gives a refresh token (oidc-provider would also
    // want prompt=consent), to clients allowed the grant.
    async issueRefreshToken(ctx, client) {
      return client.grantTypeAllowed('refresh_token');
    },
    pkce: { required: () => true },
    scopes: ['openid', 'profile', 'email', 'offline_access'],
    claims: {
      openid: ['sub', 'roles', 'oid', 'tid'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
    },
    conformIdTokenClaims: false,
    async findAccount(ctx, sub) {
      const user = findBySub(sub);
      if (!user) return undefined;
      return {
        accountId: sub,
        async claims() { return claimsOf(user); },
      };
    },
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      const existing = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
      // First-party clients: silently extend the grant to what is being asked for.
      return autoGrant(ctx.oidc.provider, {
        accountId: ctx.oidc.session.accountId,
        clientId: ctx.oidc.client.clientId,
        params: ctx.oidc.params,
        grantId: existing?.jti,
      });
    },
    interactions: {
      url: (ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    features: {
      devInteractions: { enabled: false },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        // rolegate's logout must not need an extra click: submit the confirm form at once.
        async logoutSource(ctx, form) {
          const auto = form.replace('</form>', '<input type="hidden" name="logout" value="yes"/></form>');
          ctx.body = page('Signing out', `<h1>Signing out...</h1>${auto}
<noscript><button type="submit" form="op.logoutForm">Sign out</button></noscript>
<script>document.getElementById('op.logoutForm').submit();</script>`);
        },
        async postLogoutSuccessSource(ctx) {
          ctx.body = page('Signed out', '<h1 id="idp-signed-out">Signed out of the rolegate dev IdP</h1>');
        },
      },
      resourceIndicators: {
        enabled: true,
        // Graph scopes without a `resource` (as Entra users write them) mean Graph.
        defaultResource: async (ctx, client, oneOf) => oneOf
          || (graphScopesAsked(ctx.oidc.params || {}).length ? GRAPH_RESOURCE : undefined),
        useGrantedResource: async () => true,
        async getResourceServerInfo(ctx, resourceIndicator) {
          if (resourceIndicator === GRAPH_RESOURCE) {
            return {
              scope: GRAPH_SCOPES.join(' '),
              audience: GRAPH_RESOURCE,
              accessTokenTTL: 60 * 60,
              accessTokenFormat: 'jwt',
              jwt: { sign: { alg: 'RS256' } },
            };
          }
          if (resourceIndicator === API_RESOURCE) {
            return {
              scope: API_SCOPE,
              audience: API_RESOURCE,
              accessTokenTTL: 60 * 60,
              accessTokenFormat: 'jwt',
              jwt: { sign: { alg: 'RS256' } },
            };
          }
          throw new errors.InvalidTarget();
        },
      },
    },
    async extraTokenClaims(ctx, token) {
      if (token.resourceServer?.audience === GRAPH_RESOURCE) {
        const user = findBySub(token.accountId);
        // Graph reads Entra's `scp` (space-separated) and the user's oid.
        return user ? { scp: token.scope, oid: user.oid, tid: claimsOf(user).tid } : { scp: token.scope };
      }
      if (token.resourceServer?.audience !== API_RESOURCE) return undefined;
      const user = findBySub(token.accountId);
      if (!user) return undefined;
      const c = claimsOf(user);
      return {
        ...(c.roles !== undefined ? { roles: c.roles } : {}),
        oid: c.oid,
        tid: c.tid,
        name: c.name,
        preferred_username: c.preferred_username,
        scp: API_SCOPE,
      };
    },
    ttl: {
      AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL || 60 * 60,
      AuthorizationCode: 60,
      IdToken: 60 * 60,
      Interaction: 60 * 60,
      Session: 8 * 60 * 60,
      Grant: 8 * 60 * 60,
      RefreshToken: 8 * 60 * 60,
      ClientCredentials: 10 * 60,
      DeviceCode: 10 * 60,
      BackchannelAuthenticationRequest: 10 * 60,
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('IdP error', `<h1>rolegate dev IdP: error</h1>${Object.entries(out)
        .map(([k, v]) => `<p><strong>${esc(k)}</strong>: <span class="idp-${esc(k)}">${esc(v)}</span></p>`).join('')}`);
    },
  };
}

/**
 * `POST /dev/users/{login}/roles` with `{"roles": [...]}` (or `{"roles": null}` for no roles
 * claim): changes a test user's app roles, as an admin would in Entra's Enterprise
 * applications, so live-role re-checks can be seen. DEVELOPMENT ONLY, like the whole IdP.
 */
function devAdmin(req, res) {
  const m = /^\/dev\/users\/([a-z]+)\/roles$/.exec((req.url || '').split('?')[0]);
  if (!m) return false;
  const reply = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };
  const user = findByLogin(m[1]);
  if (!user) return reply(404, { error: 'no such user' });
  if (req.method !== 'POST') return reply(405, { error: 'POST only' });
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let roles;
    try {
      ({ roles } = JSON.parse(Buffer.concat(chunks).toString('utf8')));
    } catch {
      return reply(400, { error: 'body must be JSON {"roles": [...]}' });
    }
    if (roles !== null && !(Array.isArray(roles) && roles.every((r) => typeof r === 'string'))) {
      return reply(400, { error: 'roles must be a list of strings or null' });
    }
    user.roles = roles === null ? undefined : roles;
    console.log(`idp roles of ${user.login} set to ${describeRoles(user)}`);
    return reply(200, { login: user.login, roles: user.roles ?? null });
  });
  return true;
}

async function main() {
  const { jwks, cookieKeys } = await loadOrCreateKeys(DATA_DIR);

  // Listen first (port 0 allowed), then build the provider for the actual issuer URL.
  let handler = (req, res) => { res.statusCode = 503; res.end(); };
  let entra = null; // Entra-shaped authorities (dev/idp/entra.mjs), routed by path first
  let graph = null; // Graph-shaped resource server (dev/idp/graph.mjs) at /v1.0/
  const server = createServer((req, res) => {
    const started = process.hrtime.bigint();
    if (!QUIET) {
      res.on('finish', () => {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        const path = (req.url || '').split('?')[0];
        console.log(`idp ${req.method} ${path} ${res.statusCode} ${ms.toFixed(1)}ms`);
      });
    }
    if (devAdmin(req, res) !== false) return;
    if (entra && entra.handle(req, res) !== false) return;
    if (graph && graph.handle(req, res) !== false) return;
    handler(req, res);
  });
  await new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(PORT, HOST, ok);
  });
  const { port } = server.address();
  const hostForUrl = HOST.includes(':') ? `[${HOST}]` : HOST;
  const issuer = `http://${hostForUrl}:${port}`;

  const provider = new Provider(issuer, configuration({ jwks, cookieKeys, rpPublicUrl: RP_PUBLIC_URL }));
  provider.use(entraShapedRefresh());
  provider.use(interactions(provider));
  provider.on('server_error', (ctx, err) => console.error(`idp server_error ${ctx.path}: ${err.stack || err}`));
  provider.on('backchannel.success', (ctx, client, sub) => console.log(`idp back-channel logout of ${sub} sent to ${client.clientId}`));
  provider.on('backchannel.error', (ctx, err, client) => console.error(`idp back-channel logout to ${client.clientId} failed: ${err.message}${err.cause ? ` (${err.cause.message})` : ''}`));
  for (const ev of ['authorization.error', 'grant.error', 'end_session.error', 'userinfo.error']) {
    provider.on(ev, (ctx, err) => console.error(`idp ${ev}: ${err.name} ${err.message}${err.error_description ? ` (${err.error_description})` : ''}`));
  }
  handler = provider.callback();
  entra = await createEntra({
    port, dataDir: DATA_DIR, rpPublicUrl: RP_PUBLIC_URL, log: QUIET ? () => {} : (line) => console.log(`idp ${line}`),
  });
  graph = createGraph({
    keySets: [{ keys: jwks.keys.map(({ d, p, q, dp, dq, qi, ...pub }) => pub) }, entra.jwks],
    log: QUIET ? () => {} : (line) => console.log(`idp ${line}`),
  });
  for (const t of entra.tenants) console.log(`idp entra authority ${t.authority} (issuer ${t.discoveryIssuer})`);
  console.log(`idp client certificate ${entra.certificate.certFile} key ${entra.certificate.keyFile}`);

  // Dev server: nothing to flush, so stop at once (do not wait for keep-alive sockets).
  const shutdown = () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);

  console.log(`idp ready ${issuer}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(`idp failed to start: ${err.stack || err}`);
    process.exit(1);
  });
}
