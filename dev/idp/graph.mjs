// A Microsoft Graph-shaped resource server for the dev IdP. DEVELOPMENT ONLY.
//
// Answers `GET /v1.0/me` (scope User.Read) and `GET /v1.0/me/events` (scope Calendars.Read)
// with the fields Graph returns, for rolegate's /profile page. Like Graph, it checks the
// Bearer token itself: signature (the IdP's own keys), `exp`/`nbf`, `aud` (Graph's app id or
// URI) and the scope in `scp`, and answers 401/403 with a `WWW-Authenticate` header otherwise.
import * as jose from 'jose';

import { USERS } from './users.mjs';

export const GRAPH_RESOURCE = 'https://graph.microsoft.com';
export const GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000';
export const GRAPH_SCOPES = ['User.Read', 'Calendars.Read'];

const PROFILE = {
  alice: { givenName: 'Alice', surname: 'Admin', jobTitle: 'Platform owner', officeLocation: 'Building 1', businessPhones: ['+1 425 555 0101'] },
  bob: { givenName: 'Bob', surname: 'Writer', jobTitle: 'Editor', officeLocation: 'Building 2', businessPhones: ['+1 425 555 0102'] },
  carol: { givenName: 'Carol', surname: 'Reader', jobTitle: 'Analyst', officeLocation: 'Building 3', businessPhones: [] },
  dave: { givenName: 'Dave', surname: 'NoRole', jobTitle: null, officeLocation: null, businessPhones: [] },
  erin: { givenName: 'Erin', surname: 'Unassigned', jobTitle: null, officeLocation: null, businessPhones: [] },
};

/** `keys`: public JWK sets whose signatures Graph accepts (the root issuer's and Entra's). */
export function createGraph({ keySets, log = () => {} }) {
  const verifiers = keySets.map((jwks) => jose.createLocalJWKSet(jwks));
  const send = (res, status, body, headers = {}) => {
    res.writeHead(status, { 'cache-control': 'no-store', 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const refuse = (res, status, code, message, wwwError) => {
    log(`graph refused: ${code} (${message})`);
    send(res, status, { error: { code, message } }, {
      'www-authenticate': `Bearer realm="", authorization_uri="", error="${wwwError}", error_description="${message.replace(/"/g, "'")}"`,
    });
  };

  async function verify(token) {
    let lastError;
    for (const keys of verifiers) {
      try {
        // eslint-disable-next-line no-await-in-loop
        const { payload } = await jose.jwtVerify(token, keys, { algorithms: ['RS256'], clockTolerance: 30 });
        return payload;
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError;
  }

  function userOf(payload) {
    return USERS.find((u) => u.oid === payload.oid) || USERS.find((u) => u.sub === payload.sub);
  }

  async function handle(req, res, path) {
    const needs = { '/v1.0/me': 'User.Read', '/v1.0/me/events': 'Calendars.Read' }[path];
    if (!needs) return send(res, 404, { error: { code: 'Request_ResourceNotFound', message: `No resource ${path}` } });
    if (req.method !== 'GET') return send(res, 405, { error: { code: 'Request_BadRequest', message: 'GET only' } });
    const authz = req.headers.authorization || '';
    if (!/^Bearer [A-Za-z0-9._-]+$/.test(authz)) {
      return refuse(res, 401, 'InvalidAuthenticationToken', 'Access token is empty.', 'invalid_request');
    }
    let payload;
    try {
      payload = await verify(authz.slice(7));
    } catch (err) {
      return refuse(res, 401, 'InvalidAuthenticationToken', `Access token validation failure: ${err.code || err.message}`, 'invalid_token');
    }
    const aud = [].concat(payload.aud || []);
    if (!aud.includes(GRAPH_RESOURCE) && !aud.includes(GRAPH_APP_ID)) {
      return refuse(res, 401, 'InvalidAuthenticationToken', 'Access token validation failure. Invalid audience.', 'invalid_token');
    }
    const scopes = String(payload.scp ?? payload.scope ?? '').split(' ').filter(Boolean);
    if (!scopes.includes(needs)) {
      return refuse(res, 403, 'Authorization_RequestDenied', `Insufficient privileges: the token lacks scope ${needs}.`, 'insufficient_scope');
    }
    const user = userOf(payload);
    if (!user) return send(res, 404, { error: { code: 'Request_ResourceNotFound', message: 'No such user' } });
    const p = PROFILE[user.login] || {};
    if (path === '/v1.0/me') {
      return send(res, 200, {
        '@odata.context': `${GRAPH_RESOURCE}/v1.0/$metadata#users/$entity`,
        businessPhones: p.businessPhones || [],
        displayName: user.name,
        givenName: p.givenName ?? null,
        jobTitle: p.jobTitle ?? null,
        mail: user.email,
        mobilePhone: null,
        officeLocation: p.officeLocation ?? null,
        preferredLanguage: 'en-US',
        surname: p.surname ?? null,
        userPrincipalName: user.preferred_username,
        id: user.oid,
      });
    }
    const day = new Date();
    day.setUTCHours(9, 0, 0, 0);
    const at = (h) => new Date(day.getTime() + h * 3600e3).toISOString().replace('Z', '0000');
    return send(res, 200, {
      '@odata.context': `${GRAPH_RESOURCE}/v1.0/$metadata#users('${user.oid}')/events`,
      value: [
        { id: `ev1-${user.login}`, subject: 'Roles review', start: { dateTime: at(1), timeZone: 'UTC' }, end: { dateTime: at(2), timeZone: 'UTC' } },
        { id: `ev2-${user.login}`, subject: 'Release planning', start: { dateTime: at(5), timeZone: 'UTC' }, end: { dateTime: at(6), timeZone: 'UTC' } },
      ],
    });
  }

  return {
    /** Handles `/v1.0/...`; returns false for any other path. */
    handle(req, res) {
      const path = (req.url || '').split('?')[0];
      if (!path.startsWith('/v1.0/')) return false;
      handle(req, res, path).catch((err) => send(res, 500, { error: { code: 'InternalServerError', message: String(err.message || err) } }));
      return true;
    },
  };
}
