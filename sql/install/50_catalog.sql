--------------------------------------------------------------------------
-- Products and price books
--
-- A product has a list price and, when its stock is tracked, units on hand.
-- Prices live in price books: exactly one is the standard book, and a product
-- must have a standard price before any other book may price it.
--------------------------------------------------------------------------

CREATE TABLE crm.product (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code             text NOT NULL CONSTRAINT product_code_key UNIQUE
                     CONSTRAINT product_code_not_blank CHECK (pg_catalog.btrim(code) OPERATOR(pg_catalog.<>) ''),
    name             text NOT NULL
                     CONSTRAINT product_name_not_blank CHECK (pg_catalog.btrim(name) OPERATOR(pg_catalog.<>) ''),
    description      text,
    family           text,
    list_price       numeric(14,2) NOT NULL DEFAULT 0
                     CONSTRAINT product_list_price_not_negative CHECK (list_price OPERATOR(pg_catalog.>=) 0
                         AND list_price OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    track_inventory  boolean NOT NULL DEFAULT true,
    inventory        numeric(14,2) NOT NULL DEFAULT 0
                     CONSTRAINT product_inventory_not_negative CHECK (inventory OPERATOR(pg_catalog.>=) 0
                         AND inventory OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    active           boolean NOT NULL DEFAULT true,
    owner            regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at       timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE crm.product IS 'Products and services the company sells';
COMMENT ON COLUMN crm.product.id IS 'Product id, assigned by the database';
COMMENT ON COLUMN crm.product.code IS 'Product code (SKU), unique';
COMMENT ON COLUMN crm.product.name IS 'Product name';
COMMENT ON COLUMN crm.product.description IS 'Description shown on quotes';
COMMENT ON COLUMN crm.product.family IS 'Product family or category, for reporting';
COMMENT ON COLUMN crm.product.list_price IS 'Catalogue price, >= 0; the standard price book holds the selling price';
COMMENT ON COLUMN crm.product.track_inventory IS 'True when stock is counted: activating an order then reserves units; false for services';
COMMENT ON COLUMN crm.product.inventory IS 'Units on hand, >= 0; decreased when an order is activated, restored when it is cancelled';
COMMENT ON COLUMN crm.product.active IS 'Inactive products cannot be added to new line items';
COMMENT ON COLUMN crm.product.owner IS 'CRM user (database role) responsible for the product';
COMMENT ON COLUMN crm.product.created_at IS 'When the product was created; set by the database';
COMMENT ON COLUMN crm.product.updated_at IS 'When the product was last changed; set by the database';
CREATE INDEX product_family_idx ON crm.product (family);

CREATE TABLE crm.price_book (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL CONSTRAINT price_book_name_key UNIQUE
                 CONSTRAINT price_book_name_not_blank CHECK (pg_catalog.btrim(name) OPERATOR(pg_catalog.<>) ''),
    description  text,
    is_standard  boolean NOT NULL DEFAULT false,
    active       boolean NOT NULL DEFAULT true,
    valid_from   date
                 CONSTRAINT price_book_valid_from_finite CHECK (pg_catalog.isfinite(valid_from)),
    valid_to     date
                 CONSTRAINT price_book_valid_to_finite CHECK (pg_catalog.isfinite(valid_to)),
    currency     text NOT NULL DEFAULT 'USD'
                 CONSTRAINT price_book_currency_iso CHECK (currency OPERATOR(pg_catalog.~) '^[A-Z]{3}$'),
    owner        regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT price_book_validity CHECK (valid_to IS NULL OR valid_from IS NULL OR valid_to OPERATOR(pg_catalog.>=) valid_from),
    CONSTRAINT price_book_standard_is_active CHECK (NOT is_standard OR active)
);
COMMENT ON TABLE crm.price_book IS 'Price books: named price lists for markets or customer segments; exactly one is the standard book';
COMMENT ON COLUMN crm.price_book.id IS 'Price book id, assigned by the database';
COMMENT ON COLUMN crm.price_book.name IS 'Price book name, unique';
COMMENT ON COLUMN crm.price_book.description IS 'What the price book is for';
COMMENT ON COLUMN crm.price_book.is_standard IS 'True for the one standard book; every product needs a standard price before other books may price it';
COMMENT ON COLUMN crm.price_book.active IS 'Inactive books cannot be chosen for new opportunities or quotes (the standard book is always active)';
COMMENT ON COLUMN crm.price_book.valid_from IS 'First day the prices apply (a finite date, or NULL: no start); a line priced before it is refused';
COMMENT ON COLUMN crm.price_book.valid_to IS 'Last day the prices apply (a finite date, or NULL: no end); a line priced after it is refused';
COMMENT ON COLUMN crm.price_book.currency IS 'ISO 4217 currency code of the prices, e.g. USD, EUR';
COMMENT ON COLUMN crm.price_book.owner IS 'CRM user (database role) responsible for the price book';
COMMENT ON COLUMN crm.price_book.created_at IS 'When the price book was created; set by the database';
COMMENT ON COLUMN crm.price_book.updated_at IS 'When the price book was last changed; set by the database';
-- At most one standard book (the guard trigger below makes it at least one).
CREATE UNIQUE INDEX price_book_one_standard ON crm.price_book (is_standard) WHERE is_standard;

CREATE TABLE crm.price_book_entry (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    price_book_id  bigint NOT NULL CONSTRAINT price_book_entry_price_book_id_fkey
                   REFERENCES crm.price_book (id) ON DELETE CASCADE,
    product_id     bigint NOT NULL CONSTRAINT price_book_entry_product_id_fkey
                   REFERENCES crm.product (id) ON DELETE CASCADE,
    unit_price     numeric(14,2) NOT NULL
                   CONSTRAINT price_book_entry_unit_price_not_negative CHECK (unit_price OPERATOR(pg_catalog.>=) 0
                       AND unit_price OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    active         boolean NOT NULL DEFAULT true,
    owner          regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT price_book_entry_book_product_key UNIQUE (price_book_id, product_id)
);
COMMENT ON TABLE crm.price_book_entry IS 'The price of a product in a price book; one entry per book and product';
COMMENT ON COLUMN crm.price_book_entry.id IS 'Entry id, assigned by the database';
COMMENT ON COLUMN crm.price_book_entry.price_book_id IS 'The price book';
COMMENT ON COLUMN crm.price_book_entry.product_id IS 'The product';
COMMENT ON COLUMN crm.price_book_entry.unit_price IS 'Selling price of one unit in this book, >= 0; default unit price of line items';
COMMENT ON COLUMN crm.price_book_entry.active IS 'Inactive entries cannot be used for new line items';
COMMENT ON COLUMN crm.price_book_entry.owner IS 'CRM user (database role) responsible for the entry';
COMMENT ON COLUMN crm.price_book_entry.created_at IS 'When the entry was created; set by the database';
COMMENT ON COLUMN crm.price_book_entry.updated_at IS 'When the entry was last changed; set by the database';
CREATE INDEX price_book_entry_product_id_idx ON crm.price_book_entry (product_id);

CREATE TABLE crm.price_book_tier (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    price_book_entry_id  bigint NOT NULL CONSTRAINT price_book_tier_price_book_entry_id_fkey
                         REFERENCES crm.price_book_entry (id) ON DELETE CASCADE,
    min_quantity         numeric(12,2) NOT NULL
                         CONSTRAINT price_book_tier_min_quantity_positive CHECK (min_quantity OPERATOR(pg_catalog.>) 0
                             AND min_quantity OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    unit_price           numeric(14,2) NOT NULL
                         CONSTRAINT price_book_tier_unit_price_not_negative CHECK (unit_price OPERATOR(pg_catalog.>=) 0
                             AND unit_price OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    owner                regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at           timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at           timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT price_book_tier_entry_min_quantity_key UNIQUE (price_book_entry_id, min_quantity)
);
COMMENT ON TABLE crm.price_book_tier IS 'Quantity tiers of a price book entry: a line of at least min_quantity units is priced at unit_price by default (the tier with the highest min_quantity not above the quantity; below every tier, the entry''s price)';
COMMENT ON COLUMN crm.price_book_tier.id IS 'Tier id, assigned by the database';
COMMENT ON COLUMN crm.price_book_tier.price_book_entry_id IS 'The price book entry (product in a book) the tier belongs to; tiers go with it';
COMMENT ON COLUMN crm.price_book_tier.min_quantity IS 'Smallest quantity the tier applies to, > 0; unique per entry, so tiers are strictly increasing in quantity';
COMMENT ON COLUMN crm.price_book_tier.unit_price IS 'Price of one unit for quantities from min_quantity up to the next tier, >= 0';
COMMENT ON COLUMN crm.price_book_tier.owner IS 'CRM user (database role) responsible for the tier';
COMMENT ON COLUMN crm.price_book_tier.created_at IS 'When the tier was created; set by the database';
COMMENT ON COLUMN crm.price_book_tier.updated_at IS 'When the tier was last changed; set by the database';

-- The standard book exists from the start.
INSERT INTO crm.price_book (name, description, is_standard)
VALUES ('Standard Price Book', 'Standard selling prices; every product is priced here first', true);

CREATE FUNCTION crm_internal.price_book_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_price_book_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.price_book_guard() IS 'Deferred constraint trigger on crm.price_book: at commit there must be exactly one standard price book, and it must price every product another book prices';
CREATE CONSTRAINT TRIGGER price_book_guard AFTER UPDATE OR DELETE ON crm.price_book
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION crm_internal.price_book_guard();

CREATE FUNCTION crm_internal.price_book_entry_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_price_book_entry_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.price_book_entry_guard() IS 'Trigger on crm.price_book_entry: a product needs an active standard price before another book may price it, and its standard price cannot be removed while other books price it';
CREATE TRIGGER price_book_entry_guard BEFORE INSERT OR UPDATE OR DELETE ON crm.price_book_entry
    FOR EACH ROW EXECUTE FUNCTION crm_internal.price_book_entry_guard();


-- Every opportunity is priced from one price book (set on its first line item).
ALTER TABLE crm.opportunity ADD COLUMN price_book_id bigint
    CONSTRAINT opportunity_price_book_id_fkey REFERENCES crm.price_book (id);
COMMENT ON COLUMN crm.opportunity.price_book_id IS 'Price book its line items are priced from; the standard book unless chosen; fixed once it has line items';
CREATE INDEX opportunity_price_book_id_idx ON crm.opportunity (price_book_id) WHERE price_book_id IS NOT NULL;

-- An account's own price book: new opportunities and quotes of the account
-- are priced from it (when active) instead of the standard book.
ALTER TABLE crm.account ADD COLUMN price_book_id bigint
    CONSTRAINT account_price_book_id_fkey REFERENCES crm.price_book (id) ON DELETE SET NULL;
COMMENT ON COLUMN crm.account.price_book_id IS 'Default price book of the account''s new opportunities and quotes (NULL: the standard book); must be active when set';
CREATE INDEX account_price_book_id_idx ON crm.account (price_book_id) WHERE price_book_id IS NOT NULL;
COMMENT ON INDEX crm.account_price_book_id_idx IS 'Accounts by price book: deleting a price book clears it from its accounts without reading every account';
CREATE FUNCTION crm_internal.account_price_book_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_account_price_book_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.account_price_book_guard() IS 'BEFORE INSERT OR UPDATE OF price_book_id row trigger on crm.account: the default price book chosen for an account must be active (ZC104)';
CREATE TRIGGER account_price_book_guard BEFORE INSERT OR UPDATE OF price_book_id ON crm.account
    FOR EACH ROW EXECUTE FUNCTION crm_internal.account_price_book_guard();
