#!/usr/bin/env python3
"""Sanity-check the Dovecot test servers started by ensure.sh.

    python3 tests/dovecot/selftest.py DIR

Not used by the Rust tests; a quick way to see that the harness behaves as
documented (greetings, CAPA, APOP/USER/AUTH PLAIN logins, STAT, failures,
certificates).  Prints what it sees; exits non-zero on the first mismatch.
"""
import base64
import hashlib
import poplib
import re
import socket
import ssl
import subprocess
import sys
import time


def load_env(d):
    env = {}
    with open(f"{d}/env") as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                k, v = line.split("=", 1)
                env[k] = v
    return env


def check(cond, msg):
    if not cond:
        print("FAIL:", msg)
        sys.exit(1)


def ctx(cafile):
    c = ssl.create_default_context(cafile=cafile)
    return c


def connect(env, key, tls):
    port = int(env[key])
    if tls == "implicit":
        return poplib.POP3_SSL("127.0.0.1", port, context=ctx(env["CA_PEM"]), timeout=5)
    return poplib.POP3("127.0.0.1", port, timeout=5)


def capa(p):
    _resp, lines, _ = p._longcmd("CAPA")
    return [l.decode() for l in lines]


def auth_plain(p, user, pw):
    ir = base64.b64encode(f"\0{user}\0{pw}".encode()).decode()
    return p._shortcmd(f"AUTH PLAIN {ir}")


