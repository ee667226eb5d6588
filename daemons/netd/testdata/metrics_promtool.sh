#!/bin/sh
# netctl metrics as Prometheus reads it: `promtool check metrics` (its parser and its linter:
# names, HELP and TYPE, counters' _total, label escaping) on the metrics of a daemon driven
# through events (metrics_sample), and on label values that need every escape. Fails on any
# parse error or lint problem.
# usage: metrics_promtool.sh METRICS_SAMPLE
set -eu
sample=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$sample" > "$tmp/daemon.prom" 2> "$tmp/daemon.log"
"$sample" --escaping > "$tmp/escaping.prom"
for f in daemon escaping; do
    if ! grep -q '^# TYPE netd_' "$tmp/$f.prom"; then
        echo "FAIL: $f: no netd_ metrics"
        cat "$tmp/$f.prom"
        exit 1
    fi
    if promtool check metrics < "$tmp/$f.prom" > "$tmp/$f.lint" 2>&1; then
        echo "ok: promtool check metrics: $f: $(grep -c '^# TYPE' "$tmp/$f.prom") families," \
             "$(grep -vc '^#' "$tmp/$f.prom") samples, no problem$(sed 's/^/; /' "$tmp/$f.lint" | tr -d '\n')"
    else
        echo "FAIL: promtool check metrics: $f:"
        cat "$tmp/$f.lint"
        cat "$tmp/$f.prom"
        exit 1
    fi
done
