#!/usr/bin/env bash
# Creates Temporal's two PostgreSQL databases and their schemas with temporal-sql-tool (its
# schemas are built in: --schema-name). Re-running is safe: update-schema applies only the
# versions a database lacks, which is also how a Temporal upgrade migrates.
# Usage: setup-databases.sh   (environment: PGHOST PGPORT PGUSER PGPASSWORD, TOOLS=/opt/solstice/.tools/bin)
set -euo pipefail
sql="${TOOLS:-/opt/solstice/.tools/bin}/temporal-sql-tool"
common=(--ep "${PGHOST:-127.0.0.1}" -p "${PGPORT:-5432}" -u "${PGUSER:-temporal}" --pl postgres12)
export SQL_PASSWORD="${PGPASSWORD:-}"
for db in "${TEMPORAL_DB:-temporal}:temporal" "${TEMPORAL_VISIBILITY_DB:-temporal_visibility}:visibility"; do
  name="${db%%:*}" schema="${db##*:}"
  "$sql" "${common[@]}" --db "$name" create-database || true # exists already: fine
  # setup-schema -v 0.0 only creates the version table; it fails harmlessly when it exists.
  "$sql" "${common[@]}" --db "$name" setup-schema -v 0.0 || true
  "$sql" "${common[@]}" --db "$name" update-schema --schema-name "postgresql/v12/$schema"
done
