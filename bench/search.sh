#!/usr/bin/env bash
# bench/search.sh: crm.search() against the same search done with
# ILIKE '%...%' over the tables -- side by side in one run.
#
#   bash bench/search.sh
#       N=1000000 ROUNDS=3 REPS=50
#       KEEP=DIR  keep the loaded cluster in DIR and, when DIR holds one,
#                 reuse it instead of loading again (for changes to the C
#                 code only: the extension library is installed anew, the
#                 SQL objects and data stay as loaded)
#       ILIKE=0   skip the ILIKE searches (quicker rounds while iterating)
#
# Data: N accounts, N contacts (one per account), N leads and N/5
# opportunities, with names made of word lists (first and last names, some
# accented; company names of two words and a legal form), e-mail addresses,
# web sites and phone numbers ("+1 (AAA) 555-NNNN").  REPS sales reps own the
# rows in turn (bench_rep1 owns 1/REPS of each table and sees the accounts of
# its deals and leads too); bench_admin sees everything.  Loaded with
# triggers off (search_text, a generated column, is computed all the same),
# the search indexes built after the load, then ANALYZE.
#
# Queries: a name, a typo, a prefix, an e-mail fragment, a phone fragment
# and an accented name typed without accents.  In each of ROUNDS rounds,
# every query runs as bench_rep1 and as bench_admin, once through
# crm.search(q) (20 rows, best first) and once as the ILIKE search: the same
# columns of accounts, contacts and leads matched with ILIKE '%q%' (the
# phone by its digits), 20 rows ordered by name, with the caller's rights.
# Reported: the median milliseconds of each, and ILIKE / search.  Before
# the rounds, EXPLAIN of the candidate search (as the extension owner) shows
# that it reads the trigram indexes.  fsync is off: the numbers are CPU
# work, not disk.  Takes about 15 minutes at N=1,000,000 on the project
# machine (7 to load, 2 to 3 per round: the ILIKE scans are slow).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

N=${N:-1000000}
ROUNDS=${ROUNDS:-3}
REPS=${REPS:-50}

ILIKE=${ILIKE:-1}
KEEP=${KEEP:-}

ensure_packages
build_and_install >&2
if [ -n "$KEEP" ]; then
    WORK=$KEEP
    mkdir -p "$WORK"
    trap 'stop_cluster "$WORK/cluster"' EXIT
else
    WORK=$(mktemp -d /tmp/crm-bench-search.XXXXXX)
    trap 'stop_cluster "$WORK/cluster"; rm -rf "$WORK"' EXIT
fi
chmod 755 "$WORK"
REUSE=0
if [ -f "$WORK/cluster/loaded" ]; then
    REUSE=1
    as_cluster_user pg_ctl -D "$WORK/cluster/data" -l "$WORK/cluster/server.log" -w -t 60 start >/dev/null
    export PGHOST=$WORK/cluster PGPORT=5432 PGUSER=postgres
else
    rm -rf "$WORK/cluster"
    start_cluster "$WORK/cluster" >&2
fi
psql_q() { as_cluster_user psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres -d postgres "$@"; }

if [ "$REUSE" = 1 ]; then
    log "reusing the cluster loaded in $WORK (N=$(psql_q -c 'SELECT count(*) FROM crm.account'))"
else
log "loading $N accounts, contacts and leads, $((N / 5)) opportunities"
psql_q <<SQL
SET maintenance_work_mem = '512MB';
CREATE EXTENSION crm CASCADE;
CREATE ROLE bench_admin IN ROLE crm_admin;
SELECT format('CREATE ROLE bench_rep%s IN ROLE crm_sales', g) FROM generate_series(1, $REPS) g \gexec
-- the search indexes are built after the load (faster than row by row)
CREATE TEMP TABLE search_index AS
SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS def
  FROM pg_index WHERE indexrelid::regclass::text LIKE 'crm.%search_idx';
