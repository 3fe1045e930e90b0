#!/usr/bin/env bash
# bench/account_rates.sh: one owner's account rollup, crm.top_accounts()
# for one owner, and a single exchange-rate edit, before and after session
# 35 (issue 22), side by side in one run, at two sizes.
#
#   bash bench/account_rates.sh
#       SIZES="10000 200000"   accounts per database (= opportunities, one
#                              per account; 2,000 leads): the first is the
#                              small size, the last the big one
#       RUNS=7                 timed runs per query (after one warm-up)
#       OWNERS=20
#       BEFORE=ded0cc3         the commit whose view and function are "before"
#
# Data: bench/reports_data.sql (20 owners bench_rep1.. each owning 1/20 of
# the accounts and deals; EUR and GBP with a rate per month 2024-2028; close
# dates over 24 months), crm.rebuild_aggregates() (every account settled),
# VACUUM ANALYZE.  "before" is the code at git commit BEFORE (default
# ded0cc3, main as session 35 found it), in the same database: schema
# bench_old, its crm.account_rollup and its crm.top_accounts() over it,
# taken from that commit's install scripts; for the rate edit, the
# old statement trigger that settles every account, put in place of the new
# ones inside the timed transaction; for an account update, the new
# trigger account_settle_owners disabled).  "after" is the installed
# extension.
#
# Timing: EXPLAIN (ANALYZE) "Execution Time" (AFTER triggers included), the
# median of RUNS runs after one warm-up, before and after interleaved run by
# run; a rate edit is rolled back after each run.  Read queries as the
# superuser (no row-level security) and as bench_rep1 (crm_sales: row-level
# security applies).  ratio = before / after; growth = big / small.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

SIZES=${SIZES:-"10000 200000"}
RUNS=${RUNS:-7}
OWNERS=${OWNERS:-20}
BEFORE=${BEFORE:-ded0cc3}
read -r -a SIZE_LIST <<<"$SIZES"

build_and_install >&2
WORK=$(mktemp -d /tmp/crm-bench-account-rates.XXXXXX)
chmod 755 "$WORK"
trap 'stop_cluster "$WORK/cluster"; rm -rf "$WORK"' EXIT
start_cluster "$WORK/cluster" >&2
cp "$REPO_ROOT/bench/reports_data.sql" "$WORK/"
# the "before" objects, from commit BEFORE, renamed into schema bench_old
{
    echo "CREATE SCHEMA bench_old; GRANT USAGE ON SCHEMA bench_old TO PUBLIC;"
    git -C "$REPO_ROOT" show "$BEFORE:sql/install/88_aggregates.sql" \
        | awk '/^CREATE VIEW crm.account_rollup /, /^ *ON r.account_id OPERATOR\(pg_catalog.=\) ac.id;$/' \
        | sed 's/^CREATE VIEW crm.account_rollup /CREATE VIEW bench_old.account_rollup /'
    echo "GRANT SELECT ON bench_old.account_rollup TO PUBLIC;"
    git -C "$REPO_ROOT" show "$BEFORE:sql/install/96_top_accounts.sql" \
        | awk '/^CREATE FUNCTION crm.top_accounts\(/, /^END;$/' \
        | sed 's/^CREATE FUNCTION crm.top_accounts(/CREATE FUNCTION bench_old.top_accounts(/; s/FROM crm.account_rollup AS v/FROM bench_old.account_rollup AS v/'
    echo "GRANT EXECUTE ON FUNCTION bench_old.top_accounts(text, integer, text) TO PUBLIC;"
} > "$WORK/before.sql"
grep -q 'CREATE VIEW bench_old.account_rollup' "$WORK/before.sql" && grep -q 'bench_old.account_rollup AS v' "$WORK/before.sql" \
    || { echo "could not take the before objects from $BEFORE" >&2; exit 1; }
