#!/bin/bash
# kafka-init: once the cluster answers, create the SCRAM users, the topics and the ACLs, then
# exit 0 (the nodes start after it: depends_on ... service_completed_successfully).
#   - one SCRAM-SHA-512 user per principal (nbx-<CC>, nbx-anchor), its password from
#     /etc/kafka/nbx-secrets/scram/<principal>.password (setup.sh)
#   - each bureau's topics with deploy/kafka/topics.sh (replication 3, the retention the nodes'
#     [shredding] topic_retention_days names)
#   - the ACLs: the script `nbx deploy acls --format kafka-acls` generated from the signed
#     directory (setup.sh wrote it to /etc/kafka/nbx-secrets/acls.sh)
set -euo pipefail
export PATH="/opt/kafka/bin:$PATH"
bootstrap="kafka-1:9095,kafka-2:9095,kafka-3:9095"
admin=/etc/kafka/nbx/admin.properties
secrets=/etc/kafka/nbx-secrets
bureaus=(FR DE)
principals=(nbx-FR nbx-DE nbx-anchor)
replication=3
retention_days=7

# wait for the cluster (a condition, with a deadline): every broker registered
for attempt in $(seq 1 90); do
  if kafka-topics.sh --bootstrap-server "$bootstrap" --command-config "$admin" --list >/dev/null 2>&1; then
    break
  fi
  [[ $attempt -lt 90 ]] || { echo "kafka-init: the cluster did not answer within 180 s" >&2; exit 1; }
  sleep 2
done

for p in "${principals[@]}"; do
  password=$(cat "$secrets/scram/$p.password")
  kafka-configs.sh --bootstrap-server "$bootstrap" --command-config "$admin" --alter \
    --entity-type users --entity-name "$p" \
    --add-config "SCRAM-SHA-512=[iterations=8192,password=$password]"
done

for cc in "${bureaus[@]}"; do
  bash /opt/nbx-deploy/kafka/topics.sh "$cc" --bootstrap "$bootstrap" --command-config "$admin" \
    --replication "$replication" --retention-days "$retention_days"
done

bash "$secrets/acls.sh"
echo "kafka-init: users, topics and ACLs in place"
