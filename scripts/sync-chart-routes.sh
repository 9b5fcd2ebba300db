#!/usr/bin/env bash
# Copy the public route table (services/contracts/routes.py) into the umbrella chart, which
# builds its HTTPRoutes and Ingresses from it. check-charts.sh runs this with --check and
# fails while a copy is stale.
#
#   files/routes.json          the table as contracts.routes prints it (the Ingress uses it)
#   files/gateway-routes.json  the same table for Gateway API HTTPRoutes: each pattern as a
#                              regular expression without look-arounds (RE2, which Envoy and
#                              so Istio use, has none; NGINX's PCRE takes either), anchored,
#                              and the literal path prefix the versioned rules rewrite
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=charts/drone-delivery/files
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

PYTHONPATH=services python3 -m contracts.routes > "$tmp/routes.json"
PYTHONPATH=services python3 - "$tmp/gateway-routes.json" <<'PY'
"""Rewrite the route table's look-aheads as plain alternatives, exactly.

The table uses two: ID (a path segment of 1-128 id characters that is not "." or "..")
and "(?!WORD$)ID" (such a segment that is not WORD). Both are finite differences of a
regular language, so each has an equivalent without look-arounds; tests/charts checks the
equivalence on a corpus and check-charts.sh compiles each result with RE2.
"""
import json
import re
import sys

from contracts import routes

ALL = sorted(set("-.~_") | {chr(c) for c in range(48, 58)} | {chr(c) for c in range(65, 91)}
             | {chr(c) for c in range(97, 123)})
assert routes.ID == r"(?!\.{1,2}(?:/|$))[A-Za-z0-9._~-]{1,128}", "the ID pattern changed"
MAX = 128


def char_class(chars):
    """A [...] for a set of id characters, ranges where they run, "-" last (no escapes:
    none of these characters is special inside a class)."""
    dash = "-" in chars
    chars, out, i = sorted(set(chars) - {"-"}), [], 0
    while i < len(chars):
        j = i
        while j + 1 < len(chars) and ord(chars[j + 1]) == ord(chars[j]) + 1:
            j += 1
        out.append(chars[i] if i == j else f"{chars[i]}{'' if j == i + 1 else '-'}{chars[j]}")
        i = j + 1
    return "[" + "".join(out) + ("-" if dash else "") + "]"


ANY = char_class(ALL)
NODOT = char_class(set(ALL) - {"."})
DOTTED = rf"\.{NODOT}{ANY}{{0,{MAX - 2}}}|\.\.{ANY}{{1,{MAX - 2}}}"
PORTABLE_ID = rf"(?:{NODOT}{ANY}{{0,{MAX - 1}}}|{DOTTED})"


def id_except(word):
    """An id segment that is anything but `word` (which has no dot)."""
    alts = [re.escape(word[:i]) for i in range(1, len(word))]  # proper prefixes
    for i, ch in enumerate(word):  # differs first at position i
        others = (set(ALL) - {"."} if i == 0 else set(ALL)) - {ch}
        alts.append(f"{re.escape(word[:i])}{char_class(others)}{ANY}{{0,{MAX - 1 - i}}}")
    alts.append(f"{re.escape(word)}{ANY}{{1,{MAX - len(word)}}}")  # longer
    return "(?:" + "|".join([*alts, DOTTED]) + ")"


def portable(pattern):
    out = re.sub(
        r"\(\?!([A-Za-z0-9_~-]+)\$\)" + re.escape(routes.ID),
        lambda m: id_except(m.group(1)),
        pattern,
    )
    out = out.replace(routes.ID, PORTABLE_ID)
    if re.search(r"\(\?[=!<]", out):
        sys.exit(f"sync-chart-routes: a look-around this script cannot rewrite: {pattern}")
    return f"^{out}$"


def literal_prefix(pattern):
    """The route's leading literal path segments: what a PathPrefix match can name."""
    return re.match(r"(/[A-Za-z0-9_-]+)+", pattern).group(0)


table = {"versionPrefix": routes.VERSION_PREFIX, "routes": [], "versioned": []}
prefixes = {}
for r in routes.ROUTES:
    prefix = literal_prefix(r.pattern)
    table["routes"].append({
        "methods": list(r.methods),
        "service": r.service,
        "regex": portable(r.pattern),
        "exact": prefix == r.pattern,
        "path": prefix,
    })
    methods = prefixes.setdefault((prefix, r.service), [])
    methods += [m for m in r.methods if m not in methods]
# Versioned rules: ReplacePrefixMatch works only on a PathPrefix match, so these name the
# literal prefix (and the methods routed under it); the public port refuses the rest.
for (prefix, service), methods in prefixes.items():
    table["versioned"].append({"path": prefix, "service": service, "methods": methods})
with open(sys.argv[1], "w") as f:
    f.write(json.dumps(table, indent=2) + "\n")
PY

if [[ ${1:-} == --check ]]; then
  rc=0
  for f in routes.json gateway-routes.json; do
    diff -u "$FILES/$f" "$tmp/$f" || { echo "stale: $FILES/$f (run scripts/sync-chart-routes.sh)"; rc=1; }
  done
  exit $rc
fi
cp "$tmp/routes.json" "$tmp/gateway-routes.json" "$FILES/"
echo "wrote $FILES/routes.json and $FILES/gateway-routes.json"