SELECT format('DROP INDEX %s', name) FROM search_index \gexec
CREATE TEMP TABLE w (k text, i int, v text, PRIMARY KEY (k, i));
INSERT INTO w SELECT 'first', i - 1, v FROM unnest(ARRAY['Anna','Ben','Clara','David','Emma','Felix','Greta','Hugo','Ida','Jonas',
    'Karla','Lukas','Mia','Noah','Olga','Paul','Rosa','Sven','Tara','Uwe','Vera','Walter','Xenia','Yusuf','Zoe',
    'Jürgen','Zoë','Björn','Søren','José','Amélie','François','Łukasz','Ángel','Chloé','Renée','Håkon','Märta',
    'Johanna','Lena','Marco','Nina','Omar','Pia','Quentin','Ralf','Sara','Tom','Ulla','Viktor']) WITH ORDINALITY AS t(v, i);
INSERT INTO w SELECT 'last', i - 1, v FROM unnest(ARRAY['Schmidt','Müller','Weber','Wagner','Becker','Hoffmann','Schäfer','Koch',
    'Richter','Klein','Wolf','Schröder','Neumann','Schwarz','Zimmermann','Braun','Krüger','Hofmann','Hartmann','Lange',
    'García','López','Martínez','Sánchez','Pérez','Gómez','Fernández','Núñez','Dubois','Lefèvre','Moreau','Girard',
    'Kowalski','Nowak','Wiśniewski','Dvořák','Novák','Jensen','Nielsen','Sørensen','Andersson','Johansson','Öberg',
    'Rossi','Russo','Bianchi','Romano','Smith','Jones','Taylor','Brown','Wilson','Evans','Thomas','Roberts','Walker',
    'Wright','Green','Hall','Wood','Clarke','Jackson','Hughes','Edwards','Turner','Hill','Moore','Cooper','Ward',
    'Morris','King','Baker','Harris','Lewis','Young','Allen','Scott','Adams','Nelson','Carter']) WITH ORDINALITY AS t(v, i);
-- the first word of a company name: 27,000 made of three syllables (some
-- accented), and 40 common words
INSERT INTO w SELECT 'syl', i - 1, v FROM unnest(ARRAY['ka','lo','ren','mi','tor','sa','vel','du','no','bri','ta','zen',
    'fa','gor','li','mé','ran','so','thu','wen','ax','el','ör','ix','pa','qui','ro','sé','ul','van']) WITH ORDINALITY AS t(v, i);
INSERT INTO w SELECT 'a', i - 1, v FROM unnest(ARRAY['Global','Northwind','Blue','Silver','Green','Rapid','Prime','Alpine',
    'Atlantic','Pacific','Nordic','Royal','United','Smart','Bright','Golden','Iron','Crystal','Urban','Summit',
    'Pioneer','Vertex','Omega','Delta','Stellar','Quantum','Eastern','Western','Central','Coastal','Müller','Bäcker',
    'Öko','Élan','Señor','Fjord','Polar','Solar','Granite','Cedar']) WITH ORDINALITY AS t(v, i);
INSERT INTO w SELECT 'b', i - 1, v FROM unnest(ARRAY['Trading','Logistics','Systems','Foods','Energy','Software','Motors',
    'Textiles','Pharma','Media','Consulting','Holdings','Industries','Networks','Robotics','Analytics','Builders',
    'Outfitters','Partners','Labs','Dynamics','Solutions','Ventures','Supplies','Maschinenbau','Bau','Versand',
    'Brauerei','Technik','Design','Capital','Farms','Metals','Plastics','Chemicals','Airlines','Shipping','Studios',
    'Apparel','Optics']) WITH ORDINALITY AS t(v, i);
INSERT INTO w SELECT 'form', i - 1, v FROM unnest(ARRAY['Inc','Ltd','GmbH','Corp','SA','AG','LLC','BV','Oy','AB'])
    WITH ORDINALITY AS t(v, i);
INSERT INTO w SELECT 'thing', i - 1, v FROM unnest(ARRAY['Rollout','Renewal','Upgrade','Pilot','Expansion','Migration',
    'Licences','Support','Training','Hardware']) WITH ORDINALITY AS t(v, i);
CREATE TEMP TABLE words AS
SELECT array_agg(v ORDER BY i) FILTER (WHERE k = 'first') AS first, array_agg(v ORDER BY i) FILTER (WHERE k = 'last') AS last,
       array_agg(v ORDER BY i) FILTER (WHERE k = 'a') AS a, array_agg(v ORDER BY i) FILTER (WHERE k = 'b') AS b,
       array_agg(v ORDER BY i) FILTER (WHERE k = 'form') AS form, array_agg(v ORDER BY i) FILTER (WHERE k = 'thing') AS thing,
       array_agg(v ORDER BY i) FILTER (WHERE k = 'syl') AS syl
  FROM w;
