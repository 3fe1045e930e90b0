-- test/invariants.sql: the data invariants of the crm extension, as queries
-- that return one row per violation.  Nothing printed: every invariant holds.
--
--   psql -X -At -F '|' -v ON_ERROR_STOP=1 -d DB -f test/invariants.sql
--
-- Each row is "invariant|detail": the name of the invariant that is broken
-- and the offending row(s) as JSON.  Run it as a superuser (or the extension
-- owner): under row-level security a role would check only what it sees.
--
-- Stock conservation needs to know the stock before any order was activated:
-- when a table crm_test.stock_baseline (product_id bigint, inventory numeric)
-- exists (the test that loaded the products fills it), the second query
-- checks, for every product in it, baseline = current inventory + what the
-- orders that are not cancelled hold reserved.  Without the table that
-- check is skipped; the others do not need it.
--
-- Used by test/t/010_crash_recovery.pl (after each crash and restart) and
-- test/scripts/stress_aggregates.sh (after the load).

SELECT invariant, detail FROM (

    -- 1. The maintained aggregates equal a fresh GROUP BY of the base tables
    --    (crm.verify_aggregates() returns one row per group and measure that
    --    differs).
    SELECT 'aggregates exact (crm.verify_aggregates() empty)' AS invariant,
           row_to_json(v)::text AS detail
      FROM crm.verify_aggregates() v

    UNION ALL
    -- 2. Duplicate detection: no owner has two accounts with one company key
    --    (crm.company_match_key of their names).  Owners who cannot see
    --    each other's accounts each get their own (a conversion never
    --    attaches to a hidden match, README "Lead conversion").
    SELECT 'one account per company key and owner',
           json_build_object('company_key', k.company_key, 'owner', k.owner, 'accounts', k.ids)::text
      FROM (SELECT crm.company_match_key(name) AS company_key, owner::text AS owner,
                   array_agg(id ORDER BY id) AS ids
              FROM crm.account AS a
             -- a private customer's account (from a lead without a company)
             -- is never matched by name: two Maria Garcias are two accounts
             WHERE NOT EXISTS (SELECT 1 FROM crm.lead AS l
                                WHERE l.account_id = a.id AND l.company IS NULL)
             GROUP BY 1, 2
            HAVING count(*) > 1) k

    UNION ALL
    -- 3. Duplicate detection: no owner has two contacts with one e-mail
    --    address (ignoring case) on one primary account.  (A contact the
    --    converting rep sees but may not link to a deal's account gets a
    --    new contact on that account.)
    SELECT 'one contact per e-mail, owner and account',
           json_build_object('email', e.email, 'owner', e.owner, 'contacts', e.ids)::text
      FROM (SELECT lower(email) AS email, owner::text AS owner, array_agg(id ORDER BY id) AS ids
              FROM crm.contact
             WHERE email IS NOT NULL
             GROUP BY 1, 2, account_id
            HAVING count(*) > 1) e

    UNION ALL
    -- 4. No half conversion, lead side: a Converted lead has its conversion
    --    time, an existing account, an existing contact that is on that
    --    account (as its primary account or through crm.account_contact) and
    --    an existing opportunity made from this lead on that account with
    --    that contact.  (Leads converted with create_opportunity => false
    --    would have none; the tests do not use that option.  Later edits
    --    the README allows -- clearing the opportunity's lead_id, moving it
    --    to another account or contact -- would show here too; the
    --    workloads this file checks make none.)
    SELECT 'converted lead has account, contact and opportunity',
           json_build_object('lead', l.id, 'account', l.account_id, 'contact', l.contact_id,
                             'opportunity', l.opportunity_id, 'opportunity_lead', o.lead_id,
                             'opportunity_account', o.account_id)::text
      FROM crm.lead l
      LEFT JOIN crm.account a ON a.id = l.account_id
      LEFT JOIN crm.contact c ON c.id = l.contact_id
      LEFT JOIN crm.opportunity o ON o.id = l.opportunity_id
     WHERE l.status = 'Converted'
       AND (a.id IS NULL OR c.id IS NULL OR o.id IS NULL OR l.converted_at IS NULL
            OR o.lead_id IS DISTINCT FROM l.id
            OR o.account_id IS DISTINCT FROM l.account_id
            OR o.contact_id IS DISTINCT FROM l.contact_id
            OR NOT (c.account_id = l.account_id
                    OR EXISTS (SELECT 1 FROM crm.account_contact ac
                                WHERE ac.account_id = l.account_id AND ac.contact_id = c.id)))

    UNION ALL
    -- 5. No half conversion, the other way: a lead that is not Converted
    --    carries no conversion record (account, contact, opportunity, time).
    SELECT 'no conversion record on a lead that is not Converted',
           json_build_object('lead', id, 'status', status)::text
      FROM crm.lead
     WHERE status <> 'Converted'
       AND (account_id IS NOT NULL OR contact_id IS NOT NULL
            OR opportunity_id IS NOT NULL OR converted_at IS NOT NULL)

    UNION ALL
    -- 6. No opportunity claims a lead that is not Converted or that does
    --    not point back to it.
    SELECT 'an opportunity''s source lead is Converted and points back to it',
           json_build_object('opportunity', o.id, 'lead', o.lead_id, 'lead_status', l.status,
                             'lead_opportunity', l.opportunity_id)::text
      FROM crm.opportunity o
      LEFT JOIN crm.lead l ON l.id = o.lead_id
     WHERE o.lead_id IS NOT NULL
       AND (l.id IS NULL OR l.status <> 'Converted' OR l.opportunity_id IS DISTINCT FROM o.id)

    UNION ALL
    -- 7. At most one lead per opportunity.
    SELECT 'at most one lead per opportunity',
           json_build_object('opportunity', opportunity_id, 'leads', array_agg(id ORDER BY id))::text
      FROM crm.lead
     WHERE opportunity_id IS NOT NULL
     GROUP BY opportunity_id
    HAVING count(*) > 1

    UNION ALL
    -- 8. An opportunity with line items has amount = the sum of their totals.
    SELECT 'opportunity amount = sum of its line items',
           json_build_object('opportunity', o.id, 'amount', o.amount, 'lines', s.total)::text
      FROM crm.opportunity o
      JOIN (SELECT opportunity_id, sum(total) AS total
              FROM crm.opportunity_line_item GROUP BY 1) s ON s.opportunity_id = o.id
     WHERE o.amount <> s.total

    UNION ALL
    -- 9. An opportunity's last history entry is its current stage, amount,
    --    probability, close date, owner and currency (history is written
    --    with the change), not a deletion.
    --    A stage rename is no stage change (README "Opportunity lifecycle"):
    --    it cascades to the opportunity, which the change log records as an
    --    UPDATE changing only the stage, and the history records nothing.  So
    --    the entry's stage matches when it is the current one, or when a chain
    --    of such renames in the opportunity's change log leads from it to the
    --    current one.  A stage-only change the history did record (old and
    --    new stage of a history entry) is a move, not a rename, and does not
    --    count.
    SELECT 'last opportunity history entry = current state',
           json_build_object('opportunity', o.id, 'stage', o.stage, 'history_stage', h.new_stage,
                             'amount', o.amount, 'history_amount', h.new_amount)::text
      FROM crm.opportunity o
      LEFT JOIN LATERAL (SELECT * FROM crm.opportunity_history h
                          WHERE h.opportunity_id = o.id ORDER BY h.id DESC LIMIT 1) h ON true
     WHERE h.id IS NULL OR h.new_amount <> o.amount
        OR h.new_probability IS DISTINCT FROM o.probability
        OR h.new_owner <> o.owner OR h.currency <> o.currency
        OR h.deleted
        OR h.new_close_date IS DISTINCT FROM o.close_date
        OR (h.new_stage <> o.stage
            AND NOT EXISTS (
                WITH RECURSIVE renamed (name) AS (
                    SELECT h.new_stage
                    UNION
                    SELECT c.changes -> 'stage' ->> 'new'
                      FROM renamed r
                      JOIN crm.change_log c
                        ON c.table_name = 'crm.opportunity'::regclass AND c.row_id = o.id
                       AND c.operation = 'UPDATE' AND c.changes -> 'stage' ->> 'old' = r.name
                     WHERE (SELECT count(*) FROM jsonb_object_keys(c.changes)) = 1
                       AND NOT EXISTS (SELECT 1 FROM crm.opportunity_history m
                                        WHERE m.opportunity_id = o.id AND m.old_stage = r.name
                                          AND m.new_stage = c.changes -> 'stage' ->> 'new'))
                SELECT 1 FROM renamed WHERE renamed.name = o.stage))

    UNION ALL
    -- 9b. The history outlives its deal: a deal's last entry is a deletion
    --     exactly when the deal is gone, and a deletion is always the last
    --     entry.
    SELECT 'opportunity history: the last entry is a deletion exactly when the deal is gone',
           json_build_object('entry', h.id, 'opportunity', h.opportunity_id, 'deleted', h.deleted)::text
      FROM crm.opportunity_history h
     CROSS JOIN LATERAL (SELECT h.id = (SELECT max(m.id) FROM crm.opportunity_history m
                                          WHERE m.opportunity_id = h.opportunity_id) AS last) AS l
     WHERE (h.deleted AND NOT l.last)
        OR (l.last AND h.deleted = EXISTS (SELECT 1 FROM crm.opportunity o WHERE o.id = h.opportunity_id))

    UNION ALL
    -- 10. No oversold inventory: stock is never negative (the CHECK
    --     constraint says so too; this catches a constraint gone missing).
    SELECT 'stock not negative',
           json_build_object('product', id, 'code', code, 'inventory', inventory)::text
      FROM crm.product
     WHERE inventory < 0

    UNION ALL
    -- 11. Reservations: a Draft order holds nothing; an item never holds
    --     more than its quantity or less than nothing.
    SELECT 'order items reserve 0..quantity, Draft orders nothing',
           json_build_object('order', so.id, 'status', so.status, 'item', i.id,
                             'quantity', i.quantity, 'reserved', i.reserved_quantity)::text
      FROM crm.sales_order so
      JOIN crm.sales_order_item i ON i.order_id = so.id
     WHERE i.reserved_quantity < 0 OR i.reserved_quantity > i.quantity
        OR (so.status = 'Draft' AND i.reserved_quantity <> 0)

    UNION ALL
    -- 12. An activated order (and one shipped, delivered or completed from
    --     it) reserved the full quantity of every tracked product on it, and
    --     records who activated it.
    SELECT 'activated orders reserved every tracked item in full',
           json_build_object('order', so.id, 'status', so.status, 'item', i.id,
                             'quantity', i.quantity, 'reserved', i.reserved_quantity,
                             'activated_at', so.activated_at)::text
      FROM crm.sales_order so
      JOIN crm.sales_order_item i ON i.order_id = so.id
      JOIN crm.product p ON p.id = i.product_id
     WHERE so.status NOT IN ('Draft', 'Cancelled')
       AND (so.activated_at IS NULL OR (p.track_inventory AND i.reserved_quantity <> i.quantity))

    UNION ALL
    -- 14. Lead queues, capacity: no member with max_open_leads owns more
    --     open leads (status other than Converted and Not Qualified) than
    --     that.  (Queue assignments respect it under the routing lock;
    --     holds as long as capped members get leads only from queues and
    --     no admin lowers a cap below what a member already owns.)
    SELECT 'queue member within capacity',
           json_build_object('queue', m.queue, 'member', m.member::text, 'max_open_leads', m.max_open_leads,
                             'open_leads', o.n)::text
      FROM crm.assignment_queue_member m
      CROSS JOIN LATERAL (SELECT count(*) AS n FROM crm.lead l
                           WHERE l.owner = m.member AND l.status NOT IN ('Converted', 'Not Qualified')) o
     WHERE m.max_open_leads IS NOT NULL AND o.n > m.max_open_leads

    UNION ALL
    -- 15. Lead queues, round-robin state: every assignment from a queue took
    --     the next position (no two members share one: two routings never
    --     read the same queue state) ...
    SELECT 'queue positions distinct',
           json_build_object('queue', m.queue, 'position', m.last_assigned,
                             'members', array_agg(m.member::text ORDER BY m.member::text))::text
      FROM crm.assignment_queue_member m
     WHERE m.last_assigned IS NOT NULL
     GROUP BY m.queue, m.last_assigned
    HAVING count(*) > 1

    UNION ALL
    -- 16. ... and in a queue whose members are all active and without a
    --     cap, the least recently assigned member is never more than one
    --     round behind: the positions span fewer numbers than there are
    --     members, so the members' lead counts differ by at most one.
    --     (A member removed, or deactivated for a while and reactivated,
    --     leaves a gap that the next round closes: check between rounds.)
    SELECT 'queue round-robin fair',
           json_build_object('queue', q.queue, 'members', q.members, 'lowest', q.lo, 'highest', q.hi)::text
      FROM (SELECT m.queue, count(*) AS members, min(m.last_assigned) AS lo, max(m.last_assigned) AS hi
              FROM crm.assignment_queue_member m
             GROUP BY m.queue
            HAVING bool_and(m.active AND m.max_open_leads IS NULL)
               AND count(*) = count(m.last_assigned)) q
     WHERE q.hi - q.lo >= q.members

) AS violations
ORDER BY invariant, detail;

-- 13. Stock conservation (only when crm_test.stock_baseline exists): for
--     each product, the stock before any activation = the stock now + the
--     units the orders that are not cancelled hold reserved.  Oversold stock,
--     a lost reservation or stock returned twice all break the equation.
SELECT to_regclass('crm_test.stock_baseline') IS NOT NULL AS crm_invariants_has_baseline \gset
\if :crm_invariants_has_baseline
SELECT 'stock conservation: baseline = inventory + reserved by orders not cancelled' AS invariant,
       json_build_object('product', p.id, 'code', p.code, 'baseline', b.inventory,
                         'inventory', p.inventory, 'reserved', r.reserved)::text AS detail
  FROM crm_test.stock_baseline b
  JOIN crm.product p ON p.id = b.product_id
  LEFT JOIN LATERAL (SELECT coalesce(sum(i.reserved_quantity), 0) AS reserved
                       FROM crm.sales_order_item i
                       JOIN crm.sales_order so ON so.id = i.order_id
                      WHERE i.product_id = p.id AND so.status <> 'Cancelled') r ON true
 WHERE b.inventory <> p.inventory + r.reserved
 ORDER BY p.id;
\endif
