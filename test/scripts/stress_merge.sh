#!/usr/bin/env bash
# test/scripts/stress_merge.sh: pgbench stress test of merges
# (crm.merge_accounts, merge_contacts, merge_leads) mixed with lead
# conversions, opportunity and line-item writes.
#
# Uses the installed extension (scripts/test.sh builds and installs it) in a
# throwaway cluster.  Sets up a few companies written many ways ("Acme",
# "ACME Inc.", ...) as accounts with contacts, links, deals with line items,
# activities and campaign members, plus leads of the same companies.  Then,
# for STRESS_SECONDS (default 15) with STRESS_CLIENTS (default 6) clients as
# the superuser, pgbench runs a weighted random mix of: merging two random
# accounts, contacts or leads; converting a new lead of one of the companies
# (so conversions race with merges on the same keys); inserting deals on
# random accounts; inserting, updating and deleting line items; adding
# contact links.  Business errors a racing merge causes (a record merged
# away meanwhile: ZC001, ZC004, ZC005, ZC702, a foreign key to it: 23503, a
# link added meanwhile that a fold would collide with: 23505) are caught by
# exact SQLSTATE in the helpers; deadlocks and serialization failures are
# retried by pgbench (--max-tries); any other error aborts a client and
# fails the test.
#
# Afterwards: test/invariants.sql returns no rows (crm.verify_aggregates()
# empty, conversions complete, amounts = line sums, ...), the merges did
# happen, every merge record's survivor exists, and no open duplicate
# candidate names a deleted record.  Prints "FAIL: ..." and exits non-zero
# on any violation.
#
#   STRESS_SECONDS=15 STRESS_CLIENTS=6 bash test/scripts/stress_merge.sh
#   STRESS_KEEP_DIR=1 keeps the cluster directory (logs, pgbench scripts)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/common.sh

SECS=${STRESS_SECONDS:-15}
CLIENTS=${STRESS_CLIENTS:-6}
MAX_TRIES=${STRESS_MAX_TRIES:-50}

ensure_packages
WORK=$(mktemp -d /tmp/crm-stress-merge.XXXXXX)
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

log "setting up: companies as accounts, contacts, links, deals with lines, leads"
psql_q >"$WORK/setup.log" <<'SQL'
CREATE EXTENSION crm CASCADE;
CREATE SCHEMA stress;
CREATE TABLE stress.caught (what text, sqlstate text);
CREATE TABLE stress.names (n int PRIMARY KEY, company text);
INSERT INTO stress.names VALUES (0, 'Acme'), (1, 'ACME Inc.'), (2, 'acme, inc'), (3, 'Globex'),
    (4, 'Globex Corp'), (5, 'Initech'), (6, 'Initech LLC'), (7, 'Umbrella');

INSERT INTO crm.product (code, name, list_price) VALUES ('WID-1', 'Widget', 100), ('GAD-1', 'Gadget', 250);
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price) SELECT 1, id, list_price FROM crm.product;
INSERT INTO crm.campaign (name) VALUES ('Spring'), ('Fall');
INSERT INTO crm.account (name, website)
    SELECT n.company, CASE WHEN g % 2 = 0 THEN 'https://' || lower(split_part(n.company, ' ', 1)) || '.example' END
      FROM generate_series(1, 40) AS g JOIN stress.names AS n ON n.n = g % 8;
INSERT INTO crm.contact (name, email, account_id)
    SELECT 'Person ' || g, 'p' || (g % 30) || '@x' || (g % 3) || '.example', 1 + g % 40
      FROM generate_series(1, 80) AS g;
INSERT INTO crm.account_contact (account_id, contact_id, role)
    SELECT DISTINCT 1 + (g * 7) % 40, 1 + (g * 3) % 80, 'Buyer' FROM generate_series(1, 120) AS g;
