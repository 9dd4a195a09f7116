#!/usr/bin/env python3
"""The fresh-process TLS check, side by side in one run: our CLI run the way
a Nagios plugin is run (one process per check, certificate verified) against
curl (verifies) and check_spop (does not), on the test Dovecot.

  fresh.py --env DIR/env [--bin target/release/pop3-probe]
           [--before-bin OLD_BINARY] [--n 100] [--json OUT] [--markdown]

The tools take turns, one check each per round, so load on this shared
machine falls on all of them alike. CPU is the child's user+system time
from wait4(); wall is fork to reap. --before-bin adds the same rows for an
older binary (e.g. one built with aws-lc's CPU-jitter entropy, to show the
change). Timing never fails the run; a tool that cannot run at all does.
"""
import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402  (spawn_measure, load_env)

PLUGINS = peers.PLUGINS


def variants(a, env, netrc):
    ca = env["CA_PEM"]
    sp = env["POP3S_PORT"]
    curl = "/usr/bin/curl"
    out = [
        ("curl", "b", "TLS, greeting, CAPA, QUIT (certificate verified)",
         [curl, "-sS", "--cacert", ca, "-X", "QUIT", "-I", f"pop3s://127.0.0.1:{sp}/"], None),
        ("check_spop", "b", "TLS (certificate NOT verified), greeting, QUIT",
         [f"{PLUGINS}/check_spop", "-H", "127.0.0.1", "-p", sp], None),
        ("curl", "d", "TLS, CAPA, AUTH PLAIN, STAT, QUIT (--sasl-ir)",
         [curl, "-sS", "--sasl-ir", "--netrc-file", netrc, "--cacert", ca,
          "-X", "STAT", "-I", f"pop3s://127.0.0.1:{sp}/"], None),
    ]
    pe = {"POP3_PASSWORD": env["PASSWORD"]}
    for label, binary in (("pop3-probe check", a.bin), ("pop3-probe check, before", a.before_bin)):
        if not binary:
            continue
        base = [os.path.abspath(binary), "check", "--ca-file", ca, "--password-env", "POP3_PASSWORD"]
        out += [
            (label, "b", "implicit TLS, greeting, QUIT (certificate verified)",
             base + [f"pop3s://127.0.0.1:{sp}", "--auth", "none"], pe),
            (label, "d", "implicit TLS, APOP, STAT, QUIT (certificate verified)",
             base + [f"pop3s://{env['USER']}@127.0.0.1:{sp}"], pe),
        ]
    return out


def measure(a):
    env = peers.load_env(a.env)
    import tempfile
    with tempfile.TemporaryDirectory(prefix="pop3-fresh-") as d:
        netrc = os.path.join(d, "netrc")
        fd = os.open(netrc, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, f"machine 127.0.0.1 login {env['USER']} password {env['PASSWORD']}\n".encode())
        os.close(fd)
        vs = variants(a, env, netrc)
        samples = {i: ([], [], 0) for i in range(len(vs))}
        # Warm the page cache for every binary first; not counted.
        for _, _, _, argv, extra in vs:
            peers.spawn_measure(argv, extra)
        for _ in range(a.n):
            for i, (_, _, _, argv, extra) in enumerate(vs):
                w, c, rc = peers.spawn_measure(argv, extra)
                walls, cpus, fails = samples[i]
                if rc == 0:
                    walls.append(w)
                    cpus.append(c)
                    samples[i] = (walls, cpus, fails)
                else:
                    samples[i] = (walls, cpus, fails + 1)
    rows = []
    for i, (tool, check, variant, _, _) in enumerate(vs):
        walls, cpus, fails = samples[i]
        if not walls:
            sys.exit(f"fresh.py: {tool} ({variant}) never succeeded")
        rows.append({
            "tool": tool, "check": check, "variant": variant, "n": len(walls), "failed": fails,
            "cpu_ms": statistics.median(cpus), "wall_ms": statistics.median(walls),
            "cpu_p90": sorted(cpus)[int(0.9 * (len(cpus) - 1))],
            "wall_p90": sorted(walls)[int(0.9 * (len(walls) - 1))],
        })
    return rows


def find(rows, tool, check):
    return next((r for r in rows if r["tool"] == tool and r["check"] == check), None)


def markdown(rows):
    out = ["| check | tool | what it does | CPU ms median | CPU p90 | wall ms median | wall p90 | n | failed |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: (r["check"], r["tool"])):
        out.append(f"| {r['check']} | {r['tool']} | {r['variant']} | {r['cpu_ms']:.2f} | {r['cpu_p90']:.2f} | "
                   f"{r['wall_ms']:.2f} | {r['wall_p90']:.2f} | {r['n']} | {r['failed']} |")
    ours, curl, spop = find(rows, "pop3-probe check", "b"), find(rows, "curl", "b"), find(rows, "check_spop", "b")
    out.append("")
    if ours and curl and spop:
        cpu = ours["cpu_ms"] / curl["cpu_ms"]
        wall = ours["wall_ms"] / spop["wall_ms"]
        out.append(f"- **CPU ≤ 0.5× curl's** (check b): {'MET' if cpu <= 0.5 else 'MISSED'} — "
                   f"{ours['cpu_ms']:.2f} ms vs {curl['cpu_ms']:.2f} ms = **{cpu:.2f}×**.")
        out.append(f"- **Wall ≤ check_spop's** (check b): {'MET' if wall <= 1.0 else 'MISSED'} — "
                   f"{ours['wall_ms']:.2f} ms vs {spop['wall_ms']:.2f} ms = **{wall:.2f}×** "
                   "(check_spop does not verify the certificate; we do).")
    before = find(rows, "pop3-probe check, before", "b")
    if ours and before:
        out.append(f"- Before → after (check b): CPU {before['cpu_ms']:.2f} → {ours['cpu_ms']:.2f} ms, "
                   f"wall {before['wall_ms']:.2f} → {ours['wall_ms']:.2f} ms.")
    od, cd = find(rows, "pop3-probe check", "d"), find(rows, "curl", "d")
    if od and cd:
        out.append(f"- With a login (check d): CPU {od['cpu_ms']:.2f} ms vs curl {cd['cpu_ms']:.2f} ms = "
                   f"{od['cpu_ms'] / cd['cpu_ms']:.2f}×; wall {od['wall_ms']:.2f} vs {cd['wall_ms']:.2f} ms.")
    return "\n".join(out) + "\n"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--env", required=True)
    p.add_argument("--bin", default="target/release/pop3-probe")
    p.add_argument("--before-bin")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--json")
    p.add_argument("--markdown", action="store_true")
    a = p.parse_args()
    rows = measure(a)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    if a.markdown:
        print(markdown(rows))
    else:
        for r in rows:
            print(json.dumps(r))


if __name__ == "__main__":
    main()
