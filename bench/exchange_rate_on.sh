#!/usr/bin/env bash
# bench/exchange_rate_on.sh: what one call of crm.exchange_rate_on() costs,
# the C function (src/currencies.c) against the PL/pgSQL one it replaced
# (its body kept below as bench_plpgsql.exchange_rate_on), side by side.
#
#   bash bench/exchange_rate_on.sh      COUNT=20000 ROUNDS=5
#
# One database: rates for EUR and GBP on the first of every month of 2025
# to 2029.  A call per row over COUNT rows, as a report calls it once per
# group: currencies EUR, GBP and USD (the corporate one, 1 without a
# lookup) in turn, days spread over five years, every tenth one NULL.
#  1. instructions (callgrind): COUNT and 2 x COUNT calls in new
#     single-user backends, (long - short) / COUNT per call, each variant;
#     and, for a call that finds nothing kept (a new statement each time),
#     STMTS and 2 x STMTS statements of one call each (per statement: the
#     statement's own cost included);
#  2. time: the same statement with 10 x COUNT calls through psql, the
#     variants in interleaved rounds (C first in odd rounds), the median
#     of the per-round ratios.
# About 2 minutes.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
COUNT=${COUNT:-20000}; ROUNDS=${ROUNDS:-5}; STMTS=${STMTS:-2000}
ensure_packages
install_missing valgrind
build_and_install >&2
WORK=$(mktemp -d /tmp/crm-bench-rate.XXXXXX); chmod 755 "$WORK"
[ "$(id -u)" -ne 0 ] || chown "$(cluster_user)": "$WORK"
trap 'stop_cluster "$WORK/cluster"; rm -rf "$WORK"' EXIT
start_cluster "$WORK/cluster" >&2
psql_q -d postgres -c "CREATE DATABASE rates"
psql_q -d rates >/dev/null <<'SQL'
CREATE EXTENSION crm CASCADE;
INSERT INTO crm.exchange_rate (currency, valid_from, rate)
SELECT c, m::date, 1 + (extract(month FROM m) + extract(year FROM m) % 7) / 100
  FROM unnest(ARRAY['EUR', 'GBP']) AS c, generate_series('2025-01-01'::date, '2029-12-01', '1 month') AS m;
CREATE SCHEMA bench_plpgsql;
-- the PL/pgSQL function of 0.7 before the port, unchanged
CREATE FUNCTION bench_plpgsql.exchange_rate_on(currency text, day date) RETURNS numeric
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    found numeric;
BEGIN
    IF currency IS NULL THEN
        RAISE EXCEPTION 'currency must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF currency OPERATOR(pg_catalog.=) (SELECT s.corporate_currency FROM crm.settings AS s) THEN
        RETURN 1;
    END IF;
    SELECT r.rate INTO found FROM crm.exchange_rate AS r
     WHERE r.currency OPERATOR(pg_catalog.=) exchange_rate_on.currency
       AND r.valid_from OPERATOR(pg_catalog.<=) COALESCE(day, 'infinity'::date)
     ORDER BY r.valid_from DESC LIMIT 1;
    IF found IS NULL THEN
        RAISE EXCEPTION 'no exchange rate for % on %', currency, COALESCE(day::text, 'any day')
            USING ERRCODE = 'ZC120',
                  HINT = pg_catalog.format('Add a row to crm.exchange_rate for %s valid from the first of that month or earlier.', currency);
    END IF;
    RETURN found;
END
$$;
VACUUM ANALYZE;
SQL
# calls SCHEMA N: one statement calling SCHEMA.exchange_rate_on N times
calls() {
    echo "SELECT sum($1.exchange_rate_on((ARRAY['EUR', 'GBP', 'USD'])[1 + g % 3], CASE WHEN g % 10 <> 0 THEN date '2025-01-01' + g % 1800 END)) FROM generate_series(1, $2) AS g;"
}
log "the two agree:"
psql_q -d rates -At -c "SELECT count(*) FILTER (WHERE crm.exchange_rate_on(c, d) IS DISTINCT FROM bench_plpgsql.exchange_rate_on(c, d)) AS differences, count(*) AS calls
  FROM (SELECT (ARRAY['EUR', 'GBP', 'USD'])[1 + g % 3] AS c, CASE WHEN g % 10 <> 0 THEN date '2025-01-01' + g % 1800 END AS d FROM generate_series(1, 3000) AS g) AS x" >&2
