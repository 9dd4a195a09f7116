#!/usr/bin/env python3
"""Peer drivers for `make bench`: the same checks (a)-(d) as benches/probes.rs,
done by other tools, printed as the same JSON lines (wall_ms and cpu_ms per
probe).

  peers.py --env DIR/env --n N [--plain-port P --pop3s-port P] [--label L]
           [--tools poplib,curl,check_pop,cli,blackbox] [--bin target/release/pop3-probe]

CPU is each tool's own: for programs run once per probe (curl, check_pop,
check_spop, the pop3-probe CLI) the child's user+system time from wait4();
for poplib the interpreter's process time around each probe; for
blackbox_exporter the exporter process's threads' run time
(/proc/PID/task/*/schedstat, nanoseconds) before and after each /probe.
Every loop is bounded by --n and by --max-seconds per variant.
"""
import argparse
import http.client
import json
import os
import poplib
import re
import ssl
import subprocess
import sys
import tempfile
import time

PLUGINS = "/usr/lib/nagios/plugins"


def load_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            if k:
                env[k] = v
    return env


def emit(tool, label, check, variant, wall, cpu, failures, **extra):
    line = {"tool": tool, "label": label, "check": check, "variant": variant,
            "wall_ms": wall, "cpu_ms": cpu, "failures": failures}
    line.update(extra)
    print(json.dumps(line), flush=True)


def loop(n, warmup, max_seconds, one):
    """Run one() warmup+n times; one() returns (wall_ms, cpu_ms, error|None)."""
    wall, cpu, failures = [], [], {}
    t0 = time.monotonic()
    for i in range(warmup + n):
        if time.monotonic() - t0 > max_seconds:
            break
        w, c, err = one()
        if err:
            failures[err] = failures.get(err, 0) + 1
        if i >= warmup:
            wall.append(w)
            cpu.append(c)
    return wall, cpu, failures


# ---------------------------------------------------------------- poplib

def poplib_variants(a, env):
    ctx = ssl.create_default_context(cafile=env["CA_PEM"])
    user, pw = env["USER"], env["PASSWORD"]
    host = "127.0.0.1"

    def a_():
        p = poplib.POP3(host, a.plain_port, timeout=10)  # connect, greeting
        p.quit()  # QUIT, waits for +OK

    def b_():
        p = poplib.POP3_SSL(host, a.pop3s_port, context=ctx, timeout=10)
        p.quit()

    def c_():
        p = poplib.POP3(host, a.plain_port, timeout=10)
        p.stls(context=ctx)  # poplib sends CAPA first, then STLS
        p.user(user)
        p.pass_(pw)
        p.stat()
        p.quit()

    def d_():
        p = poplib.POP3_SSL(host, a.pop3s_port, context=ctx, timeout=10)
        p.user(user)
        p.pass_(pw)
        p.stat()
        p.quit()

    def d_apop():
        p = poplib.POP3_SSL(host, a.pop3s_port, context=ctx, timeout=10)
        p.apop(user, pw)
        p.stat()
        p.quit()

    return [("a", "connect, greeting, QUIT", a_),
            ("b", "TLS, greeting, QUIT", b_),
            ("c", "CAPA, STLS, TLS, USER, PASS, STAT, QUIT", c_),
            ("d", "TLS, USER, PASS, STAT, QUIT", d_),
            ("d", "TLS, APOP, STAT, QUIT", d_apop)]


def run_poplib(a, env):
    for check, variant, fn in poplib_variants(a, env):
        if check not in a.checks:
            continue

        def one(fn=fn):
            c0, w0 = time.process_time(), time.perf_counter()
            err = None
            try:
                fn()
            except Exception as e:  # a failed probe is data
                err = f"{type(e).__name__}: {e}"
            return (time.perf_counter() - w0) * 1e3, (time.process_time() - c0) * 1e3, err

        wall, cpu, fails = loop(a.n, a.warmup, a.max_seconds, one)
        emit("python poplib (in-process)", a.label, check, variant, wall, cpu, fails)


# ---------------------------------------------------------------- per process

def spawn_measure(argv, extra_env=None):
    """fork+exec argv, wait4: (wall_ms, child cpu_ms, exit status)."""
    env = dict(os.environ)
    if extra_env:
        env.update(extra_env)
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        w0 = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, env, file_actions=[
            (os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
            (os.POSIX_SPAWN_DUP2, devnull, 2)])
        _, status, ru = os.wait4(pid, 0)
        wall = (time.perf_counter() - w0) * 1e3
    finally:
        os.close(devnull)
    return wall, (ru.ru_utime + ru.ru_stime) * 1e3, os.waitstatus_to_exitcode(status)


