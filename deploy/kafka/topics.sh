#!/usr/bin/env bash
# Create one bureau's topics on Apache Kafka with the settings NBX expects (the daemon also creates
# missing topics itself when its principal may). Inbox and receipt topics use LogAppendTime: the
# broker stamps each record, and key revocation is checked against that time.
#
#   deploy/kafka/topics.sh FR --bootstrap kafka:9093 --command-config admin.properties [--replication 3]
set -euo pipefail
cc="${1:?usage: topics.sh CC --bootstrap HOST:PORT --command-config FILE [--replication N]}"; shift
[[ "$cc" =~ ^[A-Z]{2}$ ]] || { echo "topics.sh: bureau id must be two upper-case letters" >&2; exit 2; }
bootstrap="" config="" replication=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bootstrap) bootstrap="$2"; shift 2 ;;
    --command-config) config="$2"; shift 2 ;;
    --replication) replication="$2"; shift 2 ;;
    *) echo "topics.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
create() {
  kafka-topics.sh --bootstrap-server "$bootstrap" --command-config "$config" --create --if-not-exists \
    --topic "$1" --partitions 1 --replication-factor "$replication" "${@:2}"
}
create "nbx.inbox.$cc" --config message.timestamp.type=LogAppendTime --config min.insync.replicas=2
create "nbx.receipts.$cc" --config message.timestamp.type=LogAppendTime --config min.insync.replicas=2
create "nbx.quarantine.$cc" --config min.insync.replicas=2
create nbx.directory --config cleanup.policy=compact --config min.insync.replicas=2