for s in crm bench_plpgsql; do
    { calls $s 100; calls $s "$COUNT"; } >"$WORK/${s}_short.sql"
    { calls $s 100; calls $s $((2 * COUNT)); } >"$WORK/${s}_long.sql"
    calls $s $((10 * COUNT)) >"$WORK/${s}_timed.sql"
    for n in "$STMTS" $((2 * STMTS)); do
        awk -v s="$s" -v n="$n" 'BEGIN { for (i = 0; i < n; i++) printf "SELECT %s.exchange_rate_on(%cEUR%c, date %c2025-01-01%c + %d);\n", s, 39, 39, 39, 39, i % 1800 }' >"$WORK/${s}_stmts_$n.sql"
    done
done
chmod a+r "$WORK"/*.sql

# 2. time, interleaved rounds
ms() { # file: the statement's time in ms
    psql_q -d rates -At -f - <<EOF | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1
\timing on
\o /dev/null
\i $1
EOF
}
ratios=()
printf '\n%-8s %12s %16s %8s\n' "round" "C ms" "PL/pgSQL ms" "ratio" >&2
for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then c=$(ms "$WORK/crm_timed.sql"); p=$(ms "$WORK/bench_plpgsql_timed.sql")
    else p=$(ms "$WORK/bench_plpgsql_timed.sql"); c=$(ms "$WORK/crm_timed.sql"); fi
    ratio=$(awk -v p="$p" -v c="$c" 'BEGIN { printf "%.2f", p / c }')
    ratios+=("$ratio")
    printf '%-8s %12s %16s %8s\n' "$r" "$c" "$p" "$ratio" >&2
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
stop_cluster "$WORK/cluster"

# 1. instructions
declare -A per stmt
for s in crm bench_plpgsql; do
    log "callgrind: $s, $COUNT and $((2 * COUNT)) calls"
    short=$(instructions rates "$WORK/${s}_short.sql")
    long=$(instructions rates "$WORK/${s}_long.sql")
    [ -n "$short" ] && [ -n "$long" ] || { echo "the measured runs of $s did not run" >&2; exit 1; }
    per[$s]=$(( (long - short) / COUNT ))
    log "callgrind: $s, $STMTS and $((2 * STMTS)) statements of one call"
    short=$(instructions rates "$WORK/${s}_stmts_$STMTS.sql")
    long=$(instructions rates "$WORK/${s}_stmts_$((2 * STMTS)).sql")
    [ -n "$short" ] && [ -n "$long" ] || { echo "the statements of $s did not run" >&2; exit 1; }
    stmt[$s]=$(( (long - short) / STMTS ))
done
printf '\n%-40s %14s\n' "crm.exchange_rate_on(), per call" "instructions"
printf '%-40s %14d\n' "C (kept generic plan)" "${per[crm]}"
printf '%-40s %14d\n' "PL/pgSQL (0.7 before the port)" "${per[bench_plpgsql]}"
printf '%-40s %14s\n' "PL/pgSQL / C, instructions" "$(awk -v p="${per[bench_plpgsql]}" -v c="${per[crm]}" 'BEGIN { printf "%.2f", p / c }')"
printf '%-40s %14s\n' "PL/pgSQL / C, time (median of $ROUNDS)" "$median"
printf '\n%-40s %14s\n' "one call per statement, per statement" "instructions"
printf '%-40s %14d\n' "C" "${stmt[crm]}"
printf '%-40s %14d\n' "PL/pgSQL" "${stmt[bench_plpgsql]}"
printf '%-40s %14s\n' "PL/pgSQL / C, instructions" "$(awk -v p="${stmt[bench_plpgsql]}" -v c="${stmt[crm]}" 'BEGIN { printf "%.2f", p / c }')"
