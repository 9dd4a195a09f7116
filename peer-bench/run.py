#!/usr/bin/env python3
"""`make bench`: run every measurement once and write BENCHMARKS.md.

  python3 peer-bench/run.py [--quick] [--out BENCHMARKS.md] [--results FILE]
                       [--no-zip] [--dovecot-dir DIR]

--quick is the CI version: small N, no criterion, no arm64 zip build; it
still produces every table (numbers from few samples). Timing never fails
the run: only a tool that cannot run at all does.

Steps: start the test Dovecot; build the release binaries and the bench
drivers; (1) CPU and wall per probe, ours in-process and per process vs
the peers (peer-bench/peers.py); (2) the same checks through a 25 ms one-way
delay proxy (peer-bench/delayproxy.py); (3) fleet runs of 10/100/1,000/10,000
monitors (benches/fleet.rs); (4) cold start against a fake Lambda runtime
API on loopback, binary and zip sizes; (5) the cost model from the
measured run durations. Results go to --results (JSON) and --out.
"""
import argparse
import datetime
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
DELAY_MS = 25.0


def log(*a):
    print("[bench]", *a, file=sys.stderr, flush=True)


def sh(cmd, **kw):
    log("$", " ".join(cmd) if isinstance(cmd, list) else cmd)
    return subprocess.run(cmd, check=True, cwd=ROOT, **kw)


def jsonl(cmd, timeout):
    """Run a driver, return its JSON lines."""
    log("$", " ".join(cmd))
    out = subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.PIPE, timeout=timeout,
                         stdin=subprocess.DEVNULL).stdout.decode()
    return [json.loads(l) for l in out.splitlines() if l.startswith("{")]


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = (len(xs) - 1) * p
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def stats(xs):
    return {"median": pct(xs, 0.5), "p90": pct(xs, 0.9), "n": len(xs)}


def load_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            if k:
                env[k] = v
    return env


def bench_executables(quick):
    """Build the binaries and the probes/fleet benches; return the benches'
    executables by name.

    The full run builds the binaries on their own, so their sizes are those
    of what ships, then `cargo bench --no-run`. The two builds resolve
    features differently (the benches' dev-dependencies turn on features of
    shared crates), so that is two optimized builds of most of the tree. The
    quick (CI) run builds both in one `cargo build --release` invocation, one
    optimized build: its binaries carry the dev-dependencies' features, which
    the CI report says next to their sizes."""
    benches = ["--bench", "probes", "--bench", "fleet"]
    if quick:
        cmd = ["cargo", "build", "--release", "--locked", "--bins", *benches]
    else:
        sh(["cargo", "build", "--release", "--locked", "--bins"])
        cmd = ["cargo", "bench", "--locked", "--no-run", *benches]
    log("$", " ".join(cmd))
    out = subprocess.run([*cmd, "--message-format=json"],
                         check=True, cwd=ROOT, stdout=subprocess.PIPE).stdout.decode()
    exes = {}
    for line in out.splitlines():
        try:
            m = json.loads(line)
        except ValueError:
            continue
        if m.get("reason") == "compiler-artifact" and m.get("executable") and "bench" in m["target"]["kind"]:
            exes[m["target"]["name"]] = m["executable"]
    return exes


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024
    def ver(cmd):
        try:
            return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout.decode().splitlines()[0]
        except (OSError, IndexError):
            return "?"
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_mb": mem,
        "kernel": platform.release(), "os": open("/etc/debian_version").read().strip(),
        "load_before": os.getloadavg(),
        "rustc": ver(["rustc", "--version"]),
        "dovecot": ver(["/usr/sbin/dovecot", "--version"]),
        "curl": ver(["curl", "--version"]),
        "python": platform.python_version(),
        "blackbox": ver(["prometheus-blackbox-exporter", "--version"]),
        "plugins": ver(["/usr/lib/nagios/plugins/check_pop", "--version"]),
    }


# ---------------------------------------------------------------- steps