CREATE TEMP TABLE person AS
SELECT g, first[1 + g % cardinality(first)] AS first, last[1 + g / cardinality(first) % cardinality(last)] AS last,
       CASE WHEN g % 10 = 0 THEN a[1 + g / 10 % cardinality(a)]
            ELSE initcap(syl[1 + g * 7919 % 27011 % 30] || syl[1 + g * 7919 % 27011 / 30 % 30]
                         || syl[1 + g * 7919 % 27011 / 900 % 30]) END AS a,
       b[1 + g / 7 % cardinality(b)] AS b,
       form[1 + g / 1700 % cardinality(form)] AS form, thing[1 + g / 5 % cardinality(thing)] AS thing,
       200 + g / 13 % 800 AS area, lpad((g * 7 % 10000)::text, 4, '0') AS line,
       format('bench_rep%s', 1 + g / 7 % $REPS)::regrole AS owner
  FROM generate_series(1::bigint, $N) g CROSS JOIN words;
SET session_replication_role = replica;
INSERT INTO crm.account (name, website, phone, owner)
SELECT a || ' ' || b || ' ' || form, 'https://www.' || lower(unaccent(a || b)) || g || '.example',
       format('+1 (%s) 555-%s', area, line), owner
  FROM person ORDER BY g;
INSERT INTO crm.contact (name, email, phone, account_id, owner)
SELECT first || ' ' || last, lower(unaccent(first || '.' || last)) || (g % 100) || '@' || lower(unaccent(a || b)) || '.example',
       format('+1 %s 555 %s', 1000 - area, line), (g * 15485863 % $N) + 1, owner
  FROM person ORDER BY g;
INSERT INTO crm.lead (name, company, email, phone, owner)
SELECT last || ' ' || first, b || ' ' || a || ' ' || form, lower(unaccent(last || '_' || first)) || (g % 50) || '@mail' || (g % 20) || '.example',
       format('%s.555.%s', area, line), owner
  FROM person ORDER BY g;
INSERT INTO crm.opportunity (name, account_id, owner)
SELECT thing || ' ' || (2020 + g % 8), (g * 5 % $N) + 1, owner
  FROM person WHERE g % 5 = 0 ORDER BY g;
RESET session_replication_role;
SELECT def FROM search_index \gexec
VACUUM ANALYZE crm.account, crm.contact, crm.lead, crm.opportunity;
SQL
touch "$WORK/cluster/loaded"
fi

