#!/usr/bin/env bash
# bench/currency.sh: what reading the reports in the corporate currency
# costs -- converted per group of the aggregates at read time against the
# same figures by a GROUP BY over the opportunities converting every deal --
# and how many groups the aggregates keep, side by side in one run.
#
#   bash bench/currency.sh
#       N=100000 ROUNDS=3 OWNERS=10 ACCOUNTS=1000 CAMPAIGNS=50 MONTHS=24
#
# Data (random, seeded): N opportunities in 3 currencies (USD, the
# corporate one, EUR and GBP), OWNERS owners, 7 stages, close dates over
# MONTHS months (and 1 in 50 without one), on ACCOUNTS accounts, half of
# them attributed to one of CAMPAIGNS campaigns; a rate per month for EUR and
# GBP.  Loaded with triggers off, the aggregates rebuilt, then analyzed.
# 1. Groups: the groups the pipeline and account aggregates keep, keyed by
#    (close month, currency), against the groups the same aggregates would
#    keep keyed by (close day, currency) -- what converting at read time
#    would cost if rates could change on any day.
# 2. Reads: in each of ROUNDS rounds, every report's converted totals read
#    from the report (crm.pipeline_by_stage, crm.account_rollup,
#    crm.campaign_performance: converted per group at read time) and by a
#    GROUP BY over the opportunities converting each deal at
#    crm.exchange_rate_on(currency, close_date), in alternating order, each
#    timed once in psql (the data was just vacuumed: its pages are cached); prints the median milliseconds, the median
#    of the per-round ratios (GROUP BY / report) and checks that both give
#    the same figures.  fsync is off: the numbers are CPU work, not disk.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

N=${N:-100000}
ROUNDS=${ROUNDS:-3}
OWNERS=${OWNERS:-10}
ACCOUNTS=${ACCOUNTS:-1000}
CAMPAIGNS=${CAMPAIGNS:-50}
MONTHS=${MONTHS:-24}

ensure_packages
build_and_install >&2
WORK=$(mktemp -d /tmp/crm-bench-currency.XXXXXX)
chmod 755 "$WORK"
trap 'stop_cluster "$WORK/cluster"; rm -rf "$WORK"' EXIT
start_cluster "$WORK/cluster" >&2
psql_q() { as_cluster_user psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres "$@"; }

psql_q -d postgres -c "CREATE DATABASE bench_currency"
psql_q -d bench_currency <<SQL
SET client_min_messages = warning;
CREATE EXTENSION crm CASCADE;
DO \$\$ BEGIN FOR i IN 1..$OWNERS LOOP EXECUTE format('CREATE ROLE bench_cur_rep%s', i); END LOOP;
      EXCEPTION WHEN duplicate_object THEN NULL; END \$\$;
INSERT INTO crm.exchange_rate (currency, valid_from, rate)
SELECT c.code, (date '2027-01-01' + make_interval(months => m))::date, c.base + m * 0.003
  FROM (VALUES ('EUR', 1.08), ('GBP', 1.27)) AS c (code, base), generate_series(0, $MONTHS - 1) AS m;
SET session_replication_role = replica;
INSERT INTO crm.account (name) SELECT 'Account ' || g FROM generate_series(1, $ACCOUNTS) g;
INSERT INTO crm.campaign (name, actual_cost) SELECT 'Campaign ' || g, 1000 * g FROM generate_series(1, $CAMPAIGNS) g;
SELECT setseed(0.42) \\gset
INSERT INTO crm.opportunity (name, account_id, campaign_id, amount, probability, close_date, owner, stage, currency)
SELECT 'Deal ' || g, 1 + (random() * ($ACCOUNTS - 1))::int, CASE WHEN random() < 0.5 THEN 1 + (random() * ($CAMPAIGNS - 1))::int END,
       round((random() * 5000)::numeric, 2), 10 * (random() * 9)::int,
       CASE WHEN random() >= 0.02 THEN date '2027-01-01' + (random() * ($MONTHS * 30 - 1))::int END,
       ('bench_cur_rep' || (1 + (random() * ($OWNERS - 1))::int))::regrole,
       (ARRAY['Qualification', 'Requirement', 'Proposal', 'Negotiation', 'Deal Closed', 'Successful', 'Failed'])[1 + (random() * 6)::int],
       (ARRAY['USD', 'EUR', 'GBP'])[1 + (random() * 2)::int]
  FROM generate_series(1, $N) g;
RESET session_replication_role;
SELECT crm.rebuild_aggregates() AS groups \\gset
VACUUM ANALYZE;
SQL