def per_probe(exes, env_file, a, label, ports=None, checks="a,b,c,d"):
    extra = []
    if ports:
        extra = ["--plain-port", str(ports[0]), "--pop3s-port", str(ports[1])]
    n_in = a.n_inproc if label == "loopback" else a.n_delay
    n_proc = a.n_proc if label == "loopback" else a.n_delay
    rows = jsonl([exes["probes"], "--env", env_file, "--n", str(n_in), "--warmup", "3",
                  "--checks", checks, "--label", label] + extra, timeout=1800)
    peers = [sys.executable, os.path.join(HERE, "peers.py"), "--env", env_file, "--checks", checks,
             "--label", label, "--bin", os.path.join(ROOT, "target/release/pop3-probe")] + extra
    rows += jsonl(peers + ["--n", str(n_in), "--warmup", "3", "--tools", "poplib,blackbox"], timeout=1800)
    rows += jsonl(peers + ["--n", str(n_proc), "--warmup", "2", "--tools", "curl,check_pop,cli"], timeout=1800)
    for r in rows:
        r["wall"] = stats(r.pop("wall_ms"))
        r["cpu"] = stats(r.pop("cpu_ms"))
        r.pop("http_wall_ms", None)
    return rows


def delay_rows(exes, env_file, env, a):
    proxy = subprocess.Popen([sys.executable, os.path.join(HERE, "delayproxy.py"), "--delay-ms", str(DELAY_MS),
                              "--upstream", f"127.0.0.1:{env['POP3_PLAIN_STLS_PORT']}",
                              "--upstream", f"127.0.0.1:{env['POP3S_PORT']}", "--max-seconds", "1800"],
                             stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        ports = json.loads(proxy.stdout.readline())["ports"]
        pp = (ports[env["POP3_PLAIN_STLS_PORT"]], ports[env["POP3S_PORT"]])
        return per_probe(exes, env_file, a, "delay", pp)
    finally:
        proxy.terminate()
        proxy.wait(10)


def fleet(exes, env_file, a):
    srv = subprocess.Popen([exes["fleet"], "serve", "--fast", "8", "--hang", "4", "--max-seconds", "1800"],
                           stdout=subprocess.PIPE, stdin=subprocess.PIPE, cwd=ROOT)
    try:
        servers = srv.stdout.readline().decode().strip()
        out = []
        for n in a.fleet:
            r = jsonl([exes["fleet"], "run", "--n", str(n), "--env", env_file, "--servers", servers,
                       "--concurrency", str(a.concurrency), "--deadline-ms", "50000", "--timeout-ms", "5000"],
                      timeout=300)[0]
            log(f"fleet {n}: {r['wall_ms']:.0f} ms, peak RSS {r['peak_rss_kb'] / 1024:.1f} MB, lost {r['lost']}")
            out.append(r)
        return out
    finally:
        srv.stdin.close()
        try:
            srv.wait(10)
        except subprocess.TimeoutExpired:
            srv.kill()


def fresh_rows(env_file, a):
    """peer-bench/fresh.py: our CLI as a Nagios plugin vs curl and check_spop,
    taking turns in one loop (and the --before-bin binary, if given)."""
    cmd = ["python3", os.path.join(HERE, "fresh.py"), "--env", env_file, "--n", str(a.n_proc),
           "--bin", os.path.join(ROOT, "target/release/pop3-probe")]
    if a.before_bin:
        cmd += ["--before-bin", a.before_bin]
    return jsonl(cmd, timeout=1800)


def cold_start(a, reps):
    """exec of the release Lambda binary -> its first GET .../invocation/next
    on a fake runtime API (loopback). No AWS call is made before that."""
    exe = os.path.join(ROOT, "target/release/pop3-probe-lambda")
    times = []
    for _ in range(reps):
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        ls.settimeout(10)
        env = {
            "PATH": "/usr/bin:/bin", "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{ls.getsockname()[1]}",
            "AWS_LAMBDA_FUNCTION_NAME": "pop3-probe", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
            "AWS_LAMBDA_LOG_GROUP_NAME": "bench", "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true",
            "POP3_PROBE_CONFIG_SECRET": "bench", "POP3_PROBE_TOPIC_ARN": "arn:aws:sns:us-east-1:000000000000:bench",
            "POP3_PROBE_STATE_TABLE": "bench", "RUST_LOG": "warn",
        }
        devnull = os.open(os.devnull, os.O_RDWR)
        t0 = time.perf_counter()
        pid = os.posix_spawn(exe, [exe], env, file_actions=[
            (os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)])
        try:
            c, _ = ls.accept()
            c.settimeout(10)
            buf = b""
            while b"\r\n\r\n" not in buf and len(buf) < 65536:
                chunk = c.recv(4096)
                if not chunk:
                    break
                buf += chunk
            t = (time.perf_counter() - t0) * 1e3
            if b"/runtime/invocation/next" in buf:
                times.append(t)
            c.close()
        finally:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            os.close(devnull)
            ls.close()
    return stats(times)


def micro():
    sh(["cargo", "bench", "--bench", "micro"], stdout=subprocess.DEVNULL)
    out = {}
    base = os.path.join(ROOT, "target/criterion")
    for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        f = os.path.join(base, name, "new", "estimates.json")
        if os.path.exists(f):
            with open(f) as fh:
                out[name] = json.load(fh)["median"]["point_estimate"]
    return out


def zip_size(a):
    tdir = os.path.join(ROOT, "target/bench-arm64")
    z = os.path.join(tdir, "lambda/pop3-probe-lambda/bootstrap.zip")
    if not a.no_zip:
        env = dict(os.environ, CARGO_TARGET_DIR=tdir)
        sh(["cargo", "lambda", "build", "--release", "--arm64", "--output-format", "zip",
            "--bin", "pop3-probe-lambda"], env=env, stdout=subprocess.DEVNULL)
    if os.path.exists(z):
        return {"bytes": os.path.getsize(z), "built_this_run": not a.no_zip,
                "mtime": datetime.datetime.fromtimestamp(os.path.getmtime(z)).isoformat(timespec="seconds")}
    return None


# ---------------------------------------------------------------- cost

PRICE = {"gbs": 0.0000133334, "req": 0.20 / 1e6, "metric": 0.30, "put": 0.01 / 1000, "alarm": 0.10,
         "dashboard": 3.00, "logs_gb": 0.50, "secret": 0.40, "secret_call": 0.05 / 10000,
         "kms": 1.00, "kms_req": 0.03 / 10000, "sns": 0.30, "ddb": (0.625 + 0.125) / 1e6, "synthetics": 0.0012}


def cost(n, minutes, run_s):
    runs = 30 * 24 * 60 // minutes
    lam = runs * run_s * 0.125 * PRICE["gbs"] + runs * PRICE["req"]
    datapoints = 3 * n + 4
    metrics = datapoints * PRICE["metric"]
    put = runs * math.ceil(datapoints / 1000) * PRICE["put"]
    logs = runs * (1 + 0.5 * n) * 1024 / 2**30 * PRICE["logs_gb"]
    fixed = 5 * PRICE["alarm"] + PRICE["dashboard"] + PRICE["secret"] + runs * PRICE["secret_call"] \
        + PRICE["kms"] + 2 * runs * PRICE["kms_req"] + PRICE["sns"]
    ddb = runs * n * PRICE["ddb"]
    total = lam + metrics + put + logs + fixed + ddb
    synth = n * runs * PRICE["synthetics"]
    return {"n": n, "minutes": minutes, "runs": runs, "run_s": run_s, "lambda": lam, "metrics": metrics,
            "put": put, "logs": logs, "fixed": fixed, "ddb": ddb, "total": total,
            "per_monitor": total / n, "synthetics": synth, "synthetics_per_monitor": synth / n,
            "ratio": synth / total}


def cost_table(fleet_rows):
    by_n = {r["n"]: r for r in fleet_rows}
    rows = []
    for n in (10, 100, 1000):
        # The measured run of that size, or the nearest larger one measured.
        src = min((k for k in by_n if k >= n), default=max(by_n))
        run_s = max(1.0, by_n[src]["run_duration_ms"] / 1000)  # Lambda bills >= 1 ms; keep 1 s floor
        for minutes in (1, 5):
            c = cost(n, minutes, run_s)
            c["measured_n"] = src
            rows.append(c)
    return rows


def money(x):
    return f"${x:,.2f}" if x >= 0.1 else f"${x:,.3f}"


def cost_markdown(rows):
    out = ["| monitors | interval | billed run (measured) | Lambda | custom metrics | other AWS | **total / month** | **per monitor** | Synthetics / month | Synthetics per monitor | Synthetics ÷ ours |",
           "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in rows:
        other = c["put"] + c["logs"] + c["fixed"] + c["ddb"]
        out.append(f"| {c['n']:,} | {c['minutes']} min | {c['run_s']:.1f} s (N={c['measured_n']:,}) | {money(c['lambda'])} | "
                   f"{money(c['metrics'])} | {money(other)} | **{money(c['total'])}** | **{money(c['per_monitor'])}** | "
                   f"{money(c['synthetics'])} | {money(c['synthetics_per_monitor'])} | {c['ratio']:.0f}× |")
    return "\n".join(out)


# ---------------------------------------------------------------- report

OURS = "pop3-probe (in-process)"
MAIN_VARIANT = {"a": "tls none, auth none", "b": "implicit TLS, auth none",
                "c": "starttls, auth auto (APOP)", "d": "implicit TLS, auth auto (APOP)"}
USER_VARIANT = {"c": "starttls, auth user", "d": "implicit TLS, auth user"}
CHECK_NAME = {"a": "(a) connect + greeting", "b": "(b) implicit TLS + greeting",
              "c": "(c) STLS + login + STAT + QUIT", "d": "(d) implicit TLS + login + STAT + QUIT"}
PEERS = ["blackbox_exporter 0.23 (tcp prober)", "python poplib (in-process)", "curl",
         "check_pop / check_spop", "pop3-probe check (per process)"]
# Protocol minimum, in round trips on a real network (TCP handshake counted),
# without RFC 2449 pipelining (with it, login + STAT could share one).
MINIMUM = {"a": 2, "b": 3, "c": 6, "d": 5}


def f2(x):
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else (f"{x:.3f}" if x < 1 else f"{x:.2f}")


def find(rows, tool, check, variant=None):
    for r in rows:
        if r["tool"] == tool and r["check"] == check and (variant is None or r["variant"] == variant):
            return r
    return None


def table_per_probe(rows):
    out = ["| check | tool | what it does | CPU ms median | CPU p90 | wall ms median | wall p90 | n | failed |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for check in "abcd":
        for r in [r for r in rows if r["check"] == check]:
            fails = sum(r["failures"].values()) if r["failures"] else 0
            out.append(f"| {check} | {r['tool']} | {r['variant']} | {f2(r['cpu']['median'])} | {f2(r['cpu']['p90'])} | "
                       f"{f2(r['wall']['median'])} | {f2(r['wall']['p90'])} | {r['cpu']['n']} | {fails} |")
    return "\n".join(out)


def ratio(a, b):
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return None
    return a / b


def table_ratios(rows):
    out = ["| check | ours (in-process) | peer | peer variant | CPU ours ÷ peer | wall ours ÷ peer |",
           "|---|---|---|---|---:|---:|"]
    for check in "abcd":
        ours_list = [find(rows, OURS, check, MAIN_VARIANT[check])]
        if check in USER_VARIANT:
            ours_list.append(find(rows, OURS, check, USER_VARIANT[check]))
        for ours in [o for o in ours_list if o]:
            for peer in PEERS:
                for p in [r for r in rows if r["tool"] == peer and r["check"] == check]:
                    rc = ratio(ours["cpu"]["median"], p["cpu"]["median"])
                    rw = ratio(ours["wall"]["median"], p["wall"]["median"])
                    out.append(f"| {check} | {ours['variant']} | {peer} | {p['variant']} | "
                               f"{f2(rc) if rc else '–'} | {f2(rw) if rw else '–'} |")
    return "\n".join(out)


def table_round_trips(loop_rows, delay_rows):
    rtt = 2 * DELAY_MS
    out = [f"| check | tool | what it does | wall ms, {DELAY_MS:.0f} ms one-way delay | wall ms, loopback | round trips through the proxy | **implied round trips** (+1 TCP handshake) | protocol minimum |",
           "|---|---|---|---:|---:|---:|---:|---:|"]
    for check in "abcd":
        for d in [r for r in delay_rows if r["check"] == check]:
            lp = find(loop_rows, d["tool"], check, d["variant"])
            base = lp["wall"]["median"] if lp else 0.0
            raw = (d["wall"]["median"] - base) / rtt
            d["round_trips"] = round(raw) + 1
            out.append(f"| {check} | {d['tool']} | {d['variant']} | {d['wall']['median']:.1f} | {base:.2f} | "
                       f"{raw:.2f} | **{d['round_trips']}** | {MINIMUM[check]} |")
    return "\n".join(out)


def table_fleet(rows):
    out = ["| monitors | wall s | probe phase s | deadline s | concurrency | peak RSS MB | RSS at start MB | CPU s | CPU ms / probe | most open fds | up | down (all timeouts of hanging servers) | skipped | lost |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['n']:,} | {r['wall_ms'] / 1000:.2f} | {r['run_duration_ms'] / 1000:.2f} | {r['deadline_ms'] / 1000:.0f} | "
                   f"{r['concurrency']} | {r['peak_rss_kb'] / 1024:.1f} | {r['rss_before_kb'] / 1024:.1f} | {r['cpu_ms'] / 1000:.2f} | "
                   f"{r['cpu_ms_per_probe']:.3f} | {r['max_fds']} | {r['up']:,} | {r['down']:,} | {r['skipped']} | {r['lost']} |")
    return "\n".join(out)


def growth(rows):
    if len(rows) < 2:
        return ""
    a, b = rows[-2], rows[-1]
    k = b["n"] / a["n"]
    return (f"From {a['n']:,} to {b['n']:,} monitors (×{k:.0f}): wall ×{b['wall_ms'] / a['wall_ms']:.1f}, "
            f"peak RSS ×{b['peak_rss_kb'] / a['peak_rss_kb']:.1f} "
            f"(+{(b['peak_rss_kb'] - a['peak_rss_kb']) / (b['n'] - a['n']):.1f} KB per extra monitor), "
            f"CPU ×{b['cpu_ms'] / a['cpu_ms']:.1f}, open fds ×{b['max_fds'] / max(1, a['max_fds']):.1f} "
            f"(bounded by the concurrency, not the count).")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    p.add_argument("--results", default=os.path.join(ROOT, "target/bench/results.json"))
    p.add_argument("--no-zip", action="store_true")
    p.add_argument("--dovecot-dir", default=os.environ.get("DOVECOT_DIR", "/tmp/pop3-probe-dovecot"))
    # An older pop3-probe binary to show side by side in the fresh-process
    # table (e.g. one built with AWS_LC_SYS_NO_JITTER_ENTROPY=0).
    p.add_argument("--before-bin", default=os.environ.get("BEFORE_BIN") or None)
    a = p.parse_args()
    if a.quick:
        a.n_inproc, a.n_proc, a.n_delay, a.fleet, a.cold = 20, 10, 2, [10, 100, 1000], 3
        a.no_zip = True
    else:
        a.n_inproc, a.n_proc, a.n_delay, a.fleet, a.cold = 500, 100, 5, [10, 100, 1000, 10000], 20
    a.concurrency = 200
    started = time.time()
    mach = machine()
    sh(["bash", "tests/dovecot/ensure.sh", a.dovecot_dir])
    env_file = os.path.join(a.dovecot_dir, "env")
    env = load_env(env_file)
    exes = bench_executables(a.quick)
    res = {"machine": mach, "quick": a.quick, "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    res["init_profile"] = jsonl([exes["probes"], "--env", env_file, "--init"], timeout=60)[0]["steps"]
    res["loopback"] = per_probe(exes, env_file, a, "loopback")
    res["fresh"] = fresh_rows(env_file, a)
    res["delay"] = delay_rows(exes, env_file, env, a)
    res["fleet"] = fleet(exes, env_file, a)
    res["cold_start"] = cold_start(a, a.cold)
    res["sizes"] = {b: os.path.getsize(os.path.join(ROOT, "target/release", b)) for b in ("pop3-probe", "pop3-probe-lambda")}
    res["zip"] = zip_size(a)
    res["micro_ns"] = {} if a.quick else micro()
    res["cost"] = cost_table(res["fleet"])
    res["load_after"] = os.getloadavg()
    res["seconds"] = time.time() - started
    os.makedirs(os.path.dirname(a.results), exist_ok=True)
    with open(a.results, "w") as f:
        json.dump(res, f, indent=1)
    sys.path.insert(0, HERE)
    import report
    with open(a.out, "w") as f:
        f.write(report.render(res))
    log(f"wrote {a.out} and {a.results} in {res['seconds']:.0f} s")


if __name__ == "__main__":
    main()
