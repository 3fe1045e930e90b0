-- crm 0.4 -> 0.5: ALTER EXTENSION crm UPDATE TO '0.5'.
-- Every schema change made in sql/install/ since 0.4 is repeated here, so
-- that an updated database has the same objects as a fresh install
-- (test/scripts/upgrade.sh checks it).
--
-- 0.5 closes what a red team with ordinary CRM logins could still do to
-- 0.4 (forged ids, lock squatting, hidden references, unbounded change-log
-- values) and what a fault run found (two-phase commit, maintenance of the
-- aggregate tables, restores without replica mode).

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION crm UPDATE TO '0.5'" to load this file. \quit

-- lead: the extension's own locks (src/locks.c) -- a secret for the keyed
-- lock tags, readable by the extension owner only and not dumped
CREATE TABLE crm.lock_key_secret (
    single_row boolean PRIMARY KEY DEFAULT true CONSTRAINT lock_key_secret_single_row CHECK (single_row),
    secret bytea NOT NULL CONSTRAINT lock_key_secret_length CHECK (pg_catalog.octet_length(secret) BETWEEN 16 AND 64)
);
COMMENT ON TABLE crm.lock_key_secret IS 'Internal: the random key of the hash that names the duplicate-search locks in pg_locks; readable by the extension owner only, not dumped';
COMMENT ON COLUMN crm.lock_key_secret.single_row IS 'Always true: the table holds one row';
COMMENT ON COLUMN crm.lock_key_secret.secret IS 'Random bytes (244 random bits) made at CREATE EXTENSION';
INSERT INTO crm.lock_key_secret (secret)
VALUES (pg_catalog.decode(pg_catalog.replace(pg_catalog.gen_random_uuid()::pg_catalog.text
                                             OPERATOR(pg_catalog.||) pg_catalog.gen_random_uuid()::pg_catalog.text,
                                             '-', ''), 'hex'));




-- Aggregates and two-phase commit: a writer never waits for a stripe row
-- that another transaction (a prepared one of the same backend id, or a
-- compaction) holds; it writes to another stripe of its own (the C trigger
-- changed; the stripe columns say so).
COMMENT ON COLUMN crm.pipeline_aggregate.stripe IS 'Which writer recorded these changes: its backend id, or that id plus a multiple of 262144 while another transaction (a prepared one, or a compaction) held the row of the id; 0 after a compaction or rebuild. Lets writers add without waiting for each other';
COMMENT ON COLUMN crm.account_aggregate.stripe IS 'Which writer recorded these changes: its backend id, or that id plus a multiple of 262144 while another transaction (a prepared one, or a compaction) held the row of the id; 0 after a compaction or rebuild. Lets writers add without waiting for each other';
COMMENT ON COLUMN crm.campaign_opportunity_aggregate.stripe IS 'Which writer recorded these changes: its backend id, or that id plus a multiple of 262144 while another transaction (a prepared one, or a compaction) held the row of the id; 0 after a compaction or rebuild. Lets writers add without waiting for each other';
COMMENT ON COLUMN crm.campaign_lead_aggregate.stripe IS 'Which writer recorded these changes: its backend id, or that id plus a multiple of 262144 while another transaction (a prepared one, or a compaction) held the row of the id; 0 after a compaction or rebuild. Lets writers add without waiting for each other';

-- Compaction and maintenance: one compaction at a time by a lock of its own,
-- the aggregate tables taken in ROW EXCLUSIVE mode up front, so that a
-- compaction cannot deadlock with REINDEX CONCURRENTLY.
CREATE FUNCTION crm.aggregates_compaction_lock() RETURNS void
    AS 'MODULE_PATHNAME', 'crm_aggregates_compaction_lock'
    LANGUAGE C VOLATILE;
COMMENT ON FUNCTION crm.aggregates_compaction_lock() IS 'Used by crm.compact_aggregates(): takes the lock that lets one compaction run at a time, until the transaction ends (a lock no SQL command or advisory lock function can take, and no maintenance command waits for)';

REVOKE ALL ON FUNCTION crm.aggregates_compaction_lock() FROM PUBLIC;

CREATE OR REPLACE FUNCTION crm.compact_aggregates() RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    spec text[];
    measures text[];
    total bigint := 0;
    n bigint;
