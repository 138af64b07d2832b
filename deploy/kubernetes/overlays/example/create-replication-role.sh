#!/bin/bash
# Run once by the postgres image's entrypoint when it creates the primary's cluster (/docker-entrypoint-initdb.d):
# the role the standbys stream as, its password from the Secret postgres-replication (never in this file).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -v password="$REPLICATION_PASSWORD" <<'SQL'
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'password';
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
