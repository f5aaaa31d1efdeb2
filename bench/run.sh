#!/usr/bin/env bash
# rolegate load benchmark (issue 6): release binary + the dev IdP, real sign-ins over HTTP,
# wrk on six rows, sign-in time, resident memory with 10,000 sessions. See bench/README.md.
# The per-IP rate limit on the auth routes is off here (APP__SERVER__RATE_LIMIT_PER_MINUTE=0):
# every request comes from 127.0.0.1 and the rows measure throughput, not the limiter.
#
#   bench/run.sh
#
# Env (all optional):
#   BENCH_DURATION=10s  BENCH_CONNECTIONS=32  BENCH_THREADS=2     wrk settings per row
#   BENCH_SESSIONS=10000   cookie-less GET /login requests (one pre-sign-in session row each)
#   BENCH_SIGNINS=300      extra real sign-ins for the memory figure (0 = none)
#   BENCH_SIGNIN_RUNS=20   sign-ins timed one by one (median reported)
#   BENCH_WORKERS=         rolegate's APP__SERVER__WORKERS (default: one per core)
#   BENCH_BUSY_MAX=20      before each row, wait until other processes use <= this % of the CPUs
#   BENCH_QUIET_WAIT=60    ... for at most this many seconds (then run anyway, and say so)
#   BENCH_SKIP_SCALING=1  skip the scaling table (bench/seed to 1k/10k/100k sessions, 1M audit rows)
#   BENCH_KEEP=1           keep the temporary folder (logs, database) for inspection
#   BENCH_BIN=path         benchmark this binary instead of building target/release/rolegate
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DURATION="${BENCH_DURATION:-10s}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
THREADS="${BENCH_THREADS:-2}"
SESSIONS="${BENCH_SESSIONS:-10000}"
SIGNINS="${BENCH_SIGNINS:-300}"
SIGNIN_RUNS="${BENCH_SIGNIN_RUNS:-20}"
BUSY_MAX="${BENCH_BUSY_MAX:-20}"
QUIET_WAIT="${BENCH_QUIET_WAIT:-60}"

say() { printf 'bench: %s\n' "$*" >&2; }
die() { printf '\nbench: FAILED: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------ tools

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root (or sudo) to run: $*"
  fi
}
APT_UPDATED=""
apt_install() {
  if [ -z "$APT_UPDATED" ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}
for tool in wrk:wrk sqlite3:sqlite3 curl:curl; do
  command -v "${tool%%:*}" >/dev/null || { say "installing ${tool#*:} with apt"; apt_install "${tool#*:}"; }
done
command -v node >/dev/null || die "node (>= 20) is required"
command -v cargo >/dev/null || die "cargo is required"
if [ ! -d dev/idp/node_modules/oidc-provider ]; then
  say "installing the dev IdP's packages (npm ci in dev/idp)"
  (cd dev/idp && npm ci --no-audit --no-fund)
fi

if [ -n "${BENCH_BIN:-}" ]; then
  BIN="$BENCH_BIN" # a binary built elsewhere (A/B runs); it still runs from this folder
  [ -x "$BIN" ] || die "BENCH_BIN=$BIN is not an executable"
else
  say "building the release binaries (cargo build --release --bin rolegate --example bare)"
  cargo build --release --bin rolegate --example bare
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/rolegate"
fi
# Row 0: a bare actix-web handler, the yardstick every other row is read against.
BARE_BIN="${BENCH_BARE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/bare}"
if [ ! -x "$BARE_BIN" ]; then
  say "building the bare baseline (cargo build --release --example bare)"
  cargo build --release --example bare
fi

# ------------------------------------------------------------------ processes

TMP="$(mktemp -d -t rolegate-bench.XXXXXX)"
IDP_PID=""
APP_PID=""
EXTRA_PIDS=""
NGINX_CONF=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$NGINX_CONF" ] && nginx -c "$NGINX_CONF" -p "$TMP" -s quit 2>/dev/null || true
  for pid in $APP_PID $IDP_PID $EXTRA_PIDS; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $APP_PID $IDP_PID $EXTRA_PIDS; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ -n "${BENCH_KEEP:-}" ]; then say "kept $TMP"; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}
