#!/usr/bin/env bash
# test/scripts/stress_assignment.sh: pgbench stress test of lead capture,
# assignment by queue and conversion together (README "Lead capture", "Lead
# assignment", "Lead conversion").
#
# Uses the installed extension (scripts/test.sh builds and installs it) in a
# throwaway cluster.  One queue "web" of four members: stress_q1..q3
# without a cap, stress_q4 with max_open_leads = CAP (20); one rule routes
# every website lead to it; a scoring rule scores Software leads (so the
# score trigger runs before the routing).  Then, for STRESS_SECONDS
# (default 10) with STRESS_CLIENTS (default 8) clients -- a quarter of them
# as sales reps (stress_arep1, ...) inserting website leads without an
# owner, which are routed and handed over; the rest as the web form login
# stress_form (crm_intake) calling crm.capture_lead() with e-mails drawn
# from a small pool (so captures of one person race and merge), and as the
# superuser inserting leads owned by crm_intake three at a time -- pgbench
# runs a weighted mix of: single captures, three-lead transactions,
# captures in REPEATABLE READ (serialization failures are retried by
# pgbench --max-tries), and captures rolled back; one more client converts
# routed leads (crm.convert_lead), which frees queue capacity while the
# captures run.  Any other error aborts a client and fails the test.
#
# Afterwards: every website lead was routed (none left with crm_intake or
# with the inserting rep) and logged exactly once in crm.lead_assignment;
# stress_q4 holds at most CAP open leads; the assignments of stress_q1..q3
# differ by at most one; no two open leads share an e-mail; every capture
# is logged with its lead; test/invariants.sql returns no rows (queue
# capacity, distinct positions, round-robin span, the aggregates,
# complete conversions).  Prints "FAIL: ..." and exits non-zero on any
# violation.
#
#   STRESS_SECONDS=10 STRESS_CLIENTS=8 bash test/scripts/stress_assignment.sh
#   STRESS_MAX_TRIES (50): pgbench --max-tries; STRESS_SEED: pgbench --random-seed
#   STRESS_KEEP_DIR=1 keeps the cluster directory (logs, pgbench scripts)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/common.sh

SECS=${STRESS_SECONDS:-10}
CLIENTS=${STRESS_CLIENTS:-8}
MAX_TRIES=${STRESS_MAX_TRIES:-50}
CAP=20
REP_CLIENTS=$((CLIENTS / 4))
[ "$REP_CLIENTS" -gt 0 ] || [ "$CLIENTS" -lt 2 ] || REP_CLIENTS=1
ADMIN_CLIENTS=$((CLIENTS - REP_CLIENTS))
[ "$ADMIN_CLIENTS" -ge 1 ] || { echo "STRESS_CLIENTS must be at least 1" >&2; exit 2; }