BEGIN
    -- One compaction at a time: a lock only compactions take, first, while
    -- this transaction holds no other.
    PERFORM crm.aggregates_compaction_lock();
    -- A TRUNCATE of the base tables (which empties the aggregates) waits for
    -- the compaction and vice versa.
    LOCK TABLE crm.lead, crm.opportunity IN ACCESS SHARE MODE;
    -- Every table it writes up front, in the order writers and
    -- crm.rebuild_aggregates() lock them, in the mode writers take.  ROW
    -- EXCLUSIVE conflicts with nothing REINDEX CONCURRENTLY, CREATE INDEX
    -- CONCURRENTLY, VACUUM or ANALYZE hold, which wait for this transaction's
    -- snapshot: waiting for them would be a deadlock.  It waits only for
    -- VACUUM FULL, CLUSTER, REINDEX, TRUNCATE and a rebuild, which wait for
    -- no snapshot, and never for a table lock once the work has begun.
    LOCK TABLE crm.pipeline_aggregate, crm.account_aggregate, crm.campaign_opportunity_aggregate,
               crm.campaign_lead_aggregate IN ROW EXCLUSIVE MODE;
    -- Per aggregate table (name, its group key, its measures -- fixed names,
    -- no user input): move every stripe row that no open transaction is
    -- writing into stripe 0 (rows a writer holds are skipped and moved next
    -- time), then drop stripe-0 rows that add up to nothing.  Writers only
    -- ever touch their own stripes, never stripe 0, and write to another of
    -- theirs rather than wait for a row the compaction holds, so nobody waits
    -- for a compaction.
    FOREACH spec SLICE 1 IN ARRAY ARRAY[
        ['pipeline_aggregate', 'stage, owner, close_month', 'opportunities, amount, weighted_amount'],
        ['account_aggregate', 'account_id, owner, stage', 'opportunities, amount'],
        ['campaign_opportunity_aggregate', 'campaign_id, owner, stage', 'opportunities, amount'],
        ['campaign_lead_aggregate', 'campaign_id, owner, status', 'leads']]
    LOOP
        measures := string_to_array(spec[3], ', ');
        EXECUTE format(
            'WITH moved AS ('
            '    DELETE FROM crm.%1$I AS a'
            '     WHERE a.ctid OPERATOR(pg_catalog.=) ANY (ARRAY('
            '               SELECT x.ctid FROM crm.%1$I AS x'
            '                WHERE x.stripe OPERATOR(pg_catalog.<>) 0 FOR UPDATE SKIP LOCKED))'
            '    RETURNING a.*)'
            ' INSERT INTO crm.%1$I AS t (%2$s, stripe, %3$s)'
            ' SELECT %2$s, 0, %4$s FROM moved GROUP BY %2$s'
            ' ON CONFLICT (%2$s, stripe) DO UPDATE SET %5$s',
            spec[1], spec[2], spec[3],
            (SELECT string_agg(format('pg_catalog.sum(%I)', m), ', ') FROM unnest(measures) AS m),
            (SELECT string_agg(format('%1$I = t.%1$I OPERATOR(pg_catalog.+) EXCLUDED.%1$I', m), ', ')
               FROM unnest(measures) AS m));
        EXECUTE format('DELETE FROM crm.%I AS a WHERE a.stripe OPERATOR(pg_catalog.=) 0 AND %s', spec[1],
                       (SELECT string_agg(format('a.%I OPERATOR(pg_catalog.=) 0', m), ' AND ') FROM unnest(measures) AS m));
        EXECUTE format('SELECT pg_catalog.count(*) FROM crm.%I', spec[1]) INTO n;
        total := total + n;
    END LOOP;
    RETURN total;
END
$$;


-- misc: campaign cycles at any depth (C only), bounded change-log values,
-- verifiable reminder notifications, restores without replica mode refused.
COMMENT ON COLUMN crm.change_log.changes IS 'UPDATE: {"column": {"old": text, "new": text}} for each changed column; DELETE: {"column": text} of the removed row; INSERT and TRUNCATE: {}. A value longer than 2000 bytes is kept as {"truncated": its first characters (up to 2000 bytes), "bytes": its length in bytes, "sha256": hex SHA-256 of its bytes}';