def process_variants(a, env, netrc):
    curl = "/usr/bin/curl"
    ca = env["CA_PEM"]
    pp, sp = a.plain_port, a.pop3s_port
    cli = os.path.abspath(a.bin)
    out = []
    if "curl" in a.tools:
        # curl has no greeting-only mode: without credentials it reads the
        # greeting, sends CAPA, the -X command, then QUIT.
        out += [
            ("curl", "a", "greeting, CAPA, QUIT (-X QUIT -I, no login)",
             [curl, "-sS", "-X", "QUIT", "-I", f"pop3://127.0.0.1:{pp}/"], None),
            ("curl", "b", "TLS, greeting, CAPA, QUIT (-X QUIT -I, no login)",
             [curl, "-sS", "--cacert", ca, "-X", "QUIT", "-I", f"pop3s://127.0.0.1:{sp}/"], None),
        ]
        for sasl_ir, tag in ((False, ""), (True, " --sasl-ir")):
            ir = ["--sasl-ir"] if sasl_ir else []
            out += [
                ("curl", "c", f"CAPA, STLS, CAPA, AUTH PLAIN, STAT, QUIT (--ssl-reqd -X STAT -I{tag})",
                 [curl, "-sS", "--ssl-reqd", *ir, "--netrc-file", netrc, "--cacert", ca,
                  "-X", "STAT", "-I", f"pop3://127.0.0.1:{pp}/"], None),
                ("curl", "d", f"TLS, CAPA, AUTH PLAIN, STAT, QUIT (-X STAT -I{tag})",
                 [curl, "-sS", *ir, "--netrc-file", netrc, "--cacert", ca,
                  "-X", "STAT", "-I", f"pop3s://127.0.0.1:{sp}/"], None),
            ]
    if "check_pop" in a.tools:
        out += [
            ("check_pop / check_spop", "a", "check_pop: greeting, QUIT",
             [f"{PLUGINS}/check_pop", "-H", "127.0.0.1", "-p", str(pp)], None),
            ("check_pop / check_spop", "b", "check_spop: TLS (certificate not verified), greeting, QUIT",
             [f"{PLUGINS}/check_spop", "-H", "127.0.0.1", "-p", str(sp)], None),
        ]
    if "cli" in a.tools:
        pe = {"POP3_PASSWORD": env["PASSWORD"]}
        base = [cli, "check", "--ca-file", ca, "--password-env", "POP3_PASSWORD"]
        out += [
            ("pop3-probe check (per process)", "a", "tls none, auth none",
             base + [f"pop3://127.0.0.1:{pp}", "--tls", "none", "--auth", "none"], pe),
            ("pop3-probe check (per process)", "b", "implicit TLS, auth none",
             base + [f"pop3s://127.0.0.1:{sp}", "--auth", "none"], pe),
            ("pop3-probe check (per process)", "c", "starttls, auth auto (APOP)",
             base + [f"pop3://{env['USER']}@127.0.0.1:{pp}", "--tls", "starttls"], pe),
            ("pop3-probe check (per process)", "c", "starttls, auth user",
             base + [f"pop3://{env['USER']}@127.0.0.1:{pp}", "--tls", "starttls", "--auth", "user"], pe),
            ("pop3-probe check (per process)", "d", "implicit TLS, auth auto (APOP)",
             base + [f"pop3s://{env['USER']}@127.0.0.1:{sp}"], pe),
            ("pop3-probe check (per process)", "d", "implicit TLS, auth user",
             base + [f"pop3s://{env['USER']}@127.0.0.1:{sp}", "--auth", "user"], pe),
        ]
    return out


def run_processes(a, env):
    with tempfile.TemporaryDirectory(prefix="pop3-bench-") as d:
        netrc = os.path.join(d, "netrc")
        fd = os.open(netrc, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, f"machine 127.0.0.1 login {env['USER']} password {env['PASSWORD']}\n".encode())
        os.close(fd)
        for tool, check, variant, argv, extra in process_variants(a, env, netrc):
            if check not in a.checks:
                continue

            def one(argv=argv, extra=extra):
                w, c, rc = spawn_measure(argv, extra)
                return w, c, (None if rc == 0 else f"exit {rc}")

            wall, cpu, fails = loop(a.n, a.warmup, a.max_seconds, one)
            emit(tool, a.label, check, variant, wall, cpu, fails, argv=argv[1:] if tool != "curl" else None)


# ---------------------------------------------------------------- blackbox

