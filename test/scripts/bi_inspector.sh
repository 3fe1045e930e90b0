#!/usr/bin/env bash
# test/scripts/bi_inspector.sh: a BI tool's view of crm -- SQLAlchemy's
# inspector (Debian's python3-sqlalchemy, with psycopg2) as an analyst login
# over the demo data set: every column of every view the analyst may read
# is typed as it comes (owners are role names, text), every column of every
# table once regrole (the tables' owners) is mapped to String, and
# every view the analyst may read is readable whole, and every other view
# of crm is refused whole (42501), for the reason the client names
# (test/client/bi_inspector.py).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/common.sh

install_missing python3-sqlalchemy python3-psycopg2
test_cluster crm-bi
db=crm_bi
psql_as postgres postgres -c "CREATE DATABASE $db"
psql_as postgres "$db" -c "CREATE EXTENSION crm CASCADE"
psql_as postgres "$db" -f - <demo/sample_data.sql >/dev/null
psql_as postgres "$db" -f - <demo/convert_ready_leads.sql >/dev/null 2>&1 || fail "the demo conversions failed"
psql_as postgres "$db" -c "CREATE ROLE bi_analyst LOGIN IN ROLE crm_analyst"

client=$REPO_ROOT/test/client/bi_inspector.py
as_cluster_user test -r "$client" || { cp "$client" "$WORK/bi_inspector.py"; client=$WORK/bi_inspector.py; }
as_cluster_user /usr/bin/python3 "$client" "postgresql+psycopg2://bi_analyst@/$db?host=$PGHOST&port=$PGPORT" \
    || fail "the BI inspector checks failed (see above)"
echo "bi inspector: ok"
