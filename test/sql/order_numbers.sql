-- order_numbers: crm.create_order() numbers orders SO-000001, SO-000002, ...
-- from crm.sales_order_number_seq, drawn as the extension owner.  No
-- sales, manager or analyst role has any right on any sequence of the
-- extension: a sequence's position is a company-wide count (of orders, of
-- deals, ...) that row-level security would otherwise leak, and nextval
-- would let a rep burn order numbers.  Admins, who see every row, may use
-- the order number sequence.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_num_rep, regress_num_boss, regress_num_analyst, regress_num_admin;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_num_rep IN ROLE crm_sales;
CREATE ROLE regress_num_boss IN ROLE crm_manager;
CREATE ROLE regress_num_analyst IN ROLE crm_analyst;
CREATE ROLE regress_num_admin IN ROLE crm_admin;

-- A rep and a manager make orders: numbered in sequence; a number given is kept.
CREATE FUNCTION pg_temp.accepted_quote() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    a bigint;
    o bigint;
    q bigint;
BEGIN
    INSERT INTO crm.account (name) VALUES ('Acme') RETURNING id INTO a;
    INSERT INTO crm.opportunity (name, account_id) VALUES ('Deal', a) RETURNING id INTO o;
    q := crm.create_quote(o);
    UPDATE crm.quote SET status = 'Presented' WHERE id = q;
    UPDATE crm.quote SET status = 'Accepted' WHERE id = q;
    RETURN q;
END
$$;
SET ROLE regress_num_rep;
SELECT crm.create_order(pg_temp.accepted_quote()) AS o \gset
SELECT order_number FROM crm.sales_order WHERE id = :o;
SELECT crm.create_order(pg_temp.accepted_quote()) AS o \gset
SELECT order_number FROM crm.sales_order WHERE id = :o;
SELECT crm.create_order(pg_temp.accepted_quote(), 'PO-77') AS o \gset
SELECT order_number FROM crm.sales_order WHERE id = :o;
SET ROLE regress_num_boss;
SELECT crm.create_order(pg_temp.accepted_quote()) AS o \gset
SELECT order_number FROM crm.sales_order WHERE id = :o;
RESET ROLE;

-- Every sequence of the extension (the order numbers and every identity
-- column): each of nextval, currval, setval and pg_sequence_last_value is
-- refused (42501) for a rep, a manager and an analyst, or reveals nothing
-- (PostgreSQL 18's pg_sequence_last_value returns NULL to a role without
-- rights on the sequence where 15 refuses).
CREATE TEMP TABLE seq_calls (role name, seq regclass, call text, sqlstate text);
GRANT ALL ON seq_calls TO PUBLIC;
CREATE FUNCTION pg_temp.try_sequences() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    s regclass;
    c text;
    v text;
BEGIN
    FOR s IN SELECT c.oid::regclass FROM pg_class AS c
              WHERE c.relnamespace = 'crm'::regnamespace AND c.relkind = 'S' ORDER BY c.relname
    LOOP
        FOREACH c IN ARRAY ARRAY['nextval(%L::regclass)', 'currval(%L::regclass)',
                                 'setval(%L::regclass, 1000)', 'pg_sequence_last_value(%L::regclass)']
        LOOP
            BEGIN
                EXECUTE 'SELECT ' || format(c, s) INTO v;
                INSERT INTO seq_calls VALUES (current_user, s, split_part(c, '(', 1),
                                              CASE WHEN v IS NULL THEN 'no value' ELSE 'ok' END);
            EXCEPTION WHEN OTHERS THEN
                INSERT INTO seq_calls VALUES (current_user, s, split_part(c, '(', 1), SQLSTATE);
            END;
        END LOOP;
    END LOOP;
END
$$;
SET ROLE regress_num_rep;
SELECT pg_temp.try_sequences();
SET ROLE regress_num_boss;
SELECT pg_temp.try_sequences();
SET ROLE regress_num_analyst;
SELECT pg_temp.try_sequences();
RESET ROLE;
SELECT count(DISTINCT seq) > 20 AS many_sequences, count(*) AS calls,
       count(*) FILTER (WHERE sqlstate = '42501' OR (sqlstate = 'no value' AND call = 'pg_sequence_last_value')) AS refused
  FROM seq_calls;
SELECT role, seq, call, sqlstate FROM seq_calls
 WHERE sqlstate <> '42501' AND NOT (sqlstate = 'no value' AND call = 'pg_sequence_last_value') ORDER BY 1, 2, 3;
-- and in the catalog: no right on any sequence for those roles
SELECT r.rolname, c.oid::regclass AS seq, p.privilege
  FROM pg_class AS c, (VALUES ('crm_sales'), ('crm_manager'), ('crm_analyst')) AS r (rolname),
       (VALUES ('USAGE'), ('SELECT'), ('UPDATE')) AS p (privilege)
 WHERE c.relnamespace = 'crm'::regnamespace AND c.relkind = 'S'
   AND has_sequence_privilege(r.rolname, c.oid, p.privilege)
 ORDER BY 1, 2, 3;

-- The failed attempts burnt no number: the next order is SO-000004.
SET ROLE regress_num_rep;
SELECT crm.create_order(pg_temp.accepted_quote()) AS o \gset
SELECT order_number FROM crm.sales_order WHERE id = :o;
RESET ROLE;
-- An admin reads the position (admins see every order anyway).
SET ROLE regress_num_admin;
SELECT pg_sequence_last_value('crm.sales_order_number_seq');
RESET ROLE;

-- A given number of the drawn form (SO-<digits>) is refused (22023): it
-- would take the number of someone else's later order (whose
-- crm.create_order() would fail with 23505), and the unique error would
-- tell a rep which numbers exist, i.e. the company's order count.  Other
-- numbers are the caller's to give.
SET ROLE regress_num_rep;
SELECT crm.create_order(pg_temp.accepted_quote(), 'SO-000005');
SELECT crm.create_order(pg_temp.accepted_quote(), 'SO-000001');
SELECT crm.create_order(pg_temp.accepted_quote(), 'SO-9');
SELECT crm.create_order(pg_temp.accepted_quote(), 'SO-PO-4711') AS o \gset
SELECT order_number FROM crm.sales_order WHERE id = :o;
-- the next drawn number is free
SELECT crm.create_order(pg_temp.accepted_quote()) AS o \gset
SELECT order_number FROM crm.sales_order WHERE id = :o;
RESET ROLE;

DROP EXTENSION crm CASCADE;
DROP ROLE regress_num_rep, regress_num_boss, regress_num_analyst, regress_num_admin;