INSERT INTO crm.opportunity (name, account_id, contact_id, close_date, probability)
    SELECT 'Deal ' || g, 1 + g % 40, 1 + g % 80, current_date + g, g % 100 FROM generate_series(1, 120) AS g;
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity)
    SELECT 1 + g % 120, 1 + g % 2, 1 + g % 5 FROM generate_series(1, 240) AS g;
INSERT INTO crm.campaign_member (campaign_id, contact_id)
    SELECT DISTINCT 1 + g % 2, 1 + (g * 5) % 80 FROM generate_series(1, 100) AS g;
INSERT INTO crm.activity (type, subject, account_id, due_at)
    SELECT 'task', 'Call ' || g, 1 + g % 40, now() + g * interval '1 hour' FROM generate_series(1, 60) AS g;
INSERT INTO crm.lead (name, company, email, status, campaign_id)
    SELECT 'Lead ' || g, n.company, 'l' || (g % 50) || '@' || lower(split_part(n.company, ' ', 1)) || '.example',
           'In Transaction', 1 + g % 2
      FROM generate_series(1, 200) AS g JOIN stress.names AS n ON n.n = g % 8;
INSERT INTO crm.campaign_member (campaign_id, lead_id)
    SELECT 1 + g % 2, g FROM generate_series(1, 200) AS g;

-- helpers: one business step each, catching exactly the errors a racing
-- merge may cause (counted in stress.caught)
CREATE FUNCTION stress.random_id(t regclass) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE r bigint;
BEGIN
    EXECUTE format('SELECT id FROM %s ORDER BY random() LIMIT 1', t) INTO r;
    RETURN r;
END $$;

