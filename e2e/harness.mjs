// Starts the dev IdP and the real rolegate binary on free ports, a headless Debian Chromium,
// and stops them all again. Output of both servers goes to e2e/screenshots/logs/.
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleepRef } from 'node:timers/promises';

// Timers used in races must not keep the test process alive.
const sleep = (ms) => sleepRef(ms, undefined, { ref: false });

export const E2E_DIR = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(E2E_DIR, '..');
export const SHOTS_DIR = join(E2E_DIR, 'screenshots');
export const LOG_DIR = join(SHOTS_DIR, 'logs');
export const IDP_DIR = join(REPO_ROOT, 'dev', 'idp');

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

const live = new Set();
function killAllSync() {
  for (const child of live) {
    try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
  }
}
process.on('exit', killAllSync);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => { killAllSync(); process.exit(130); });
}

export async function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

function tail(file, lines = 40) {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

// Spawns a process in its own process group, its output appended to `logFile`.
// `onLine` sees each stdout/stderr line.
function startProcess(name, cmd, args, { env, cwd = REPO_ROOT, logFile, onLine }) {
  mkdirSync(dirname(logFile), { recursive: true });
  const log = createWriteStream(logFile, { flags: 'a' });
  log.write(`\n=== ${new Date().toISOString()} start ${name}: ${cmd} ${args.join(' ')}\n`);
  const child = spawn(cmd, args, {
    cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
  });
  live.add(child);
  const exited = new Promise((ok) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      log.write(`=== ${new Date().toISOString()} ${name} exited code=${code} signal=${signal}\n`);
      log.end();
      ok({ code, signal });
    });
  });
  for (const stream of [child.stdout, child.stderr]) {
    let buf = '';
    stream.on('data', (chunk) => {
      log.write(chunk);
      if (!onLine) return;
      buf += chunk.toString('utf8');
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
  }
  return { child, exited, logFile };
}

export async function stopProcess(proc, { timeoutMs = 5000 } = {}) {
  if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  try { process.kill(-proc.child.pid, 'SIGTERM'); } catch { return; }
  const done = await Promise.race([proc.exited.then(() => true), sleep(timeoutMs).then(() => false)]);
  if (!done) {
    try { process.kill(-proc.child.pid, 'SIGKILL'); } catch { /* gone */ }
    await proc.exited;
  }
}

export function ensureIdpDeps() {
  if (existsSync(join(IDP_DIR, 'node_modules', 'oidc-provider'))) return;
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: IDP_DIR, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('npm ci in dev/idp failed');
}

/** Starts dev/idp on a free port; resolves { url, proc } once it printed its ready line. */
export async function startIdp({ rpPublicUrl, dataDir, logFile }) {
  ensureIdpDeps();
  let url;
  let resolveReady;
  const ready = new Promise((ok) => { resolveReady = ok; });
  const proc = startProcess('idp', process.execPath, [join(IDP_DIR, 'server.mjs')], {
    env: { IDP_PORT: '0', IDP_HOST: '127.0.0.1', RP_PUBLIC_URL: rpPublicUrl, IDP_DATA_DIR: dataDir },
    logFile,
    onLine(line) {
      const m = /^idp ready (\S+)/.exec(line);
      if (m && !url) { url = m[1]; resolveReady(); }
    },
  });
  const outcome = await Promise.race([
    ready.then(() => 'ready'),
    proc.exited.then(() => 'exited'),
    sleep(20000).then(() => 'timeout'),
  ]);
  if (outcome !== 'ready') {
    await stopProcess(proc);
    throw new Error(`dev IdP did not start (${outcome}); log ${logFile}:\n${tail(logFile)}`);
  }
  return { url, proc };
}

export function rolegateBinary() {
  const bin = process.env.ROLEGATE_BIN
    ? resolve(process.env.ROLEGATE_BIN)
    : join(REPO_ROOT, 'target', 'debug', 'rolegate');
  if (process.env.ROLEGATE_BIN) {
    if (!existsSync(bin)) throw new Error(`ROLEGATE_BIN ${bin} does not exist`);
    return bin;
  }
  // Built when missing; E2E_BUILD=1 always runs cargo build (a no-op when up to date).
  if (!existsSync(bin) || process.env.E2E_BUILD === '1') {
    console.error(`# cargo build --bin rolegate (${existsSync(bin) ? 'E2E_BUILD=1' : `${bin} missing`})`);
    const r = spawnSync('cargo', ['build', '--bin', 'rolegate'], { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0 || !existsSync(bin)) throw new Error('cargo build --bin rolegate failed');
  }
  return bin;
}

export function rolegateEnv({ port, idpUrl, workDir, extraEnv = {} }) {
  return {
    APP_ENV: 'Development',
    APP__SERVER__HOST: '127.0.0.1',
    APP__SERVER__PORT: String(port),
    APP__SERVER__PUBLIC_URL: `http://127.0.0.1:${port}`,
    APP__AUTH__AUTHORITY: idpUrl,
    // The dev IdP's Graph-shaped resource server (dev/idp/graph.mjs) answers on its own port.
    APP__DOWNSTREAM_APIS__GRAPH__BASE_URL: `${new URL(idpUrl).origin}/v1.0`,
    APP__DATABASE__URL: `sqlite://${workDir}/rolegate.db?mode=rwc`,
    APP__SESSION__KEY_FILE: join(workDir, 'session.key'),
    RUST_LOG: process.env.RUST_LOG || 'info',
    RUST_BACKTRACE: '1',
    NO_COLOR: '1', // plain log files
    ...extraEnv, // e.g. APP__AUTH__AUTHORITY of an Entra-shaped authority (startStack's rolegateEnv)
  };
}

/**
 * Starts the rolegate binary and waits until GET /healthz answers `status` (200 healthy, 503
 * misconfigured); stops it and throws with the log's tail otherwise.
 */
async function startServing({ label, bin, port, idpUrl, workDir, logFile, extraEnv, timeoutMs, status }) {
  const proc = startProcess(label, bin, ['serve'], {
    env: rolegateEnv({ port, idpUrl, workDir, extraEnv }), logFile,
  });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  proc.exited.then(() => { exited = true; });
  while (Date.now() < deadline && !exited) {
    try {
      const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status === status) return { url: base, proc };
    } catch { /* not listening yet */ }
    await sleepRef(150);
  }
  await stopProcess(proc);
  throw new Error(`${label} did not answer ${status} at ${base}/healthz (${exited ? 'exited' : 'timeout'}); log ${logFile}:\n${tail(logFile)}`);
}

/** Starts the rolegate binary; resolves once GET /healthz answers 200. */
export async function startRolegate({ bin, port, idpUrl, workDir, logFile, timeoutMs = 60000, extraEnv }) {
  return startServing({ label: 'rolegate', bin, port, idpUrl, workDir, logFile, extraEnv, timeoutMs, status: 200 });
}

/**
 * The whole stack for one test file: IdP + rolegate (+ browser when `browser` is true).
 * Returns { app, idp, browser, restartRolegate(), stop(), ... }.
 */
export async function startStack({ name, browser: wantBrowser = true, rolegateEnv: envFor } = {}) {
  const workDir = mkdtempSync(join(tmpdir(), `rolegate-e2e-${name}-`));
  mkdirSync(LOG_DIR, { recursive: true });
  const idpLog = join(LOG_DIR, `${name}-idp.log`);
  const appLog = join(LOG_DIR, `${name}-rolegate.log`);
  rmSync(idpLog, { force: true });
  rmSync(appLog, { force: true });

  const bin = rolegateBinary();
  const port = await freePort();
  const appUrl = `http://127.0.0.1:${port}`;
  const idp = await startIdp({ rpPublicUrl: appUrl, dataDir: join(workDir, 'idp'), logFile: idpLog });
  // `rolegateEnv(idpUrl, workDir)` returns extra APP__* variables (e.g. an Entra-shaped authority).
  const extraEnv = envFor ? envFor(idp.url, join(workDir, 'idp')) : {};
  let app;
  try {
    app = await startRolegate({ bin, port, idpUrl: idp.url, workDir, logFile: appLog, extraEnv });
  } catch (err) {
    await stopProcess(idp.proc);
    throw err;
  }

  let browser;
  if (wantBrowser) {
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
    });
  }

  const stack = {
    name,
    workDir,
    bin,
    port,
    appUrl,
    idpUrl: idp.url,
    idp,
    app,
    browser,
    logs: { idp: idpLog, rolegate: appLog },
    async restartRolegate(env = extraEnv) {
      await stopProcess(stack.app.proc);
      stack.app = await startRolegate({ bin, port, idpUrl: idp.url, workDir, logFile: appLog, extraEnv: env });
      return stack.app;
    },
    async stop() {
      if (browser) await browser.close().catch(() => {});
      await stopProcess(stack.app?.proc);
      await stopProcess(idp.proc);
      if (!process.env.E2E_KEEP_TMP) rmSync(workDir, { recursive: true, force: true });
    },
  };
  return stack;
}

