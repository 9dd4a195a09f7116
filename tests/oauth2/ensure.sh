#!/usr/bin/env bash
# Idempotently start the OAuth2 test servers for pop3-probe's tests:
#
#   tests/oauth2/ensure.sh DIR
#
# - a real OAuth2 authorization server (oidc-provider from npm, pinned by
#   tests/oauth2/package-lock.json, installed under DIR/npm) on loopback,
#   over HTTP and over HTTPS (a certificate from DIR/pki's own CA);
# - a Dovecot instance of its own (not tests/dovecot's) offering only
#   XOAUTH2 and OAUTHBEARER, whose `passdb { driver = oauth2 }` validates
#   every token by asking that server's introspection endpoint, with a
#   mailbox holding three messages;
# - an Exim daemon of its own with one submission listener (STARTTLS, then
#   AUTH XOAUTH2 and OAUTHBEARER) whose `dovecot` authenticators hand each
#   SASL exchange to that Dovecot's auth-client socket, so SMTP logins are
#   checked against the same server's tokens (the dovecot authenticator is
#   in exim4-daemon-heavy, not -light).
#
# Healthy servers from DIR are reused; otherwise everything is rebuilt and
# verified (a token fetched with curl opens the mailbox over XOAUTH2), and
# DIR/env gets KEY=VALUE lines. Serialized with flock on DIR/.lock.
set -euo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=../dovecot/lib.sh
. "$HERE/../dovecot/lib.sh"
# Our one Dovecot instance (p3p_stop_all stops what this lists).
P3P_INSTANCES=(oauth)
P3P_MARKER=.pop3-probe-oauth2

