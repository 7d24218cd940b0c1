#!/bin/bash
# kafka-init: once every broker is up, create the SCRAM users, then run the script
# `nbx deploy acls --format kafka-acls` generated from the signed directory (setup.sh wrote it to
# /etc/kafka/nbx-secrets/acls.sh): it creates the topics (replication 3, the retention of the
# nodes' [shredding] topic_retention_days) and adds every principal's ACLs. Then exit 0: the
# nodes start after it (depends_on ... service_completed_successfully).
#   - one SCRAM-SHA-512 user per principal (nbx-<CC>, nbx-anchor), its password from
#     /etc/kafka/nbx-secrets/scram/<principal>.password (setup.sh)
set -euo pipefail
export PATH="/opt/kafka/bin:$PATH"
bootstrap="kafka-1:9095,kafka-2:9095,kafka-3:9095"
admin=/tmp/admin.properties
secrets=/etc/kafka/nbx-secrets
principals=(nbx-FR nbx-DE nbx-anchor)

umask 077
{ cat /etc/kafka/nbx/admin.properties; printf 'ssl.key.password=%s\n' "$(cat "$secrets/key.password")"; } > "$admin"

# wait for the cluster (a condition, with a deadline): every broker registered and unfenced
brokers=$(tr ',' '\n' <<< "$bootstrap" | wc -l)
for attempt in $(seq 1 90); do
  up=$(kafka-broker-api-versions.sh --bootstrap-server "$bootstrap" --command-config "$admin" 2>/dev/null \
    | grep -c '(id: ' || true)
  [[ $up -ge $brokers ]] && break
  [[ $attempt -lt 90 ]] || { echo "kafka-init: $up of $brokers brokers up after 180 s" >&2; exit 1; }
  sleep 2
done

for p in "${principals[@]}"; do
  password=$(cat "$secrets/scram/$p.password")
  kafka-configs.sh --bootstrap-server "$bootstrap" --command-config "$admin" --alter \
    --entity-type users --entity-name "$p" \
    --add-config "SCRAM-SHA-512=[iterations=8192,password=$password]"
done

bash "$secrets/acls.sh"
echo "kafka-init: users, topics and ACLs in place"