def blackbox_config(env, path):
    ca = env["CA_PEM"]

    def q(steps):
        return "\n".join(f"        - {s}" for s in steps)

    login = ['send: "USER %s\\r"' % env["USER"], 'expect: "^\\\\+OK"',
             'send: "PASS %s\\r"' % env["PASSWORD"], 'expect: "^\\\\+OK"',
             'send: "STAT\\r"', 'expect: "^\\\\+OK"', 'send: "QUIT\\r"']
    mods = {
        "pop3_greeting": (False, ['expect: "^\\\\+OK"', 'send: "QUIT\\r"']),
        "pop3s_greeting": (True, ['expect: "^\\\\+OK"', 'send: "QUIT\\r"']),
        "pop3_stls_login": (False, ['expect: "^\\\\+OK"', 'send: "STLS\\r"', 'expect: "^\\\\+OK"',
                                    "starttls: true"] + login),
        "pop3s_login": (True, ['expect: "^\\\\+OK"'] + login),
    }
    text = "modules:\n"
    for name, (tls, steps) in mods.items():
        text += f"""  {name}:
    prober: tcp
    timeout: 10s
    tcp:
      preferred_ip_protocol: ip4
      tls: {"true" if tls else "false"}
      tls_config:
        ca_file: {ca}
        server_name: localhost
      query_response:
{q(steps)}
"""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, text.encode())
    os.close(fd)


def task_ns(pid):
    total = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def proc_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime, clock ticks


def run_blackbox(a, env):
    exe = "/usr/bin/prometheus-blackbox-exporter"
    with tempfile.TemporaryDirectory(prefix="pop3-bench-bb-") as d:
        cfg = os.path.join(d, "blackbox.yml")
        blackbox_config(env, cfg)
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        proc = subprocess.Popen([exe, f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{port}",
                                 "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            t0 = time.monotonic()
            while time.monotonic() - t0 < 10:
                try:
                    http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/metrics")
                    break
                except OSError:
                    time.sleep(0.05)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
            plan = [("a", "pop3_greeting", a.plain_port, "tcp: greeting, QUIT (no wait)"),
                    ("b", "pop3s_greeting", a.pop3s_port, "tcp tls: TLS, greeting, QUIT (no wait)"),
                    ("c", "pop3_stls_login", a.plain_port, "tcp query_response: STLS, starttls, USER, PASS, STAT, QUIT (no wait)"),
                    ("d", "pop3s_login", a.pop3s_port, "tcp tls query_response: USER, PASS, STAT, QUIT (no wait)")]
            for check, module, port_, variant in plan:
                if check not in a.checks:
                    continue
                http_wall = []
                ticks0 = proc_ticks(proc.pid)

                def one(module=module, port_=port_):
                    c0 = task_ns(proc.pid)
                    w0 = time.perf_counter()
                    conn.request("GET", f"/probe?module={module}&target=127.0.0.1:{port_}")
                    body = conn.getresponse().read().decode()
                    hw = (time.perf_counter() - w0) * 1e3
                    c = (task_ns(proc.pid) - c0) / 1e6
                    http_wall.append(hw)
                    m = re.search(r"^probe_duration_seconds (\S+)", body, re.M)
                    ok = re.search(r"^probe_success 1", body, re.M)
                    w = float(m.group(1)) * 1e3 if m else hw
                    return w, c, (None if ok else "probe_success 0")

                wall, cpu, fails = loop(a.n, a.warmup, a.max_seconds, one)
                ticks = proc_ticks(proc.pid) - ticks0
                hz = os.sysconf("SC_CLK_TCK")
                emit("blackbox_exporter 0.23 (tcp prober)", a.label, check, variant, wall, cpu, fails,
                     http_wall_ms=http_wall[-len(wall):] if wall else [],
                     stat_cpu_ms_per_probe=ticks * 1000 / hz / max(1, len(http_wall)))
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--env", default="/tmp/pop3-probe-dovecot/env")
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--checks", default="a,b,c,d")
    p.add_argument("--plain-port", type=int)
    p.add_argument("--pop3s-port", type=int)
    p.add_argument("--label", default="loopback")
    p.add_argument("--tools", default="poplib,curl,check_pop,cli,blackbox")
    p.add_argument("--bin", default="target/release/pop3-probe")
    p.add_argument("--max-seconds", type=float, default=120)
    a = p.parse_args()
    env = load_env(a.env)
    a.plain_port = a.plain_port or int(env["POP3_PLAIN_STLS_PORT"])
    a.pop3s_port = a.pop3s_port or int(env["POP3S_PORT"])
    a.checks = a.checks.split(",")
    a.tools = a.tools.split(",")
    if "poplib" in a.tools:
        run_poplib(a, env)
    run_processes(a, env)
    if "blackbox" in a.tools:
        run_blackbox(a, env)


if __name__ == "__main__":
    sys.exit(main())
