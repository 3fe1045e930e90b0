#!/usr/bin/env bash
# test/scripts/privacy_dump.sh: after crm.erase_person(), nothing in the
# database reveals the person -- not even a dump of everything.
#
# A database with the demo data set and one more person, Ingrid Nygaard: a
# private customer's lead (no company, so conversion names the account
# after her), renamed once, converted (contact, account, deal named after
# her), a second lead deleted since, an e-mail activity, a campaign
# membership, notes and an attachment about her and a note naming her on
# another account, a web form's capture and a refused capture, logged e-mails
# (hers, one she was copied on, one mentioning her).  The whole database is dumped (pg_dump, plain, data and every
# table) before and after a privacy officer erases her:
#   1. before: the dump holds her e-mail address, her names and her phone
#      numbers (so the test can fail);
#   2. after: it holds none of them (case-insensitive), while the other
#      people of the demo data are still in it;
#   3. the aggregates are exact and the amounts unchanged.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/common.sh
source test/lib/dataset.sh

test_cluster crm-privacy-dump

psql_as postgres postgres -c "CREATE DATABASE crm_privacy"
fill_crm_db crm_privacy >/dev/null
psql_as postgres crm_privacy <<'SQL' >/dev/null
CREATE ROLE regress_dump_officer LOGIN IN ROLE crm_privacy_officer;
INSERT INTO crm.lead (name, email, phone, status) VALUES ('I. Nygaard', 'ingrid@nygaard.example', '+47 912 34 567', 'New Lead');
DELETE FROM crm.lead WHERE name = 'I. Nygaard';
INSERT INTO crm.lead (name, email, phone, status, remarks)
VALUES ('Ingrid Nygard', 'Ingrid@Nygaard.example', '+47 987 65 432', 'Processing', 'wants a quote');
UPDATE crm.lead SET name = 'Ingrid Nygaard' WHERE name = 'Ingrid Nygard';
SELECT crm.convert_lead((SELECT id FROM crm.lead WHERE name = 'Ingrid Nygaard'));
UPDATE crm.opportunity SET amount = 4321 WHERE name = 'Ingrid Nygaard';
INSERT INTO crm.activity (type, subject, description, contact_id, starts_at)
SELECT 'email', 'Quote for Ingrid Nygaard', 'Hello Ingrid Nygaard, ...', id, now() FROM crm.contact WHERE name = 'Ingrid Nygaard';
INSERT INTO crm.campaign_member (campaign_id, contact_id)
SELECT (SELECT min(id) FROM crm.campaign), id FROM crm.contact WHERE name = 'Ingrid Nygaard';
-- notes and an attachment about her (one edited: the change log holds the
-- old text), and a note about another account that names her
INSERT INTO crm.note (body, contact_id)
SELECT 'Ingrid Nygaard called from +47 987 65 432', id FROM crm.contact WHERE name = 'Ingrid Nygaard';
UPDATE crm.note SET body = body || ', call back Ingrid Nygard' WHERE body LIKE 'Ingrid Nygaard called%';
INSERT INTO crm.attachment (contact_id, file_name, mime_type, size_bytes, sha256, storage_uri)
SELECT id, 'Ingrid Nygaard contract.pdf', 'application/pdf', 1234, repeat('ab', 32), 's3://crm-files/contracts/4711.pdf'
  FROM crm.contact WHERE name = 'Ingrid Nygaard';
UPDATE crm.attachment SET size_bytes = 1235 WHERE file_name = 'Ingrid Nygaard contract.pdf';
INSERT INTO crm.note (body, account_id)
SELECT 'Ask Ingrid Nygaard (ingrid@nygaard.example) for a reference', min(id) FROM crm.account WHERE name <> 'Ingrid Nygaard';
-- a web form's capture (a new lead: the converted one is not open), and a
-- refused one, whose record a background worker committed on its own
SELECT crm.capture_lead('Ingrid Nygaard', NULL, 'ingrid@nygaard.example', '+47 955 55 555', 'website', NULL,
                        '{"remarks": "call Ingrid Nygaard"}');
DO $$
BEGIN
    PERFORM crm.capture_lead('Ingrid Nygaard', NULL, 'INGRID@nygaard.example', '+47 966 66 666', 'website', NULL,
                             '{"website": "not a web site"}');
    RAISE EXCEPTION 'the capture was not refused';
EXCEPTION WHEN sqlstate 'ZC902' THEN NULL;
END $$;
-- logged e-mails: hers (linked to her contact), one she was copied on, and
-- a colleague's that mentions her
SELECT crm.log_email('dump-1@mail.example', 'inbound', 'Ingrid@Nygaard.example', ARRAY['sales@ours.example'], NULL,
                     'Quote please - Ingrid Nygaard', 'Regards, Ingrid Nygaard, +47 987 65 432');
SELECT crm.log_email('dump-2@mail.example', 'outbound', 'sales@ours.example', ARRAY['boss@ours.example'],
                     ARRAY['ingrid@nygaard.example'], 'About I. Nygaard', 'Call Ingrid Nygard');
SELECT crm.log_email('dump-3@mail.example', 'outbound', 'sales@ours.example', ARRAY['boss@ours.example'], NULL,
                     'Lost deal', 'Ingrid Nygaard called from +47 987 65 432', in_reply_to => 'dump-2@mail.example');
SQL
[ "$(psql_as postgres crm_privacy -c "SELECT count(*) FROM crm.lead_capture WHERE outcome = 'refused'")" = 1 ] \
    || fail "the refused capture was not recorded"

needles=('ingrid@nygaard.example' 'Ingrid Nygaard' 'Ingrid Nygard' 'I. Nygaard' '+47 987 65 432' '+47 912 34 567'
         '+47 955 55 555' '+47 966 66 666')

dump() {
    as_cluster_user pg_dump -h "$PGHOST" -p "$PGPORT" -U postgres -d crm_privacy -f "$WORK/$1.sql" 2>"$WORK/$1.log" \
        || fail "pg_dump failed"
}
amounts() {
    psql_as postgres crm_privacy -c "SELECT sum(amount) FROM crm.opportunity"
}

dump before
for n in "${needles[@]}"; do
    grep -qiF -- "$n" "$WORK/before.sql" || fail "the dump before the erasure lacks \"$n\": the test would prove nothing"
done
echo "ok: before the erasure the dump holds her address, names and phone numbers"
amounts_before=$(amounts)
other=$(psql_as postgres crm_privacy -c "SELECT email FROM crm.contact WHERE email IS NOT NULL AND email <> 'Ingrid@Nygaard.example' ORDER BY id LIMIT 1")
[ -n "$other" ] || fail "the demo data has no other contact with an e-mail address"

psql_as regress_dump_officer crm_privacy -c "SELECT leads, contacts FROM crm.erase_person('INGRID@nygaard.example', 'dump test')" >/dev/null

dump after
for n in "${needles[@]}"; do
    if grep -niF -- "$n" "$WORK/after.sql" >&2; then
        fail "the dump after the erasure still holds \"$n\" (lines above)"
    fi
done
grep -qiF -- "$other" "$WORK/after.sql" || fail "the dump after the erasure lacks another person ($other)"
echo "ok: after the erasure the dump holds none of them; other people are still there"

[ "$(amounts)" = "$amounts_before" ] || fail "amounts changed: $amounts_before -> $(amounts)"
differences=$(psql_as postgres crm_privacy -c "SELECT count(*) FROM crm.verify_aggregates()")
[ "$differences" = 0 ] || fail "$differences aggregate differences after the erasure"
echo "ok: amounts unchanged, aggregates exact"
