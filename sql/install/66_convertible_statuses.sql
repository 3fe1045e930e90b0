--------------------------------------------------------------------------
-- Which lead statuses may be converted (the verification step): a lead in
-- another status is refused by crm.convert_lead() with ZC003.
--------------------------------------------------------------------------
ALTER TABLE crm.settings ADD COLUMN convertible_statuses crm.lead_status[] NOT NULL
        DEFAULT ARRAY['New Lead', 'Processing', 'Following Up', 'In Transaction', 'Completed']::crm.lead_status[]
    CONSTRAINT settings_convertible_statuses_valid CHECK (
        pg_catalog.cardinality(convertible_statuses) OPERATOR(pg_catalog.>) 0
        AND pg_catalog.array_ndims(convertible_statuses) OPERATOR(pg_catalog.=) 1
        AND pg_catalog.array_position(convertible_statuses, NULL) IS NULL
        AND pg_catalog.array_position(convertible_statuses, 'Converted'::crm.lead_status) IS NULL);
COMMENT ON COLUMN crm.settings.convertible_statuses IS 'Lead statuses crm.convert_lead() converts; a lead in any other status is refused (SQLSTATE ZC003). Default: every status but Not Qualified. Not empty, no NULL, never Converted';
