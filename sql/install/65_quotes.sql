--------------------------------------------------------------------------
-- Quotes with approval
--
-- crm.create_quote() copies an opportunity's lines into a Draft quote.  Its
-- subtotal is the sum of its lines (statement trigger, as for opportunities);
-- discount amount, tax and total follow from it as generated columns.  The
-- status moves only along crm_internal.quote_transition; Needs Review, In Review,
-- Approved and Rejected are reached only through submit_quote, approve_quote
-- and reject_quote, which record who, when and why in crm.quote_approval.
-- Only a Draft quote can be edited.
--------------------------------------------------------------------------

-- Company-wide settings: one row.
CREATE TABLE crm.settings (
    singleton                   boolean PRIMARY KEY DEFAULT true CONSTRAINT settings_one_row CHECK (singleton),
    quote_approval_threshold    numeric(5,2) NOT NULL DEFAULT 10
                                CONSTRAINT settings_quote_approval_threshold_range CHECK (quote_approval_threshold BETWEEN 0 AND 100),
    seller_name                 text,
    seller_address              text,
    created_at                  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at                  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE crm.settings IS 'Company-wide CRM settings (exactly one row); changed by admins';
COMMENT ON COLUMN crm.settings.singleton IS 'Always true: the table has one row';
COMMENT ON COLUMN crm.settings.quote_approval_threshold IS 'A quote whose discount (on the quote or on any line) exceeds this percentage must be approved before it is presented';
COMMENT ON COLUMN crm.settings.seller_name IS 'Legal name of the selling company, printed on quote documents (crm.quote_document)';
COMMENT ON COLUMN crm.settings.seller_address IS 'Postal address of the selling company (lines separated by newlines), printed on quote documents';
COMMENT ON COLUMN crm.settings.created_at IS 'When the extension was installed';
COMMENT ON COLUMN crm.settings.updated_at IS 'When the settings were last changed';
INSERT INTO crm.settings DEFAULT VALUES;

CREATE TYPE crm.quote_status AS ENUM (
    'Draft', 'Needs Review', 'In Review', 'Approved', 'Rejected', 'Presented', 'Accepted', 'Denied', 'Expired');
COMMENT ON TYPE crm.quote_status IS 'Quote status: Draft -> Needs Review -> In Review -> Approved or Rejected -> Presented -> Accepted or Denied; an open quote past its valid_until becomes Expired (see crm_internal.quote_transition)';

CREATE TABLE crm_internal.quote_transition (
    from_status   crm.quote_status NOT NULL,
    to_status     crm.quote_status NOT NULL,
    via_function  text,
    PRIMARY KEY (from_status, to_status)
);
COMMENT ON TABLE crm_internal.quote_transition IS 'The legal status changes of a quote; any other change is refused, but for expiry (an open quote past its valid_until becomes Expired, an Expired one goes back to Draft), which the database rules';
COMMENT ON COLUMN crm_internal.quote_transition.from_status IS 'Status before';
COMMENT ON COLUMN crm_internal.quote_transition.to_status IS 'Status after';
COMMENT ON COLUMN crm_internal.quote_transition.via_function IS 'The function that makes this change (NULL: a plain UPDATE may make it)';
INSERT INTO crm_internal.quote_transition VALUES
    ('Draft',        'Needs Review', 'crm.submit_quote()'),
    ('Needs Review', 'In Review',    'crm.approve_quote() or crm.reject_quote()'),
    ('In Review',    'Approved',     'crm.approve_quote()'),
    ('In Review',    'Rejected',     'crm.reject_quote()'),
    ('Needs Review', 'Draft',        NULL),   -- withdrawn by the rep
    ('Rejected',     'Draft',        NULL),   -- reworked
    ('Draft',        'Presented',    NULL),   -- only within the approval threshold
    ('Approved',     'Presented',    NULL),
    ('Presented',    'Accepted',     NULL),
    ('Presented',    'Denied',       NULL),
    ('Denied',       'Draft',        NULL);   -- revised
-- Expired is the database's, not a row here (src/quotes.c): any open quote
-- (Draft, Needs Review, In Review, Approved, Rejected, Presented) past its
-- valid_until may become Expired, and an Expired quote goes back to Draft
-- with a valid_until not past.

CREATE SEQUENCE crm.quote_number_seq;
COMMENT ON SEQUENCE crm.quote_number_seq IS 'Numbers of quotes (Q-000001, ...), drawn by the database when a quote is inserted';

CREATE TABLE crm.quote (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    quote_number     text CONSTRAINT quote_quote_number_key UNIQUE
                     CONSTRAINT quote_quote_number_assigned CHECK (quote_number IS NOT NULL),
    opportunity_id   bigint NOT NULL CONSTRAINT quote_opportunity_id_fkey REFERENCES crm.opportunity (id),
    name             text NOT NULL
                     CONSTRAINT quote_name_not_blank CHECK (pg_catalog.btrim(name) OPERATOR(pg_catalog.<>) ''),
    account_id       bigint CONSTRAINT quote_account_id_fkey REFERENCES crm.account (id),
    contact_id       bigint CONSTRAINT quote_contact_id_fkey REFERENCES crm.contact (id) ON DELETE SET NULL,
    price_book_id    bigint CONSTRAINT quote_price_book_id_fkey REFERENCES crm.price_book (id),
    status           crm.quote_status NOT NULL DEFAULT 'Draft',
    valid_until      date
                     CONSTRAINT quote_valid_until_finite CHECK (pg_catalog.isfinite(valid_until)),
    discount         numeric(5,2) NOT NULL DEFAULT 0
                     CONSTRAINT quote_discount_range CHECK (discount BETWEEN 0 AND 100),
    tax_rate         numeric(6,3) NOT NULL DEFAULT 0
                     CONSTRAINT quote_tax_rate_range CHECK (tax_rate BETWEEN 0 AND 100),
    subtotal         numeric(16,2) NOT NULL DEFAULT 0
                     CONSTRAINT quote_subtotal_not_nan CHECK (subtotal OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    discount_amount  numeric(16,2) GENERATED ALWAYS AS
                     (pg_catalog.round(subtotal OPERATOR(pg_catalog.*) discount OPERATOR(pg_catalog./) 100, 2)) STORED,
    tax              numeric(16,2) GENERATED ALWAYS AS
                     (pg_catalog.round((subtotal OPERATOR(pg_catalog.-)
                        pg_catalog.round(subtotal OPERATOR(pg_catalog.*) discount OPERATOR(pg_catalog./) 100, 2))
                        OPERATOR(pg_catalog.*) tax_rate OPERATOR(pg_catalog./) 100, 2)) STORED,
    total            numeric(16,2) GENERATED ALWAYS AS
                     (subtotal OPERATOR(pg_catalog.-)
                        pg_catalog.round(subtotal OPERATOR(pg_catalog.*) discount OPERATOR(pg_catalog./) 100, 2)
                      OPERATOR(pg_catalog.+)
                        pg_catalog.round((subtotal OPERATOR(pg_catalog.-)
                          pg_catalog.round(subtotal OPERATOR(pg_catalog.*) discount OPERATOR(pg_catalog./) 100, 2))
                          OPERATOR(pg_catalog.*) tax_rate OPERATOR(pg_catalog./) 100, 2)) STORED,
    is_synced        boolean NOT NULL DEFAULT false,
    description      text,
    owner            regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at       timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE crm.quote IS 'Quotes made from opportunities, with approval workflow; amounts computed by the database';
COMMENT ON COLUMN crm.quote.id IS 'Quote id, assigned by the database';
COMMENT ON COLUMN crm.quote.quote_number IS 'Quote number shown to the customer (Q-000001, ...); assigned by the database when the quote is made, never changes';
COMMENT ON COLUMN crm.quote.opportunity_id IS 'The opportunity quoted (an opportunity with quotes cannot be deleted)';
COMMENT ON COLUMN crm.quote.name IS 'Quote name or number shown to the customer';
COMMENT ON COLUMN crm.quote.account_id IS 'Customer account (from the opportunity)';
COMMENT ON COLUMN crm.quote.contact_id IS 'Customer contact the quote is addressed to';
COMMENT ON COLUMN crm.quote.price_book_id IS 'Price book the lines are priced from (the opportunity''s)';
COMMENT ON COLUMN crm.quote.status IS 'Draft, Needs Review, In Review, Approved, Rejected, Presented, Accepted, Denied or Expired; only legal changes (crm_internal.quote_transition) are accepted';
COMMENT ON COLUMN crm.quote.valid_until IS 'Last day the offer stands (a finite date, or NULL: no end); after it the quote cannot be presented, accepted or ordered and crm.expire_quotes() marks it Expired';
COMMENT ON COLUMN crm.quote.discount IS 'Discount in percent on the subtotal, 0-100; above the approval threshold the quote needs approval';
COMMENT ON COLUMN crm.quote.tax_rate IS 'Tax rate in percent, 0-100, applied after the discount';
COMMENT ON COLUMN crm.quote.subtotal IS 'Sum of the line totals; kept by the database';
COMMENT ON COLUMN crm.quote.discount_amount IS 'subtotal x discount/100, rounded to cents; computed';
COMMENT ON COLUMN crm.quote.tax IS '(subtotal - discount_amount) x tax_rate/100, rounded to cents; computed';
COMMENT ON COLUMN crm.quote.total IS 'subtotal - discount_amount + tax; computed';
COMMENT ON COLUMN crm.quote.is_synced IS 'True for the one quote per opportunity that is synced to it (see crm.sync_quote)';
COMMENT ON COLUMN crm.quote.description IS 'Terms and notes';
COMMENT ON COLUMN crm.quote.owner IS 'CRM user (database role) who owns the quote';
COMMENT ON COLUMN crm.quote.created_at IS 'When the quote was created; set by the database';
COMMENT ON COLUMN crm.quote.updated_at IS 'When the quote was last changed; set by the database';
CREATE INDEX quote_opportunity_id_idx ON crm.quote (opportunity_id);
CREATE INDEX quote_status_idx ON crm.quote (status);
-- the foreign keys' other ends: deleting an account, contact or price book
-- finds its quotes through these instead of reading every quote
CREATE INDEX quote_account_id_idx ON crm.quote (account_id) WHERE account_id IS NOT NULL;
COMMENT ON INDEX crm.quote_account_id_idx IS 'Quotes by account: deleting an account checks its quotes without reading every quote';
CREATE INDEX quote_contact_id_idx ON crm.quote (contact_id) WHERE contact_id IS NOT NULL;
COMMENT ON INDEX crm.quote_contact_id_idx IS 'Quotes by contact: deleting a contact clears it from its quotes without reading every quote';
CREATE INDEX quote_price_book_id_idx ON crm.quote (price_book_id) WHERE price_book_id IS NOT NULL;
COMMENT ON INDEX crm.quote_price_book_id_idx IS 'Quotes by price book: deleting a price book checks its quotes without reading every quote';
CREATE UNIQUE INDEX quote_one_synced_per_opportunity ON crm.quote (opportunity_id) WHERE is_synced;

CREATE TABLE crm.quote_line_item (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    quote_id     bigint NOT NULL CONSTRAINT quote_line_item_quote_id_fkey
                 REFERENCES crm.quote (id) ON DELETE CASCADE,
    product_id   bigint NOT NULL CONSTRAINT quote_line_item_product_id_fkey REFERENCES crm.product (id),
    description  text,
    quantity     numeric(12,2) NOT NULL DEFAULT 1
                 CONSTRAINT quote_line_item_quantity_positive CHECK (quantity OPERATOR(pg_catalog.>) 0
                     AND quantity OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    unit_price   numeric(14,2)
                 CONSTRAINT quote_line_item_unit_price_not_negative CHECK (unit_price OPERATOR(pg_catalog.>=) 0
                     AND unit_price OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric)
                 CONSTRAINT quote_line_item_unit_price_priced CHECK (unit_price IS NOT NULL),
    discount     numeric(5,2) NOT NULL DEFAULT 0
                 CONSTRAINT quote_line_item_discount_range CHECK (discount BETWEEN 0 AND 100),
    total        numeric(16,2) GENERATED ALWAYS AS
                 (pg_catalog.round(quantity OPERATOR(pg_catalog.*) unit_price
                    OPERATOR(pg_catalog.*) (100 OPERATOR(pg_catalog.-) discount) OPERATOR(pg_catalog./) 100, 2)) STORED,
    sort_order   integer NOT NULL DEFAULT 0,
    owner        regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE crm.quote_line_item IS 'Products on a quote (same columns as opportunity lines); editable only while the quote is Draft';
COMMENT ON COLUMN crm.quote_line_item.id IS 'Line id, assigned by the database';
COMMENT ON COLUMN crm.quote_line_item.quote_id IS 'The quote';
COMMENT ON COLUMN crm.quote_line_item.product_id IS 'The product; it needs an active entry in the quote''s price book';
COMMENT ON COLUMN crm.quote_line_item.description IS 'Line description';
COMMENT ON COLUMN crm.quote_line_item.quantity IS 'Quantity, > 0';
COMMENT ON COLUMN crm.quote_line_item.unit_price IS 'Sales price of one unit; left out (NULL), the product''s price in the quote''s price book is filled in, so it is never NULL once stored';
COMMENT ON COLUMN crm.quote_line_item.discount IS 'Line discount in percent, 0-100';
COMMENT ON COLUMN crm.quote_line_item.total IS 'quantity x unit_price x (1 - discount/100), rounded to cents; computed by the database';
COMMENT ON COLUMN crm.quote_line_item.sort_order IS 'Display order of the line';
COMMENT ON COLUMN crm.quote_line_item.owner IS 'CRM user (database role) who added the line';
COMMENT ON COLUMN crm.quote_line_item.created_at IS 'When the line was added; set by the database';
COMMENT ON COLUMN crm.quote_line_item.updated_at IS 'When the line was last changed; set by the database';
CREATE INDEX quote_line_item_quote_id_idx ON crm.quote_line_item (quote_id);
CREATE INDEX quote_line_item_product_id_idx ON crm.quote_line_item (product_id);

CREATE TABLE crm.quote_approval (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    quote_id   bigint NOT NULL CONSTRAINT quote_approval_quote_id_fkey REFERENCES crm.quote (id),
    action     text NOT NULL CONSTRAINT quote_approval_action_valid
               CHECK (action OPERATOR(pg_catalog.=) ANY (ARRAY['submitted', 'approved', 'rejected'])),
    comment    text,
    old_discount numeric(5,2),
    new_discount numeric(5,2),
    acted_by   regrole NOT NULL,
    acted_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE crm.quote_approval IS 'The approval record of quotes: who submitted, approved or rejected which quote, when, and why; written only by the quote functions; a quote with approval entries cannot be deleted';
COMMENT ON COLUMN crm.quote_approval.id IS 'Entry id, in order of recording';
COMMENT ON COLUMN crm.quote_approval.quote_id IS 'The quote';
COMMENT ON COLUMN crm.quote_approval.action IS 'submitted, approved or rejected';
COMMENT ON COLUMN crm.quote_approval.comment IS 'The comment given (required when rejecting)';
COMMENT ON COLUMN crm.quote_approval.old_discount IS 'For an approval: the quote discount (percent) before it';
COMMENT ON COLUMN crm.quote_approval.new_discount IS 'For an approval: the quote discount (percent) approved; lower than old_discount when the approver adjusted it';
COMMENT ON COLUMN crm.quote_approval.acted_by IS 'Role that acted';
COMMENT ON COLUMN crm.quote_approval.acted_at IS 'When (transaction time)';
CREATE INDEX quote_approval_quote_id_idx ON crm.quote_approval (quote_id, id);

CREATE FUNCTION crm_internal.quote_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_quote_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.quote_guard() IS 'BEFORE INSERT OR UPDATE row trigger on crm.quote: new quotes are Draft and unsynced, status moves only along crm_internal.quote_transition (approval states only through the quote functions), a quote over the approval threshold is presented only after approval, and only a Draft quote''s content can change (except that deleting a contact clears it from every quote)';
CREATE TRIGGER quote_guard BEFORE INSERT OR UPDATE ON crm.quote
    FOR EACH ROW EXECUTE FUNCTION crm_internal.quote_guard();

CREATE TRIGGER price_line_item BEFORE INSERT OR UPDATE OF product_id, unit_price, quote_id
    ON crm.quote_line_item
    FOR EACH ROW EXECUTE FUNCTION crm_internal.price_line_item('quote');
CREATE TRIGGER sum_line_items_insert AFTER INSERT ON crm.quote_line_item
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.sum_line_items('quote');
CREATE TRIGGER sum_line_items_update AFTER UPDATE ON crm.quote_line_item
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.sum_line_items('quote');
CREATE TRIGGER sum_line_items_delete AFTER DELETE ON crm.quote_line_item
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.sum_line_items('quote');

CREATE FUNCTION crm.create_quote(
    opportunity_id  bigint,
    name            text    DEFAULT NULL,
    valid_until     date    DEFAULT NULL,
    discount        numeric DEFAULT 0,
    tax_rate        numeric DEFAULT 0)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'crm_create_quote'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.create_quote(bigint, text, date, numeric, numeric) IS
'Creates a Draft quote from an opportunity, copying its line items, account, primary contact and price book; name defaults to "<opportunity> - Quote <n>", valid_until to 30 days from today. Returns the quote id.';

CREATE FUNCTION crm.submit_quote(quote_id bigint, comment text DEFAULT NULL)
    RETURNS crm.quote_status
    AS 'MODULE_PATHNAME', 'crm_submit_quote'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.submit_quote(bigint, text) IS 'Submits a Draft quote for approval (Draft -> Needs Review) and records it in crm.quote_approval; returns the new status';

CREATE FUNCTION crm.approve_quote(quote_id bigint, comment text DEFAULT NULL, discount numeric DEFAULT NULL)
    RETURNS crm.quote_status
    AS 'MODULE_PATHNAME', 'crm_approve_quote'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.approve_quote(bigint, text, numeric) IS 'Approves a quote under review (Needs Review -> In Review -> Approved); managers and admins only, not one''s own submission; discount, when given, lowers (never raises) the quote discount as part of approving; records who, when, the comment and the old and new discount in crm.quote_approval';

CREATE FUNCTION crm.reject_quote(quote_id bigint, comment text)
    RETURNS crm.quote_status
    AS 'MODULE_PATHNAME', 'crm_reject_quote'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.reject_quote(bigint, text) IS 'Rejects a quote under review (Needs Review -> In Review -> Rejected); managers and admins only; the comment (why) is required; recorded in crm.quote_approval';

CREATE FUNCTION crm.sync_quote(quote_id bigint)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'crm_sync_quote'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.sync_quote(bigint) IS 'Marks a quote as the one synced to its opportunity (unmarking any other) and replaces the opportunity''s line items with the quote''s, so the opportunity amount follows the quote; returns the opportunity id';

-- Expiry: for a scheduler (pg_cron) running as an admin.  SECURITY INVOKER:
-- (a body in quotes: parsed when called, since the update from 0.6 adds the
-- status Expired in the same transaction that creates this function)
-- it expires the quotes the caller sees (an admin sees all).  Each quote is
-- moved by an UPDATE that locks it, so a concurrent accept either commits
-- first (the quote is then Accepted, no longer open, and is skipped) or
-- waits and then finds it Expired (ZC020).
CREATE FUNCTION crm.expire_quotes()
    RETURNS bigint
    LANGUAGE sql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
    AS $$
        WITH expired AS (
            UPDATE crm.quote AS q SET status = 'Expired'::crm.quote_status
             WHERE q.status OPERATOR(pg_catalog.=) ANY (ARRAY['Draft', 'Needs Review', 'In Review', 'Approved',
                                                            'Rejected', 'Presented']::crm.quote_status[])
               AND q.valid_until OPERATOR(pg_catalog.<) CURRENT_DATE
            RETURNING q.id)
        SELECT pg_catalog.count(*) FROM expired
    $$;
COMMENT ON FUNCTION crm.expire_quotes() IS 'Marks every open quote (Draft, Needs Review, In Review, Approved, Rejected, Presented) whose valid_until is before today (in the session''s TimeZone) Expired and returns how many; idempotent; for admins and the scheduler''s role (a member of crm_admin)';

-- The quote document: everything a PDF template needs, one row per quote.
CREATE VIEW crm.quote_document WITH (security_invoker = true) AS
    SELECT q.id AS quote_id,
           q.quote_number,
           q.name,
           q.status,
           q.created_at::date AS quote_date,
           q.valid_until,
           s.seller_name,
           s.seller_address,
           a.name AS customer_name,
           NULLIF(pg_catalog.concat_ws(E'\n', a.street,
                      NULLIF(pg_catalog.concat_ws(' ', a.postal_code, a.city, a.region), ''), a.country), '')
               AS customer_address,
           c.name AS contact_name,
           c.email::text AS contact_email,
           b.currency,
           COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                               'product_code', p.code, 'product_name', p.name, 'description', l.description,
                               'quantity', l.quantity, 'unit_price', l.unit_price,
                               'discount', l.discount, 'total', l.total)
                             ORDER BY l.sort_order, l.id)
                       FROM crm.quote_line_item AS l
                       JOIN crm.product AS p ON p.id OPERATOR(pg_catalog.=) l.product_id
                      WHERE l.quote_id OPERATOR(pg_catalog.=) q.id), '[]'::jsonb) AS lines,
           q.subtotal,
           q.discount,
           q.discount_amount,
           q.tax_rate,
           q.tax,
           q.total,
           q.description AS terms
      FROM crm.quote AS q
      CROSS JOIN crm.settings AS s
      LEFT JOIN crm.account AS a ON a.id OPERATOR(pg_catalog.=) q.account_id
      LEFT JOIN crm.contact AS c ON c.id OPERATOR(pg_catalog.=) q.contact_id
      LEFT JOIN crm.price_book AS b ON b.id OPERATOR(pg_catalog.=) q.price_book_id;
COMMENT ON VIEW crm.quote_document IS 'One row per quote with everything a printed quote (PDF template) needs: number, dates, seller, customer, contact, lines and amounts; shows what the reader may see';
COMMENT ON COLUMN crm.quote_document.quote_id IS 'Quote id';
COMMENT ON COLUMN crm.quote_document.quote_number IS 'Quote number (Q-000001, ...)';
COMMENT ON COLUMN crm.quote_document.name IS 'Quote name';
COMMENT ON COLUMN crm.quote_document.status IS 'Quote status';
COMMENT ON COLUMN crm.quote_document.quote_date IS 'Day the quote was made';
COMMENT ON COLUMN crm.quote_document.valid_until IS 'Last day the offer stands';
COMMENT ON COLUMN crm.quote_document.seller_name IS 'Selling company (crm.settings.seller_name)';
COMMENT ON COLUMN crm.quote_document.seller_address IS 'Selling company address (crm.settings.seller_address)';
COMMENT ON COLUMN crm.quote_document.customer_name IS 'Customer account name (NULL when the reader cannot see the account)';
COMMENT ON COLUMN crm.quote_document.customer_address IS 'Customer address from the account: street, postal code city region, country, one per line';
COMMENT ON COLUMN crm.quote_document.contact_name IS 'Contact the quote is addressed to';
COMMENT ON COLUMN crm.quote_document.contact_email IS 'E-mail address of that contact';
COMMENT ON COLUMN crm.quote_document.currency IS 'ISO currency code of the prices (the quote''s price book)';
COMMENT ON COLUMN crm.quote_document.lines IS 'Line items as a JSON array in display order: product_code, product_name, description, quantity, unit_price, discount, total';
COMMENT ON COLUMN crm.quote_document.subtotal IS 'Sum of the line totals';
COMMENT ON COLUMN crm.quote_document.discount IS 'Quote discount in percent';
COMMENT ON COLUMN crm.quote_document.discount_amount IS 'Discount amount';
COMMENT ON COLUMN crm.quote_document.tax_rate IS 'Tax rate in percent';
COMMENT ON COLUMN crm.quote_document.tax IS 'Tax amount';
COMMENT ON COLUMN crm.quote_document.total IS 'Total to pay';
COMMENT ON COLUMN crm.quote_document.terms IS 'Terms and notes (the quote description)';