APP_PORT="${BENCH_APP_PORT:-$(free_port)}"
APP="http://127.0.0.1:${APP_PORT}"

IDP_LOG="$TMP/idp.log"
IDP_PORT=0 IDP_HOST=127.0.0.1 RP_PUBLIC_URL="$APP" IDP_DATA_DIR="$TMP/idp-data" \
  node dev/idp/server.mjs >"$IDP_LOG" 2>&1 &
IDP_PID=$!
for _ in $(seq 1 150); do
  grep -q '^idp ready ' "$IDP_LOG" && break
  kill -0 "$IDP_PID" 2>/dev/null || { cat "$IDP_LOG" >&2; die "the dev IdP exited"; }
  sleep 0.1
done
IDP="$(sed -n 's/^idp ready //p' "$IDP_LOG" | head -1)"
[ -n "$IDP" ] || die "the dev IdP did not print its ready line"

APP_LOG="$TMP/rolegate.log"
env -u RUST_LOG \
  NO_COLOR=1 \
  APP_ENV=Development \
  APP__SERVER__PORT="$APP_PORT" \
  APP__SERVER__PUBLIC_URL="$APP" \
  APP__AUTH__AUTHORITY="$IDP" \
  APP__DATABASE__URL="sqlite://$TMP/bench.db?mode=rwc" \
  APP__SESSION__KEY_FILE="$TMP/session.key" \
  APP__LOG__FILTER=warn \
  APP__SERVER__RATE_LIMIT_PER_MINUTE=0 \
  ${BENCH_WORKERS:+APP__SERVER__WORKERS="$BENCH_WORKERS"} \
  "$BIN" serve >"$APP_LOG" 2>&1 &
APP_PID=$!
for _ in $(seq 1 150); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$APP/healthz")" = 200 ] && break
  kill -0 "$APP_PID" 2>/dev/null || { cat "$APP_LOG" >&2; die "rolegate exited"; }
  sleep 0.2
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "$APP/healthz")" = 200 ] \
  || { cat "$APP_LOG" >&2; die "rolegate's /healthz is not 200"; }
say "rolegate $APP (pid $APP_PID), dev IdP $IDP (pid $IDP_PID), files in $TMP"

BARE_PORT="$(free_port)"
BARE="http://127.0.0.1:$BARE_PORT"
${BENCH_WORKERS:+BARE_WORKERS="$BENCH_WORKERS"} "$BARE_BIN" "127.0.0.1:$BARE_PORT" >"$TMP/bare.log" 2>&1 &
EXTRA_PIDS="$EXTRA_PIDS $!"
for _ in $(seq 1 100); do [ "$(curl -s -o /dev/null -w '%{http_code}' "$BARE/")" = 200 ] && break; sleep 0.1; done
[ "$(curl -s -o /dev/null -w '%{http_code}' "$BARE/")" = 200 ] || die "the bare baseline did not start (see $TMP/bare.log)"

# ------------------------------------------------------------------ helpers

rss_mb() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$APP_PID/status"; }
idp_requests() { grep -cE '^idp (GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) ' "$IDP_LOG" || true; }
app_log_lines() { wc -l <"$APP_LOG" | tr -d ' '; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
sessions_count() { sqlite3 "$TMP/bench.db" "$1"; }

# Percent of all CPUs busy over one second (everything on the machine).
cpu_busy() {
  local u n s i w q sq st t1 i1 t2 i2
  read -r _ u n s i w q sq st _ </proc/stat; t1=$((u + n + s + i + w + q + sq + st)); i1=$((i + w))
  sleep 1
  read -r _ u n s i w q sq st _ </proc/stat; t2=$((u + n + s + i + w + q + sq + st)); i2=$((i + w))
  echo $(((100 * ((t2 - t1) - (i2 - i1))) / (t2 - t1 > 0 ? t2 - t1 : 1)))
}
# Waits until the machine is quiet (other builds and tests share the 2 cores); prints busy %.
wait_quiet() {
  local busy waited=0
  busy="$(cpu_busy)"
  while [ "$busy" -gt "$BUSY_MAX" ] && [ "$waited" -lt "$QUIET_WAIT" ]; do
    sleep 4; waited=$((waited + 5)); busy="$(cpu_busy)"
  done
  [ "$busy" -le "$BUSY_MAX" ] || say "warning: the machine is still ${busy}% busy (other processes); measuring anyway"
  echo "$busy"
}

status_of() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
expect_status() { # expect_status <code> <what> curl-args...
  local want="$1" what="$2"; shift 2
  local got; got="$(status_of "$@")"
  [ "$got" = "$want" ] || die "$what: expected HTTP $want, got $got (rolegate log: $APP_LOG)"
}

to_ms() { # 1.23ms / 456.00us / 1.02s -> milliseconds
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.2f", v }
    else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.0f", v * 60000 }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.0f", v * 1000 }
    else print v }'
}