# the queries: label|query.  The typo and the prefix are made from the
# name of account 4243 (three syllables, an industry word, a legal form):
# its first word and the industry word without its fourth letter ("paliul
# motrs"); the first five letters of its first word ("paliu").
IFS='|' read -r TYPO PREFIX < <(psql_q -c "
    SELECT lower(split_part(name, ' ', 1)) || ' '
           || lower(overlay(split_part(name, ' ', 2) placing '' from 4 for 1)),
           lower(left(split_part(name, ' ', 1), 5))
      FROM crm.account WHERE id = 4243")
QUERIES=(
    "name|johanna schmidt"
    "typo|$TYPO"
    "prefix|$PREFIX"
    "e-mail fragment|lena.kowalski"
    "phone fragment|555 0142"
    "accented|jurgen muller"
)
log "queries: ${QUERIES[*]}"

# the ILIKE search of one query, with the caller's rights
ilike_sql() {
    local q=$1 digits
    digits=$(tr -cd '0-9' <<<"$q")
    [ ${#digits} -ge 3 ] || digits=NOMATCH
    cat <<SQL
SELECT * FROM (
  SELECT 'account' AS kind, id, name AS title FROM crm.account
   WHERE name ILIKE '%$q%' OR website ILIKE '%$q%' OR regexp_replace(phone, '[^0-9]', '', 'g') LIKE '%$digits%'
  UNION ALL
  SELECT 'contact', id, name FROM crm.contact
   WHERE name ILIKE '%$q%' OR email ILIKE '%$q%' OR regexp_replace(phone, '[^0-9]', '', 'g') LIKE '%$digits%'
  UNION ALL
  SELECT 'lead', id, name FROM crm.lead
   WHERE name ILIKE '%$q%' OR company ILIKE '%$q%' OR email ILIKE '%$q%'
      OR regexp_replace(phone, '[^0-9]', '', 'g') LIKE '%$digits%') AS r
 ORDER BY title, kind, id LIMIT 20
SQL
}

log "the candidate search reads the trigram indexes (EXPLAIN as the owner)"
psql_q <<'SQL'
EXPLAIN (COSTS OFF)
SELECT id FROM crm.contact
 WHERE search_text LIKE '%lena.kowalski%'
    OR (search_text OPERATOR(public.%>) 'lena.kowalski' AND search_text LIKE '%len%');
SQL

# one session runs every round (the search's plans are kept per session, as
# in an application's pooled connections); each query as each role, first
# the search, then the ILIKE search.  Output: role|label|search_ms|ilike_ms|rows
{
    for r in $(seq 0 "$ROUNDS"); do           # round 0: warm-up, no ILIKE
        for role in bench_rep1 bench_admin; do
            for entry in "${QUERIES[@]}"; do
                label=${entry%%|*}
                q=${entry#*|}
                cat <<SQL
SET ROLE $role;
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
SELECT count(*) AS n FROM crm.search('$q') \gset
SELECT extract(epoch FROM clock_timestamp()) AS t1 \gset
SELECT count(*) AS m FROM ($( [ "$r" -gt 0 ] && [ "$ILIKE" = 1 ] && ilike_sql "$q" || echo "SELECT 1 WHERE false")) AS x \gset
SELECT '$r|$role|$label|' || round((:t1 - :t0) * 1000, 2) || '|'
       || round((extract(epoch FROM clock_timestamp()) - :t1) * 1000, 2) || '|' || :n || '/' || :m;
RESET ROLE;
SQL
            done
        done
        echo "\\echo round $r"
    done
} >"$WORK/rounds.sql"
log "$ROUNDS rounds after one of warm-up"
psql_q -f "$WORK/rounds.sql" | tee "$WORK/all" | grep --line-buffered '^round' >&2 || true
awk -F'|' '$1 ~ /^[0-9]+$/ && $1 > 0 { print $2 "|" $3 "|" $4 "|" $5 "|" $6 }' "$WORK/all" >"$WORK/rounds"

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf '\n%-12s %-16s %12s %12s %12s %10s\n' role query "search ms" "ILIKE ms" "ILIKE/search" "rows"
for role in bench_rep1 bench_admin; do
    for entry in "${QUERIES[@]}"; do
        label=${entry%%|*}
        s=$(awk -F'|' -v r="$role" -v l="$label" '$1 == r && $2 == l { print $3 }' "$WORK/rounds" | median)
        i=$(awk -F'|' -v r="$role" -v l="$label" '$1 == r && $2 == l { print $4 }' "$WORK/rounds" | median)
        rows=$(awk -F'|' -v r="$role" -v l="$label" '$1 == r && $2 == l { print $5; exit }' "$WORK/rounds")
        printf '%-12s %-16s %12s %12s %12.0f %10s\n' "$role" "$label" "$s" "$i" "$(echo "$i / $s" | bc -l)" "$rows"
    done
done
all_s=$(awk -F'|' '{ print $3 }' "$WORK/rounds" | median)
all_i=$(awk -F'|' '{ print $4 }' "$WORK/rounds" | median)
printf '%-29s %12s %12s %12.0f\n' "all queries, both roles" "$all_s" "$all_i" "$(echo "$all_i / $all_s" | bc -l)"
for role in bench_rep1 bench_admin; do
    rs=$(awk -F'|' -v r="$role" '$1 == r { print $3 }' "$WORK/rounds" | median)
    ri=$(awk -F'|' -v r="$role" '$1 == r { print $4 }' "$WORK/rounds" | median)
    printf '%-29s %12s %12s %12.0f\n' "all queries, $role" "$rs" "$ri" "$(echo "$ri / $rs" | bc -l)"
done
