#!/bin/bash
# Start one KRaft node (command of the kafka-N services): fill server.properties with this node's
# id and host name, format its storage on the first start, then run Kafka in the foreground.
set -euo pipefail
: "${NODE_ID:?NODE_ID is not set}" "${NODE_HOST:?NODE_HOST is not set}"
: "${KAFKA_CLUSTER_ID:?KAFKA_CLUSTER_ID is not set (setup.sh writes it to .env)}"
umask 077
props=/tmp/server.properties
sed -e "s/@NODE_ID@/${NODE_ID}/g" -e "s/@NODE_HOST@/${NODE_HOST}/g" \
  /etc/kafka/nbx/server.properties > "$props"
printf 'ssl.key.password=%s\n' "$(cat /etc/kafka/nbx-secrets/key.password)" >> "$props"
/opt/kafka/bin/kafka-storage.sh format --config "$props" --cluster-id "$KAFKA_CLUSTER_ID" \
  --ignore-formatted
exec /opt/kafka/bin/kafka-server-start.sh "$props"