ROWS=()
BASE_RPS=""   # row 0, the bare actix-web handler
HEALTH_RPS="" # row 1, rolegate's /healthz
FAILURES=()

# run_row <n> <label> <expected status> <curl/wrk header or ""> <path>
run_row() {
  local n="$1" label="$2" want="$3" header="$4" path="$5"
  local APP="${ROW_BASE:-$APP}"
  local -a hdr=()
  [ -n "$header" ] && hdr=(-H "$header")
  expect_status "$want" "row $n ($label), before" "${hdr[@]}" "$APP$path"
  local busy; busy="$(wait_quiet)"
  local load; load="$(loadavg)"
  local idp0 log0; idp0="$(idp_requests)"; log0="$(app_log_lines)"
  local jwks0; jwks0="$(grep -cE '^idp GET /jwks' "$IDP_LOG" || true)"
  local out="$TMP/wrk-row$n.txt"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "${hdr[@]}" "$APP$path" >"$out" 2>&1 \
    || { cat "$out" >&2; die "wrk failed on row $n"; }
  local idp1 log1; idp1="$(idp_requests)"; log1="$(app_log_lines)"
  local jwks1; jwks1="$(grep -cE '^idp GET /jwks' "$IDP_LOG" || true)"
  expect_status "$want" "row $n ($label), after" "${hdr[@]}" "$APP$path"

  local rps p50 p99 total non2xx sockerr
  rps="$(awk '/^Requests\/sec:/ { print $2 }' "$out")"
  p50="$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")"
  p99="$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")"
  total="$(awk '/requests in/ { print $1 }' "$out")"
  non2xx="$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")"
  sockerr="$(grep -E 'Socket errors' "$out" || true)"
  [ -n "$rps" ] || { cat "$out" >&2; die "could not read wrk's output for row $n"; }
  if [ "${want:0:1}" = 2 ] || [ "${want:0:1}" = 3 ]; then
    [ -z "$non2xx" ] || die "row $n ($label): $non2xx of $total responses were not 2xx/3xx (see $out)"
  else
    [ "${non2xx:-0}" = "$total" ] || die "row $n ($label): only ${non2xx:-0} of $total responses were $want-like (see $out)"
  fi
  [ -z "$sockerr" ] || say "row $n: wrk reports $sockerr"
  [ -n "$BASE_RPS" ] || BASE_RPS="$rps"
  [ "$n" != 1 ] || [ -n "$HEALTH_RPS" ] || HEALTH_RPS="$rps"
  local ratio; ratio="$(awk -v a="$rps" -v b="$BASE_RPS" 'BEGIN { printf "%.2f", a / b }')"
  local hratio="-"
  [ -z "$HEALTH_RPS" ] || hratio="$(awk -v a="$rps" -v b="$HEALTH_RPS" 'BEGIN { printf "%.2f", a / b }')"
  local idp=$((idp1 - idp0)) jwks=$((jwks1 - jwks0)) logged=$((log1 - log0))
  ROWS+=("$n|$label|$want|$rps|$p50|$p99|$ratio|$idp|$jwks|$total|$logged|$busy|$load|$hratio")
  say "row $n: $label: $rps req/s, p50 ${p50} ms, p99 ${p99} ms, IdP requests $idp, rolegate log lines $logged"
  if [ "$n" -ge 2 ] && [ "$idp" -ne 0 ]; then FAILURES+=("row $n made $idp IdP requests (must be 0)"); fi
}

