-- constraints: bad data is rejected by the database with a clear error and a
-- standard SQLSTATE (23502 not null, 23503 foreign key, 23514 check, 22P02
-- invalid text for a type).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;
-- Terse errors: the failing row would show timestamps.
\set VERBOSITY terse
INSERT INTO crm.account (name) VALUES ('Hooli');

-- Required names: missing or blank.
INSERT INTO crm.lead (name) VALUES (NULL);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.lead (name) VALUES ('   ');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.account (name) VALUES ('');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.contact (name) VALUES (E'\t');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.opportunity (name, account_id) VALUES (' ', 1);
\echo :LAST_ERROR_SQLSTATE

-- E-mail addresses need a local part, one @ and a dotted domain.
INSERT INTO crm.lead (name, email) VALUES ('Gavin', 'gavin@hooli.example');
INSERT INTO crm.lead (name, email) VALUES ('Gavin', 'gavin.hooli.example');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.lead (name, email) VALUES ('Gavin', 'gavin@hooli');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.contact (name, email) VALUES ('Gavin', 'gavin @hooli.example');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.contact (name, email) VALUES ('Gavin', 'a@b@hooli.example');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.contact (name, email) VALUES ('Gavin', repeat('x', 250) || '@hooli.example');
\echo :LAST_ERROR_SQLSTATE

-- Web addresses: scheme optional, a dotted host, no spaces.
INSERT INTO crm.account (name, website) VALUES ('Pied Piper', 'https://piedpiper.example/about?x=1');
INSERT INTO crm.account (name, website) VALUES ('Raviga', 'raviga.example');
INSERT INTO crm.account (name, website) VALUES ('Bad', 'not a url');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.account (name, website) VALUES ('Bad', 'ftp://files.example');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.lead (name, website) VALUES ('Bad', 'localhost');
\echo :LAST_ERROR_SQLSTATE

-- Phone numbers as people write them, with an optional extension.
INSERT INTO crm.contact (name, phone) VALUES ('Ok 1', '+1 (555) 010-0199'), ('Ok 2', '030/1234567 ext. 12'), ('Ok 3', '555.0100 x7');
INSERT INTO crm.contact (name, phone) VALUES ('Bad', 'call me');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.contact (name, phone) VALUES ('Bad', '12');
\echo :LAST_ERROR_SQLSTATE

-- Status and source come from fixed lists.
INSERT INTO crm.lead (name, status) VALUES ('Bad', 'Hot');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.lead (name, source) VALUES ('Bad', 'carrier pigeon');
\echo :LAST_ERROR_SQLSTATE

-- Amount >= 0, probability 0-100.
INSERT INTO crm.opportunity (name, account_id, amount) VALUES ('Bad', 1, -1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.opportunity (name, account_id, probability) VALUES ('Bad', 1, 101);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.opportunity (name, account_id, probability) VALUES ('Bad', 1, -0.5);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.opportunity (name, account_id, amount, probability) VALUES ('Fine', 1, 0, 100);
-- An opportunity needs an account.
INSERT INTO crm.opportunity (name) VALUES ('Orphan');
\echo :LAST_ERROR_SQLSTATE

-- Stage probabilities are percentages too.
INSERT INTO crm.opportunity_stage (name, sort_order, probability) VALUES ('Bad', 99, 150);
\echo :LAST_ERROR_SQLSTATE

-- The same rules hold for COPY.
COPY crm.lead (name, email) FROM stdin;
Ok Copy	ok@copy.example
Bad Copy	not-an-email
\.
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS copied FROM crm.lead WHERE name LIKE '% Copy';

-- And for UPDATE.
UPDATE crm.lead SET email = 'broken' WHERE name = 'Gavin';
\echo :LAST_ERROR_SQLSTATE
SELECT name, email FROM crm.lead ORDER BY id;
