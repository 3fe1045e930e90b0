-- timestamps: created_at and updated_at are set by the database (a C
-- trigger), whatever the client sends, on INSERT, COPY and UPDATE.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;

-- A client-supplied created_at / updated_at is replaced by the transaction time.
BEGIN;
INSERT INTO crm.lead (name, created_at, updated_at)
VALUES ('Richard', '2001-01-01', '2001-01-01');
SELECT created_at = now() AS created_now, updated_at = now() AS updated_now FROM crm.lead;
COMMIT;

-- COPY cannot backdate either.
COPY crm.account (name, created_at, updated_at) FROM stdin;
Aviato	1999-12-31 00:00:00+00	1999-12-31 00:00:00+00
\.
SELECT name, created_at > '2020-01-01' AS recent FROM crm.account;

-- On UPDATE created_at stays, updated_at moves, and neither can be set.
SELECT created_at AS first_created FROM crm.lead \gset
BEGIN;
UPDATE crm.lead SET remarks = 'called back', created_at = '2001-01-01', updated_at = '2001-01-01';
SELECT created_at = :'first_created' AS created_kept, updated_at = now() AS updated_now FROM crm.lead;
COMMIT;

-- Every table of the core model is stamped.
SELECT tgrelid::regclass AS stamped FROM pg_trigger WHERE tgname = 'stamp_row' ORDER BY tgrelid::regclass::text;