ALTER TABLE crm.activity ADD COLUMN reminder_taken_at timestamptz;
COMMENT ON COLUMN crm.activity.reminder_taken_at IS 'When a listener took the claimed reminder with crm.take_reminder() to deliver it (NULL: not yet); cleared with reminder_sent_at';
COMMENT ON FUNCTION crm.claim_due_reminders(integer, timestamptz) IS
'Claims up to max_count due reminders (remind_at <= due_before, default now(), not yet sent, activity open) that the caller may update, oldest first, skipping those another worker holds; marks them sent, returns them, and sends one NOTIFY crm_reminder per reminder (JSON payload) when the transaction commits. Each reminder is claimed exactly once; a rolled-back claim releases it. Listeners deliver what crm.take_reminder() returns for a notification, not the notification itself.';
CREATE FUNCTION crm.take_reminder(activity_id bigint, remind_at timestamptz)
    RETURNS SETOF crm.reminder
    AS 'MODULE_PATHNAME', 'crm_take_reminder'
    LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 1
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.take_reminder(bigint, timestamptz) IS
'For each crm_reminder notification: pass its activity_id and remind_at. Returns the reminder (one row) the first time for a claim that committed and marks it taken; returns no row for a forged notification (not claimed, other remind_at), for one received again, and for an activity the caller may not update. Deliver only what it returns.';
REVOKE ALL ON FUNCTION crm.take_reminder(bigint, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.take_reminder(bigint, timestamptz) TO crm_admin, crm_manager, crm_sales;


-- refs: hidden references, order cancellation, order numbers, sharing index
-- (issue 26 items 5, 6, 10, 14; C changes in quotes.c, orders.c, sharing.c)

-- A quote or an order may name only an account and a contact the caller
-- sees, like a deal (sharing rule): otherwise another rep's contact could be
-- pinned by a quote its owner cannot see.
ALTER POLICY crm_team_insert ON crm.quote
    WITH CHECK (owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))
                AND crm.may_reference_account(account_id) AND crm.may_reference_contact(contact_id)
                AND EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id));
ALTER POLICY crm_team_update ON crm.quote
    WITH CHECK (owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))
                AND crm.may_reference_account(account_id) AND crm.may_reference_contact(contact_id)
                AND EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id));
ALTER POLICY crm_team_insert ON crm.sales_order
    WITH CHECK (owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))
                AND crm.may_reference_account(account_id) AND crm.may_reference_contact(contact_id));
ALTER POLICY crm_team_update ON crm.sales_order
    WITH CHECK (owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))
                AND crm.may_reference_account(account_id) AND crm.may_reference_contact(contact_id));

-- The sharing check is an index probe on (account_id, owner), however many
-- deals or leads the account has.
DROP INDEX crm.opportunity_account_id_idx;
CREATE INDEX opportunity_account_id_owner_idx ON crm.opportunity (account_id, owner);
COMMENT ON INDEX crm.opportunity_account_id_owner_idx IS 'Deals by account and owner: the sharing rule (may a role see this account?) is one index probe, however many deals the account has';
DROP INDEX crm.lead_account_id_idx;
CREATE INDEX lead_account_id_owner_idx ON crm.lead (account_id, owner) WHERE account_id IS NOT NULL;
COMMENT ON INDEX crm.lead_account_id_owner_idx IS 'Leads by account and owner: the sharing rule (may a role see this account?) is one index probe, however many leads the account has';

-- Deleting an account, contact or price book finds what points at it by index.
CREATE INDEX contact_account_id_idx ON crm.contact (account_id) WHERE account_id IS NOT NULL;
COMMENT ON INDEX crm.contact_account_id_idx IS 'The contacts whose primary account is a given account: deleting an account clears them without reading every contact';
CREATE INDEX quote_account_id_idx ON crm.quote (account_id) WHERE account_id IS NOT NULL;
COMMENT ON INDEX crm.quote_account_id_idx IS 'Quotes by account: deleting an account checks its quotes without reading every quote';
CREATE INDEX quote_contact_id_idx ON crm.quote (contact_id) WHERE contact_id IS NOT NULL;
COMMENT ON INDEX crm.quote_contact_id_idx IS 'Quotes by contact: deleting a contact clears it from its quotes without reading every quote';
CREATE INDEX quote_price_book_id_idx ON crm.quote (price_book_id) WHERE price_book_id IS NOT NULL;
COMMENT ON INDEX crm.quote_price_book_id_idx IS 'Quotes by price book: deleting a price book checks its quotes without reading every quote';
CREATE INDEX sales_order_contact_id_idx ON crm.sales_order (contact_id) WHERE contact_id IS NOT NULL;
COMMENT ON INDEX crm.sales_order_contact_id_idx IS 'Orders by contact: deleting a contact clears it from its orders without reading every order';

