#!/usr/bin/env bash
# scripts/demo.sh: set everything up and run the main job on sample data.
#
#   bash scripts/demo.sh         install dependencies, build, install, start a
#                                throwaway cluster, load demo/sample_data.sql,
#                                convert the ready leads and print what happened
#   bash scripts/demo.sh stop    stop the demo cluster and delete it
#
# The cluster lives in $CRM_DEMO_DIR (default /tmp/crm-demo) and listens only
# on a Unix socket there; it keeps running after the demo so you can connect.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DEMO_DIR=${CRM_DEMO_DIR:-/tmp/crm-demo}
DB=crm_demo

if [ "${1:-}" = "stop" ]; then
    stop_cluster "$DEMO_DIR"
    rm -rf "$DEMO_DIR"
    log "demo cluster in $DEMO_DIR stopped and removed"
    exit 0
fi

ensure_packages
build_and_install

# A fresh cluster every time.
stop_cluster "$DEMO_DIR"
rm -rf "$DEMO_DIR"
log "starting a throwaway PostgreSQL $PG_MAJOR cluster in $DEMO_DIR"
start_cluster "$DEMO_DIR"

psql_demo() { as_cluster_user psql -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres "$@"; }

psql_demo -d postgres -c "CREATE DATABASE $DB"
psql_demo -d "$DB" -c "CREATE EXTENSION crm CASCADE"
log "loading the sample data set"
psql_demo -d "$DB" <"$REPO_ROOT/demo/sample_data.sql"
log "converting the leads that are ready"
psql_demo -d "$DB" <"$REPO_ROOT/demo/convert_ready_leads.sql"
log "duplicates and search"
psql_demo -d "$DB" <"$REPO_ROOT/demo/duplicates_and_search.sql"
log "lead intake: captures, scoring, round-robin assignment"
psql_demo -d "$DB" <"$REPO_ROOT/demo/lead_intake.sql"

cat <<MSG

The demo cluster keeps running.  Connect with
    psql -h $DEMO_DIR -p $PGPORT -U postgres $DB
or as a sales rep (row owner of half the data):
    psql -h $DEMO_DIR -p $PGPORT -U alice $DB
Stop and remove it with
    bash scripts/demo.sh stop
MSG
