#!/usr/bin/env bash
# Idempotently start the Dovecot POP3 test servers for pop3-probe's tests.
#
#   tests/dovecot/ensure.sh DIR
#
# If a healthy set of instances is already running from DIR this exits 0
# quickly.  Otherwise it (re)creates everything under DIR (certificates,
# users, maildirs, configs), starts the Dovecot instances, waits until every
# listener answers, verifies STAT, and writes DIR/env (KEY=VALUE lines).
# Serialized with flock on DIR/.lock, so concurrent callers are safe.
# See tests/dovecot/README.md.
set -euo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

(($# == 1)) || p3p_die "usage: $0 DIR"
DIR=$(p3p_resolve_dir "$1")

TEST_USER=probe
EMPTY_USER=empty
# The round-trip monitor's mailbox: the test Exim delivers into its Maildir
# (tests/smtp/ensure.sh), so its content varies and healthy() does not count it.
ROUNDTRIP_USER=roundtrip
PASSWORD=Pr0be-Secret-42
SERVER_NAME=localhost
WAIT_SECS=${DOVECOT_WAIT_SECS:-20}

# dovecot/doveadm live in /usr/sbin, often not on a normal user's PATH.
PATH=$PATH:/usr/sbin:/sbin

command -v dovecot >/dev/null || p3p_die "dovecot not found (apt-get install dovecot-pop3d)"
command -v openssl >/dev/null || p3p_die "openssl not found"
command -v flock >/dev/null || p3p_die "flock not found (util-linux)"

# A stamp of the harness version + user: if the scripts change, rebuild.
STAMP=$(cat "$HERE/ensure.sh" "$HERE/lib.sh" | sha256sum | cut -c1-16)-uid$(id -u)

# Unix socket paths must fit in sun_path (108 bytes); longest socket name
# under base_dir is ~24 chars.
if (( ${#DIR} > 70 )); then
    p3p_die "DIR path is too long for Dovecot's unix sockets (${#DIR} > 70 chars): $DIR"
fi

p3p_lock "$DIR"

# ---------------------------------------------------------------------------
# Fast path: healthy instance already running?
# ---------------------------------------------------------------------------
env_get() { sed -n "s/^$1=//p" "$DIR/env" | head -n1; }

count_msgs() { # maildir -> number of message files in cur/ and new/
    find "$1/cur" "$1/new" -maxdepth 1 -type f 2>/dev/null | wc -l
}

healthy() {
    [[ -f "$DIR/$P3P_MARKER" && -f "$DIR/env" && -f "$DIR/.stamp" ]] || return 1
    [[ "$(cat "$DIR/.stamp")" == "$STAMP" ]] || return 1
    local inst key port
    for inst in "${P3P_INSTANCES[@]}"; do
        [[ -n "$(p3p_instance_pid "$DIR" "$inst")" ]] || return 1
    done
    for key in POP3_PLAIN_STLS_PORT POP3S_PORT POP3S_EXPIRED_PORT POP3_NOTLS_PORT POP3S_NOAPOP_PORT; do
        port=$(env_get "$key")
        [[ -n "$port" ]] && p3p_port_open "$port" || return 1
    done
    port=$(env_get CLOSED_PORT)
    [[ -n "$port" ]] && ! p3p_port_open "$port" || return 1
    openssl x509 -checkend 86400 -noout -in "$DIR/pki/server.pem" >/dev/null 2>&1 || return 1
    [[ "$(count_msgs "$DIR/mail/$TEST_USER/Maildir")" == "$(env_get MSG_COUNT)" ]] || return 1
    [[ "$(count_msgs "$DIR/mail/$EMPTY_USER/Maildir")" == 0 ]] || return 1
    return 0
}

if healthy; then
    exit 0
fi

# ---------------------------------------------------------------------------
# Slow path: stop leftovers, wipe DIR, recreate.
# ---------------------------------------------------------------------------
p3p_log "setting up Dovecot test servers in $DIR"
p3p_stop_all "$DIR"

# Refuse to wipe a directory that is not ours (protects against DIR=$HOME).
if [[ ! -f "$DIR/$P3P_MARKER" ]]; then
    if [[ -n "$(find "$DIR" -mindepth 1 -maxdepth 1 ! -name .lock -print -quit)" ]]; then
        p3p_die "$DIR is not empty and was not created by this script; refusing to wipe it"
    fi
fi
find "$DIR" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf -- {} +
touch "$DIR/$P3P_MARKER"

# --- users ----------------------------------------------------------------
if [[ "$(id -u)" == 0 ]]; then
    # Dovecot refuses to access mail as root: use the Debian 'dovecot' user
    # for mail, 'dovenull' for login processes.
    getent passwd dovecot >/dev/null || p3p_die "system user 'dovecot' missing"
    MAIL_USER=dovecot
    MAIL_UID=$(id -u dovecot)
    MAIL_GID=$(id -g dovecot)
    INTERNAL_USER=dovecot
    INTERNAL_GROUP=$(id -gn dovecot)
    if getent passwd dovenull >/dev/null; then LOGIN_USER=dovenull; else LOGIN_USER=dovecot; fi
    ROOT_MODE=1
else
    MAIL_USER=$(id -un) || p3p_die "current uid $(id -u) has no user name"
    MAIL_UID=$(id -u)
    MAIL_GID=$(id -g)
    INTERNAL_USER=$MAIL_USER
    INTERNAL_GROUP=$(id -gn)
    LOGIN_USER=$MAIL_USER
    ROOT_MODE=0
fi

# --- PKI --------------------------------------------------------------------
PKI=$DIR/pki
mkdir -p "$PKI/newcerts"
: >"$PKI/index.txt"
echo 1000 >"$PKI/serial"
cat >"$PKI/ca.cnf" <<EOF
[ ca ]
default_ca = testca

[ testca ]
dir              = $PKI
database         = \$dir/index.txt
new_certs_dir    = \$dir/newcerts
serial           = \$dir/serial
default_md       = sha256
policy           = policy_any
unique_subject   = no
email_in_dn      = no
copy_extensions  = none

[ policy_any ]
organizationName = optional
commonName       = supplied

[ req ]
distinguished_name = req_dn
prompt             = no
[ req_dn ]
CN = unused

[ v3_ca ]
basicConstraints       = critical,CA:TRUE
keyUsage               = critical,keyCertSign,cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ v3_server ]
basicConstraints       = critical,CA:FALSE
keyUsage               = critical,digitalSignature
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid,issuer
EOF

utc() { date -u -d "$1" +%Y%m%d%H%M%SZ; }

# Test CA (backdated so it covers the expired cert's validity window too).
p3p_newkey "$PKI/ca.key"
p3p_ossl req -new -config "$PKI/ca.cnf" -key "$PKI/ca.key" -subj "/O=pop3-probe tests/CN=pop3-probe Test CA" -out "$PKI/ca.csr"
p3p_ossl ca -batch -notext -config "$PKI/ca.cnf" -selfsign -keyfile "$PKI/ca.key" -in "$PKI/ca.csr" \
    -extensions v3_ca -startdate 20190101000000Z -enddate "$(utc '+10 years')" -out "$PKI/ca.pem"

# Good server cert: valid from yesterday for one year.
p3p_newkey "$PKI/server.key"
p3p_ossl req -new -config "$PKI/ca.cnf" -key "$PKI/server.key" -subj "/CN=$SERVER_NAME" -out "$PKI/server.csr"
p3p_ossl ca -batch -notext -config "$PKI/ca.cnf" -cert "$PKI/ca.pem" -keyfile "$PKI/ca.key" -in "$PKI/server.csr" \
    -extensions v3_server -startdate "$(utc '-1 day')" -enddate "$(utc '+365 days')" -out "$PKI/server.pem"

# Expired server cert: same CA and names, validity 2020-01-01 .. 2021-01-01.
p3p_newkey "$PKI/expired.key"
p3p_ossl req -new -config "$PKI/ca.cnf" -key "$PKI/expired.key" -subj "/CN=$SERVER_NAME" -out "$PKI/expired.csr"
p3p_ossl ca -batch -notext -config "$PKI/ca.cnf" -cert "$PKI/ca.pem" -keyfile "$PKI/ca.key" -in "$PKI/expired.csr" \
    -extensions v3_server -startdate 20200101000000Z -enddate 20210101000000Z -out "$PKI/expired.pem"

# Unrelated CA that signs nothing we serve.
p3p_newkey "$PKI/other-ca.key"
p3p_ossl req -new -config "$PKI/ca.cnf" -key "$PKI/other-ca.key" -subj "/O=pop3-probe tests/CN=pop3-probe Other Untrusted CA" -out "$PKI/other-ca.csr"
p3p_ossl ca -batch -notext -config "$PKI/ca.cnf" -selfsign -keyfile "$PKI/other-ca.key" -in "$PKI/other-ca.csr" \
    -extensions v3_ca -startdate 20190101000000Z -enddate "$(utc '+10 years')" -out "$PKI/other-ca.pem"

openssl verify -CAfile "$PKI/ca.pem" "$PKI/server.pem" >/dev/null \
    || p3p_die "generated server cert does not verify against the test CA"

# --- passwd-file + maildirs --------------------------------------------------
MAILROOT=$DIR/mail
for u in "$TEST_USER" "$EMPTY_USER" "$ROUNDTRIP_USER"; do
    mkdir -p "$MAILROOT/$u/Maildir/cur" "$MAILROOT/$u/Maildir/new" "$MAILROOT/$u/Maildir/tmp"
done
cat >"$DIR/users" <<EOF
$TEST_USER:{PLAIN}$PASSWORD:$MAIL_UID:$MAIL_GID::$MAILROOT/$TEST_USER::
$EMPTY_USER:{PLAIN}$PASSWORD:$MAIL_UID:$MAIL_GID::$MAILROOT/$EMPTY_USER::
$ROUNDTRIP_USER:{PLAIN}$PASSWORD:$MAIL_UID:$MAIL_GID::$MAILROOT/$ROUNDTRIP_USER::
EOF
chmod 644 "$DIR/users"

# Three small messages, stored with LF line endings (as Dovecot's maildir
# does).  POP3 sizes count CRLF, i.e. bytes + number of LFs.
MSG_COUNT=3
MSG_OCTETS=0
for i in 1 2 3; do
    f=$MAILROOT/$TEST_USER/Maildir/cur/$((1704067200 + i)).M${i}P1.pop3probe:2,
    {
        printf 'Return-Path: <sender@example.test>\n'
        printf 'From: Test Sender <sender@example.test>\n'
        printf 'To: %s@localhost\n' "$TEST_USER"
        printf 'Subject: pop3-probe test message %d\n' "$i"
        printf 'Date: Mon, 01 Jan 2024 00:00:0%d +0000\n' "$i"
        printf 'Message-ID: <msg%d@pop3-probe.test>\n' "$i"
        printf '\n'
        printf 'This is test message number %d for pop3-probe.\n' "$i"
        for ((l = 1; l < i; l++)); do printf 'Extra body line %d.\n' "$l"; done
        if ((i == 3)); then printf '.A line starting with a dot (dot-stuffing check).\n'; fi
    } >"$f"
    bytes=$(wc -c <"$f")
    lfs=$(wc -l <"$f")
    MSG_OCTETS=$((MSG_OCTETS + bytes + lfs))
    touch -d "2024-01-01 00:00:0$i UTC" "$f"
done

chmod 700 "$MAILROOT/$TEST_USER" "$MAILROOT/$EMPTY_USER" "$MAILROOT/$ROUNDTRIP_USER"
if ((ROOT_MODE)); then
    chown -R "$MAIL_UID:$MAIL_GID" "$MAILROOT"
    # The mail/auth processes run as $MAIL_USER and must be able to reach DIR.
    if command -v setpriv >/dev/null; then
        setpriv --reuid="$MAIL_UID" --regid="$MAIL_GID" --clear-groups \
            test -r "$DIR/users" -a -w "$MAILROOT/$TEST_USER/Maildir/cur" \
            || p3p_die "user $MAIL_USER cannot access $DIR (a parent directory is not world-searchable?); choose a DIR under e.g. /tmp or the workspace"
    fi
fi

# --- dovecot configs -----------------------------------------------------------
LOG=$DIR/dovecot.log
: >"$LOG"
chmod 644 "$LOG"

# write_conf INST SSL(yes|no) MECHS POP3_PORT POP3S_PORT CERT KEY
write_conf() {
    local inst=$1 ssl=$2 mechs=$3 pop3_port=$4 pop3s_port=$5 cert=$6 key=$7
    local idir=$DIR/$inst conf=$DIR/$inst/dovecot.conf
    mkdir -p "$idir/run" "$idir/state"
    {
        cat <<EOF
# Generated by tests/dovecot/ensure.sh -- instance "$inst". Do not edit.
instance_name = pop3probe-$inst
base_dir = $idir/run
state_dir = $idir/state
protocols = pop3
listen = 127.0.0.1
shutdown_clients = yes

log_path = $LOG
info_log_path = $LOG
debug_log_path = $LOG
auth_verbose = yes
login_log_format_elements = user=<%u> method=%m rip=%r lip=%l lport=%{lport} mpid=%e %c session=<%{session}>

default_internal_user = $INTERNAL_USER
default_internal_group = $INTERNAL_GROUP
default_login_user = $LOGIN_USER
first_valid_uid = 1
first_valid_gid = 1
mail_privileged_group =
default_process_limit = 200
default_client_limit = 2000

login_trusted_networks =
disable_plaintext_auth = no
auth_mechanisms = $mechs
auth_failure_delay = 0
auth_cache_size = 0
mail_max_userip_connections = 10000

# First passdb only attaches "nodelay" (no authentication, result ignored):
# failed logins are answered immediately and never feed the per-IP auth
# penalty (which would otherwise add 2-15 s delays after a few failures).
passdb {
  driver = static
  args = noauthenticate nodelay=yes
  result_success = continue
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DIR/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $DIR/users
}
mail_location = maildir:~/Maildir
# Every expunge (what a POP3 DELE becomes at QUIT) and flag change is logged
# with the message's Message-ID: the round-trip tests read
# from this log that no message but the probe's own was ever removed.
mail_plugins = \$mail_plugins notify mail_log
plugin {
  mail_log_events = delete undelete expunge flag_change
  mail_log_fields = uid box msgid flags
}

ssl = $ssl
EOF
        if [[ "$ssl" != no ]]; then
            cat <<EOF
ssl_cert = <$cert
ssl_key = <$key
ssl_min_protocol = TLSv1.2
ssl_prefer_server_ciphers = no
EOF
        fi
        cat <<EOF

service pop3-login {
  inet_listener pop3 {
    port = $pop3_port
  }
  inet_listener pop3s {
    port = $pop3s_port
    ssl = yes
  }
  # One long-lived login process serving many connections: fast, and no
  # per-connection fork.
  service_count = 0
  process_min_avail = 1
  client_limit = 1000
EOF
        ((ROOT_MODE)) || printf '  chroot =\n  user = %s\n' "$INTERNAL_USER"
        echo "}"
        if ((!ROOT_MODE)); then
            # Running unprivileged: no chroot, no user switching.
            cat <<EOF
service anvil {
  chroot =
}
service auth-worker {
  user = $INTERNAL_USER
}
EOF
        fi
        cat <<EOF
service pop3 {
  process_limit = 500
}
EOF
    } >"$conf"
}

start_instance() { # INST -> 0 ok, 2 port in use, 1 other failure
    local inst=$1 conf=$DIR/$1/dovecot.conf out=$DIR/$1/startup.log rc=0
    # fd 9 (our flock) must not leak into the daemon; stdio goes to a file
    # so callers capturing our output don't wait for Dovecot to exit.
    dovecot -c "$conf" </dev/null >>"$out" 2>&1 9>&- || rc=$?
    if ((rc != 0)); then
        if grep -q 'Address already in use' "$out" "$LOG" 2>/dev/null; then return 2; fi
        p3p_log "dovecot instance '$inst' failed to start (exit $rc):"
        tail -n 20 "$out" >&2 || true
        return 1
    fi
    return 0
}

# First line the server sends on a plaintext POP3 port.
pop3_greeting() {
    timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        IFS= read -r l <&3 || exit 1
        printf "QUIT\r\n" >&3
        printf "%s\n" "${l%$'"'\r'"'}"' _ "$1" 2>/dev/null
}

# USER/PASS/STAT on a plaintext port; prints the STAT reply line.
pop3_stat() { # PORT USER PASS
    timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        r() { IFS= read -r l <&3 || exit 1; l=${l%$'"'\r'"'}; }
        r; [[ $l == "+OK"* ]] || { echo "greeting: $l"; exit 1; }
        printf "USER %s\r\n" "$2" >&3; r; [[ $l == "+OK"* ]] || { echo "USER: $l"; exit 1; }
        printf "PASS %s\r\n" "$3" >&3; r; [[ $l == "+OK"* ]] || { echo "PASS: $l"; exit 1; }
        printf "STAT\r\n" >&3; r; s=$l
        printf "QUIT\r\n" >&3; r
        printf "%s\n" "$s"' _ "$@"
}

fail_with_log() {
    p3p_log "ERROR: $*"
    p3p_log "---- tail of $LOG ----"
    tail -n 40 "$LOG" >&2 || true
    p3p_stop_all "$DIR"
    exit 1
}

started=0
for attempt in 1 2 3; do
    read -r P_STLS P_POP3S P_EXPIRED P_NOTLS P_NOAPOP P_CLOSED <<<"$(p3p_pick_ports 6)"
    # Port 0 disables a listener.
    write_conf main    yes "plain apop" "$P_STLS"  "$P_POP3S"   "$PKI/server.pem"  "$PKI/server.key"
    write_conf expired yes "plain apop" 0          "$P_EXPIRED" "$PKI/expired.pem" "$PKI/expired.key"
    write_conf notls   no  "plain"      "$P_NOTLS" 0            "" ""
    write_conf noapop  yes "plain"      0          "$P_NOAPOP"  "$PKI/server.pem"  "$PKI/server.key"
    # env is written early (without PIDS) so p3p_stop_all can find the ports.
    printf 'POP3_PLAIN_STLS_PORT=%s\nPOP3S_PORT=%s\nPOP3S_EXPIRED_PORT=%s\nPOP3_NOTLS_PORT=%s\nPOP3S_NOAPOP_PORT=%s\n' \
        "$P_STLS" "$P_POP3S" "$P_EXPIRED" "$P_NOTLS" "$P_NOAPOP" >"$DIR/env.partial"
    rc=0
    for inst in "${P3P_INSTANCES[@]}"; do
        start_instance "$inst" || { rc=$?; break; }
    done
    if ((rc == 0)); then started=1; break; fi
    p3p_stop_all "$DIR"
    if ((rc == 2)); then
        p3p_log "port collision on attempt $attempt, retrying with new ports"
        continue
    fi
    fail_with_log "could not start Dovecot"
done
((started)) || fail_with_log "could not start Dovecot (ports kept colliding)"

# --- wait for listeners -----------------------------------------------------------
deadline=$((SECONDS + WAIT_SECS))
pending=("$P_STLS" "$P_POP3S" "$P_EXPIRED" "$P_NOTLS" "$P_NOAPOP")
while :; do
    left=()
    for p in "${pending[@]}"; do
        if [[ "$p" == "$P_STLS" || "$p" == "$P_NOTLS" ]]; then
            [[ "$(pop3_greeting "$p" || true)" == "+OK"* ]] || left+=("$p")
        else
            p3p_port_open "$p" || left+=("$p")
        fi
    done
    ((${#left[@]} == 0)) && break
    pending=("${left[@]}")
    if ((SECONDS >= deadline)); then
        fail_with_log "Dovecot listeners not ready after ${WAIT_SECS}s: ports ${pending[*]}"
    fi
    sleep 0.1
done
if p3p_port_open "$P_CLOSED"; then
    fail_with_log "CLOSED_PORT $P_CLOSED unexpectedly accepts connections"
fi

# --- verify the mailbox numbers via real POP3 STAT ------------------------------
stat=$(pop3_stat "$P_NOTLS" "$TEST_USER" "$PASSWORD") || fail_with_log "POP3 login/STAT failed: $stat"
[[ "$stat" == "+OK $MSG_COUNT $MSG_OCTETS" ]] \
    || fail_with_log "STAT mismatch: server said '$stat', expected '+OK $MSG_COUNT $MSG_OCTETS'"
stat=$(pop3_stat "$P_NOTLS" "$EMPTY_USER" "$PASSWORD") || fail_with_log "POP3 login/STAT (empty) failed: $stat"
[[ "$stat" == "+OK 0 0" ]] || fail_with_log "STAT mismatch for $EMPTY_USER: '$stat'"

# --- env -------------------------------------------------------------------------
PIDS=()
for inst in "${P3P_INSTANCES[@]}"; do
    pid=$(p3p_instance_pid "$DIR" "$inst")
    [[ -n "$pid" ]] || fail_with_log "instance $inst has no running master"
    PIDS+=("$pid")
done

cat >"$DIR/env.tmp" <<EOF
POP3_PLAIN_STLS_PORT=$P_STLS
POP3S_PORT=$P_POP3S
POP3S_EXPIRED_PORT=$P_EXPIRED
POP3_NOTLS_PORT=$P_NOTLS
POP3S_NOAPOP_PORT=$P_NOAPOP
CLOSED_PORT=$P_CLOSED
CA_PEM=$PKI/ca.pem
OTHER_CA_PEM=$PKI/other-ca.pem
SERVER_NAME=$SERVER_NAME
USER=$TEST_USER
PASSWORD=$PASSWORD
MSG_COUNT=$MSG_COUNT
MSG_OCTETS=$MSG_OCTETS
EMPTY_USER=$EMPTY_USER
ROUNDTRIP_USER=$ROUNDTRIP_USER
ROUNDTRIP_MAILDIR=$MAILROOT/$ROUNDTRIP_USER/Maildir
MAIL_UID=$MAIL_UID
MAIL_GID=$MAIL_GID
DOVECOT_LOG=$LOG
PIDS=${PIDS[*]}
DOVECOT_DIR=$DIR
EOF
mv -f "$DIR/env.tmp" "$DIR/env"
rm -f "$DIR/env.partial"
echo "$STAMP" >"$DIR/.stamp"
p3p_log "Dovecot test servers ready (env: $DIR/env)"