(($# == 1)) || p3p_die "usage: $0 DIR"
DIR=$(p3p_resolve_dir "$1")
PATH=$PATH:/usr/sbin:/sbin
WAIT_SECS=${OAUTH2_WAIT_SECS:-30}

command -v dovecot >/dev/null || p3p_die "dovecot not found (apt-get install dovecot-pop3d)"
command -v node >/dev/null || p3p_die "node not found (apt-get install nodejs npm)"
command -v npm >/dev/null || p3p_die "npm not found (apt-get install npm)"
command -v curl >/dev/null || p3p_die "curl not found (apt-get install curl)"
command -v exim >/dev/null || p3p_die "exim not found (apt-get install exim4-daemon-heavy)"
exim -bV 2>/dev/null | grep -Eq '^Authenticators:.* dovecot( |$)' \
    || p3p_die "this exim has no dovecot authenticator (apt-get install exim4-daemon-heavy; -light lacks it)"
command -v python3 >/dev/null || p3p_die "python3 not found (checks the SMTP listener)"
command -v openssl >/dev/null || p3p_die "openssl not found"
(( ${#DIR} <= 70 )) || p3p_die "DIR path is too long for Dovecot's unix sockets: $DIR"

MAILBOX=probe
# Test-only secrets (the leak tests look for exactly these).
CLIENT_ID=pop3-probe-monitor
CLIENT_SECRET=Cl1ent-Secret-For-Tests-7731
OTHER_CLIENT_ID=other-api-client
OTHER_CLIENT_SECRET=Other-Api-Secret-5519
RS_CLIENT_ID=dovecot-introspection
RS_CLIENT_SECRET=Dovecot-Introspects-3318

STAMP=$(cat "$HERE/ensure.sh" "$HERE/node.sh" "$HERE/stop.sh" "$HERE/../dovecot/lib.sh" "$HERE/../smtp/lib.sh" "$HERE/server.mjs" "$HERE/package-lock.json" \
    | sha256sum | cut -c1-16)-uid$(id -u)
LOCKSUM=$(sha256sum <"$HERE/package-lock.json" | cut -c1-16)

p3p_lock "$DIR"

env_get() { sed -n "s/^$1=//p" "$DIR/env" | head -n1; }

# shellcheck source=node.sh
. "$HERE/node.sh"
# shellcheck source=../smtp/lib.sh
. "$HERE/../smtp/lib.sh"
# The SMTP listener's Exim (tests/smtp/lib.sh's helpers use these names).
CONF=$DIR/exim/exim.conf
PIDFILE=$DIR/exim/exim.pid
EXIM_LOG=$DIR/exim/log/mainlog

healthy() {
    [[ -f "$DIR/$P3P_MARKER" && -f "$DIR/env" && "$(cat "$DIR/.stamp" 2>/dev/null)" == "$STAMP" ]] || return 1
    [[ -n "$(p3p_instance_pid "$DIR" oauth)" ]] || return 1
    node_pid_is_ours "$(head -n1 "$DIR/oauth2.pid" 2>/dev/null)" || return 1
    local key
    for key in POP3S_OAUTH_PORT POP3_OAUTH_STLS_PORT OAUTH2_HTTP_PORT OAUTH2_HTTPS_PORT; do
        p3p_port_open "$(env_get "$key")" || return 1
    done
    [[ -n "$(exim_pid)" ]] || return 1
    [[ "$(smtp_banner "$(env_get SMTP_OAUTH_PORT)" || true)" == "220 "* ]] || return 1
    ! p3p_port_open "$(env_get OAUTH2_CLOSED_PORT)" || return 1
    openssl x509 -checkend 86400 -noout -in "$DIR/pki/server.pem" >/dev/null 2>&1 || return 1
    [[ "$(find "$DIR/mail/$MAILBOX/Maildir/cur" -type f | wc -l)" == "$(env_get MSG_COUNT)" ]] || return 1
}

if healthy; then exit 0; fi

p3p_log "setting up the OAuth2 test servers in $DIR"
p3p_stop_all "$DIR"
stop_node
stop_exim
if [[ ! -f "$DIR/$P3P_MARKER" ]] \
    && [[ -n "$(find "$DIR" -mindepth 1 -maxdepth 1 ! -name .lock -print -quit)" ]]; then
    p3p_die "$DIR is not empty and was not created by this script; refusing to wipe it"
fi
# Keep an npm install of the same lock file: the registry is asked once.
find "$DIR" -mindepth 1 -maxdepth 1 ! -name .lock ! -name npm -exec rm -rf -- {} +
touch "$DIR/$P3P_MARKER"

# --- oidc-provider from the npm registry ----------------------------------------
NPM=$DIR/npm
if [[ "$(cat "$NPM/.locksum" 2>/dev/null)" != "$LOCKSUM" || ! -d "$NPM/node_modules/oidc-provider" ]]; then
    rm -rf "$NPM"
    mkdir -p "$NPM"
    cp "$HERE/package.json" "$HERE/package-lock.json" "$NPM/"
    (cd "$NPM" && npm ci --no-audit --no-fund --loglevel=error </dev/null >"$DIR/npm-install.log" 2>&1) \
        || { tail -n 30 "$DIR/npm-install.log" >&2; p3p_die "npm ci (oidc-provider) failed"; }
    echo "$LOCKSUM" >"$NPM/.locksum"
fi
cp "$HERE/server.mjs" "$NPM/server.mjs"

# --- PKI: a CA and one certificate for localhost / 127.0.0.1 ---------------------
PKI=$DIR/pki
mkdir -p "$PKI"
p3p_newkey "$PKI/ca.key"
p3p_ossl req -x509 -new -key "$PKI/ca.key" -days 3650 -subj "/O=pop3-probe tests/CN=pop3-probe OAuth2 Test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$PKI/ca.pem"
p3p_newkey "$PKI/server.key"
p3p_ossl req -new -key "$PKI/server.key" -subj "/CN=localhost" -out "$PKI/server.csr"
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$PKI/server.ext"
p3p_ossl x509 -req -in "$PKI/server.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 365 -extfile "$PKI/server.ext" -out "$PKI/server.pem"
chmod 644 "$PKI/server.key" "$PKI/server.pem" "$PKI/ca.pem"

# --- users and the mailbox -----------------------------------------------------
if [[ "$(id -u)" == 0 ]]; then
    getent passwd dovecot >/dev/null || p3p_die "system user 'dovecot' missing"
    MAIL_UID=$(id -u dovecot) MAIL_GID=$(id -g dovecot)
    INTERNAL_USER=dovecot INTERNAL_GROUP=$(id -gn dovecot)
    if getent passwd dovenull >/dev/null; then LOGIN_USER=dovenull; else LOGIN_USER=dovecot; fi
    ROOT_MODE=1
else
    MAIL_UID=$(id -u) MAIL_GID=$(id -g)
    INTERNAL_USER=$(id -un) INTERNAL_GROUP=$(id -gn) LOGIN_USER=$(id -un)
    ROOT_MODE=0
fi
MAILROOT=$DIR/mail
mkdir -p "$MAILROOT/$MAILBOX/Maildir/"{cur,new,tmp}
# No password: the only way in is a token.
echo "$MAILBOX::$MAIL_UID:$MAIL_GID::$MAILROOT/$MAILBOX::" >"$DIR/users"
chmod 644 "$DIR/users"
MSG_COUNT=3
MSG_OCTETS=0
for i in 1 2 3; do
    f=$MAILROOT/$MAILBOX/Maildir/cur/$((1704067200 + i)).M${i}P1.oauth:2,
    printf 'From: sender@example.test\nTo: %s@localhost\nSubject: OAuth2 test message %d\n\nBody %d.\n' \
        "$MAILBOX" "$i" "$i" >"$f"
    MSG_OCTETS=$((MSG_OCTETS + $(wc -c <"$f") + $(wc -l <"$f")))
done
chmod 700 "$MAILROOT/$MAILBOX"
((ROOT_MODE)) && chown -R "$MAIL_UID:$MAIL_GID" "$MAILROOT"

cat >"$DIR/clients.json" <<EOF
[
  {"client_id": "$CLIENT_ID", "client_secret": "$CLIENT_SECRET", "mailbox": "$MAILBOX",
   "grant_types": ["client_credentials"], "redirect_uris": [], "response_types": [],
   "token_endpoint_auth_method": "client_secret_post"},
  {"client_id": "$OTHER_CLIENT_ID", "client_secret": "$OTHER_CLIENT_SECRET", "mailbox": "$MAILBOX",
   "audience": "urn:other-api", "grant_types": ["client_credentials"], "redirect_uris": [],
   "response_types": [], "token_endpoint_auth_method": "client_secret_post"},
  {"client_id": "$RS_CLIENT_ID", "client_secret": "$RS_CLIENT_SECRET",
   "grant_types": ["client_credentials"], "redirect_uris": [], "response_types": [],
   "token_endpoint_auth_method": "client_secret_basic"}
]
EOF
chmod 600 "$DIR/clients.json"

LOG=$DIR/dovecot.log
: >"$LOG"
chmod 644 "$LOG"

write_dovecot() { # POP3S_PORT STLS_PORT HTTP_PORT
    local idir=$DIR/oauth
    mkdir -p "$idir/run" "$idir/state"
    # Dovecot checks every token with the authorization server (RFC 7662
    # introspection, POST, authenticated as its own client): the token must
    # be active, for the mail audience, and name the mailbox logging in.
    cat >"$DIR/dovecot-oauth2.conf.ext" <<EOF
introspection_mode = post
introspection_url = http://$RS_CLIENT_ID:$RS_CLIENT_SECRET@127.0.0.1:$3/token/introspection
force_introspection = yes
username_attribute = mailbox
active_attribute = aud
active_value = urn:pop3-probe:mail
timeout_msecs = 5000
EOF
    chmod 644 "$DIR/dovecot-oauth2.conf.ext"
    {
        cat <<EOF
# Generated by tests/oauth2/ensure.sh. Do not edit.
instance_name = pop3probe-oauth
base_dir = $idir/run
state_dir = $idir/state
protocols = pop3
listen = 127.0.0.1
shutdown_clients = yes
log_path = $LOG
info_log_path = $LOG
debug_log_path = $LOG
auth_verbose = yes
default_internal_user = $INTERNAL_USER
default_internal_group = $INTERNAL_GROUP
default_login_user = $LOGIN_USER
first_valid_uid = 1
first_valid_gid = 1
mail_privileged_group =
login_trusted_networks =
disable_plaintext_auth = yes
auth_mechanisms = xoauth2 oauthbearer
auth_failure_delay = 0
auth_cache_size = 0
mail_max_userip_connections = 10000
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $DIR/dovecot-oauth2.conf.ext
}
userdb {
  driver = passwd-file
  args = username_format=%u $DIR/users
}
mail_location = maildir:~/Maildir
ssl = yes
ssl_cert = <$PKI/server.pem
ssl_key = <$PKI/server.key
ssl_min_protocol = TLSv1.2
service pop3-login {
  inet_listener pop3 {
    port = $2
  }
  inet_listener pop3s {
    port = $1
    ssl = yes
  }
  service_count = 0
  process_min_avail = 1
  client_limit = 1000
EOF
        ((ROOT_MODE)) || printf '  chroot =\n  user = %s\n' "$INTERNAL_USER"
        echo "}"
        ((ROOT_MODE)) || printf 'service anvil {\n  chroot =\n}\nservice auth-worker {\n  user = %s\n}\n' "$INTERNAL_USER"
    } >"$idir/dovecot.conf"
}

fail_with_log() {
    p3p_log "ERROR: $*"
    tail -n 30 "$LOG" "$DIR/oauth2.log" "$EXIM_LOG" "$DIR/exim/startup.log" >&2 2>/dev/null || true
    p3p_stop_all "$DIR"
    stop_node
    stop_exim
    exit 1
}

# Start oidc-provider on two fresh ports and wait until it has bound both:
# it then writes its own pid to DIR/oauth2.pid. Returns 2 when a port was
# taken in the meantime (the caller picks new ones); any other early exit
# fails with the server's exit status and log.
start_node() {
    local http=$1 https=$2 launcher rc deadline=$((SECONDS + WAIT_SECS))
    rm -f "$DIR/oauth2.pid" "$DIR/oauth2.pid.tmp"
    # setsid + every fd redirected: the server outlives this script, and a
    # caller reading our output does not wait for it.
    OAUTH2_HTTP_PORT=$http OAUTH2_HTTPS_PORT=$https OAUTH2_CLIENTS=$DIR/clients.json \
        OAUTH2_TLS_CERT=$PKI/server.pem OAUTH2_TLS_KEY=$PKI/server.key NODE_ENV=production \
        OAUTH2_PID_FILE=$DIR/oauth2.pid \
        setsid node "$NPM/server.mjs" </dev/null >"$DIR/oauth2.log" 2>&1 9>&- &
    launcher=$!
    # Alive is "the launcher still runs (not yet exec'd, or node itself) or
    # some process runs our server.mjs" (setsid forks when it must), so a
    # slow start on a loaded machine is waited for, not taken for an exit.
    until node_pid_is_ours "$(head -n1 "$DIR/oauth2.pid" 2>/dev/null)"; do
        if ! kill -0 "$launcher" 2>/dev/null && [[ -z "$(our_node_pids)" ]]; then
            rc=0
            wait "$launcher" 2>/dev/null || rc=$?
            grep -q 'listener failed: EADDRINUSE' "$DIR/oauth2.log" 2>/dev/null && return 2
            fail_with_log "oidc-provider exited with status $rc before it listened (node $(node --version 2>&1))"
        fi
        ((SECONDS < deadline)) || fail_with_log "oidc-provider did not listen within ${WAIT_SECS}s"
        sleep 0.1
    done
}

started=0
for attempt in 1 2 3; do
    read -r P_POP3S P_STLS P_HTTP P_HTTPS P_CLOSED <<<"$(p3p_pick_ports 5)"
    printf 'POP3S_OAUTH_PORT=%s\nPOP3_OAUTH_STLS_PORT=%s\n' "$P_POP3S" "$P_STLS" >"$DIR/env.partial"
    rc=0
    start_node "$P_HTTP" "$P_HTTPS" || rc=$?
    if ((rc == 2)); then
        p3p_log "oidc-provider port collision on attempt $attempt, retrying"
        stop_node
        continue
    fi
    write_dovecot "$P_POP3S" "$P_STLS" "$P_HTTP"
    rc=0
    dovecot -c "$DIR/oauth/dovecot.conf" </dev/null >>"$DIR/oauth/startup.log" 2>&1 9>&- || rc=$?
    if ((rc == 0)); then started=1; break; fi
    grep -q 'Address already in use' "$DIR/oauth/startup.log" "$LOG" 2>/dev/null \
        || { tail -n 20 "$DIR/oauth/startup.log" >&2; fail_with_log "dovecot did not start"; }
    p3p_log "port collision on attempt $attempt, retrying"
    p3p_stop_all "$DIR"
    stop_node
done
((started)) || fail_with_log "could not start (ports kept colliding)"

deadline=$((SECONDS + WAIT_SECS))
until p3p_port_open "$P_POP3S" && p3p_port_open "$P_STLS" && p3p_port_open "$P_HTTPS" \
    && [[ "$(curl -s --max-time 2 "http://127.0.0.1:$P_HTTP/_count" || true)" =~ ^[0-9]+$ ]]; do
    node_pid_is_ours "$(head -n1 "$DIR/oauth2.pid")" || fail_with_log "oidc-provider exited after it listened"
    ((SECONDS < deadline)) || fail_with_log "servers not ready after ${WAIT_SECS}s"
    sleep 0.2
done
p3p_port_open "$P_CLOSED" && fail_with_log "OAUTH2_CLOSED_PORT $P_CLOSED unexpectedly accepts connections"

# --- verify the chain end to end: token from the server, XOAUTH2 over POP3 -------
token=$(curl -s --max-time 5 --cacert "$PKI/ca.pem" "https://127.0.0.1:$P_HTTPS/token" \
    -d grant_type=client_credentials -d "client_id=$CLIENT_ID" -d "client_secret=$CLIENT_SECRET" \
    | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
[[ -n "$token" ]] || fail_with_log "no access token from oidc-provider"
ir=$(printf 'user=%s\001auth=Bearer %s\001\001' "$MAILBOX" "$token" | base64 -w0)
stat=$(printf 'AUTH XOAUTH2\r\n%s\r\nSTAT\r\nQUIT\r\n' "$ir" \
    | timeout 10 openssl s_client -quiet -connect "127.0.0.1:$P_POP3S" -CAfile "$PKI/ca.pem" 2>/dev/null \
    | tr -d '\r' | grep -E '^\+OK [0-9]+ [0-9]+$' || true)
[[ "$stat" == "+OK $MSG_COUNT $MSG_OCTETS" ]] \
    || fail_with_log "XOAUTH2 login + STAT with a fresh token gave '$stat', expected '+OK $MSG_COUNT $MSG_OCTETS'"

# --- Exim: SMTP AUTH XOAUTH2 / OAUTHBEARER through Dovecot's auth ---------------
# Exim passes each SASL exchange to Dovecot's auth-client socket (the
# `dovecot` authenticator), so the token is checked by the same oauth2
# passdb, introspecting at the same server, as the POP3 logins. AUTH is
# offered only after STARTTLS, as on a submission server. The daemon runs
# as the caller (an untrusted -C drops Exim's setuid; see tests/smtp).
AUTH_SOCKET=$DIR/oauth/run/auth-client
write_exim() { # PORT
    mkdir -p "$DIR/exim/spool" "$DIR/exim/log"
    cat >"$CONF" <<EOF
# Generated by tests/oauth2/ensure.sh. Do not edit.
primary_hostname = smtp-oauth.pop3-probe.test
exim_user = $(id -un)
exim_group = $(id -gn)
keep_environment =
spool_directory = $DIR/exim/spool
log_file_path = $DIR/exim/log/%slog
log_selector = +smtp_no_mail +smtp_connection +incoming_port +smtp_protocol_error +smtp_syntax_error
host_lookup =
rfc1413_hosts =
pipelining_connect_advertise_hosts =
smtp_accept_max = 500
smtp_accept_max_per_host = 500
local_interfaces = <; 127.0.0.1.$1
tls_advertise_hosts = *
tls_certificate = $PKI/server.pem
tls_privatekey = $PKI/server.key
acl_smtp_mail = no_mail
acl_smtp_quit = log_quit

begin acl

no_mail:
  deny message = 550 5.7.1 this test server takes no mail

# One line a session, which the tests find by the EHLO name they sent:
# which authenticator took the login, and as whom.
log_quit:
  warn logwrite = quit helo=\$sender_helo_name authenticator=\${if def:sender_host_authenticated{\$sender_host_authenticated}{none}} id=\${if def:authenticated_id{\$authenticated_id}{none}}
  accept

begin authenticators

xoauth2:
  driver = dovecot
  public_name = XOAUTH2
  server_socket = $AUTH_SOCKET
  server_advertise_condition = \${if !eq{\$tls_in_cipher}{}}
  server_set_id = \$auth1

oauthbearer:
  driver = dovecot
  public_name = OAUTHBEARER
  server_socket = $AUTH_SOCKET
  server_advertise_condition = \${if !eq{\$tls_in_cipher}{}}
  server_set_id = \$auth1
EOF
}

[[ -S "$AUTH_SOCKET" ]] || fail_with_log "Dovecot made no auth-client socket at $AUTH_SOCKET"
started=0
for attempt in 1 2 3; do
    read -r P_SMTP_OAUTH <<<"$(p3p_pick_ports 1)"
    write_exim "$P_SMTP_OAUTH"
    rc=0
    exim_start "$DIR/exim/startup.log" "$EXIM_LOG" || rc=$?
    if ((rc == 0)); then started=1; break; fi
    ((rc == 2)) || fail_with_log "could not start Exim"
    p3p_log "Exim port collision on attempt $attempt, retrying"
done
((started)) || fail_with_log "could not start Exim (ports kept colliding)"
until [[ "$(smtp_banner "$P_SMTP_OAUTH" || true)" == "220 "* ]]; do
    ((SECONDS < deadline)) || fail_with_log "Exim not ready after ${WAIT_SECS}s"
    sleep 0.1
done
smtp_ehlo "$P_SMTP_OAUTH" | grep -q '^AUTH' && fail_with_log "port $P_SMTP_OAUTH offers AUTH before STARTTLS"

# The chain end to end over SMTP: STARTTLS (verified against our CA), then
# AUTH XOAUTH2 with the token fetched above must get 235, and a token that
# is not one must not.
smtp_xoauth2() { # TOKEN: prints the AUTH reply code
    python3 - "$P_SMTP_OAUTH" "$PKI/ca.pem" "$MAILBOX" "$1" <<'PY'
import base64, smtplib, ssl, sys
port, ca, user, token = sys.argv[1:]
ctx = ssl.create_default_context(cafile=ca)
with smtplib.SMTP("127.0.0.1", int(port), local_hostname="harness.test", timeout=10) as s:
    s.starttls(context=ctx)
    s.ehlo("harness.test")
    assert "XOAUTH2" in s.esmtp_features.get("auth", "").split(), s.esmtp_features
    ir = base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode()).decode()
    code, _ = s.docmd("AUTH", "XOAUTH2 " + ir)
    if code == 334:  # the error challenge: answer it empty, as XOAUTH2 says
        code, _ = s.docmd("")
    print(code)
PY
}
code=$(smtp_xoauth2 "$token" 2>&1 || true)
[[ "$code" == 235 ]] || fail_with_log "SMTP AUTH XOAUTH2 with a fresh token gave '$code', expected 235"
code=$(smtp_xoauth2 "not-a-token-$RANDOM" 2>&1 || true)
[[ "$code" == 535 ]] || fail_with_log "SMTP AUTH XOAUTH2 with a made-up token gave '$code', expected 535"

cat >"$DIR/env.tmp" <<EOF
POP3S_OAUTH_PORT=$P_POP3S
POP3_OAUTH_STLS_PORT=$P_STLS
OAUTH2_HTTP_PORT=$P_HTTP
OAUTH2_HTTPS_PORT=$P_HTTPS
OAUTH2_CLOSED_PORT=$P_CLOSED
TOKEN_URL=https://127.0.0.1:$P_HTTPS/token
TOKEN_URL_HTTP=http://127.0.0.1:$P_HTTP/token
REVOCATION_URL_HTTP=http://127.0.0.1:$P_HTTP/token/revocation
COUNT_URL_HTTP=http://127.0.0.1:$P_HTTP/_count
CA_PEM=$PKI/ca.pem
SERVER_NAME=localhost
MAILBOX=$MAILBOX
CLIENT_ID=$CLIENT_ID
CLIENT_SECRET=$CLIENT_SECRET
OTHER_CLIENT_ID=$OTHER_CLIENT_ID
OTHER_CLIENT_SECRET=$OTHER_CLIENT_SECRET
SCOPE=mail.pop
MSG_COUNT=$MSG_COUNT
MSG_OCTETS=$MSG_OCTETS
DOVECOT_LOG=$LOG
OAUTH2_LOG=$DIR/oauth2.log
SMTP_OAUTH_PORT=$P_SMTP_OAUTH
EXIM_LOG=$EXIM_LOG
EXIM_PID=$(exim_pid)
PIDS=$(p3p_instance_pid "$DIR" oauth)
EOF
mv -f "$DIR/env.tmp" "$DIR/env"
rm -f "$DIR/env.partial"
echo "$STAMP" >"$DIR/.stamp"
p3p_log "OAuth2 test servers ready (env: $DIR/env)"
