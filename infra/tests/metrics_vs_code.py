#!/usr/bin/env python3
"""Every metric the infra names in the probe's namespace is one the code publishes.

An alarm or a dashboard widget on a metric the code never publishes is worse
than none: it sits in INSUFFICIENT_DATA (or, with treat_missing_data =
breaching, alarms forever) and nobody learns why. The names are read from
the code's one table, src/metrics.rs (its string literals that look like
CloudWatch metric names), and from infra/*.tf:

  - `metric_name = "X"` in a block (alarm, metric_query's metric) whose
    `namespace` is not an AWS one (`AWS/Lambda` metrics are the Lambda's own);
    a block without `namespace` takes its enclosing block's;
  - dashboard rows `[local.<ns>, "X", ...]` / `[var.<ns>, "X", ...]`;
  - SEARCH expressions `MetricName="X"` whose schema is not an AWS namespace.

It fails if a .tf name is not in the code, and if it finds no name at all in
either place (a check that compares nothing proves nothing).

    python3 infra/tests/metrics_vs_code.py [--src src] [--infra infra]
    python3 infra/tests/metrics_vs_code.py --self-test
"""

import argparse
import glob
import os
import re
import sys

NAME = r"[A-Z][A-Za-z0-9]*"


def code_names(src):
    path = os.path.join(src, "metrics.rs")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    # Only code, not comments: a name in a comment is not published.
    code = "\n".join(line.split("//", 1)[0] for line in text.splitlines())
    names = set(re.findall(r'"(' + NAME + r')"', code))
    return names, path


def enclosing_block(text, pos):
    """(start, end) of the innermost {...} around pos, or None."""
    depth = 0
    i = pos
    while i >= 0:
        c = text[i]
        if c == "}":
            depth += 1
        elif c == "{":
            if depth == 0:
                break
            depth -= 1
        i -= 1
    if i < 0:
        return None
    start = i
    depth = 0
    for j in range(start, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return start, j
    return start, len(text)


def own_text(text, start, end):
    """The block's text without its nested blocks."""
    out, depth = [], 0
    for c in text[start + 1:end]:
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif depth == 0:
            out.append(c)
    return "".join(out)


def namespace_of(text, pos):
    block = enclosing_block(text, pos)
    while block:
        m = re.search(r"\bnamespace\s*=\s*(\S+)", own_text(text, *block))
        if m:
            return m.group(1)
        if block[0] == 0:
            return None
        block = enclosing_block(text, block[0] - 1)
    return None


def is_aws(namespace):
    return namespace is not None and namespace.strip("\"'").startswith("AWS/")


def tf_names(infra):
    found = []  # (name, file, line)
    files = sorted(glob.glob(os.path.join(infra, "*.tf")))
    for path in files:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        # Strip comments (#, //) so an example in prose is not a reference.
        text = re.sub(r"(?m)^\s*(#|//).*$", "", text)

        def add(name, pos):
            found.append((name, os.path.basename(path), text.count("\n", 0, pos) + 1))

        for m in re.finditer(r'\bmetric_name\s*=\s*"(' + NAME + r')"', text):
            if not is_aws(namespace_of(text, m.start())):
                add(m.group(1), m.start())
        for m in re.finditer(r'\[\s*(?:local|var)\.\w+\s*,\s*"(' + NAME + r')"', text):
            add(m.group(1), m.start())
        for m in re.finditer(r"SEARCH\(\s*'([^']*)'", text):
            expr = m.group(1)
            schema = re.search(r"\{([^,}]*)", expr)
            if schema and "AWS/" in schema.group(1):
                continue
            for n in re.finditer(r'MetricName\s*=\s*\\?"(' + NAME + r')\\?"', expr):
                add(n.group(1), m.start())
    return found, files


def check(src, infra):
    names, code_path = code_names(src)
    refs, files = tf_names(infra)
    ok = True
    if not names:
        print(f"FAIL  no metric names in {code_path}")
        ok = False
    if not files:
        print(f"FAIL  no .tf files in {infra}")
        ok = False
    if not refs:
        print(f"FAIL  no metric of the probe's namespace referenced in {infra}/*.tf")
        ok = False
    for name, f, line in refs:
        if name not in names:
            print(f"FAIL  {f}:{line}: metric {name!r} is not published by the code ({code_path})")
            ok = False
    if ok:
        used = sorted({r[0] for r in refs})
        print(f"ok    {len(refs)} references to {len(used)} metrics, all published: {', '.join(used)}")
    return ok


SELF_TEST_RS = 'pub const A: &str = "Availability";\npub const P: &str = "ProbeRuns";\n// "Ghost" in a comment\n'
SELF_TEST_GOOD = '''
resource "aws_cloudwatch_metric_alarm" "a" {
  namespace   = var.metric_namespace
  metric_name = "ProbeRuns"
}
resource "aws_cloudwatch_metric_alarm" "l" {
  namespace   = "AWS/Lambda"
  metric_name = "Errors"
}
resource "aws_cloudwatch_metric_alarm" "q" {
  metric_query {
    metric {
      namespace   = local.ns
      metric_name = "Availability"
    }
  }
}
locals {
  body = jsonencode({ metrics = [[local.ns, "ProbeRuns", { stat = "Sum" }]],
    e = "SEARCH('{${local.ns},Monitor} MetricName=\\"Availability\\"', 'Minimum', 60)" })
}
'''
SELF_TEST_BAD = [
    'resource "x" "y" {\n  namespace = var.metric_namespace\n  metric_name = "Ghost"\n}\n',
    'locals {\n  m = [[local.ns, "Ghost", {}]]\n}\n',
    "locals {\n  e = \"SEARCH('{${local.ns},Monitor} MetricName=\\\"Ghost\\\"', 'Sum', 60)\"\n}\n",
    'resource "x" "y" {\n  metric_query {\n    metric {\n      namespace = local.ns\n      metric_name = "Ghost"\n    }\n  }\n}\n',
    "# nothing at all\n",
]


def self_test():
    import shutil
    import tempfile

    made = []

    def tree(tf):
        d = tempfile.mkdtemp()
        made.append(d)
        os.makedirs(os.path.join(d, "src"))
        os.makedirs(os.path.join(d, "infra"))
        with open(os.path.join(d, "src", "metrics.rs"), "w") as f:
            f.write(SELF_TEST_RS)
        with open(os.path.join(d, "infra", "main.tf"), "w") as f:
            f.write(tf)
        return os.path.join(d, "src"), os.path.join(d, "infra")

    ok = check(*tree(SELF_TEST_GOOD))
    for bad in SELF_TEST_BAD:
        if check(*tree(bad)):
            print(f"FAIL  self-test: passed on a wrong tree:\n{bad}")
            ok = False
    for d in made:
        shutil.rmtree(d, ignore_errors=True)
    print("self-test", "ok" if ok else "FAILED")
    return ok


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", default=os.path.join(root, "src"))
    p.add_argument("--infra", default=os.path.join(root, "infra"))
    p.add_argument("--self-test", action="store_true")
    a = p.parse_args()
    ok = self_test() if a.self_test else check(a.src, a.infra)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