// ---------------------------------------------------------------- browser helpers

export function shotPath(name) {
  mkdirSync(SHOTS_DIR, { recursive: true });
  return join(SHOTS_DIR, `${name.replace(/[^A-Za-z0-9_.-]+/g, '_')}.png`);
}

export async function shot(page, name) {
  try {
    await page.screenshot({ path: shotPath(name), fullPage: true });
  } catch (err) {
    console.error(`# screenshot ${name} failed: ${err.message}`);
  }
}

/** Fills and submits the dev IdP's login form on `page` (which must show it). */
export async function submitIdpLogin(page, user, { shotName } = {}) {
  await page.locator('input[name="login"]').fill(user);
  await page.locator('input[name="password"]').fill('irrelevant');
  if (shotName) await shot(page, shotName);
  await page.locator('#submit').click();
}

/**
 * Full sign-in in `page`: open /login (with `next`), click #sign-in, type `user` on the IdP's
 * page, come back. Returns the response of rolegate's callback (redirect_path) request.
 */
export async function signIn(stack, page, user, { next, shotPrefix = user } = {}) {
  const loginUrl = `${stack.appUrl}/login${next ? `?next=${encodeURIComponent(next)}` : ''}`;
  await page.goto(loginUrl);
  await shot(page, `${shotPrefix}-01-login`);
  await page.locator('a#sign-in').click();
  await page.waitForURL((u) => u.href.startsWith(`${stack.idpUrl}/interaction/`));
  await shot(page, `${shotPrefix}-02-idp-login`);
  const callback = page.waitForResponse((r) => {
    const u = new URL(r.url());
    return u.origin === stack.appUrl && u.pathname === '/getAToken';
  });
  await submitIdpLogin(page, user, { shotName: `${shotPrefix}-03-idp-filled` });
  const response = await callback;
  await page.waitForLoadState('load');
  await shot(page, `${shotPrefix}-04-after-callback`);
  return response;
}

