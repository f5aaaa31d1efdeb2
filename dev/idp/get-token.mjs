#!/usr/bin/env node
// Prints a token from the dev IdP. DEVELOPMENT ONLY.
//
//   node dev/idp/get-token.mjs alice                 # root issuer (oidc-provider), aud api://rolegate-dev
//   node dev/idp/get-token.mjs alice --entra         # Entra-shaped home tenant, v2 delegated access token
//   node dev/idp/get-token.mjs alice --entra --v1    # v1 delegated access token (iss {origin}/{tid}/, aud api://rolegate-dev)
//   node dev/idp/get-token.mjs --app                 # app-only (client_credentials, rolegate-daemon: roles DemoApp.Read)
//   node dev/idp/get-token.mjs --app-norole          # app-only without roles (rolegate-daemon-norole)
//   node dev/idp/get-token.mjs alice --entra --id-token   # an ID token (must be refused as a Bearer token)
//   node dev/idp/get-token.mjs alice --entra --web --id-token   # ID token with aud rolegate-dev (confidential client)
//   curl -H "Authorization: Bearer $(node dev/idp/get-token.mjs alice --entra)" http://127.0.0.1:8000/api/notes
//
// Env: IDP_URL (default http://127.0.0.1:${IDP_PORT:-9400}).
// Options: --authority URL (Entra-shaped authority; default {IDP_URL}/{home tid}/v2.0, implies --entra),
//          --json prints the whole token response.
import { codeFlow } from './flow.mjs';
import { entraCodeFlow, entraClientCredentials } from './entra-flow.mjs';
import { TENANT_ID } from './users.mjs';

const args = process.argv.slice(2);
const flag = (f) => args.includes(f);
const valueOf = (f) => { const i = args.indexOf(f); return i >= 0 ? args[i + 1] : undefined; };
const authorityArg = valueOf('--authority');
const login = args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--authority');
const app = flag('--app') || flag('--app-norole');
const entra = flag('--entra') || flag('--v1') || app || Boolean(authorityArg);
if (!login && !app) {
  console.error('usage: node dev/idp/get-token.mjs <user> [--entra] [--v1] [--web] [--id-token] [--json] [--authority URL] | --app | --app-norole');
  process.exit(2);
}
const issuer = (process.env.IDP_URL || `http://127.0.0.1:${process.env.IDP_PORT || 9400}`).replace(/\/+$/, '');
const authority = authorityArg || `${issuer}/${TENANT_ID}/v2.0`;
const tokenVersion = flag('--v1') ? 1 : undefined;

try {
  let tokens;
  if (app) {
    const norole = flag('--app-norole');
    ({ tokens } = await entraClientCredentials({
      authority,
      clientId: norole ? 'rolegate-daemon-norole' : 'rolegate-daemon',
      clientSecret: norole ? 'rolegate-daemon-norole-secret' : 'rolegate-daemon-secret',
      tokenVersion,
    }));
  } else if (entra) {
    const webClient = flag('--web'); // the confidential rolegate-dev client: tokens with aud rolegate-dev
    const rp = (process.env.RP_PUBLIC_URL || 'http://127.0.0.1:8000').replace(/\/+$/, '');
    ({ tokens } = await entraCodeFlow({
      authority,
      clientId: webClient ? 'rolegate-dev' : 'rolegate-cli',
      ...(webClient ? { clientSecret: 'rolegate-dev-secret' } : {}),
      redirectUri: webClient ? `${rp}/getAToken` : 'http://127.0.0.1/cli-callback',
      login,
      scope: 'openid profile email api://rolegate-dev/access_as_user',
      tokenVersion,
    }));
  } else {
    ({ tokens } = await codeFlow({
      issuer,
      clientId: 'rolegate-cli',
      redirectUri: 'http://127.0.0.1/cli-callback',
      login,
      scope: 'openid profile email access_as_user',
      resource: 'api://rolegate-dev',
    }));
  }
  if (flag('--json')) console.log(JSON.stringify(tokens, null, 2));
  else if (flag('--id-token')) console.log(tokens.id_token);
  else console.log(tokens.access_token);
} catch (err) {
  console.error(`get-token: ${err.message}`);
  if (err.cause) console.error(`get-token: ${err.cause.message || err.cause}`);
  process.exit(1);
}