print_table() {
  printf '\n| # | row | status | req/s | p50 ms | p99 ms | vs row 0 (bare) | vs /healthz | IdP requests during row | requests | rolegate log lines | CPU busy before | load avg before |\n'
  printf '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n'
  local r n label want rps p50 p99 ratio idp jwks total logged busy load hratio
  for r in "${ROWS[@]}"; do
    IFS='|' read -r n label want rps p50 p99 ratio idp jwks total logged busy load hratio <<<"$r"
    local idpcell="$idp"
    [ "$n" = 6 ] && idpcell="$idp (JWKS fetches: $jwks)"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s%% | %s |\n' \
      "$n" "$label" "$want" "$rps" "$p50" "$p99" "$ratio" "$hratio" "$idpcell" "$total" "$logged" "$busy" "$load"
  done
}

row_field() { # row_field <row n> <field index 1-based>
  local r; for r in "${ROWS[@]}"; do [ "${r%%|*}" = "$1" ] && { echo "$r" | cut -d'|' -f"$2"; return; }; done
}

# ------------------------------------------------------------------ measurements

RSS_IDLE="$(rss_mb)"
say "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), load $(loadavg)"
say "rolegate RSS idle after start: ${RSS_IDLE} MB"

say "signing in alice and bob through the real flow"
ALICE="$(node bench/signin.mjs cookie "$APP" alice)" || die "sign-in of alice failed"
BOB="$(node bench/signin.mjs cookie "$APP" bob)" || die "sign-in of bob failed"
TOKEN="$(IDP_URL="$IDP" node dev/idp/get-token.mjs alice)" || die "get-token.mjs alice failed"
curl -s -H "Cookie: $ALICE" "$APP/api/me" | grep -q '"preferred_username":"alice@rolegate.dev"' \
  || die "/api/me with alice's cookie does not answer alice"
curl -s -H "Authorization: Bearer $TOKEN" "$APP/api/me" | grep -q '"preferred_username":"alice@rolegate.dev"' \
  || die "/api/me with alice's Bearer token does not answer alice"
# Row 2 is "anonymous GET /notes" in issue 6; trees without /notes use / (also a guarded page).
ANON_PATH=/notes
[ "$(status_of "$APP/notes")" = 302 ] || { ANON_PATH=/; say "no /notes route here (anonymous GET /notes is not 302): row 2 uses /"; }
loc="$(curl -s -o /dev/null -w '%{redirect_url}' "$APP$ANON_PATH")"
case "$loc" in "$APP/login?next="*) ;; *) die "anonymous GET $ANON_PATH redirects to '$loc', not /login?next=..." ;; esac

say "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, one row after another"
ROW_BASE="$BARE" run_row 0 "bare actix-web GET / (examples/bare.rs)" 200 "" /
run_row 1 "GET /healthz" 200 "" /healthz
run_row 2 "anonymous GET $ANON_PATH (302 to /login)" 302 "" "$ANON_PATH"
run_row 3 "GET / as alice (session)" 200 "Cookie: $ALICE" /
run_row 4 "GET /admin as bob (403)" 403 "Cookie: $BOB" /admin
run_row 5 "GET /api/me as alice (session)" 200 "Cookie: $ALICE" /api/me
run_row 6 "GET /api/me, Bearer token" 200 "Authorization: Bearer $TOKEN" /api/me
ROW6_JWKS="$(row_field 6 9)"
[ "$ROW6_JWKS" = 0 ] || FAILURES+=("row 6 fetched the JWKS $ROW6_JWKS times")
RSS_AFTER_ROWS="$(rss_mb)"
# Some trees write an audit row per 403 (row 4): say how many rows the six runs left.
AUDIT_ROWS="$(sqlite3 "$TMP/bench.db" "SELECT event || ': ' || COUNT(*) FROM audit_log GROUP BY event" 2>/dev/null | paste -sd, - || true)"

