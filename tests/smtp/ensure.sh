#!/usr/bin/env bash
# Idempotently start the Exim SMTP test server for pop3-probe's tests.
#
#   tests/smtp/ensure.sh DIR
#
# If a healthy Exim started from DIR is running, this exits 0 quickly.
# Otherwise it (re)creates everything under DIR (a test CA and certificates,
# the Exim configuration, spool and log), starts one Exim daemon listening
# on several loopback ports, checks each port does what DIR/env says, and
# writes DIR/env (KEY=VALUE lines). Nothing outside DIR is touched: the
# system's MTA configuration stays as it is. Serialized with flock on
# DIR/.lock. See tests/smtp/README.md.
set -euo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
# The Dovecot harness's helpers: DIR handling, the lock, port checks.
# shellcheck source=../dovecot/lib.sh
. "$HERE/../dovecot/lib.sh"
# shellcheck source=lib.sh
. "$HERE/lib.sh"
p3p_log() { printf '[smtp-harness] %s\n' "$*" >&2; }

(($# == 1)) || p3p_die "usage: $0 DIR"
DIR=$(p3p_resolve_dir "$1")

MARKER=.pop3-probe-smtp
SMTP_USER=probe
SMTP_PASSWORD=Smtp-Secret-58
SERVER_NAME=localhost
WRONG_NAME=wrong.pop3-probe.test
HOSTNAME_SMTP=smtp.pop3-probe.test
WAIT_SECS=${SMTP_WAIT_SECS:-20}
# Mail accepted on the submission listener is delivered into the test
# Dovecot's Maildirs (tests/dovecot/ensure.sh, same default DIR as the
# tests): ROUNDTRIP_RCPT lands in DOVECOT_DIR/mail/roundtrip/Maildir, and
# BLACKHOLE_RCPT is accepted and discarded (a route that loses mail).
DOVECOT_DIR=${POP3_PROBE_DOVECOT_DIR:-/tmp/pop3-probe-dovecot}
MAILROOT=$DOVECOT_DIR/mail
ROUNDTRIP_LOCAL=roundtrip
BLACKHOLE_LOCAL=blackhole
MAIL_DOMAIN=localhost

# exim lives in /usr/sbin, often not on a normal user's PATH.
PATH=$PATH:/usr/sbin:/sbin
command -v exim >/dev/null || p3p_die "exim not found (apt-get install exim4-daemon-heavy)"
command -v openssl >/dev/null || p3p_die "openssl not found"
command -v flock >/dev/null || p3p_die "flock not found (util-linux)"
command -v python3 >/dev/null || p3p_die "python3 not found (used to pick free ports)"

# A stamp of the harness version + user: if the scripts change, rebuild.
STAMP=$( (cat "$HERE/ensure.sh" "$HERE/stop.sh" "$HERE/lib.sh" "$HERE/../dovecot/lib.sh"; echo "$MAILROOT") | sha256sum | cut -c1-16)-uid$(id -u)
CONF=$DIR/exim.conf
PIDFILE=$DIR/exim.pid

# Exim runs as the caller (exim_user below). What it delivers into the
# Dovecot Maildir must belong to Dovecot's mail user, so the transport runs
# as that user: as root, the Dovecot harness's rule (the 'dovecot' user);
# otherwise the caller, like everything else.
if [[ "$(id -u)" == 0 ]] && getent passwd dovecot >/dev/null; then
    MAIL_USER=dovecot
    MAIL_GROUP=$(id -gn dovecot)
else
    MAIL_USER=$(id -un)
    MAIL_GROUP=$(id -gn)
fi
LOG=$DIR/log/mainlog

p3p_lock "$DIR"

env_get() { sed -n "s/^$1=//p" "$DIR/env" | head -n1; }

# AUTH PLAIN on a plaintext port; prints the reply code.
smtp_auth_plain() { # PORT USER PASSWORD
    local b64
    b64=$(printf '\0%s\0%s' "$2" "$3" | base64 -w0)
    timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        IFS= read -r l <&3 || exit 1
        printf "EHLO harness.test\r\n" >&3
        while IFS= read -r l <&3; do [[ $l == 250-* ]] || break; done
        printf "AUTH PLAIN %s\r\n" "$2" >&3
        IFS= read -r l <&3 || exit 1
        printf "QUIT\r\n" >&3
        printf "%s\n" "${l:0:3}"' _ "$1" "$b64" 2>/dev/null
}

# The subject of the certificate served after STARTTLS.
starttls_subject() {
    timeout 5 openssl s_client -starttls smtp -connect "127.0.0.1:$1" </dev/null 2>/dev/null \
        | openssl x509 -noout -subject 2>/dev/null
}

healthy() {
    [[ -f "$DIR/$MARKER" && -f "$DIR/env" && -f "$DIR/.stamp" ]] || return 1
    [[ "$(cat "$DIR/.stamp")" == "$STAMP" ]] || return 1
    [[ -n "$(exim_pid)" ]] || return 1
    local key
    for key in SMTP_PORT SMTP_WRONGCERT_PORT SMTP_NOTLS_PORT SMTP_SUBMIT_PORT; do
        [[ "$(smtp_banner "$(env_get "$key")" || true)" == "220 "* ]] || return 1
    done
    p3p_port_open "$(env_get SMTPS_PORT)" || return 1
    [[ "$(smtp_banner "$(env_get SMTP_REJECT_PORT)" || true)" == "554 "* ]] || return 1
    openssl x509 -checkend 86400 -noout -in "$DIR/pki/server.pem" >/dev/null 2>&1 || return 1
    return 0
}

if healthy; then
    exit 0
fi

# ---------------------------------------------------------------------------
# Slow path: stop leftovers, wipe DIR, recreate.
# ---------------------------------------------------------------------------
p3p_log "setting up the Exim SMTP test server in $DIR"
stop_exim

# Refuse to wipe a directory that is not ours (protects against DIR=$HOME).
if [[ ! -f "$DIR/$MARKER" ]]; then
    if [[ -n "$(find "$DIR" -mindepth 1 -maxdepth 1 ! -name .lock -print -quit)" ]]; then
        p3p_die "$DIR is not empty and was not created by this script; refusing to wipe it"
    fi
fi
find "$DIR" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf -- {} +
touch "$DIR/$MARKER"
mkdir -p "$DIR/spool" "$DIR/log"

# --- PKI ----------------------------------------------------------------------
# Our own small CA: the good certificate names localhost and 127.0.0.1; the
# wrong one, from the same CA, names another host (a name mismatch); a
# second CA signs nothing we serve (trusting it alone makes every
# certificate here untrusted).
PKI=$DIR/pki
mkdir -p "$PKI"
ca() { # NAME CN
    p3p_newkey "$PKI/$1.key"
    p3p_ossl req -x509 -new -key "$PKI/$1.key" -subj "/O=pop3-probe tests/CN=$2" -days 3650 \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
        -out "$PKI/$1.pem"
}
leaf() { # NAME CN SAN
    p3p_newkey "$PKI/$1.key"
    p3p_ossl req -new -key "$PKI/$1.key" -subj "/CN=$2" -out "$PKI/$1.csr"
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$3" >"$PKI/$1.ext"
    p3p_ossl x509 -req -in "$PKI/$1.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" -CAcreateserial \
        -days 365 -extfile "$PKI/$1.ext" -out "$PKI/$1.pem"
}
ca ca "pop3-probe SMTP Test CA"
ca other-ca "pop3-probe SMTP Other Untrusted CA"
leaf server "$SERVER_NAME" "DNS:$SERVER_NAME,IP:127.0.0.1"
leaf wrong "$WRONG_NAME" "DNS:$WRONG_NAME"
openssl verify -CAfile "$PKI/ca.pem" "$PKI/server.pem" "$PKI/wrong.pem" >/dev/null \
    || p3p_die "generated certificates do not verify against the test CA"
rm -f "$PKI"/*.csr "$PKI"/*.ext

# --- Exim configuration ----------------------------------------------------------
# One daemon, one listener per behaviour; what differs by port is chosen by
# expanding $received_port. Exim runs with -C, so it is not using the system
# configuration; an untrusted -C makes Exim give up its setuid privilege and
# run as the caller, hence exim_user is whoever runs this script.
write_conf() {
    local run_user run_group
    run_user=$(id -un)
    run_group=$(id -gn)
    cat >"$CONF" <<EOF
# Generated by tests/smtp/ensure.sh. Do not edit.
primary_hostname = $HOSTNAME_SMTP
exim_user = $run_user
exim_group = $run_group
keep_environment =
spool_directory = $DIR/spool
log_file_path = $DIR/log/%slog
# "no MAIL in SMTP connection ... C=EHLO,STARTTLS,EHLO,AUTH,QUIT": the
# commands of every session that sent no mail, which the tests read.
log_selector = +smtp_no_mail +smtp_connection +incoming_port +incoming_interface \\
  +smtp_protocol_error +smtp_syntax_error
host_lookup =
rfc1413_hosts =
pipelining_connect_advertise_hosts =
smtp_accept_max = 500
smtp_accept_max_per_host = 500
smtp_accept_queue_per_connection = 0

local_interfaces = <; 127.0.0.1.$P_SMTP ; 127.0.0.1.$P_SMTPS ; 127.0.0.1.$P_WRONG ; 127.0.0.1.$P_NOTLS ; 127.0.0.1.$P_REJECT ; 127.0.0.1.$P_SUBMIT
tls_on_connect_ports = $P_SMTPS
tls_advertise_hosts = \${if eq{\$received_port}{$P_NOTLS}{}{*}}
tls_certificate = \${if eq{\$received_port}{$P_WRONG}{$PKI/wrong.pem}{$PKI/server.pem}}
tls_privatekey = \${if eq{\$received_port}{$P_WRONG}{$PKI/wrong.key}{$PKI/server.key}}

acl_smtp_connect = check_connect
acl_smtp_helo = log_helo
acl_smtp_mail = check_mail
acl_smtp_rcpt = check_rcpt
acl_smtp_predata = check_mail
acl_smtp_data = check_mail
# Mail is delivered at once, by the process that took it (no queue runner).
queue_only = false
message_size_limit = 1M

begin acl

check_connect:
  deny condition = \${if eq{\$received_port}{$P_REJECT}}
       message = 554 5.7.1 no SMTP service here (pop3-probe test)
  accept

# Which client port sent which EHLO name: the name goes unlogged once
# STARTTLS resets the session, and the tests find their sessions by it.
log_helo:
  warn logwrite = helo \$sender_helo_name from port \$sender_host_port
  accept

# Only the submission listener takes mail, and only after AUTH (which it
# offers only after STARTTLS). Elsewhere a probe never sends mail; should
# one try, the log says so.
check_mail:
  deny condition = \${if !eq{\$received_port}{$P_SUBMIT}}
       message = 550 5.7.1 this test server takes no mail
  deny !authenticated = *
       message = 530 5.7.0 authentication required
  accept

check_rcpt:
  deny condition = \${if !eq{\$received_port}{$P_SUBMIT}}
       message = 550 5.7.1 this test server takes no mail
  deny !authenticated = *
       message = 530 5.7.0 authentication required
  accept domains = $MAIL_DOMAIN
         local_parts = $ROUNDTRIP_LOCAL : $BLACKHOLE_LOCAL
  deny message = 550 5.1.1 no such mailbox here (pop3-probe test)

begin routers

# The lossy route: accepted, then thrown away without a bounce.
blackhole:
  driver = redirect
  domains = $MAIL_DOMAIN
  local_parts = $BLACKHOLE_LOCAL
  data = :blackhole:

roundtrip:
  driver = accept
  domains = $MAIL_DOMAIN
  local_parts = $ROUNDTRIP_LOCAL
  transport = dovecot_maildir

begin transports

# Straight into the Dovecot user's Maildir (new/), as Dovecot's own LDA
# would store it; Exim adds its Received: header first.
dovecot_maildir:
  driver = appendfile
  directory = $MAILROOT/$ROUNDTRIP_LOCAL/Maildir
  maildir_format
  create_directory
  delivery_date_add
  envelope_to_add
  return_path_add
  user = $MAIL_USER
  group = $MAIL_GROUP
  mode = 0600

begin authenticators

# AUTH only after STARTTLS (as on a submission server), except on the
# no-TLS port, where tests need it in plaintext.
plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_advertise_condition = \${if or{{!eq{\$tls_in_cipher}{}}{eq{\$received_port}{$P_NOTLS}}}}
  server_condition = \${if and{{eq{\$auth2}{$SMTP_USER}}{eq{\$auth3}{$SMTP_PASSWORD}}}}
  server_set_id = \$auth2

login:
  driver = plaintext
  public_name = LOGIN
  server_prompts = Username:: : Password::
  server_advertise_condition = \${if or{{!eq{\$tls_in_cipher}{}}{eq{\$received_port}{$P_NOTLS}}}}
  server_condition = \${if and{{eq{\$auth1}{$SMTP_USER}}{eq{\$auth2}{$SMTP_PASSWORD}}}}
  server_set_id = \$auth1
EOF
}

fail_with_log() {
    p3p_log "ERROR: $*"
    p3p_log "---- tail of $LOG ----"
    tail -n 40 "$LOG" >&2 2>/dev/null || true
    tail -n 20 "$DIR/startup.log" >&2 2>/dev/null || true
    stop_exim
    exit 1
}

started=0
for attempt in 1 2 3; do
    read -r P_SMTP P_SMTPS P_WRONG P_NOTLS P_REJECT P_SUBMIT <<<"$(p3p_pick_ports 6)"
    write_conf
    rc=0
    exim_start "$DIR/startup.log" "$LOG" || rc=$?
    if ((rc == 0)); then started=1; break; fi
    if ((rc == 2)); then
        p3p_log "port collision on attempt $attempt, retrying with new ports"
        continue
    fi
    fail_with_log "could not start Exim"
done
((started)) || fail_with_log "could not start Exim (ports kept colliding)"

# --- wait until every listener answers, then check each does its job -----------
deadline=$((SECONDS + WAIT_SECS))
until [[ "$(smtp_banner "$P_SMTP" || true)" == "220 "* ]] && p3p_port_open "$P_SMTPS"; do
    ((SECONDS < deadline)) || fail_with_log "Exim listeners not ready after ${WAIT_SECS}s"
    sleep 0.1
done

smtp_ehlo "$P_SMTP" | grep -qx STARTTLS || fail_with_log "port $P_SMTP does not offer STARTTLS"
smtp_ehlo "$P_SMTP" | grep -q '^AUTH' && fail_with_log "port $P_SMTP offers AUTH before STARTTLS"
smtp_ehlo "$P_NOTLS" | grep -qx STARTTLS && fail_with_log "port $P_NOTLS offers STARTTLS"
[[ "$(smtp_auth_plain "$P_NOTLS" "$SMTP_USER" "$SMTP_PASSWORD")" == 235 ]] \
    || fail_with_log "AUTH PLAIN with the right password failed on port $P_NOTLS"
[[ "$(smtp_auth_plain "$P_NOTLS" "$SMTP_USER" "not-the-password")" == 535 ]] \
    || fail_with_log "AUTH PLAIN with a wrong password did not get 535 on port $P_NOTLS"
[[ "$(smtp_banner "$P_REJECT" || true)" == "554 "* ]] || fail_with_log "port $P_REJECT does not answer 554"
smtp_ehlo "$P_SUBMIT" | grep -qx STARTTLS || fail_with_log "port $P_SUBMIT does not offer STARTTLS"
smtp_ehlo "$P_SUBMIT" | grep -q '^AUTH' && fail_with_log "port $P_SUBMIT offers AUTH before STARTTLS"
# The routes, without sending anything.
exim -C "$CONF" -bt "$ROUNDTRIP_LOCAL@$MAIL_DOMAIN" 2>&1 | grep -q 'transport = dovecot_maildir' \
    || fail_with_log "$ROUNDTRIP_LOCAL@$MAIL_DOMAIN is not routed to the Dovecot Maildir"
exim -C "$CONF" -bt "$BLACKHOLE_LOCAL@$MAIL_DOMAIN" 2>&1 | grep -qi 'discarded' \
    || fail_with_log "$BLACKHOLE_LOCAL@$MAIL_DOMAIN is not discarded"
[[ "$(starttls_subject "$P_SMTP")" == *"CN = $SERVER_NAME"* ]] \
    || fail_with_log "port $P_SMTP does not serve the $SERVER_NAME certificate after STARTTLS"
[[ "$(starttls_subject "$P_WRONG")" == *"CN = $WRONG_NAME"* ]] \
    || fail_with_log "port $P_WRONG does not serve the $WRONG_NAME certificate after STARTTLS"

# --- env ---------------------------------------------------------------------------
cat >"$DIR/env.tmp" <<EOF
SMTP_PORT=$P_SMTP
SMTPS_PORT=$P_SMTPS
SMTP_WRONGCERT_PORT=$P_WRONG
SMTP_NOTLS_PORT=$P_NOTLS
SMTP_REJECT_PORT=$P_REJECT
SMTP_SUBMIT_PORT=$P_SUBMIT
ROUNDTRIP_RCPT=$ROUNDTRIP_LOCAL@$MAIL_DOMAIN
BLACKHOLE_RCPT=$BLACKHOLE_LOCAL@$MAIL_DOMAIN
DELIVERY_MAILROOT=$MAILROOT
SMTP_USER=$SMTP_USER
SMTP_PASSWORD=$SMTP_PASSWORD
SERVER_NAME=$SERVER_NAME
WRONG_NAME=$WRONG_NAME
CA_PEM=$PKI/ca.pem
OTHER_CA_PEM=$PKI/other-ca.pem
EXIM_LOG=$LOG
EXIM_PID=$(exim_pid)
SMTP_DIR=$DIR
EOF
mv -f "$DIR/env.tmp" "$DIR/env"
echo "$STAMP" >"$DIR/.stamp"
p3p_log "Exim SMTP test server ready (env: $DIR/env)"
