--------------------------------------------------------------------------
-- Currencies and exchange rates (issue 20 §1)
--
-- crm.currency lists the ISO 4217 currencies the CRM knows; price books,
-- opportunities, quotes and orders name one.  crm.exchange_rate gives, per
-- currency and month, how many units of the corporate currency
-- (crm.settings.corporate_currency) one unit is worth.  Rates change only
-- at the start of a month (valid_from is the first of a month), so the rate
-- valid on a close date is the same for every day of its close month: the
-- pipeline aggregate, grouped by close month and currency, converts per
-- group at read time and stays exact (see README "Currencies").
--
-- An opportunity or quote takes its currency from its price book (a BEFORE
-- trigger, whatever the client sends), and the pair (price_book_id,
-- currency) references the book's, ON UPDATE CASCADE: a book without lines
-- that changes currency carries its deals along.  A book's currency cannot
-- change while line items or orders use it (ZC121).  An order keeps the
-- currency of its quote.
--------------------------------------------------------------------------

CREATE TABLE crm.currency (
    code      text PRIMARY KEY
              CONSTRAINT currency_code_iso CHECK (code OPERATOR(pg_catalog.~) '^[A-Z]{3}$'),
    name      text NOT NULL
              CONSTRAINT currency_name_not_blank CHECK (pg_catalog.btrim(name) OPERATOR(pg_catalog.<>) ''),
    decimals  smallint NOT NULL DEFAULT 2
              CONSTRAINT currency_decimals_range CHECK (decimals BETWEEN 0 AND 4)
);
COMMENT ON TABLE crm.currency IS 'Currencies (ISO 4217) that price books, opportunities, quotes and orders may use; maintained by admins';
COMMENT ON COLUMN crm.currency.code IS 'ISO 4217 code, three capital letters, e.g. EUR';
COMMENT ON COLUMN crm.currency.name IS 'Name of the currency, e.g. Euro';
COMMENT ON COLUMN crm.currency.decimals IS 'Minor unit digits (2 for EUR, 0 for JPY), 0-4';
INSERT INTO crm.currency (code, name, decimals) VALUES
    ('USD', 'US Dollar', 2), ('EUR', 'Euro', 2), ('GBP', 'Pound Sterling', 2),
    ('JPY', 'Yen', 0), ('CHF', 'Swiss Franc', 2), ('CAD', 'Canadian Dollar', 2),
    ('AUD', 'Australian Dollar', 2), ('NZD', 'New Zealand Dollar', 2), ('CNY', 'Yuan Renminbi', 2),
    ('HKD', 'Hong Kong Dollar', 2), ('SGD', 'Singapore Dollar', 2), ('INR', 'Indian Rupee', 2),
    ('KRW', 'Won', 0), ('SEK', 'Swedish Krona', 2), ('NOK', 'Norwegian Krone', 2),
    ('DKK', 'Danish Krone', 2), ('PLN', 'Zloty', 2), ('CZK', 'Czech Koruna', 2),
    ('BRL', 'Brazilian Real', 2), ('MXN', 'Mexican Peso', 2), ('ZAR', 'Rand', 2);

-- The corporate currency: what reports convert to and rates are quoted in.
ALTER TABLE crm.settings ADD COLUMN corporate_currency text NOT NULL DEFAULT 'USD'
    CONSTRAINT settings_corporate_currency_fkey REFERENCES crm.currency (code);
CREATE INDEX settings_corporate_currency_idx ON crm.settings (corporate_currency);
COMMENT ON INDEX crm.settings_corporate_currency_idx IS 'Backs the foreign key to crm.currency (one row: for form''s sake)';
COMMENT ON COLUMN crm.settings.corporate_currency IS 'Currency reports are given in and exchange rates are quoted in (units of it per unit of another currency); fixed while exchange rates exist';

CREATE FUNCTION crm.corporate_currency() RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT s.corporate_currency FROM crm.settings AS s $$;
COMMENT ON FUNCTION crm.corporate_currency() IS 'The corporate currency (crm.settings.corporate_currency): the default currency of opportunities and quotes without a price book';

