#!/usr/bin/env bash
# Print (or, with --apply, run) the Apache Kafka ACLs for one bureau, as in docs/architecture.md section 5:
# a bureau reads only its own inbox, receipts and quarantine and its own consumer group; it writes
# to every inbox and to other bureaus' receipt topics; the directory is readable by all.
#
#   deploy/kafka/acls.sh FR --bootstrap kafka:9093 --command-config admin.properties [--apply]
set -euo pipefail
cc="${1:?usage: acls.sh CC --bootstrap HOST:PORT --command-config FILE [--apply]}"; shift
[[ "$cc" =~ ^[A-Z]{2}$ ]] || { echo "acls.sh: bureau id must be two upper-case letters" >&2; exit 2; }
bootstrap="" config="" apply=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bootstrap) bootstrap="$2"; shift 2 ;;
    --command-config) config="$2"; shift 2 ;;
    --apply) apply=1; shift ;;
    *) echo "acls.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -n "$bootstrap" && -n "$config" ]] || { echo "acls.sh: --bootstrap and --command-config are required" >&2; exit 2; }
principal="User:nbx-$cc"
base=(kafka-acls.sh --bootstrap-server "$bootstrap" --command-config "$config" --add --allow-principal "$principal")
commands=(
  "${base[*]} --operation Read --operation Describe --topic nbx.inbox.$cc"
  "${base[*]} --operation Read --operation Describe --topic nbx.receipts.$cc"
  "${base[*]} --operation Read --operation Write --operation Describe --topic nbx.quarantine.$cc"
  "${base[*]} --operation Write --operation Describe --resource-pattern-type prefixed --topic nbx.inbox."
  "${base[*]} --operation Write --operation Describe --resource-pattern-type prefixed --topic nbx.receipts."
  "${base[*]} --operation Read --operation Describe --topic nbx.directory"
  "${base[*]} --operation Read --group nbx.$cc"
  "${base[*]} --operation IdempotentWrite --cluster"
)
for c in "${commands[@]}"; do
  if [[ $apply -eq 1 ]]; then eval "$c"; else echo "$c"; fi
done