ensure_packages
WORK=$(mktemp -d /tmp/crm-stress-assign.XXXXXX)
chmod 755 "$WORK"
cleanup() {
    stop_cluster "$WORK/cluster"
    if [ -n "${STRESS_KEEP_DIR:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
started=$(date +%s)

start_cluster "$WORK/cluster"
psql_q() { as_cluster_user psql -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres -d stress "$@"; }
as_cluster_user psql -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres -d postgres \
    -c "CREATE DATABASE stress" \
    -c "ALTER DATABASE stress SET deadlock_timeout = '50ms'" \
    -c "ALTER DATABASE stress SET statement_timeout = '30s'"

log "setting up: a queue of four members (one capped at $CAP), a rule, a scoring rule"
psql_q -v cap="$CAP" >"$WORK/setup.log" <<'SQL'
CREATE EXTENSION crm CASCADE;
CREATE ROLE stress_q1 IN ROLE crm_sales;
CREATE ROLE stress_q2 IN ROLE crm_sales;
CREATE ROLE stress_q3 IN ROLE crm_sales;
CREATE ROLE stress_q4 IN ROLE crm_sales;
CREATE ROLE stress_arep1 LOGIN IN ROLE crm_sales;
CREATE ROLE stress_arep2 LOGIN IN ROLE crm_sales;
CREATE ROLE stress_arep3 LOGIN IN ROLE crm_sales;
CREATE ROLE stress_arep4 LOGIN IN ROLE crm_sales;
CREATE ROLE stress_form LOGIN IN ROLE crm_intake;
UPDATE crm.settings SET duplicate_policy_lead = 'allow', duplicate_policy_account = 'allow', duplicate_policy_contact = 'allow';
INSERT INTO crm.assignment_queue_member (queue, member, max_open_leads) VALUES
    ('web', 'stress_q1', NULL), ('web', 'stress_q2', NULL), ('web', 'stress_q3', NULL), ('web', 'stress_q4', :cap);
INSERT INTO crm.assignment_rule (priority, source, queue) VALUES (1, 'website', 'web');
INSERT INTO crm.scoring_rule (name, column_name, operator, value, points) VALUES ('Software', 'industry', '=', 'Software', 10);
SQL

S=$WORK/scripts
mkdir -p "$S"
cat >"$S/capture.sql" <<'SQL'
\set p random(1, 400)
SELECT crm.capture_lead('Person ' || :p, NULL, 'person' || :p || '@stress.example', NULL, 'website', NULL, '{"industry": "Software"}');
SQL
cat >"$S/capture3.sql" <<'SQL'
BEGIN;
INSERT INTO crm.lead (name, source, owner) VALUES ('Batch ' || :client_id, 'website', 'crm_intake');
INSERT INTO crm.lead (name, source, owner) VALUES ('Batch ' || :client_id, 'website', 'crm_intake'), ('Batch ' || :client_id, 'website', 'crm_intake');
COMMIT;
SQL
cat >"$S/capture_rr.sql" <<'SQL'
\set p random(1, 400)
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT crm.capture_lead('Person ' || :p, NULL, 'person' || :p || '@stress.example', NULL, 'website');
COMMIT;
SQL
cat >"$S/capture_rollback.sql" <<'SQL'
\set p random(1, 400)
BEGIN;
SELECT crm.capture_lead('Person ' || :p, NULL, 'person' || :p || '@stress.example', NULL, 'website');
ROLLBACK;
SQL
cat >"$S/convert.sql" <<'SQL'
SELECT count(crm.convert_lead(l.id)) FROM (SELECT id FROM crm.lead
  WHERE source = 'website' AND status <> 'Converted' AND owner <> 'crm_intake'::regrole
  ORDER BY random() LIMIT 1) AS l;
SQL
cat >"$S/rep_insert.sql" <<'SQL'
INSERT INTO crm.lead (name, source) VALUES ('Rep lead', 'website');
SQL
chmod -R a+rX "$WORK"

log "pgbench: $SECS s, $CLIENTS clients ($REP_CLIENTS as reps), max tries $MAX_TRIES"
run_pgbench() {
    local user=$1 clients=$2 out=$3; shift 3
    as_cluster_user timeout $((SECS + 90)) pgbench -n -M prepared -c "$clients" -j "$clients" -T "$SECS" \
        --max-tries="$MAX_TRIES" --failures-detailed ${STRESS_SEED:+--random-seed="$STRESS_SEED"} \
        -h "$PGHOST" -p "$PGPORT" -U "$user" "$@" stress >"$out" 2>&1
}
pids=()
FORM_CLIENTS=$(( ADMIN_CLIENTS > 1 ? ADMIN_CLIENTS - 1 : 1 ))
run_pgbench stress_form "$FORM_CLIENTS" "$WORK/pgbench_form.out" \
    -f "$S/capture.sql@10" -f "$S/capture_rr.sql@4" -f "$S/capture_rollback.sql@1" &
pids+=($!)
run_pgbench postgres 1 "$WORK/pgbench_admin.out" -f "$S/capture3.sql@4" -f "$S/convert.sql@3" &
pids+=($!)
for i in $(seq 1 "$REP_CLIENTS"); do
    run_pgbench "stress_arep$(( (i - 1) % 4 + 1 ))" 1 "$WORK/pgbench_rep$i.out" -f "$S/rep_insert.sql" &
    pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=$?; done

problems=()
for out in "$WORK"/pgbench_*.out; do
    echo "$(basename "$out" .out):"
    grep -E '^(number of transactions actually processed|number of (failed transactions|serialization failures|deadlock failures)|total number of retries|tps =)' "$out" | sed 's/^/  /' || true
    if grep -qE 'aborted|error:' "$out"; then
        grep -E 'aborted|error|ERROR|DETAIL|CONTEXT' "$out" | head -20
        problems+=("a pgbench client aborted in $(basename "$out")")
    fi
done
[ "$status" -eq 0 ] || problems+=("pgbench exited with $status")

psql_q -At -c "SELECT format('after the load: %s website leads; per member: %s', count(*),
    (SELECT string_agg(m.member::text || ' ' || (SELECT count(*) FROM crm.lead l WHERE l.owner = m.member), ', ' ORDER BY m.member::text)
       FROM crm.assignment_queue_member m)) FROM crm.lead WHERE source = 'website'"
checks=$(psql_q -At -F '|' -v cap="$CAP" <<'SQL'
WITH n AS (SELECT m.member::text AS member, m.max_open_leads,
                  (SELECT count(*) FROM crm.lead l WHERE l.owner = m.member
                      AND l.status NOT IN ('Converted', 'Not Qualified')) AS open_leads,
                  (SELECT count(*) FROM crm.lead_assignment a WHERE a.owner = m.member AND a.queue = 'web') AS leads
             FROM crm.assignment_queue_member m)
SELECT 'lead not routed', count(*)::text FROM crm.lead
 WHERE source = 'website' AND owner::text NOT IN (SELECT member FROM n)
HAVING count(*) > 0
UNION ALL
SELECT 'lead logged other than once', l.id::text FROM crm.lead l
 WHERE l.source = 'website' AND (SELECT count(*) FROM crm.lead_assignment a WHERE a.lead_id = l.id AND a.queue = 'web') <> 1
UNION ALL
SELECT 'capped member above its capacity', member || ' ' || open_leads FROM n WHERE open_leads > :cap AND max_open_leads IS NOT NULL
UNION ALL
SELECT 'capped member never filled up', member || ' ' || leads FROM n
 WHERE max_open_leads IS NOT NULL AND leads < :cap AND (SELECT count(*) FROM crm.lead) >= 4 * :cap
UNION ALL
SELECT 'two open leads with one e-mail', lower(email) FROM crm.lead
 WHERE status <> 'Converted' AND email IS NOT NULL GROUP BY lower(email) HAVING count(*) > 1
UNION ALL
SELECT 'capture without its lead', c.id::text FROM crm.lead_capture c
 WHERE c.outcome <> 'refused' AND NOT EXISTS (SELECT 1 FROM crm.lead l WHERE l.id = c.lead_id)
UNION ALL
SELECT 'captured lead created other than once', c.lead_id::text FROM crm.lead_capture c
 WHERE c.outcome = 'created' GROUP BY c.lead_id HAVING count(*) > 1
UNION ALL
SELECT 'refused captures', count(*)::text FROM crm.lead_capture WHERE outcome = 'refused' HAVING count(*) > 0
UNION ALL
SELECT 'no conversion ran', '' WHERE NOT EXISTS (SELECT 1 FROM crm.lead WHERE status = 'Converted')
UNION ALL
SELECT 'uncapped members differ by more than one', string_agg(member || ' ' || leads, ', ') FROM n
 WHERE max_open_leads IS NULL HAVING max(leads) - min(leads) > 1;
SQL
)
[ -z "$checks" ] || { printf '%s\n' "$checks" | head -20; problems+=("assignment checks: $(printf '%s\n' "$checks" | cut -d'|' -f1 | sort -u | paste -sd ';' -)"); }
leads=$(psql_q -At -c "SELECT count(*) FROM crm.lead")
[ "$leads" -ge 40 ] || problems+=("only $leads leads were inserted: too little load to mean anything")
violations=$(psql_q -At -F '|' <test/invariants.sql)
if [ -n "$violations" ]; then
    echo "violations of test/invariants.sql after the load (first 50 rows):"
    printf '%s\n' "$violations" | head -50
    problems+=("test/invariants.sql: $(printf '%s\n' "$violations" | cut -d'|' -f1 | sort -u | paste -sd ';' -)")
fi

echo "runtime: $(( $(date +%s) - started )) s"
if [ ${#problems[@]} -gt 0 ]; then
    for p in "${problems[@]}"; do echo "FAIL: $p" >&2; done
    exit 1
fi
echo "stress assignment: ok (captures merged per person, round-robin within one, capacity held, every lead routed and logged once, conversions complete)"
