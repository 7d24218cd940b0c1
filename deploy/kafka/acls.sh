#!/usr/bin/env bash
# Print (or, with --apply, run) the script `nbx deploy acls --format kafka-acls` generates from the
# signed directory: it creates every topic of the network (the node's own topic configs) and adds
# every principal's ACLs (docs/architecture.md section 5; broker/deploy/acls.py says who gets what).
# Run it again after every directory change. Every other option goes to `nbx deploy acls`.
#
#   deploy/kafka/acls.sh --directory directory.json --anchor trust-anchor.pub \
#       --bootstrap kafka:9093 --command-config admin.properties [--replication 3] [--apply]
#
# NBX names the nbx command (default: nbx on PATH); KAFKA_BIN the folder of kafka-acls.sh and
# kafka-topics.sh (with a trailing slash) when they are not on PATH.
set -euo pipefail
nbx="${NBX:-nbx}"
apply=0
args=()
for arg in "$@"; do
  if [[ "$arg" == --apply ]]; then apply=1; else args+=("$arg"); fi
done
script=$("$nbx" deploy acls "${args[@]}" --format kafka-acls)
if [[ $apply -eq 1 ]]; then
  bash -c "$script"
else
  printf '%s\n' "$script"
fi