# 1. groups kept by (close month, currency) and by (close day, currency)
groups() {
    psql_q -d bench_currency -c "$1"
}
pm=$(groups "SELECT count(*) FROM crm.pipeline_totals")
pd=$(groups "SELECT count(*) FROM (SELECT DISTINCT stage, owner, close_date, currency FROM crm.opportunity) AS g")
am=$(groups "SELECT count(*) FROM (SELECT DISTINCT account_id, owner, stage, close_month, currency FROM crm_internal.account_aggregate) AS g")
ad=$(groups "SELECT count(*) FROM (SELECT DISTINCT account_id, owner, stage, close_date, currency FROM crm.opportunity) AS g")
p0=$(groups "SELECT count(*) FROM (SELECT DISTINCT stage, owner, date_trunc('month', close_date) FROM crm.opportunity) AS g")
echo "N=$N opportunities, 3 currencies, $OWNERS owners, $ACCOUNTS accounts, $CAMPAIGNS campaigns, $MONTHS months, $ROUNDS rounds"
echo
printf '%-10s %14s %22s %20s %8s\n' aggregate "no currency" "(close month, currency)" "(close day, currency)" "day/month"
printf '%-10s %14s %22s %20s %8s\n' pipeline "$p0" "$pm" "$pd" "$(awk -v a="$pd" -v b="$pm" 'BEGIN {printf "%.1f", a / b}')"
printf '%-10s %14s %22s %20s %8s\n' account "" "$am" "$ad" "$(awk -v a="$ad" -v b="$am" 'BEGIN {printf "%.1f", a / b}')"
echo

# 2. the same figures from the report and by a per-row GROUP BY
declare -A sql
sql[pipeline,report]="SELECT round(sum(amount), 2), round(sum(weighted_amount), 2) FROM crm.pipeline_by_stage"
sql[pipeline,group_by]="SELECT round(sum(a), 2), round(sum(w), 2) FROM (
    SELECT round(sum(o.amount * r.rate), 2) AS a,
           round(sum(round(o.amount * coalesce(o.probability, 0) / 100, 2) * r.rate), 2) AS w
      FROM crm.opportunity o CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(o.currency, o.close_date) AS rate) r
     GROUP BY o.stage, o.owner, o.currency) s"
sql[account,report]="SELECT sum(open_amount), sum(won_amount) FROM crm.account_rollup"
sql[account,group_by]="SELECT sum(coalesce(op, 0)), sum(coalesce(wo, 0)) FROM (
    SELECT round(sum(o.amount * crm.exchange_rate_on(o.currency, o.close_date)) FILTER (WHERE NOT s.is_closed), 2) AS op,
           round(sum(o.amount * crm.exchange_rate_on(o.currency, o.close_date)) FILTER (WHERE s.is_won), 2) AS wo
      FROM crm.opportunity o JOIN crm.opportunity_stage s ON s.name = o.stage
     WHERE o.account_id IS NOT NULL AND (s.is_won OR NOT s.is_closed)
     GROUP BY o.account_id) s"
sql[campaign,report]="SELECT sum(opportunity_amount), sum(won_amount) FROM crm.campaign_performance"
sql[campaign,group_by]="SELECT sum(coalesce(am, 0)), sum(coalesce(wo, 0)) FROM (
    SELECT round(sum(o.amount * r.rate), 2) AS am, round(sum(o.amount * r.rate) FILTER (WHERE s.is_won), 2) AS wo
      FROM crm.opportunity o JOIN crm.opportunity_stage s ON s.name = o.stage
     CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(o.currency, o.close_date) AS rate) r
     WHERE o.campaign_id IS NOT NULL
     GROUP BY o.campaign_id) s"

# run QUERY: "milliseconds figures" of one run
run() {
    psql_q -d bench_currency <<SQL | awk '/^Time:/ {t = $2} !/^Time:/ {f = $0} END {print t, f}'
\timing on
$1;
SQL
}
declare -A times figures
for r in $(seq 1 "$ROUNDS"); do
    for rep in pipeline account campaign; do
        if (( r % 2 )); then order="report group_by"; else order="group_by report"; fi
        for v in $order; do
            read -r ms fig < <(run "${sql[$rep,$v]}")
            times[$rep,$v,$r]=$ms
            figures[$rep,$v]=$fig
        done
    done
done
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
printf '%-10s %12s %14s %16s %12s   %s\n' report "report ms" "GROUP BY ms" "GROUP BY/report" "same figures" "rounds (report/GROUP BY ms)"
for rep in pipeline account campaign; do
    a=$(for r in $(seq 1 "$ROUNDS"); do echo "${times[$rep,report,$r]}"; done | median)
    b=$(for r in $(seq 1 "$ROUNDS"); do echo "${times[$rep,group_by,$r]}"; done | median)
    ratio=$(for r in $(seq 1 "$ROUNDS"); do echo "${times[$rep,group_by,$r]} ${times[$rep,report,$r]}" | awk '{printf "%.1f\n", $1 / $2}'; done | median)
    same=$([ "${figures[$rep,report]}" = "${figures[$rep,group_by]}" ] && echo yes || echo "NO (${figures[$rep,report]} / ${figures[$rep,group_by]})")
    rounds=$(for r in $(seq 1 "$ROUNDS"); do echo -n "${times[$rep,report,$r]}/${times[$rep,group_by,$r]} "; done)
    printf '%-10s %12.1f %14.1f %16s %12s   %s\n' "$rep" "$a" "$b" "$ratio" "$same" "$rounds"
done
