# bench/lib.sh: the data the aggregate benchmarks share (sourced by
# bench/aggregates.sh and bench/instructions.sh, after scripts/common.sh and
# with a running cluster).

psql_q() { as_cluster_user psql -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres "$@"; }

# make_db NAME SIZE: a database with SIZE opportunities over 1,000 accounts,
# 8 owners and a year of close dates, aggregates rebuilt.
make_db() {
    local db=$1 size=$2
    psql_q -d postgres -c "CREATE DATABASE $db"
    psql_q -d "$db" -c "CREATE EXTENSION crm CASCADE" \
        -c "DO \$\$ BEGIN FOR i IN 1..8 LOOP EXECUTE format('CREATE ROLE bench_rep%s', i); END LOOP; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$" \
        -c "SET session_replication_role = replica;
            INSERT INTO crm.account (name) SELECT 'Account ' || g FROM generate_series(1, 1000) g;
            -- in the first open stage, which is then each deal's furthest
            INSERT INTO crm.opportunity (name, account_id, amount, probability, close_date, owner, stage_changed_at, stage, furthest_stage)
            SELECT 'Deal ' || g, 1 + g % 1000, g % 5000, 10, date '2027-01-01' + g % 365, ('bench_rep' || (1 + g % 8))::regrole, now(),
                   f.name, f.name
              FROM generate_series(1, $size) g,
                   (SELECT s.name FROM crm.opportunity_stage AS s WHERE NOT s.is_closed ORDER BY s.sort_order LIMIT 1) AS f;
            -- as the triggers would: each deal's creation entry
            INSERT INTO crm.opportunity_history (opportunity_id, new_stage, new_amount, new_probability, new_close_date,
                                                 changed_at, changed_by, new_owner, currency)
            SELECT id, stage, amount, probability, close_date, created_at, owner, owner, currency FROM crm.opportunity" \
        -c "SELECT crm.rebuild_aggregates()" >/dev/null
    psql_q -d "$db" -c "VACUUM ANALYZE"
}

# make_on_off TEMPLATE: databases agg_on (every aggregates_ trigger) and
# agg_off (exactly those disabled), cloned from TEMPLATE; logs how many
# triggers were disabled.
make_on_off() {
    local tpl=$1 disable
    psql_q -d postgres -c "CREATE DATABASE agg_on TEMPLATE $tpl" -c "CREATE DATABASE agg_off TEMPLATE $tpl"
    disable=$(psql_q -d agg_off -At -c "SELECT format('ALTER TABLE %s DISABLE TRIGGER %I;', tgrelid::regclass, tgname)
                                          FROM pg_trigger WHERE tgname LIKE 'aggregates\_%' AND NOT tgisinternal")
    psql_q -d agg_off -c "$disable"
    log "disabled in agg_off: $(echo "$disable" | grep -c .) aggregates_ triggers"
}

# instructions DB FILE: the instructions callgrind counts for FILE in a
# single-user backend on a copy of the cluster in $WORK/cluster (stopped)
instructions() {
    local db=$1 file=$2 dir
    dir=$(mktemp -d "$WORK/cg.XXXXXX")
    chmod 755 "$dir"
    [ "$(id -u)" -ne 0 ] || chown "$(cluster_user)": "$dir"
    as_cluster_user cp -a "$WORK/cluster/data" "$dir/data"
    as_cluster_user valgrind --tool=callgrind --callgrind-out-file="$dir/out" \
        "$PG_BIN/postgres" --single -D "$dir/data" "$db" <"$file" >/dev/null 2>&1
    sed -n 's/^summary: \([0-9]*\)$/\1/p' "$dir/out"
    rm -rf "$dir"
}
