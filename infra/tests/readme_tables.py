#!/usr/bin/env python3
"""infra/README.md documents every variable and every output of the module.

    readme_tables.py --check   fail (one FAIL line each) when a variable or an
                               output of the module is missing from the
                               README's Inputs/Outputs tables, when a table
                               names one that does not exist, or when a
                               row's description differs from the .tf file
    readme_tables.py --write   regenerate both tables from variables.tf and
                               outputs.tf (between the <!-- inputs:begin -->
                               / <!-- outputs:begin --> markers)

The .tf files are read with a small block parser, enough for this module's
style (one `description = "..."` line, one-line `type` and `default`).
"""

import argparse
import pathlib
import re
import sys

INFRA = pathlib.Path(__file__).resolve().parent.parent
README = INFRA / "README.md"


def blocks(text, kind):
    """(name, body) of every top-level `kind "name" {` block."""
    out = []
    for m in re.finditer(rf'^{kind} "([^"]+)" \{{\n', text, re.M):
        depth, i = 1, m.end()
        while depth:
            c = text[i]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            elif c == '"':  # skip strings (they hold braces: ${...})
                i += 1
                while text[i] != '"':
                    i += 2 if text[i] == "\\" else 1
            i += 1
        out.append((m.group(1), text[m.end():i - 1]))
    return out


def attr(body, key):
    m = re.search(rf"^  {key}\s*=\s*(.+)$", body, re.M)
    return m.group(1).strip() if m else None


def unquote(s):
    return s[1:-1].replace('\\"', '"').replace("\\\\", "\\") if s and s.startswith('"') else s


def cell(s):
    return s.replace("|", "\\|")


def variables():
    rows = []
    for f in sorted(INFRA.glob("*.tf")):
        for name, body in blocks(f.read_text(), "variable"):
            desc = unquote(attr(body, "description") or "")
            if attr(body, "sensitive") == "true":
                desc += " (sensitive)"
            default = attr(body, "default")
            rows.append((name, desc, attr(body, "type") or "any",
                         "**required**" if default is None else default,
                         "yes" if "validation {" in body else ""))
    return rows


def outputs():
    rows = []
    for f in sorted(INFRA.glob("*.tf")):
        for name, body in blocks(f.read_text(), "output"):
            rows.append((name, unquote(attr(body, "description") or "")))
    return rows


def render_inputs(rows):
    lines = ["| Name | Description | Type | Default | Validated |", "|------|-------------|------|---------|-----------|"]
    lines += [f"| `{n}` | {cell(d)} | `{cell(t)}` | {dflt if dflt.startswith('**') else '`' + cell(dflt) + '`'} | {v} |"
              for n, d, t, dflt, v in rows]
    return "\n".join(lines)


def render_outputs(rows):
    lines = ["| Name | Description |", "|------|-------------|"]
    lines += [f"| `{n}` | {cell(d)} |" for n, d in rows]
    return "\n".join(lines)


def section(text, tag):
    m = re.search(rf"<!-- {tag}:begin -->\n(.*?)<!-- {tag}:end -->", text, re.S)
    if not m:
        raise SystemExit(f"README.md has no <!-- {tag}:begin --> ... <!-- {tag}:end --> markers")
    return m


def table_rows(block):
    """name -> description cell of each `| `name` | description | ...` row."""
    out = {}
    for line in block.splitlines():
        m = re.match(r"\| `([^`]+)` \| (.*?) \|(?: |$)", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def check():
    text = README.read_text()
    failed = 0
    for tag, rows in (("inputs", variables()), ("outputs", outputs())):
        documented = table_rows(section(text, tag).group(1))
        names = {r[0]: cell(r[1]) for r in rows}
        for n, desc in names.items():
            if n not in documented:
                failed += 1
                print(f"FAIL README {tag}: `{n}` is not documented")
            elif documented[n] != desc:
                failed += 1
                print(f"FAIL README {tag}: `{n}` description differs from the .tf file (run readme_tables.py --write)")
        for n in documented:
            if n not in names:
                failed += 1
                print(f"FAIL README {tag}: `{n}` is documented but does not exist")
        if not rows:
            failed += 1
            print(f"FAIL README {tag}: no {tag} found in the .tf files (parser broken?)")
    if not failed:
        print(f"PASS README documents all {len(variables())} variables and {len(outputs())} outputs")
    return 1 if failed else 0


def write():
    text = README.read_text()
    for tag, body in (("inputs", render_inputs(variables())), ("outputs", render_outputs(outputs()))):
        m = section(text, tag)
        text = text[:m.start(1)] + body + "\n" + text[m.end(1):]
    README.write_text(text)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--check", action="store_true")
    g.add_argument("--write", action="store_true")
    args = p.parse_args()
    return check() if args.check else write()


if __name__ == "__main__":
    sys.exit(main())
