#!/bin/sh
# Entrypoint of the NBX node image: read secrets given as files (Docker or compose secrets,
# Kubernetes secret volumes) into the environment variables NBX reads, then run the command.
#
#   NBX_SASL_PASSWORD_FILE=/run/secrets/scram   ->  NBX_SASL_PASSWORD (kafka.sasl_password_env)
#   NBX_KEY_PASSPHRASE_FILE=...                 ->  NBX_KEY_PASSPHRASE (keys.passphrase_env)
#   NBX_SCREENING_SECRET_FILE=...               ->  NBX_SCREENING_SECRET (screening.secret_env)
#
# The names are NodeConfig's defaults; a node.toml that names other variables sets those
# directly. A *_FILE that cannot be read stops the container with one line and exit 1.
set -eu
for var in NBX_SASL_PASSWORD NBX_KEY_PASSPHRASE NBX_SCREENING_SECRET; do
  eval "file=\${${var}_FILE:-}"
  if [ -n "$file" ]; then
    if [ ! -r "$file" ]; then
      echo "nbx-entrypoint: ${var}_FILE: cannot read $file" >&2
      exit 1
    fi
    value=$(cat "$file")
    export "$var=$value"
    unset "${var}_FILE"
  fi
done
exec "$@"