def main():
    d = sys.argv[1]
    env = load_env(d)
    user, pw, empty = env["USER"], env["PASSWORD"], env["EMPTY_USER"]
    want_stat = (int(env["MSG_COUNT"]), int(env["MSG_OCTETS"]))

    listeners = [
        # key, tls mode, expect APOP, expect STLS
        ("POP3_PLAIN_STLS_PORT", "plain", True, True),
        ("POP3S_PORT", "implicit", True, False),
        ("POP3_NOTLS_PORT", "plain", False, False),
        ("POP3S_NOAPOP_PORT", "implicit", False, False),
    ]
    for key, tls, want_apop, want_stls in listeners:
        print(f"== {key} ({env[key]})")
        p = connect(env, key, tls)
        greet = p.getwelcome().decode()
        print("  greeting:", greet)
        has_ts = re.search(r"<[^>]+@[^>]+>", greet) is not None
        check(has_ts == want_apop, f"{key}: APOP timestamp presence {has_ts} != {want_apop}")
        caps = capa(p)
        print("  CAPA:", caps)
        check(("STLS" in caps) == want_stls, f"{key}: STLS presence")
        check("USER" in caps, f"{key}: USER cap")
        check(any(c.startswith("SASL") and "PLAIN" in c.split() for c in caps), f"{key}: SASL PLAIN")
        p.quit()

        # USER/PASS
        p = connect(env, key, tls)
        p.user(user)
        p.pass_(pw)
        st = p.stat()
        print("  USER/PASS STAT:", st)
        check(st == want_stat, f"{key}: STAT {st} != {want_stat}")
        p.quit()

        # AUTH PLAIN with initial response
        p = connect(env, key, tls)
        r = auth_plain(p, user, pw)
        print("  AUTH PLAIN:", r)
        check(p.stat() == want_stat, "stat after AUTH PLAIN")
        p.quit()

        # Empty user
        p = connect(env, key, tls)
        auth_plain(p, empty, pw)
        check(p.stat() == (0, 0), "empty stat")
        p.quit()

        # APOP
        p = connect(env, key, tls)
        if want_apop:
            r = p.apop(user, pw)
            print("  APOP:", r)
            check(p.stat() == want_stat, "stat after APOP")
            p.quit()
        else:
            try:
                p._shortcmd(f"APOP {user} {hashlib.md5(b'x').hexdigest()}")
                check(False, "APOP unexpectedly accepted")
            except poplib.error_proto as e:
                print("  APOP (expected failure):", e)
            p.quit()

        # Wrong password: must fail fast, repeatedly (no auth penalty).
        for mech in ("user", "plain", "user", "plain", "user"):
            p = connect(env, key, tls)
            t0 = time.monotonic()
            try:
                if mech == "user":
                    p.user(user)
                    p.pass_("wrong-password")
                else:
                    auth_plain(p, user, "wrong-password")
                check(False, "wrong password accepted")
            except poplib.error_proto as e:
                dt = time.monotonic() - t0
                print(f"  wrong password ({mech}): {e} in {dt:.3f}s")
                check(dt < 0.5, f"wrong password took {dt:.2f}s")
            p.quit()

    # STLS upgrade on the plain port
    print("== STLS on POP3_PLAIN_STLS_PORT")
    p = connect(env, "POP3_PLAIN_STLS_PORT", "plain")
    p.stls(context=ctx(env["CA_PEM"]))
    print("  TLS:", p.sock.version(), p.sock.cipher()[0])
    print("  CAPA after STLS:", capa(p))
    auth_plain(p, user, pw)
    check(p.stat() == want_stat, "stat after STLS")
    p.quit()

    # TLS versions on the good listener
    for ver in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        c = ctx(env["CA_PEM"])
        c.minimum_version = c.maximum_version = ver
        with socket.create_connection(("127.0.0.1", int(env["POP3S_PORT"])), 5) as s:
            with c.wrap_socket(s, server_hostname="localhost") as t:
                print(f"  {ver.name}: ok ({t.cipher()[0]})")
    # Verify by IP address too
    c = ctx(env["CA_PEM"])
    with socket.create_connection(("127.0.0.1", int(env["POP3S_PORT"])), 5) as s:
        with c.wrap_socket(s, server_hostname="127.0.0.1") as t:
            print("  verified with IP 127.0.0.1 as name: ok")
    # Untrusted CA
    try:
        c = ctx(env["OTHER_CA_PEM"])
        with socket.create_connection(("127.0.0.1", int(env["POP3S_PORT"])), 5) as s:
            c.wrap_socket(s, server_hostname="localhost")
        check(False, "OTHER_CA_PEM unexpectedly trusted")
    except ssl.SSLCertVerificationError as e:
        print("  OTHER_CA_PEM:", e.verify_message)
    # Expired
    print("== POP3S_EXPIRED_PORT")
    try:
        c = ctx(env["CA_PEM"])
        with socket.create_connection(("127.0.0.1", int(env["POP3S_EXPIRED_PORT"])), 5) as s:
            c.wrap_socket(s, server_hostname="localhost")
        check(False, "expired cert unexpectedly accepted")
    except ssl.SSLCertVerificationError as e:
        print("  expired:", e.verify_message)
        check("expired" in e.verify_message, "expired message")
    c = ctx(env["CA_PEM"])
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    p = poplib.POP3_SSL("127.0.0.1", int(env["POP3S_EXPIRED_PORT"]), context=c, timeout=5)
    print("  greeting (no verify):", p.getwelcome().decode())
    print("  CAPA:", capa(p))
    auth_plain(p, user, pw)
    check(p.stat() == want_stat, "stat on expired listener")
    p.quit()

    # Closed port
    print("== CLOSED_PORT")
    try:
        socket.create_connection(("127.0.0.1", int(env["CLOSED_PORT"])), 2)
        check(False, "CLOSED_PORT accepted")
    except ConnectionRefusedError:
        print("  connection refused: ok")

    # openssl s_client views
    for key, name in (("POP3S_PORT", "localhost"), ("POP3S_EXPIRED_PORT", "localhost")):
        out = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{env[key]}", "-CAfile", env["CA_PEM"],
             "-verify_hostname", name, "-verify_return_error", "-brief"],
            input=b"QUIT\r\n", capture_output=True, timeout=10)
        lines = [l for l in (out.stdout + out.stderr).decode(errors="replace").splitlines()
                 if "erif" in l or "expired" in l or "+OK" in l]
        print(f"  s_client {key}:", lines)
    print("ALL OK")


if __name__ == "__main__":
    main()
