#!/usr/bin/env node
// Prints an access token (JWT, aud api://rolegate-dev) for a dev user, obtained through the
// dev IdP's real endpoints (authorize -> login form -> token, PKCE S256) with the public
// client `rolegate-cli`. DEVELOPMENT ONLY.
//
//   node dev/idp/get-token.mjs alice
//   curl -H "Authorization: Bearer $(node dev/idp/get-token.mjs alice)" http://127.0.0.1:8000/api/me
//
// Env: IDP_URL (default http://127.0.0.1:${IDP_PORT:-9400}).
// Options: --id-token prints the ID token instead; --json prints the whole token response.
import { codeFlow } from './flow.mjs';

const args = process.argv.slice(2);
const login = args.find((a) => !a.startsWith('--'));
if (!login) {
  console.error('usage: node dev/idp/get-token.mjs <user> [--id-token|--json]   (users: alice bob carol dave erin)');
  process.exit(2);
}
const issuer = (process.env.IDP_URL || `http://127.0.0.1:${process.env.IDP_PORT || 9400}`).replace(/\/+$/, '');

try {
  const { tokens } = await codeFlow({
    issuer,
    clientId: 'rolegate-cli',
    redirectUri: 'http://127.0.0.1/cli-callback',
    login,
    scope: 'openid profile email access_as_user',
    resource: 'api://rolegate-dev',
  });
  if (args.includes('--json')) console.log(JSON.stringify(tokens, null, 2));
  else if (args.includes('--id-token')) console.log(tokens.id_token);
  else console.log(tokens.access_token);
} catch (err) {
  console.error(`get-token: ${err.message}`);
  if (err.cause) console.error(`get-token: ${err.cause.message || err.cause}`);
  process.exit(1);
}
