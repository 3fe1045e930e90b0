-- sharing_cost: the sharing check a policy runs for every deal written
-- (crm.may_reference_account(): may the writer point at this account?)
-- reads a fixed number of index entries per row, however many deals other
-- owners have on the account: one probe of crm.opportunity (account_id,
-- owner) per member of the writer's team, never a scan of the account's
-- deals.  Measured without timing, by the rows PostgreSQL's statistics
-- count as read from crm.opportunity (sequential and index scans) while a
-- rep inserts 10 deals on an account with 2,000 deals of another owner.
-- (bench/sharing.sh measures the time.)
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_shr_big, regress_shr_rep, regress_shr_boss;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_shr_big IN ROLE crm_sales;
CREATE ROLE regress_shr_rep IN ROLE crm_sales;
CREATE ROLE regress_shr_boss IN ROLE crm_manager;
INSERT INTO crm.reporting_line (member, manager) VALUES ('regress_shr_rep', 'regress_shr_boss');

-- Account 1 belongs to regress_shr_big, who has 2,000 deals on it; the rep
-- sees it through one deal of its own (the newest, found last by a scan).
INSERT INTO crm.account (name, owner) VALUES ('Big Shared Corp', 'regress_shr_big');
INSERT INTO crm.opportunity (name, account_id, owner)
SELECT 'Big deal ' || g, 1, 'regress_shr_big' FROM generate_series(1, 2000) AS g;
INSERT INTO crm.opportunity (name, account_id, owner) VALUES ('Rep deal', 1, 'regress_shr_rep');
ANALYZE crm.account, crm.opportunity, crm.lead;

-- rows read from crm.opportunity so far, by any scan (statistics flushed first)
CREATE FUNCTION pg_temp.opportunity_rows_read() RETURNS bigint LANGUAGE sql AS $$
    SELECT t.seq_tup_read + coalesce(sum(i.idx_tup_read), 0)
      FROM pg_stat_user_tables AS t LEFT JOIN pg_stat_user_indexes AS i USING (relid)
     WHERE t.relid = 'crm.opportunity'::regclass
     GROUP BY t.seq_tup_read
$$;
CREATE TEMP TABLE reads (step text PRIMARY KEY, n bigint);
GRANT ALL ON reads TO PUBLIC;

-- A rep inserts 10 deals on the shared account.
SELECT pg_stat_force_next_flush();
INSERT INTO reads SELECT 'rep before', pg_temp.opportunity_rows_read();
SET ROLE regress_shr_rep;
INSERT INTO crm.opportunity (name, account_id) SELECT 'Rep deal ' || g, 1 FROM generate_series(1, 10) AS g;
RESET ROLE;
SELECT pg_stat_force_next_flush();
INSERT INTO reads SELECT 'rep after', pg_temp.opportunity_rows_read();

-- Its manager does the same: one probe per team member (itself and the rep).
SELECT pg_stat_force_next_flush();
INSERT INTO reads SELECT 'boss before', pg_temp.opportunity_rows_read();
SET ROLE regress_shr_boss;
INSERT INTO crm.opportunity (name, account_id, owner)
SELECT 'Boss deal ' || g, 1, 'regress_shr_rep' FROM generate_series(1, 10) AS g;
RESET ROLE;
SELECT pg_stat_force_next_flush();
INSERT INTO reads SELECT 'boss after', pg_temp.opportunity_rows_read();

-- Rows read per deal written: a handful, not the account's 2,000 deals.
SELECT w.who, (a.n - b.n) / 10 < 20 AS few_rows_per_deal
  FROM (VALUES ('rep'), ('boss')) AS w (who)
  JOIN reads AS b ON b.step = w.who || ' before'
  JOIN reads AS a ON a.step = w.who || ' after'
 ORDER BY 1;
SELECT count(*) AS deals FROM crm.opportunity WHERE account_id = 1;

-- The other end of every foreign key into accounts, contacts and price books
-- has an index, so deleting one of those rows probes instead of scanning.
SELECT c.conrelid::regclass AS referencing_table, a.attname AS referencing_column, c.confrelid::regclass AS referenced_table
  FROM pg_constraint AS c
  JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
 WHERE c.contype = 'f' AND c.connamespace = 'crm'::regnamespace
   AND c.confrelid IN ('crm.account'::regclass, 'crm.contact'::regclass, 'crm.price_book'::regclass)
   AND NOT EXISTS (SELECT 1 FROM pg_index AS i WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1])
 ORDER BY 1, 2;

DROP EXTENSION crm CASCADE;
DROP ROLE regress_shr_big, regress_shr_rep, regress_shr_boss;