# ------------------------------------------------------------------ scaling (issue 15)
# GET / and GET /admin as alice at 1k/10k/100k session rows (10k audit rows), then 100k
# sessions with 1M audit rows; bench/seed copies a real session row and writes audit rows.
SCALE=()
if [ -z "${BENCH_SKIP_SCALING:-}" ]; then
  expect_status 200 "GET /admin as alice" -H "Cookie: $ALICE" "$APP/admin"
  ROWS_BEFORE_SCALE=("${ROWS[@]}")
  scale_step() { # scale_step <sessions> <audit rows>
    bench/seed "$TMP/bench.db" sessions "$1" >&2
    bench/seed "$TMP/bench.db" audit "$2" >&2
    sqlite3 -cmd '.timeout 10000' "$TMP/bench.db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
    local s a; s="$(sessions_count 'SELECT COUNT(*) FROM sessions')"; a="$(sessions_count 'SELECT COUNT(*) FROM audit_log')"
    run_row 11 "GET / as alice, $s sessions, $a audit rows" 200 "Cookie: $ALICE" /
    local home="${ROWS[${#ROWS[@]}-1]}"
    run_row 12 "GET /admin as alice, $s sessions, $a audit rows" 200 "Cookie: $ALICE" /admin
    local admin="${ROWS[${#ROWS[@]}-1]}"
    SCALE+=("$s|$a|$(echo "$home" | cut -d'|' -f4,6,7)|$(echo "$admin" | cut -d'|' -f4,6,7)|$(rss_mb)")
  }
  scale_step 1000 10000
  scale_step 10000 10000
  scale_step 100000 10000
  scale_step 100000 1000000
  ROWS=("${ROWS_BEFORE_SCALE[@]}")
fi

# One sign-in, timed: rolegate's part is GET /login + GET /getAToken as the client sees them;
# /getAToken includes rolegate's own call to the IdP's token endpoint, which the IdP times itself.
say "timing $SIGNIN_RUNS sign-ins one after another"
idp0="$(wc -l <"$IDP_LOG")"
SIGNIN_JSON="$(node bench/signin.mjs time "$APP" alice "$SIGNIN_RUNS")" || die "timed sign-ins failed"
TOKEN_MS="$(tail -n +"$((idp0 + 1))" "$IDP_LOG" | awk '/^idp POST \/token 200 / { sub(/ms$/, "", $5); print $5 }' \
  | sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.1f", (a[NR / 2] + a[NR / 2 + 1]) / 2 }')"
IDP_PER_SIGNIN="$(tail -n +"$((idp0 + 1))" "$IDP_LOG" | grep -cE '^idp (GET|POST) ' || true)"
jget() { node -e "const o=JSON.parse(process.argv[1]); const v=o[process.argv[2]]; console.log(typeof v==='number'?v.toFixed(1):v)" "$SIGNIN_JSON" "$1"; }
S_LOGIN="$(jget login_ms)"; S_CB="$(jget callback_ms)"; S_OWN="$(jget rolegate_ms)"
S_IDP="$(jget idp_browser_ms)"; S_HOPS="$(jget idp_browser_hops)"; S_TOTAL="$(jget total_ms)"
S_MIN="$(jget rolegate_ms_min)"; S_MAX="$(jget rolegate_ms_max)"
S_OWN_NET="$(awk -v a="$S_OWN" -v t="$TOKEN_MS" 'BEGIN { if (t == "n/a") print "n/a"; else printf "%.1f", a - t }')"

# Memory with many sessions, all made through rolegate itself.
say "creating $SESSIONS pre-sign-in sessions (cookie-less GET /login) and $SIGNINS real sign-ins"
t0=$(date +%s)
node bench/signin.mjs logins "$APP" "$SESSIONS" 16 >/dev/null || die "the GET /login burst failed"
t1=$(date +%s)
if [ "$SIGNINS" -gt 0 ]; then
  node bench/signin.mjs signins "$APP" carol "$SIGNINS" 4 >/dev/null || die "the sign-in burst failed"