CREATE FUNCTION stress.merge(kind text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE a bigint; b bigint;
BEGIN
    a := stress.random_id(('crm.' || kind)::regclass);
    b := stress.random_id(('crm.' || kind)::regclass);
    IF a IS NULL OR b IS NULL OR a = b THEN RETURN; END IF;
    IF kind = 'lead' AND random() < 0.7
       AND EXISTS (SELECT 1 FROM crm.lead l WHERE l.id = b AND l.status = 'Converted') THEN
        -- mostly keep the converted one (merging it away is ZC702)
        SELECT b, a INTO a, b;
    END IF;
    EXECUTE format('SELECT crm.merge_%ss($1, $2, $3)', kind)
        USING a, b, CASE WHEN random() < 0.3 THEN ARRAY['name'] END;
EXCEPTION WHEN SQLSTATE 'ZC001' OR SQLSTATE 'ZC004' OR SQLSTATE 'ZC005' OR SQLSTATE 'ZC702'
          OR SQLSTATE 'ZC720' OR SQLSTATE '23503' OR SQLSTATE '23505' THEN
    INSERT INTO stress.caught VALUES ('merge_' || kind, SQLSTATE);
END $$;

-- a new lead of one of the companies (fresh_lead), or an old one, converted
CREATE FUNCTION stress.convert(fresh_lead boolean) RETURNS void LANGUAGE plpgsql AS $$
DECLARE l bigint; c text;
BEGIN
    IF fresh_lead THEN
        SELECT company INTO c FROM stress.names ORDER BY random() LIMIT 1;
        INSERT INTO crm.lead (name, company, email, status)
            VALUES ('New', c, 'n' || (random() * 40)::int || '@' || lower(split_part(c, ' ', 1)) || '.example', 'In Transaction')
            RETURNING id INTO l;
    ELSE
        SELECT id INTO l FROM crm.lead WHERE status = 'In Transaction' ORDER BY random() LIMIT 1;
    END IF;
    IF l IS NOT NULL THEN PERFORM crm.convert_lead(l); END IF;
EXCEPTION WHEN SQLSTATE 'ZC001' OR SQLSTATE 'ZC002' OR SQLSTATE 'ZC004' OR SQLSTATE 'ZC005'
          OR SQLSTATE '23503' THEN
    INSERT INTO stress.caught VALUES (CASE WHEN fresh_lead THEN 'convert' ELSE 'convert_old' END, SQLSTATE);
END $$;

CREATE FUNCTION stress.deal() RETURNS void LANGUAGE plpgsql AS $$
DECLARE o bigint;
BEGIN
    INSERT INTO crm.opportunity (name, account_id, amount, probability)
        VALUES ('New deal', stress.random_id('crm.account'), (random() * 1000)::int, (random() * 100)::int)
        RETURNING id INTO o;
    INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (o, 1, 2);
EXCEPTION WHEN SQLSTATE '23503' OR SQLSTATE '23502' THEN
    INSERT INTO stress.caught VALUES ('deal', SQLSTATE);
END $$;

CREATE FUNCTION stress.lines() RETURNS void LANGUAGE plpgsql AS $$
DECLARE o bigint := stress.random_id('crm.opportunity'); r float8 := random();
BEGIN
    IF r < 0.4 THEN
        INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (o, 1 + (r * 10)::int % 2, 1 + (r * 7)::int);
    ELSIF r < 0.8 THEN
        UPDATE crm.opportunity_line_item SET quantity = quantity + 1 WHERE opportunity_id = o;
    ELSE
        DELETE FROM crm.opportunity_line_item WHERE id = (SELECT min(id) FROM crm.opportunity_line_item WHERE opportunity_id = o);
    END IF;
EXCEPTION WHEN SQLSTATE '23503' OR SQLSTATE 'ZC011' THEN
    INSERT INTO stress.caught VALUES ('lines', SQLSTATE);
END $$;

CREATE FUNCTION stress.link() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO crm.account_contact (account_id, contact_id, role)
        VALUES (stress.random_id('crm.account'), stress.random_id('crm.contact'), 'Consultant')
        ON CONFLICT DO NOTHING;
EXCEPTION WHEN SQLSTATE '23503' OR SQLSTATE '23502' THEN
    INSERT INTO stress.caught VALUES ('link', SQLSTATE);
END $$;
SQL

S=$WORK/scripts
mkdir -p "$S"
for f in merge_accounts:"SELECT stress.merge('account');" merge_contacts:"SELECT stress.merge('contact');" \
         merge_leads:"SELECT stress.merge('lead');" convert:"SELECT stress.convert(true);" \
         convert_old:"SELECT stress.convert(false);" deal:"SELECT stress.deal();" \
         lines:"SELECT stress.lines();" link:"SELECT stress.link();"; do
    echo "${f#*:}" >"$S/${f%%:*}.sql"
done
chmod -R a+rX "$WORK"

log "pgbench: $SECS s, $CLIENTS clients, max tries $MAX_TRIES"
status=0
as_cluster_user timeout $((SECS + 90)) pgbench -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -T "$SECS" \
    --max-tries="$MAX_TRIES" --failures-detailed ${STRESS_SEED:+--random-seed="$STRESS_SEED"} \
    -h "$PGHOST" -p "$PGPORT" -U postgres \
    -f "$S/merge_accounts.sql@6" -f "$S/merge_contacts.sql@5" -f "$S/merge_leads.sql@4" \
    -f "$S/convert.sql@8" -f "$S/convert_old.sql@4" -f "$S/deal.sql@5" -f "$S/lines.sql@12" -f "$S/link.sql@3" \
    stress >"$WORK/pgbench.out" 2>&1 || status=$?

problems=()
grep -E '^(number of transactions actually processed|number of (failed transactions|serialization failures|deadlock failures)|total number of retries|tps =)' "$WORK/pgbench.out" | sed 's/^/  /' || true
if grep -qE 'aborted|error:' "$WORK/pgbench.out"; then
    grep -E 'aborted|error|ERROR|DETAIL|CONTEXT' "$WORK/pgbench.out" | head -20
    problems+=("a pgbench client aborted (an error that is neither a caught business error nor a retried deadlock/serialization failure)")
fi
[ "$status" -eq 0 ] || problems+=("pgbench exited with $status")
echo "business errors caught by the helpers (SQLSTATE):"
psql_q -At -F ' ' -c "SELECT '  ' || what, sqlstate, count(*) FROM stress.caught GROUP BY 1, 2 ORDER BY 1, 2"

# The setup made duplicates on purpose (accounts with one company key,
# contacts with one e-mail); merge what is left of them, one by one, so that
# test/invariants.sql's "one account per company key" and "one contact per
# e-mail" hold too.
psql_q >"$WORK/dedupe.log" <<'SQL'
DO $$
DECLARE p record;
BEGIN
    LOOP
        SELECT min(id) AS keep, max(id) AS drop INTO p FROM crm.account
         GROUP BY crm.company_match_key(name), owner HAVING count(*) > 1 LIMIT 1;
        EXIT WHEN NOT FOUND;
        PERFORM crm.merge_accounts(p.keep, p.drop);
    END LOOP;
    LOOP
        SELECT min(id) AS keep, max(id) AS drop INTO p FROM crm.contact WHERE email IS NOT NULL
         GROUP BY lower(email), owner, account_id HAVING count(*) > 1 LIMIT 1;
        EXIT WHEN NOT FOUND;
        PERFORM crm.merge_contacts(p.keep, p.drop);
    END LOOP;
END $$;
SQL
violations=$(psql_q -At -F '|' <test/invariants.sql)
if [ -n "$violations" ]; then
    echo "violations of test/invariants.sql after the load (first 50 rows):"
    printf '%s\n' "$violations" | head -50
    problems+=("test/invariants.sql: $(printf '%s\n' "$violations" | cut -d'|' -f1 | sort -u | paste -sd ';' -)")
fi
checks=$(psql_q -At -F '|' <<'SQL'
SELECT 'merge record whose survivor is gone', m.id FROM crm.merge_record m
 WHERE NOT CASE m.kind WHEN 'account' THEN EXISTS (SELECT 1 FROM crm.account a WHERE a.id = m.survivor_id)
                       WHEN 'contact' THEN EXISTS (SELECT 1 FROM crm.contact c WHERE c.id = m.survivor_id)
                       ELSE EXISTS (SELECT 1 FROM crm.lead l WHERE l.id = m.survivor_id) END
UNION ALL
SELECT 'open candidate naming a deleted record', 0 FROM crm.duplicate_candidate d
 WHERE d.status = 'open'
   AND (d.id IN (SELECT merged_id FROM crm.merge_record m WHERE m.kind = d.kind)
        OR d.duplicate_of IN (SELECT merged_id FROM crm.merge_record m WHERE m.kind = d.duplicate_kind))
UNION ALL
SELECT 'converted lead whose contact is gone', l.id FROM crm.lead l
 WHERE l.status = 'Converted' AND NOT EXISTS (SELECT 1 FROM crm.contact c WHERE c.id = l.contact_id);
SQL
)
[ -z "$checks" ] || { printf '%s\n' "$checks" | head -20; problems+=("merge checks failed"); }
merges=$(psql_q -At -c "SELECT string_agg(kind || ' ' || n, ', ') FROM (SELECT kind, count(*) n FROM crm.merge_record GROUP BY 1 ORDER BY 1) s")
echo "merges made: ${merges:-none}"
for k in account contact lead; do
    grep -q "$k" <<<"$merges" || problems+=("no $k was merged during the load")
done
psql_q -At -c "SELECT format('after the load: %s accounts, %s contacts, %s leads (%s converted), %s opportunities, %s line items',
    (SELECT count(*) FROM crm.account), (SELECT count(*) FROM crm.contact), (SELECT count(*) FROM crm.lead),
    (SELECT count(*) FROM crm.lead WHERE status = 'Converted'), (SELECT count(*) FROM crm.opportunity),
    (SELECT count(*) FROM crm.opportunity_line_item))"

echo "runtime: $(( $(date +%s) - started )) s"
if [ ${#problems[@]} -gt 0 ]; then
    for p in "${problems[@]}"; do echo "FAIL: $p" >&2; done
    exit 1
fi
echo "stress merge: ok (invariants hold after merges mixed with conversions and line-item writes)"
