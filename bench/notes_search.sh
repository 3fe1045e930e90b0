#!/usr/bin/env bash
# bench/notes_search.sh: what searching notes adds to crm.search() -- side
# by side in one run: the same queries with every kind (notes included,
# kinds => NULL) and with the four record kinds only (no notes).
#
#   bash bench/notes_search.sh        N=50000 REPS=20 CALLS=15
#
# Data: N accounts, N leads, and 2*N notes (one on each lead, one on each
# account) whose text names the lead or account and a few words; REPS reps
# own the rows in blocks of 64 (so that each rep owns rows of every name).  Loaded with triggers off (search_text, a
# generated column, is computed all the same), then ANALYZE.  Queries: a name, a word of the notes, a
# typo, a first name (6,250 leads and as many notes).  As bench_rep1 (sees 1/REPS of the rows) and bench_admin (all):
# the median of CALLS calls of crm.search(q, kinds) in milliseconds, and
# with-notes / without-notes.  fsync is off: the numbers are CPU work.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

N=${N:-50000}
REPS=${REPS:-20}
CALLS=${CALLS:-15}

build_and_install >&2
WORK=$(mktemp -d /tmp/crm-bench-notes.XXXXXX)
chmod 755 "$WORK"
trap 'stop_cluster "$WORK/cluster"; rm -rf "$WORK"' EXIT
start_cluster "$WORK/cluster" >&2
psql_q() { as_cluster_user psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres -d postgres "$@"; }

log "loading $N accounts and leads, $((2 * N)) notes"
psql_q <<SQL
CREATE EXTENSION crm CASCADE;
CREATE ROLE bench_admin IN ROLE crm_admin;
SELECT format('CREATE ROLE bench_rep%s IN ROLE crm_sales', g) FROM generate_series(1, $REPS) g \gexec
SET session_replication_role = replica;
INSERT INTO crm.account (name, owner)
SELECT (ARRAY['Acme','Globex','Initech','Umbrella','Hooli','Vandelay','Stark','Wayne'])[1 + g % 8] || ' ' || g || ' Ltd',
       format('bench_rep%s', 1 + g / 64 % $REPS)::regrole
  FROM generate_series(1, $N) g;
INSERT INTO crm.lead (name, company, email, owner)
SELECT (ARRAY['Anna','Bert','Clara','Dieter','Eva','Frank','Greta','Hans'])[1 + g % 8] || ' '
       || (ARRAY['Schmidt','Meyer','Weber','Wagner','Becker','Hoffmann','Koch','Richter'])[1 + g / 8 % 8] || ' ' || g,
       'Company ' || g, 'lead' || g || '@example.com', format('bench_rep%s', 1 + g / 64 % $REPS)::regrole
  FROM generate_series(1, $N) g;
INSERT INTO crm.note (body, lead_id, owner)
SELECT 'Called ' || l.name || ' about the ' || (ARRAY['renewal','pilot','budget','roadmap','invoice'])[1 + l.id % 5]
       || E'\nwants a follow-up in ' || (ARRAY['spring','summer','autumn','winter'])[1 + l.id % 4], l.id, l.owner
  FROM crm.lead AS l;
INSERT INTO crm.note (body, account_id, owner)
SELECT 'Account review for ' || a.name || ': ' || (ARRAY['renewal','pilot','budget','roadmap','invoice'])[1 + a.id % 5]
       || ' discussed with procurement', a.id, a.owner
  FROM crm.account AS a;
RESET session_replication_role;
ANALYZE;
CREATE FUNCTION public.bench_ms(q text, kinds text[], calls int) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE t timestamptz; ms float8[] := '{}';
BEGIN
    FOR i IN 1..calls LOOP
        t := clock_timestamp();
        PERFORM * FROM crm.search(q, kinds);
        ms := ms || (extract(epoch FROM clock_timestamp() - t) * 1000)::float8;
    END LOOP;
    RETURN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(ms) AS x);
END \$\$;
SQL

printf '%-12s %-22s %12s %12s %8s\n' role query "with notes" "without" ratio
for role in bench_rep1 bench_admin; do
    for q in 'greta weber' 'roadmap' 'hofmann koch' 'dieter'; do
        psql_q -c "SET ROLE $role" -c "SELECT bench_ms('$q', NULL, 2)" >/dev/null    # warm up
        line=$(psql_q -c "SET ROLE $role" -c "
            SELECT format('%s %s', round(w::numeric, 2), round(o::numeric, 2)) FROM
              (SELECT bench_ms('$q', NULL, $CALLS) AS w,
                      bench_ms('$q', ARRAY['account', 'contact', 'lead', 'opportunity'], $CALLS) AS o) AS s")
        read -r with without <<<"$line"
        printf '%-12s %-22s %12s %12s %8s\n' "$role" "$q" "$with" "$without" \
            "$(awk -v a="$with" -v b="$without" 'BEGIN { printf "%.2f", a / b }')"
    done
done
