-- append_batches: the change log's and the opportunity history's entries of
-- a statement are stored in batches of 1,000 rows (append_rows.c); a
-- statement of 2,500 rows crosses two batch boundaries and must leave what
-- one row at a time leaves: one entry per row, in the order of the rows,
-- each a DBA's AFTER row trigger sees once, each checked against a DBA's
-- CHECK constraint (a failing row stops the statement, nothing is kept).
-- The changes are jsonb built in C: the same values jsonb_in() would give.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;
\set VERBOSITY terse

INSERT INTO crm.account (name) VALUES ('Batch Account');

-- A DBA's AFTER row trigger on the change log, counting the entries it sees.
CREATE TABLE public.seen_entries (entry_id bigint PRIMARY KEY);
CREATE FUNCTION public.see_entry() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.seen_entries VALUES (NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER see_entry AFTER INSERT ON crm.change_log FOR EACH ROW EXECUTE FUNCTION public.see_entry();

-- 2,500 deals in one statement: 2,500 INSERT entries and 2,500 history
-- entries, the entries' ids rising with the deals' ids, each seen once.
INSERT INTO crm.opportunity (name, account_id, amount, close_date)
SELECT 'Batch ' || g, (SELECT id FROM crm.account WHERE name = 'Batch Account'), g, date '2027-03-01'
  FROM generate_series(1, 2500) g;
SELECT count(*) AS entries, count(DISTINCT row_id) AS deals,
       bool_and(changes = '{}'::jsonb) AS empty_changes
  FROM crm.change_log WHERE table_name = 'crm.opportunity'::regclass AND operation = 'INSERT';
SELECT count(*) = 0 AS in_deal_order
  FROM (SELECT row_id < lag(row_id) OVER (ORDER BY id) AS out_of_order
          FROM crm.change_log WHERE table_name = 'crm.opportunity'::regclass) AS e
 WHERE out_of_order;
SELECT (SELECT count(*) FROM public.seen_entries) AS seen,
       (SELECT count(*) FROM crm.change_log WHERE table_name = 'crm.opportunity'::regclass) AS deal_entries;
SELECT count(*) AS history_entries FROM crm.opportunity_history h
  JOIN crm.opportunity o ON o.id = h.opportunity_id WHERE o.name LIKE 'Batch %';

-- An UPDATE of the 2,500: one entry each, old and new amount as strings
-- (their text), the stage unchanged and so not shown.
UPDATE crm.opportunity SET amount = amount + 0.5 WHERE name LIKE 'Batch %';
SELECT count(*) AS entries,
       count(*) FILTER (WHERE changes->'amount'->>'new' = ((changes->'amount'->>'old')::numeric + 0.5)::text) AS amount_pairs,
       count(*) FILTER (WHERE jsonb_typeof(changes->'amount'->'old') = 'string') AS as_strings,
       count(*) FILTER (WHERE changes ? 'stage') AS with_stage
  FROM crm.change_log WHERE table_name = 'crm.opportunity'::regclass AND operation = 'UPDATE';

-- A value longer than 2,000 bytes is kept bounded: its first characters, its
-- length as a number and its SHA-256, the same object the JSON text gave.
UPDATE crm.opportunity SET description = repeat('x', 2500) WHERE name = 'Batch 7';
SELECT jsonb_typeof(changes->'description'->'new') AS kept_as,
       jsonb_typeof(changes->'description'->'new'->'bytes') AS bytes_as,
       changes->'description'->'new'->'bytes' AS bytes,
       length(changes->'description'->'new'->>'truncated') AS kept_chars,
       changes->'description'->'new'->>'sha256' = encode(sha256(convert_to(repeat('x', 2500), 'UTF8')), 'hex') AS hash_matches,
       changes->'description'->'old' = 'null'::jsonb AS old_null
  FROM crm.change_log WHERE table_name = 'crm.opportunity'::regclass AND operation = 'UPDATE'
   AND changes ? 'description';

-- A DBA's CHECK constraint that the 1,700th entry of a statement breaks (in
-- the second batch): the statement fails with 23514, no entry and no deal
-- change is kept.
SELECT max(id) + 1700 AS bad_id FROM crm.change_log \gset
ALTER TABLE crm.change_log ADD CONSTRAINT not_that_entry CHECK (id <> :bad_id) NOT VALID;
SELECT count(*) AS entries_before FROM crm.change_log \gset
UPDATE crm.opportunity SET amount = amount + 1 WHERE name LIKE 'Batch %';
SELECT count(*) - :entries_before AS entries_added FROM crm.change_log;
SELECT count(*) AS deals_changed FROM crm.opportunity
 WHERE name LIKE 'Batch %' AND amount <> substring(name FROM 7)::numeric + 0.5;
ALTER TABLE crm.change_log DROP CONSTRAINT not_that_entry;

DROP TRIGGER see_entry ON crm.change_log;
DROP FUNCTION public.see_entry();
DROP TABLE public.seen_entries;