-- Order numbers are drawn by crm.create_order() as the extension owner; the
-- sequence's position is the company-wide order count: admins only.
REVOKE USAGE ON SEQUENCE crm.sales_order_number_seq FROM crm_manager, crm_sales;

-- Deleting a contact clears it from every quote, whatever its status; a
-- cancellation is recorded once.
COMMENT ON FUNCTION crm.quote_guard() IS 'BEFORE INSERT OR UPDATE row trigger on crm.quote: new quotes are Draft and unsynced, status moves only along crm.quote_transition (approval states only through the quote functions), a quote over the approval threshold is presented only after approval, and only a Draft quote''s content can change (except that deleting a contact clears it from every quote)';
COMMENT ON FUNCTION crm.cancel_order(bigint, text) IS 'Cancels a Draft or Activated order; an Activated order''s reserved stock is returned; records cancelled_at/by and the reason, once: an order already Cancelled is refused and its record stays';
-- refs: end

-- lead: a deal names only a contact the caller sees (conversion reuses only
-- visible contacts since 0.5, so it needs no exception); the sharing
-- functions have no conversion exception any more
ALTER POLICY crm_team_insert ON crm.opportunity
    WITH CHECK (owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))
                AND crm.may_reference_account(account_id) AND crm.may_reference_contact(contact_id));
ALTER POLICY crm_team_update ON crm.opportunity
    WITH CHECK (owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))
                AND crm.may_reference_account(account_id) AND crm.may_reference_contact(contact_id));
COMMENT ON FUNCTION crm.may_reference_account(bigint) IS 'True when the calling role sees the account: the condition for pointing an opportunity, a contact, a quote or an order at it';
COMMENT ON FUNCTION crm.may_reference_contact(bigint) IS 'True when the calling role sees the contact: the condition for linking it to an account and for naming it on an opportunity, a quote or an order';
COMMENT ON FUNCTION crm.may_link_account(bigint) IS 'True when the calling role''s team owns the account: the condition for adding a contact link to it';

-- lead (last, after every column this script adds): ids are the database's to give -- INSERT and UPDATE granted on every
-- column but the identity (and generated) ones (as in 99_privileges.sql)
DO $ids$
DECLARE
    g record;
    cols text;
BEGIN
    FOR g IN
        SELECT c.oid::pg_catalog.regclass AS rel, a.privilege_type AS priv,
               pg_catalog.quote_ident(r.rolname) AS grantee
          FROM pg_catalog.pg_class AS c
         CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) AS a
          JOIN pg_catalog.pg_roles AS r ON r.oid OPERATOR(pg_catalog.=) a.grantee
         WHERE c.relnamespace OPERATOR(pg_catalog.=) 'crm'::pg_catalog.regnamespace
           AND c.relkind OPERATOR(pg_catalog.=) 'r'
           AND a.privilege_type OPERATOR(pg_catalog.=) ANY (ARRAY['INSERT', 'UPDATE'])
           AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
         ORDER BY 1, 2, 3
    LOOP
        SELECT pg_catalog.string_agg(pg_catalog.quote_ident(att.attname), ', ' ORDER BY att.attnum)
          INTO cols
          FROM pg_catalog.pg_attribute AS att
         WHERE att.attrelid OPERATOR(pg_catalog.=) g.rel
           AND att.attnum OPERATOR(pg_catalog.>) 0 AND NOT att.attisdropped
           AND att.attidentity OPERATOR(pg_catalog.=) '' AND att.attgenerated OPERATOR(pg_catalog.=) '';
        EXECUTE pg_catalog.format('REVOKE %s ON %s FROM %s', g.priv, g.rel, g.grantee);
        EXECUTE pg_catalog.format('GRANT %s (%s) ON %s TO %s', g.priv, cols, g.rel, g.grantee);
    END LOOP;
END
$ids$;