// ---------------------------------------------------------------- accessibility + README pictures

export const DOCS_SHOTS_DIR = join(REPO_ROOT, 'docs', 'screenshots');

/**
 * With ROLEGATE_SCREENSHOTS=1 (what dev/screenshots sets), saves what `page` shows as
 * docs/screenshots/<name>.png for the README: the viewport only, so each picture stays small.
 */
export async function docShot(page, name) {
  if (process.env.ROLEGATE_SCREENSHOTS !== '1') return;
  mkdirSync(DOCS_SHOTS_DIR, { recursive: true });
  await page.screenshot({ path: join(DOCS_SHOTS_DIR, `${name}.png`) });
}

/**
 * Starts rolegate with settings that do not validate (`extraEnv` breaks them): in Development it
 * serves the "Almost there" page. Resolves once GET /healthz answers 503 (misconfigured).
 */
export async function startMisconfiguredRolegate({ bin, port, idpUrl, workDir, logFile, extraEnv, timeoutMs = 60000 }) {
  return startServing({ label: 'rolegate (misconfigured)', bin, port, idpUrl, workDir, logFile, extraEnv, timeoutMs, status: 503 });
}

// ---------------------------------------------------------------- glewlwyd (a second real IdP)

/**
 * The env of the private glewlwyd of dev/glewlwyd/start: taken from ROLEGATE_GLEWLWYD_* when
 * dev/test already ran it (eval "$(dev/glewlwyd/start)"), else the script runs here (idempotent).
 * Resolves { env } or { missing } (a reason) when glewlwyd is not installed and cannot be
 * (the script's exit status 3); any other failure throws.
 */
export function glewlwydEnv() {
  const keys = ['ISSUER', 'PORT', 'RP_PORT', 'BASIC_CLIENT_ID', 'BASIC_CLIENT_SECRET',
    'POST_CLIENT_ID', 'POST_CLIENT_SECRET', 'USER_PASSWORD'];
  const from = (src) => Object.fromEntries(keys.map((k) => [k, src[`ROLEGATE_GLEWLWYD_${k}`]]));
  const have = from(process.env);
  if (keys.every((k) => have[k])) return { env: have };
  const script = join(REPO_ROOT, 'dev', 'glewlwyd', 'start');
  const r = spawnSync(script, [], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 300000 });
  if (r.status === 3) return { missing: `glewlwyd is not installed and cannot be (${r.stderr.trim()})` };
  if (r.status !== 0) throw new Error(`dev/glewlwyd/start failed (status ${r.status}):\n${r.stderr}`);
  const parsed = {};
  for (const m of r.stdout.matchAll(/^export (ROLEGATE_GLEWLWYD_[A-Z_]+)=(.*)$/gm)) parsed[m[1]] = m[2];
  const env = from(parsed);
  const lacking = keys.filter((k) => !env[k]);
  if (lacking.length) throw new Error(`dev/glewlwyd/start did not print ${lacking.join(', ')}:\n${r.stdout}`);
  return { env };
}

