#!/usr/bin/env bash
# test/scripts/update_quotes.sh: what ALTER EXTENSION crm UPDATE from 0.6
# does to existing quotes and price books (README "Upgrades"): quotes are
# numbered Q-000001, ... in id order and new quotes continue after them;
# infinite dates become finite -- quote valid_until 'infinity' NULL and
# '-infinity' yesterday (so crm.expire_quotes() expires that quote); a
# price book's open bounds ('-infinity' from, 'infinity' to) NULL, and a
# book that never applied ('infinity' from, '-infinity' to) valid until
# yesterday.  Runs against the installed build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/common.sh

test_cluster crm-update-quotes
psql_as postgres postgres <<'SQL' >/dev/null
CREATE EXTENSION pg_trgm;
CREATE EXTENSION unaccent;
CREATE EXTENSION crm VERSION '0.6';
INSERT INTO crm.account (name) VALUES ('Acme');
INSERT INTO crm.opportunity (name, account_id) VALUES ('Deal', 1);
SELECT crm.create_quote(1, valid_until => 'infinity'), crm.create_quote(1, valid_until => '-infinity'),
       crm.create_quote(1, valid_until => '2030-01-01'), crm.create_quote(1);
DELETE FROM crm.quote WHERE id = 4;
SELECT crm.create_quote(1);
INSERT INTO crm.price_book (name, valid_from, valid_to) VALUES
    ('open', '-infinity', 'infinity'), ('never from', 'infinity', NULL),
    ('never to', NULL, '-infinity'), ('open end', '2020-01-01', 'infinity');
ALTER EXTENSION crm UPDATE;
SQL

got=$(psql_as postgres postgres -F ' ' -c "
    SELECT id, quote_number, coalesce((valid_until - current_date)::text, 'none') FROM crm.quote ORDER BY id")
want="1 Q-000001 none
2 Q-000002 -1
3 Q-000003 $(psql_as postgres postgres -c "SELECT date '2030-01-01' - current_date")
5 Q-000004 30"
[ "$got" = "$want" ] || fail "quotes after the update: got
$got
want
$want"
echo "ok: existing quotes numbered in id order, infinite valid_until made finite"

got=$(psql_as postgres postgres -F ' ' -c "
    SELECT name, coalesce(valid_from::text, 'none'), coalesce((valid_to - current_date)::text, 'none')
      FROM crm.price_book WHERE NOT is_standard ORDER BY id")
want="open none none
never from none -1
never to none -1
open end 2020-01-01 none"
[ "$got" = "$want" ] || fail "price books after the update: got
$got
want
$want"
echo "ok: infinite price book bounds made finite"

got=$(psql_as postgres postgres -c "SELECT crm.create_quote(1)" \
      -c "SELECT quote_number FROM crm.quote ORDER BY id DESC LIMIT 1" \
      -c "SELECT crm.expire_quotes()" \
      -c "SELECT string_agg(status::text, ',' ORDER BY id) FROM crm.quote" | tail -3 | paste -sd' ')
[ "$got" = "Q-000005 1 Draft,Expired,Draft,Draft,Draft" ] || fail "after the update: $got"
echo "ok: numbering continues; the quote valid until '-infinity' expires"