CREATE TABLE crm.exchange_rate (
    currency    text NOT NULL CONSTRAINT exchange_rate_currency_fkey REFERENCES crm.currency (code),
    valid_from  date NOT NULL
                CONSTRAINT exchange_rate_valid_from_month
                CHECK (pg_catalog.isfinite(valid_from)
                       AND valid_from OPERATOR(pg_catalog.=) pg_catalog.date_trunc('month', valid_from)::date),
    rate        numeric NOT NULL
                CONSTRAINT exchange_rate_rate_positive CHECK (rate OPERATOR(pg_catalog.>) 0
                     AND rate OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric
                     AND rate OPERATOR(pg_catalog.<>) 'Infinity'::pg_catalog.numeric),
    PRIMARY KEY (currency, valid_from)
);
COMMENT ON TABLE crm.exchange_rate IS 'Exchange rates: units of the corporate currency per unit of a currency, valid from the first day of a month until the next rate of the currency; maintained by admins. Reports convert each deal at the rate valid on its close date (the latest rate without a close date)';
COMMENT ON COLUMN crm.exchange_rate.currency IS 'The currency converted (never the corporate currency, whose rate is 1)';
COMMENT ON COLUMN crm.exchange_rate.valid_from IS 'First day of the month from which the rate applies';
COMMENT ON COLUMN crm.exchange_rate.rate IS 'Units of the corporate currency per unit of the currency, > 0';

-- Rates are quoted in the corporate currency: no rate for it (ZC122), and it
-- stays fixed while rates exist (ZC121).  A rate write takes FOR SHARE on the
-- settings row, a change of the corporate currency FOR NO KEY UPDATE (before
-- its trigger runs), so each waits for the other to commit and then sees it.
CREATE FUNCTION crm_internal.exchange_rate_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_exchange_rate_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.exchange_rate_guard() IS 'BEFORE trigger on crm.exchange_rate: refuses a rate for the corporate currency (ZC122)';
CREATE TRIGGER exchange_rate_guard BEFORE INSERT OR UPDATE ON crm.exchange_rate
    FOR EACH ROW EXECUTE FUNCTION crm_internal.exchange_rate_guard();

CREATE FUNCTION crm_internal.settings_currency_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_settings_currency_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.settings_currency_guard() IS 'BEFORE trigger on crm.settings: the corporate currency stays fixed while exchange rates exist (ZC121)';
CREATE TRIGGER settings_currency_guard BEFORE UPDATE OF corporate_currency ON crm.settings
    FOR EACH ROW EXECUTE FUNCTION crm_internal.settings_currency_guard();

-- The rate valid on a day: 1 for the corporate currency, else the rate with
-- the latest valid_from not after the day (NULL day: the latest rate).  No
-- such rate is an error naming the currency and the day (ZC120), never 1.
CREATE FUNCTION crm.exchange_rate_on(currency text, day date) RETURNS numeric
    AS 'MODULE_PATHNAME', 'crm_exchange_rate_on'
    LANGUAGE C STABLE;
COMMENT ON FUNCTION crm.exchange_rate_on(text, date) IS 'Units of the corporate currency per unit of currency on day (NULL: the latest rate); 1 for the corporate currency; ZC120 when no rate is valid then';

-- Price books name a known currency; (id, currency) is referenced by the
-- opportunities and quotes priced from the book.
ALTER TABLE crm.price_book ADD CONSTRAINT price_book_currency_fkey
    FOREIGN KEY (currency) REFERENCES crm.currency (code);
ALTER TABLE crm.price_book ADD CONSTRAINT price_book_id_currency_key UNIQUE (id, currency);
CREATE INDEX price_book_currency_idx ON crm.price_book (currency);
COMMENT ON INDEX crm.price_book_currency_idx IS 'Price books by currency: deleting a currency checks its books without reading every book';

ALTER TABLE crm.opportunity ADD COLUMN currency text NOT NULL DEFAULT crm.corporate_currency()
    CONSTRAINT opportunity_currency_fkey REFERENCES crm.currency (code);
ALTER TABLE crm.opportunity ADD CONSTRAINT opportunity_price_book_currency_fkey
    FOREIGN KEY (price_book_id, currency) REFERENCES crm.price_book (id, currency) ON UPDATE CASCADE;
COMMENT ON COLUMN crm.opportunity.currency IS 'Currency of the amount: the price book''s when the deal has one, else as given (default: the corporate currency)';
CREATE INDEX opportunity_currency_idx ON crm.opportunity (currency);
COMMENT ON INDEX crm.opportunity_currency_idx IS 'Deals by currency: deleting a currency checks its deals without reading every deal';
CREATE INDEX opportunity_price_book_currency_idx ON crm.opportunity (price_book_id, currency) WHERE price_book_id IS NOT NULL;
COMMENT ON INDEX crm.opportunity_price_book_currency_idx IS 'Backs the (price book, currency) foreign key: a book that changes currency finds its deals by an index probe';

ALTER TABLE crm.quote ADD COLUMN currency text NOT NULL DEFAULT crm.corporate_currency()
    CONSTRAINT quote_currency_fkey REFERENCES crm.currency (code);
ALTER TABLE crm.quote ADD CONSTRAINT quote_price_book_currency_fkey
    FOREIGN KEY (price_book_id, currency) REFERENCES crm.price_book (id, currency) ON UPDATE CASCADE;
