#!/usr/bin/env bash
# Checks the alerts we ship with Prometheus's own tool: cuts the rule groups out of the PrometheusRule (everything below
# `spec:`, one indent less: a plain rules file), then `promtool check rules` and `promtool test rules` (rules.test.yaml:
# every alert firing and not firing). Run by tests/run.sh; needs promtool (Debian package prometheus).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rule=$root/deploy/kubernetes/components/monitoring/prometheusrule.yaml
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
sed -n '/^spec:/,$p' "$rule" | tail -n +2 | sed 's/^  //' > "$work/backrest-agent.rules.yaml"
cp "$root/tests/prometheus/rules.test.yaml" "$work/"
promtool check rules "$work/backrest-agent.rules.yaml"
promtool test rules "$work/rules.test.yaml"
