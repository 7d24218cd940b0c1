#!/usr/bin/env bash
# Create one bureau's topics on Apache Kafka with the settings NBX expects (the daemon also creates
# missing topics itself when its principal may). Inbox and receipt topics use LogAppendTime: the
# broker stamps each record, and key revocation is checked against that time. Every topic but the
# directory keeps records for a bounded time (--retention-days, default 7, the node's
# [shredding] topic_retention_days; segments roll daily so that nothing outlives it by a week):
# the node destroys its old encryption keys after that (docs/safeguards.md, "Erasure on the broker").
#
#   deploy/kafka/topics.sh FR --bootstrap kafka:9093 --command-config admin.properties \
#       [--replication 3] [--retention-days 7]
set -euo pipefail
cc="${1:?usage: topics.sh CC --bootstrap HOST:PORT --command-config FILE [--replication N]}"; shift
[[ "$cc" =~ ^[A-Z]{2}$ ]] || { echo "topics.sh: bureau id must be two upper-case letters" >&2; exit 2; }
bootstrap="" config="" replication=3 retention_days=7
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bootstrap) bootstrap="$2"; shift 2 ;;
    --command-config) config="$2"; shift 2 ;;
    --replication) replication="$2"; shift 2 ;;
    --retention-days) retention_days="$2"; shift 2 ;;
    *) echo "topics.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ "$retention_days" =~ ^[1-9][0-9]*$ ]] || { echo "topics.sh: --retention-days must be a whole number of days" >&2; exit 2; }
retention_ms=$((retention_days * 86400000)) segment_ms=86400000
bounded=(--config cleanup.policy=delete --config "retention.ms=$retention_ms" --config "segment.ms=$segment_ms")
create() {
  kafka-topics.sh --bootstrap-server "$bootstrap" --command-config "$config" --create --if-not-exists \
    --topic "$1" --partitions 1 --replication-factor "$replication" "${@:2}"
}
create "nbx.inbox.$cc" --config message.timestamp.type=LogAppendTime --config min.insync.replicas=2 "${bounded[@]}"
create "nbx.receipts.$cc" --config message.timestamp.type=LogAppendTime --config min.insync.replicas=2 "${bounded[@]}"
create "nbx.quarantine.$cc" --config min.insync.replicas=2 "${bounded[@]}"
# a network body (XA..XZ) that reviews also has a holding topic
if [[ "$cc" =~ ^X[A-Z]$ ]]; then create "nbx.hold.$cc" --config min.insync.replicas=2 "${bounded[@]}"; fi
create nbx.directory --config cleanup.policy=compact --config min.insync.replicas=2