COMMENT ON COLUMN crm.quote.currency IS 'Currency of the prices and totals: the price book''s when the quote has one, else as given (default: the corporate currency)';
CREATE INDEX quote_currency_idx ON crm.quote (currency);
COMMENT ON INDEX crm.quote_currency_idx IS 'Quotes by currency: deleting a currency checks its quotes without reading every quote';
CREATE INDEX quote_price_book_currency_idx ON crm.quote (price_book_id, currency) WHERE price_book_id IS NOT NULL;
COMMENT ON INDEX crm.quote_price_book_currency_idx IS 'Backs the (price book, currency) foreign key: a book that changes currency finds its quotes by an index probe';

ALTER TABLE crm.sales_order ADD COLUMN currency text NOT NULL DEFAULT crm.corporate_currency()
    CONSTRAINT sales_order_currency_fkey REFERENCES crm.currency (code);
COMMENT ON COLUMN crm.sales_order.currency IS 'Currency of the amounts: the quote''s, copied when the order is made; never changes';
CREATE INDEX sales_order_currency_idx ON crm.sales_order (currency);
COMMENT ON INDEX crm.sales_order_currency_idx IS 'Orders by currency: deleting a currency checks its orders without reading every order';

-- An opportunity or quote with a price book has the book's currency,
-- whatever the client sends.  A deal needs a rate of its currency valid on
-- its close date (any rate without one; ZC120 otherwise): one deal the
-- reports cannot convert would make them fail for every reader who sees it.
-- Runs with the writer's rights: every CRM role reads price books and rates.
CREATE FUNCTION crm_internal.currency_from_price_book() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_currency_from_price_book'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.currency_from_price_book() IS 'BEFORE trigger on crm.opportunity and crm.quote: a row with a price book takes the book''s currency; a deal needs a rate of its currency valid on its close date (ZC120)';
CREATE TRIGGER currency_from_price_book BEFORE INSERT OR UPDATE OF price_book_id, currency, close_date ON crm.opportunity
    FOR EACH ROW EXECUTE FUNCTION crm_internal.currency_from_price_book();
CREATE TRIGGER currency_from_price_book BEFORE INSERT OR UPDATE OF price_book_id, currency ON crm.quote
    FOR EACH ROW EXECUTE FUNCTION crm_internal.currency_from_price_book();

-- An order has its quote's currency, fixed (ZC022 on a change).  The order's
-- quote never changes (orders.c), so reading it on insert is enough.
CREATE FUNCTION crm_internal.sales_order_currency() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_sales_order_currency'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.sales_order_currency() IS 'BEFORE trigger on crm.sales_order: an order takes its quote''s currency and keeps it (ZC022)';
CREATE TRIGGER sales_order_currency BEFORE INSERT OR UPDATE OF currency ON crm.sales_order
    FOR EACH ROW EXECUTE FUNCTION crm_internal.sales_order_currency();

-- A book's currency cannot change while line items or orders use it
-- (ZC121): their prices are in it.  The book row is locked by the UPDATE
-- (currency is part of a key, so FOR UPDATE: a writer adopting the book
-- waits on its foreign key check); the trigger then locks the book's
-- opportunities and quotes, so a line being added to one is committed (and
-- seen by the checks, each a new snapshot under READ COMMITTED) or waits.
CREATE FUNCTION crm_internal.price_book_currency_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_price_book_currency_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.price_book_currency_guard() IS 'BEFORE trigger on crm.price_book: a book''s currency is fixed while line items or orders use it (ZC121)';
CREATE TRIGGER price_book_currency_guard BEFORE UPDATE OF currency ON crm.price_book
    FOR EACH ROW EXECUTE FUNCTION crm_internal.price_book_currency_guard();

-- Everybody working with the data reads currencies and rates and converts;
-- admins maintain them (settings.corporate_currency: admins, as all settings).
GRANT SELECT ON crm.currency, crm.exchange_rate TO crm_admin, crm_manager, crm_sales, crm_analyst;
GRANT INSERT, UPDATE, DELETE ON crm.currency, crm.exchange_rate TO crm_admin;
REVOKE ALL ON FUNCTION crm.corporate_currency() FROM PUBLIC;
REVOKE ALL ON FUNCTION crm.exchange_rate_on(text, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.corporate_currency(), crm.exchange_rate_on(text, date)
    TO crm_admin, crm_manager, crm_sales, crm_analyst;
-- Analysts read the deals' currency (the reports and verify_aggregates() do).
GRANT SELECT (currency) ON crm.opportunity TO crm_analyst;
REVOKE ALL ON FUNCTION crm_internal.exchange_rate_guard(), crm_internal.settings_currency_guard(), crm_internal.currency_from_price_book(),
    crm_internal.sales_order_currency(), crm_internal.price_book_currency_guard() FROM PUBLIC;
