-- crm 0.2 -> 0.3: ALTER EXTENSION crm UPDATE TO '0.3'.
-- Every schema change made in sql/install/ since 0.2 is repeated here, so
-- that an updated database has the same objects as a fresh install
-- (test/scripts/upgrade.sh checks it).
--
-- 0.3 refuses NaN in every stored numeric column that accepted it: numeric
-- NaN sorts above every number, so a check such as "list_price >= 0" let it
-- through.  The checks of those columns now also exclude NaN (same names),
-- and the columns that had no check get one (<table>_<column>_not_nan).
--
-- The aggregate tables' primary keys are rebuilt with their text (or enum)
-- column last, and the tables get fill factor 20 (at the end of this
-- script); their rows are unchanged.
--
-- Existing NaN values: this update does not change any value.  Before it
-- alters a table it looks for NaN in every column it is about to check; if
-- there is any, it refuses (SQLSTATE 23514, check_violation) and lists every
-- such row (table, id, column), and nothing is changed (the update runs in
-- one transaction).  Correct those rows (a NaN price, cost or stock has no
-- right value that the database could guess), then run ALTER EXTENSION crm
-- UPDATE again.

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION crm UPDATE TO '0.3'" to load this file. \quit

-- Refuse, listing the rows, when a column to be checked holds NaN.
DO $nan$
DECLARE
    c record;
    ids text;
    found text[] := ARRAY[]::text[];
BEGIN
    FOR c IN
        SELECT * FROM (VALUES
            ('product', 'list_price'), ('product', 'inventory'),
            ('price_book_entry', 'unit_price'),
            ('opportunity_line_item', 'quantity'), ('opportunity_line_item', 'unit_price'),
            ('quote', 'subtotal'),
            ('quote_line_item', 'quantity'), ('quote_line_item', 'unit_price'),
            ('sales_order', 'subtotal'), ('sales_order', 'discount_amount'),
            ('sales_order', 'tax'), ('sales_order', 'total'),
            ('sales_order_item', 'quantity'), ('sales_order_item', 'unit_price'),
            ('sales_order_item', 'reserved_quantity'),
            ('campaign', 'budgeted_cost'), ('campaign', 'actual_cost'), ('campaign', 'expected_revenue')
        ) AS v (tab, col)
    LOOP
        EXECUTE pg_catalog.format(
            'SELECT pg_catalog.string_agg(t.id::pg_catalog.text, '', '' ORDER BY t.id) FROM crm.%I AS t'
            ' WHERE t.%I OPERATOR(pg_catalog.=) ''NaN''::pg_catalog.numeric', c.tab, c.col)
          INTO ids;
        IF ids IS NOT NULL THEN
            found := found OPERATOR(pg_catalog.||) pg_catalog.format('crm.%s.%s = NaN in id %s', c.tab, c.col, ids);
        END IF;
    END LOOP;
    IF pg_catalog.cardinality(found) OPERATOR(pg_catalog.>) 0 THEN
        RAISE EXCEPTION 'crm 0.3 refuses NaN in numeric columns, and this database holds NaN: %',
                        pg_catalog.array_to_string(found, '; ')
              USING ERRCODE = 'check_violation',
                    HINT = 'Set those values to real numbers, then run ALTER EXTENSION crm UPDATE again; nothing was changed.';
    END IF;
END
$nan$;