/**
 * rolegate against glewlwyd: on the fixed port the clients' redirect URIs name
 * (ROLEGATE_GLEWLWYD_RP_PORT), with `client` ('BASIC' or 'POST') and `method`
 * (auth.client_auth_method). Returns a stack like startStack's (no dev IdP).
 */
export async function startGlewlwydStack({ name, gl, client = 'BASIC', method = 'auto' }) {
  const workDir = mkdtempSync(join(tmpdir(), `rolegate-e2e-${name}-`));
  mkdirSync(LOG_DIR, { recursive: true });
  const appLog = join(LOG_DIR, `${name}-rolegate.log`);
  rmSync(appLog, { force: true });
  const bin = rolegateBinary();
  const port = Number(gl.RP_PORT);
  const envFor = (c, m) => ({
    APP__AUTH__CLIENT_ID: gl[`${c}_CLIENT_ID`],
    APP__AUTH__CLIENT_SECRET: gl[`${c}_CLIENT_SECRET`],
    APP__AUTH__CLIENT_AUTH_METHOD: m,
  });
  const start = (c, m) => startRolegate({ bin, port, idpUrl: gl.ISSUER, workDir, logFile: appLog, extraEnv: envFor(c, m) });
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  let app;
  try {
    app = await start(client, method);
  } catch (err) {
    await browser.close().catch(() => {});
    throw err;
  }
  const stack = {
    name, workDir, bin, port, browser, app,
    appUrl: `http://127.0.0.1:${port}`,
    idpUrl: gl.ISSUER,
    idpOrigin: new URL(gl.ISSUER).origin,
    password: gl.USER_PASSWORD,
    logs: { rolegate: appLog },
    /** Restarts rolegate with another client ('BASIC' / 'POST') and client_auth_method. */
    async restartRolegate(c, m) {
      await stopProcess(stack.app.proc);
      stack.app = await start(c, m);
      return stack.app;
    },
    async stop() {
      await browser.close().catch(() => {});
      await stopProcess(stack.app?.proc);
      if (!process.env.E2E_KEEP_TMP) rmSync(workDir, { recursive: true, force: true });
    },
  };
  return stack;
}

/**
 * Signs in on glewlwyd's login page (which checks the password), then its grant page: ticks
 * the offered scopes and grants them on a user's first sign-in to the client, then Continue.
 */
export async function submitGlewlwydLogin(page, user, password, { shotName } = {}) {
  await page.locator('input#username').fill(user);
  await page.locator('input#password').fill(password);
  if (shotName) await shot(page, `${shotName}-filled`);
  await page.locator('#loginbut').click();
  const cont = page.getByRole('button', { name: 'Continue' });
  await cont.waitFor({ state: 'visible', timeout: 15000 });
  const grant = page.getByRole('button', { name: 'Grant access' });
  if (await grant.isVisible()) {
    for (const box of await page.locator('input[type=checkbox][id^="grant-"]').all()) {
      if (!(await box.isChecked())) await box.check();
    }
    const granted = page.waitForResponse((r) => r.request().method() === 'PUT' && new URL(r.url()).pathname.startsWith('/api/auth/grant/'));
    await grant.click();
    const res = await granted;
    if (res.status() >= 300) throw new Error(`glewlwyd grant answered ${res.status()}`);
  }
  if (shotName) await shot(page, `${shotName}-grant`);
  await cont.click();
}

/** Full sign-in against glewlwyd; returns the response of rolegate's callback request. */
export async function signInGlewlwyd(stack, page, user, { next, shotPrefix = `glewlwyd-${user}` } = {}) {
  await page.goto(`${stack.appUrl}/login${next ? `?next=${encodeURIComponent(next)}` : ''}`);
  await page.locator('a#sign-in').click();
  await page.waitForURL((u) => u.href.startsWith(`${stack.idpOrigin}/login.html`));
  await page.locator('input#username').waitFor();
  await shot(page, `${shotPrefix}-01-idp-login`);
  const callback = page.waitForResponse((r) => {
    const u = new URL(r.url());
    return u.origin === stack.appUrl && u.pathname === '/getAToken';
  }, { timeout: 30000 });
  await submitGlewlwydLogin(page, user, stack.password, { shotName: `${shotPrefix}-02` });
  const response = await callback;
  await page.waitForLoadState('load');
  await shot(page, `${shotPrefix}-03-after-callback`);
  return response;
}