fi
t2=$(date +%s)
NOW=$(date +%s)
COUNT_ALL="$(sessions_count 'SELECT COUNT(*) FROM sessions')"
COUNT_LIVE="$(sessions_count "SELECT COUNT(*) FROM sessions WHERE expires_at > $NOW")"
COUNT_USER="$(sessions_count "SELECT COUNT(*) FROM sessions WHERE user_sub IS NOT NULL AND expires_at > $NOW")"
DB_KB="$(du -k "$TMP"/bench.db* | awk '{ s += $1 } END { print s }')"
sleep 2
RSS_SESSIONS="$(rss_mb)"
say "sessions: $COUNT_ALL rows ($COUNT_USER signed in); RSS ${RSS_SESSIONS} MB"

ROWS_BEFORE_RERUN=("${ROWS[@]}")
run_row 3 "GET / as alice, with $COUNT_ALL sessions in the table" 200 "Cookie: $ALICE" /
RERUN="${ROWS[${#ROWS[@]}-1]}"
ROWS=("${ROWS_BEFORE_RERUN[@]}")
RSS_AFTER_WRK="$(rss_mb)"


# ------------------------------------------------------------------ Redis sessions, two instances
# Issue 7's rows, in the same run: sessions in Redis (dev/services starts a private Redis and
# PostgreSQL), one instance alone (row 7) and two instances behind nginx round-robin (row 8).
if [ -z "${BENCH_SKIP_REDIS:-}" ]; then
  command -v nginx >/dev/null || { say "installing nginx-light with apt"; apt_install nginx-light; }
  eval "$(dev/services start)"
  PG_DB="rolegate_bench_$$"
  psql "$ROLEGATE_TEST_POSTGRES" -qc "CREATE DATABASE $PG_DB" >/dev/null
  LB_PORT="$(free_port)"; LB="http://127.0.0.1:$LB_PORT"
  IDP2_LOG="$TMP/idp2.log"
  IDP_PORT=0 IDP_HOST=127.0.0.1 RP_PUBLIC_URL="$LB" IDP_DATA_DIR="$TMP/idp2-data" \
    node dev/idp/server.mjs >"$IDP2_LOG" 2>&1 &
  EXTRA_PIDS="$EXTRA_PIDS $!"
  for _ in $(seq 1 150); do grep -q '^idp ready ' "$IDP2_LOG" && break; sleep 0.1; done
  IDP2="$(sed -n 's/^idp ready //p' "$IDP2_LOG" | head -1)"
  [ -n "$IDP2" ] || die "the second dev IdP did not start"
  R_PORTS=()
  for i in 1 2; do
    port="$(free_port)"; R_PORTS+=("$port")
    env -u RUST_LOG NO_COLOR=1 APP_ENV=Development \
      APP__SERVER__PORT="$port" APP__SERVER__PUBLIC_URL="$LB" APP__SERVER__TRUSTED_PROXIES=127.0.0.1/32 APP__SERVER__RATE_LIMIT_PER_MINUTE=0 \
      APP__AUTH__AUTHORITY="$IDP2" \
      APP__DATABASE__URL="${ROLEGATE_TEST_POSTGRES%/postgres}/$PG_DB" \
      APP__SESSION__STORE=redis APP__SESSION__REDIS_URL="$ROLEGATE_TEST_REDIS" \
      APP__SESSION__KEY_FILE="$TMP/session.key" APP__LOG__FILTER=warn \
      ${BENCH_WORKERS:+APP__SERVER__WORKERS="$BENCH_WORKERS"} \
      "$BIN" serve >"$TMP/rolegate-redis-$i.log" 2>&1 &
    EXTRA_PIDS="$EXTRA_PIDS $!"
    for _ in $(seq 1 150); do [ "$(status_of "http://127.0.0.1:$port/healthz")" = 200 ] && break; sleep 0.2; done
    [ "$(status_of "http://127.0.0.1:$port/healthz")" = 200 ] || die "Redis instance $i did not start (see $TMP/rolegate-redis-$i.log)"
  done
  NGINX_CONF="$TMP/nginx.conf"
  cat >"$NGINX_CONF" <<NGINX
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx-body; proxy_temp_path $TMP/nginx-proxy;
  fastcgi_temp_path $TMP/nginx-fcgi; uwsgi_temp_path $TMP/nginx-uwsgi; scgi_temp_path $TMP/nginx-scgi;
  upstream rolegate { server 127.0.0.1:${R_PORTS[0]}; server 127.0.0.1:${R_PORTS[1]}; keepalive 64; }
  server {
    listen 127.0.0.1:$LB_PORT;
    location / {
      proxy_pass http://rolegate;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
NGINX
  nginx -c "$NGINX_CONF" -p "$TMP"
  say "Redis instances on ${R_PORTS[*]} behind nginx $LB"
  ALICE_R="$(node bench/signin.mjs cookie "$LB" alice)" || die "sign-in of alice through nginx failed"
  IDP_LOG_MAIN="$IDP_LOG"; IDP_LOG="$IDP2_LOG"
  ROW_BASE="http://127.0.0.1:${R_PORTS[0]}" run_row 7 "GET / as alice, Redis sessions, one instance" 200 "Cookie: $ALICE_R" /
  ROW_BASE="$LB" run_row 8 "GET / as alice, Redis sessions, two instances behind nginx" 200 "Cookie: $ALICE_R" /
  IDP_LOG="$IDP_LOG_MAIN"
fi

# ------------------------------------------------------------------ report

plain_log() { sed 's/\x1b\[[0-9;]*m//g' "$APP_LOG"; }
APP_WARN="$(plain_log | grep -cE ' (WARN|ERROR) ' || true)"
APP_ERRORS="$(plain_log | grep -E ' ERROR ' | head -5 || true)"
APP_OTHER_WARN="$(plain_log | grep -E ' WARN ' | grep -v 'access denied' | sed -E 's/^[^ ]+ +//' | sort | uniq -c | sort -rn | head -5 || true)"

echo
echo "## rolegate benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "rolegate: $BIN ($(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo "not a git checkout")), workers ${BENCH_WORKERS:-default (one per core)}; wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency; load average at the end $(loadavg)"
print_table
IFS='|' read -r _ _ _ rr_rps rr_p50 rr_p99 rr_ratio rr_idp _ rr_total _ rr_busy rr_load <<<"$RERUN"
echo
echo "row 3 again with $COUNT_ALL session rows: $rr_rps req/s, p50 $rr_p50 ms, p99 $rr_p99 ms, $rr_ratio of row 0, IdP requests $rr_idp (CPU busy before ${rr_busy}%, load $rr_load)"
echo
if [ "${#SCALE[@]}" -gt 0 ]; then
  echo "### scaling: signed-in GET / and GET /admin as alice by table size (ratios to row 0)"
  echo
  echo "| sessions | audit rows | GET / req/s | GET / p99 ms | GET / vs row 0 | /admin req/s | /admin p99 ms | /admin vs row 0 | RSS MB after |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for r in "${SCALE[@]}"; do
    IFS='|' read -r s a hr hp hq ar ap aq rss <<<"$r"
    echo "| $s | $a | $hr | $hp | $hq | $ar | $ap | $aq | $rss |"
  done
  echo
fi
echo "### sign-in (median of $SIGNIN_RUNS, one after another, user alice)"
echo "- rolegate's part, GET /login + GET /getAToken as the client sees them: ${S_OWN} ms (login ${S_LOGIN} ms + callback ${S_CB} ms; min ${S_MIN}, max ${S_MAX})"
echo "- of which the IdP's token endpoint (rolegate's back-channel call, as the IdP times it): ${TOKEN_MS} ms; rolegate without it: ${S_OWN_NET} ms"
echo "- the browser's IdP hops (authorize, login form, form post, resume; ${S_HOPS} requests): ${S_IDP} ms"
echo "- whole sign-in as the client sees it: ${S_TOTAL} ms; IdP requests per sign-in (all): $(awk -v a="$IDP_PER_SIGNIN" -v n="$SIGNIN_RUNS" 'BEGIN { printf "%.1f", a / (n + 1) }')"
echo
echo "### rolegate resident memory (VmRSS)"
echo "- idle after start: ${RSS_IDLE} MB"
echo "- after the six rows: ${RSS_AFTER_ROWS} MB"
echo "- after $SESSIONS cookie-less GET /login ($((t1 - t0)) s) and $SIGNINS real sign-ins as carol ($((t2 - t1)) s): ${RSS_SESSIONS} MB"
echo "  sessions table: $COUNT_ALL rows, $COUNT_LIVE unexpired, $COUNT_USER signed in; database files ${DB_KB} KB"
echo "- after a further wrk run of row 3: ${RSS_AFTER_WRK} MB"
echo
echo "### targets"
check() { if awk "BEGIN { exit !($2) }"; then echo "- PASS  $1"; else echo "- MISS  $1"; fi; }
# Issue 15's targets: ratios to row 0 (bare actix-web) in this same run.
r0="$(row_field 0 4)"; p99_0="$(row_field 0 6)"
ratio_of() { awk -v a="$(row_field "$1" 4)" -v b="$r0" 'BEGIN { printf "%.2f", a / b }'; }
check "row 1 /healthz >= 0.90 of row 0 ($(ratio_of 1))" "$(ratio_of 1) >= 0.90"
check "row 3 signed-in GET / >= 0.60 of row 0 ($(ratio_of 3))" "$(ratio_of 3) >= 0.60"
check "row 3 p99 <= 2x row 0's p99 ($(row_field 3 6) ms vs ${p99_0} ms)" "$(row_field 3 6) <= 2 * $p99_0"
check "row 4 signed-in 403 page >= 0.60 of row 0 ($(ratio_of 4))" "$(ratio_of 4) >= 0.60"
check "row 6 /api/me with a Bearer token >= 0.70 of row 0 ($(ratio_of 6))" "$(ratio_of 6) >= 0.70"
if [ -z "${BENCH_SKIP_REDIS:-}" ]; then
  check "row 7 GET / with Redis sessions, one instance >= 0.40 of row 0 ($(ratio_of 7))" "$(ratio_of 7) >= 0.40"
  echo "- info  row 8 (two instances behind nginx, same 2 cores): $(ratio_of 8) of row 0"
fi
if [ "${#SCALE[@]}" -gt 0 ]; then
  IFS='|' read -r _ _ _ _ _ ar ap aq _ <<<"${SCALE[${#SCALE[@]}-1]}"
  check "GET /admin with 100k sessions and 1M audit rows >= 0.10 of row 0 ($aq), p99 < 50 ms ($ap ms)" "$aq >= 0.10 && $ap < 50"
fi
check "sign-in, rolegate's own server time: median <= 3 ms (${S_OWN_NET} ms)" "${S_OWN_NET/n\/a/999} <= 3"
idp_sum=0; for n in 2 3 4 5 6; do idp_sum=$((idp_sum + $(row_field "$n" 8))); done
check "zero IdP requests during rows 2-6 ($idp_sum), no JWKS fetch during row 6 ($ROW6_JWKS)" "$idp_sum == 0 && $ROW6_JWKS == 0"
check "RSS with $COUNT_ALL sessions < 150 MB (${RSS_SESSIONS} MB; ${RSS_AFTER_WRK} MB after wrk)" "$RSS_SESSIONS < 150 && $RSS_AFTER_WRK < 150"
echo
[ -z "$AUDIT_ROWS" ] || echo "audit_log rows after the six rows: $AUDIT_ROWS"
echo "rolegate log: $APP_WARN WARN/ERROR lines in all (row 4 logs one 'access denied' warning per request)"
[ -z "$APP_ERRORS" ] || { echo "first ERROR lines:"; echo "$APP_ERRORS"; }
[ -z "$APP_OTHER_WARN" ] || { echo "other WARN lines (count, message):"; echo "$APP_OTHER_WARN"; }

if [ "${#FAILURES[@]}" -gt 0 ]; then
  printf 'bench: FAILED: %s\n' "${FAILURES[@]}" >&2
  exit 1
fi
