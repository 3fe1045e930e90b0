--------------------------------------------------------------------------
-- Finite close dates (red team, issue 20)
--
-- A deal's close date picks the exchange rate its amount is converted at
-- and its close month in the aggregates, where 'infinity' stands for "no
-- close date": an infinite close date would be counted as undated
-- ('infinity') or have no rate at all ('-infinity', every converted report
-- of every reader failing with ZC120).  NULL stays allowed (not known yet).
--------------------------------------------------------------------------
ALTER TABLE crm.opportunity ADD CONSTRAINT opportunity_close_date_finite
    CHECK (pg_catalog.isfinite(close_date));
COMMENT ON CONSTRAINT opportunity_close_date_finite ON crm.opportunity IS 'A close date is a real day (or NULL while unknown): never infinity, which the aggregates use for "no close date" and no exchange rate is valid on';