ALTER TABLE crm.product
    DROP CONSTRAINT product_list_price_not_negative,
    ADD CONSTRAINT product_list_price_not_negative CHECK (list_price OPERATOR(pg_catalog.>=) 0
        AND list_price OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    DROP CONSTRAINT product_inventory_not_negative,
    ADD CONSTRAINT product_inventory_not_negative CHECK (inventory OPERATOR(pg_catalog.>=) 0
        AND inventory OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric);

ALTER TABLE crm.price_book_entry
    DROP CONSTRAINT price_book_entry_unit_price_not_negative,
    ADD CONSTRAINT price_book_entry_unit_price_not_negative CHECK (unit_price OPERATOR(pg_catalog.>=) 0
        AND unit_price OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric);

ALTER TABLE crm.opportunity_line_item
    DROP CONSTRAINT opportunity_line_item_quantity_positive,
    ADD CONSTRAINT opportunity_line_item_quantity_positive CHECK (quantity OPERATOR(pg_catalog.>) 0
        AND quantity OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    DROP CONSTRAINT opportunity_line_item_unit_price_not_negative,
    ADD CONSTRAINT opportunity_line_item_unit_price_not_negative CHECK (unit_price OPERATOR(pg_catalog.>=) 0
        AND unit_price OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric);

ALTER TABLE crm.quote
    ADD CONSTRAINT quote_subtotal_not_nan CHECK (subtotal OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric);

ALTER TABLE crm.quote_line_item
    DROP CONSTRAINT quote_line_item_quantity_positive,
    ADD CONSTRAINT quote_line_item_quantity_positive CHECK (quantity OPERATOR(pg_catalog.>) 0
        AND quantity OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    DROP CONSTRAINT quote_line_item_unit_price_not_negative,
    ADD CONSTRAINT quote_line_item_unit_price_not_negative CHECK (unit_price OPERATOR(pg_catalog.>=) 0
        AND unit_price OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric);

ALTER TABLE crm.sales_order
    ADD CONSTRAINT sales_order_subtotal_not_nan CHECK (subtotal OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    ADD CONSTRAINT sales_order_discount_amount_not_nan CHECK (discount_amount OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    ADD CONSTRAINT sales_order_tax_not_nan CHECK (tax OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    ADD CONSTRAINT sales_order_total_not_nan CHECK (total OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric);

ALTER TABLE crm.sales_order_item
    DROP CONSTRAINT sales_order_item_quantity_positive,
    ADD CONSTRAINT sales_order_item_quantity_positive CHECK (quantity OPERATOR(pg_catalog.>) 0
        AND quantity OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    DROP CONSTRAINT sales_order_item_unit_price_not_negative,
    ADD CONSTRAINT sales_order_item_unit_price_not_negative CHECK (unit_price OPERATOR(pg_catalog.>=) 0
        AND unit_price OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    ADD CONSTRAINT sales_order_item_reserved_quantity_not_nan
        CHECK (reserved_quantity OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric);

ALTER TABLE crm.campaign
    DROP CONSTRAINT campaign_budgeted_cost_not_negative,
    ADD CONSTRAINT campaign_budgeted_cost_not_negative CHECK (budgeted_cost OPERATOR(pg_catalog.>=) 0
        AND budgeted_cost OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    DROP CONSTRAINT campaign_actual_cost_not_negative,
    ADD CONSTRAINT campaign_actual_cost_not_negative CHECK (actual_cost OPERATOR(pg_catalog.>=) 0
        AND actual_cost OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    DROP CONSTRAINT campaign_expected_revenue_not_negative,
    ADD CONSTRAINT campaign_expected_revenue_not_negative CHECK (expected_revenue OPERATOR(pg_catalog.>=) 0
        AND expected_revenue OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric);

-- The aggregates' primary keys put the text (or enum) column last, after the
-- stripe, so that a writer looking up its stripe row compares integers first.
ALTER TABLE crm.pipeline_aggregate
    DROP CONSTRAINT pipeline_aggregate_pkey,
    ADD CONSTRAINT pipeline_aggregate_pkey PRIMARY KEY (owner, close_month, stripe, stage);
ALTER TABLE crm.account_aggregate
    DROP CONSTRAINT account_aggregate_pkey,
    ADD CONSTRAINT account_aggregate_pkey PRIMARY KEY (account_id, owner, stripe, stage);
ALTER TABLE crm.campaign_opportunity_aggregate
    DROP CONSTRAINT campaign_opportunity_aggregate_pkey,
    ADD CONSTRAINT campaign_opportunity_aggregate_pkey PRIMARY KEY (campaign_id, owner, stripe, stage);
ALTER TABLE crm.campaign_lead_aggregate
    DROP CONSTRAINT campaign_lead_aggregate_pkey,
    ADD CONSTRAINT campaign_lead_aggregate_pkey PRIMARY KEY (campaign_id, owner, stripe, status);
ALTER TABLE crm.pipeline_aggregate SET (fillfactor = 20);
ALTER TABLE crm.account_aggregate SET (fillfactor = 20);
ALTER TABLE crm.campaign_opportunity_aggregate SET (fillfactor = 20);
ALTER TABLE crm.campaign_lead_aggregate SET (fillfactor = 20);