chmod 644 "$WORK"/*.sql
psql_q() { as_cluster_user psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" "$@"; }

# the timer: median Execution Time of q (and of b, before) over runs,
# interleaved; DML runs in a subtransaction that is rolled back
TIMER=$(cat <<'SQL'
CREATE FUNCTION public.bench_ms(q text) RETURNS numeric LANGUAGE plpgsql AS $f$
DECLARE j json; ms numeric;
BEGIN
    BEGIN
        EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON) ' || q INTO j;
        ms := (j -> 0 ->> 'Execution Time')::numeric;
        RAISE EXCEPTION USING ERRCODE = 'P0099', MESSAGE = ms::text;
    EXCEPTION WHEN SQLSTATE 'P0099' THEN
        RETURN SQLERRM::numeric;
    END;
END $f$;
CREATE FUNCTION public.bench_pair(before text, after text, runs int, setup_before text DEFAULT NULL)
RETURNS TABLE (before_ms numeric, after_ms numeric) LANGUAGE plpgsql AS $f$
DECLARE b numeric[] := '{}'; a numeric[] := '{}'; i int;
BEGIN
    PERFORM public.bench_ms(after);
    FOR i IN 0 .. runs LOOP
        IF i > 0 THEN a := a || public.bench_ms(after); END IF;
        BEGIN
            IF setup_before IS NOT NULL THEN EXECUTE setup_before; END IF;
            IF i > 0 THEN b := b || public.bench_ms(before); ELSE PERFORM public.bench_ms(before); END IF;
            RAISE EXCEPTION USING ERRCODE = 'P0098';
        EXCEPTION WHEN SQLSTATE 'P0098' THEN NULL;
        END;
    END LOOP;
    RETURN QUERY SELECT (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(b) x),
                        (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(a) x);
END $f$;
GRANT EXECUTE ON FUNCTION public.bench_ms(text), public.bench_pair(text, text, int, text) TO PUBLIC;
SQL
)
# the old rate trigger in place of the new ones (inside the rolled-back run)
OLD_TRIGGER="ALTER TABLE crm.exchange_rate DISABLE TRIGGER account_settle_rates_update; CREATE TRIGGER bench_old_settle_all AFTER UPDATE ON crm.exchange_rate FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.account_settle_all()"

for n in "${SIZE_LIST[@]}"; do
    db=acc_$n
    t0=$(date +%s)
    psql_q -U postgres -d postgres -c "CREATE DATABASE $db"
    psql_q -U postgres -d "$db" -c "SET client_min_messages = warning" -c "CREATE EXTENSION crm CASCADE"
    psql_q -U postgres -d "$db" <<SQL
SELECT format('CREATE ROLE bench_rep%s LOGIN IN ROLE crm_sales', g)
  FROM generate_series(1, $OWNERS) g
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_rep' || g) \gexec
SQL
    psql_q -U postgres -d "$db" -v n_leads=2000 -v n_opps="$n" -v n_accounts=$((n / OWNERS * OWNERS)) \
        -v owners="$OWNERS" -v campaigns=10 -f "$WORK/reports_data.sql" >/dev/null
    psql_q -U postgres -d "$db" -c "SELECT crm.rebuild_aggregates()" >/dev/null
    psql_q -U postgres -d "$db" -f "$WORK/before.sql" >/dev/null
    psql_q -U postgres -d "$db" -c "$TIMER" >/dev/null
    psql_q -U postgres -d "$db" -c "VACUUM ANALYZE" >/dev/null
    log "$db: $n accounts and opportunities, loaded in $(( $(date +%s) - t0 )) s"
done

# label|role|before|after|setup of before
CASES=(
  "account_rollup one owner|postgres|SELECT * FROM bench_old.account_rollup WHERE owner = 'bench_rep1'|SELECT * FROM crm.account_rollup WHERE owner = 'bench_rep1'|"
  "account_rollup one owner|bench_rep1|SELECT * FROM bench_old.account_rollup WHERE owner = 'bench_rep1'|SELECT * FROM crm.account_rollup WHERE owner = 'bench_rep1'|"
  "account_rollup one account|postgres|SELECT * FROM bench_old.account_rollup WHERE account_id = 21|SELECT * FROM crm.account_rollup WHERE account_id = 21|"
  "account_rollup all (count)|postgres|SELECT count(open_amount) FROM bench_old.account_rollup|SELECT count(open_amount) FROM crm.account_rollup|"
  "account_rollup all (count)|bench_rep1|SELECT count(open_amount) FROM bench_old.account_rollup|SELECT count(open_amount) FROM crm.account_rollup|"
  "top_accounts 20 one owner|postgres|SELECT * FROM bench_old.top_accounts('open_amount', 20, 'bench_rep1')|SELECT * FROM crm.top_accounts('open_amount', 20, 'bench_rep1')|"
  "top_accounts 20 one owner|bench_rep1|SELECT * FROM bench_old.top_accounts('open_amount', 20, 'bench_rep1')|SELECT * FROM crm.top_accounts('open_amount', 20, 'bench_rep1')|"
  "top_accounts 20|postgres|SELECT * FROM bench_old.top_accounts('open_amount', 20)|SELECT * FROM crm.top_accounts('open_amount', 20)|"
  "rate edit: one month of EUR|postgres|UPDATE crm.exchange_rate SET rate = rate * 1.01 WHERE currency = 'EUR' AND valid_from = '2025-06-01'|UPDATE crm.exchange_rate SET rate = rate * 1.01 WHERE currency = 'EUR' AND valid_from = '2025-06-01'|$OLD_TRIGGER"
  "rate edit: latest GBP rate|postgres|UPDATE crm.exchange_rate SET rate = rate * 1.01 WHERE currency = 'GBP' AND valid_from = '2028-12-01'|UPDATE crm.exchange_rate SET rate = rate * 1.01 WHERE currency = 'GBP' AND valid_from = '2028-12-01'|$OLD_TRIGGER"
  "account owner change (one account)|postgres|UPDATE crm.account SET owner = 'bench_rep2' WHERE id = 21|UPDATE crm.account SET owner = 'bench_rep2' WHERE id = 21|ALTER TABLE crm.account DISABLE TRIGGER account_settle_owners"
  "account name change (one account)|postgres|UPDATE crm.account SET name = upper(name) WHERE id = 21|UPDATE crm.account SET name = upper(name) WHERE id = 21|ALTER TABLE crm.account DISABLE TRIGGER account_settle_owners"
)

printf '%-30s %-10s' "query" "role"
for n in "${SIZE_LIST[@]}"; do printf ' %12s %12s %7s' "before@$n" "after@$n" "ratio"; done
printf ' %9s %9s\n' "growth-b" "growth-a"
for c in "${CASES[@]}"; do
    IFS='|' read -r label role before after setup <<<"$c"
    printf '%-30s %-10s' "$label" "$role"
    first_b="" first_a="" last_b="" last_a=""
    for n in "${SIZE_LIST[@]}"; do
        res=$(psql_q -U "$role" -d "acc_$n" -F ' ' -v b="$before" -v a="$after" -v s="$setup" -v r="$RUNS" \
              <<<"SELECT * FROM public.bench_pair(:'b', :'a', :r, NULLIF(:'s', ''))")
        read -r bms ams <<<"$res"
        printf ' %12s %12s %7s' "$bms" "$ams" "$(awk -v b="$bms" -v a="$ams" 'BEGIN { printf "%.2f", b / a }')"
        [ -n "$first_b" ] || { first_b=$bms; first_a=$ams; }
        last_b=$bms last_a=$ams
    done
    awk -v fb="$first_b" -v fa="$first_a" -v lb="$last_b" -v la="$last_a" 'BEGIN { printf " %9.1f %9.1f\n", lb / fb, la / fa }'
done
# the plans of one owner's rollup after, as the superuser and as bench_rep1
for role in postgres bench_rep1; do
    log "plan of crm.account_rollup WHERE owner = 'bench_rep1' as $role at ${SIZE_LIST[-1]}"
    psql_q -U "$role" -d "acc_${SIZE_LIST[-1]}" -c "EXPLAIN (COSTS OFF) SELECT * FROM crm.account_rollup WHERE owner = 'bench_rep1'" | head -30 >&2
done
