--------------------------------------------------------------------------
-- Schema crm_internal: the extension's internals
--
-- What the extension keeps for itself lives apart from the CRM in schema
-- crm: the aggregate tables and their checking views, the status
-- transition tables, the secrets, the helper functions of the C code and
-- every trigger function.  Catalog-driven tools (API servers, code
-- generators, BI inspectors) that read schema crm thus see only the CRM.
-- No CRM role has USAGE on it: views, policies, defaults, triggers and
-- SQL-standard function bodies refer to its objects by OID, which needs no
-- USAGE, and the C code reads it as the extension owner.  It is part of the
-- extension: DROP EXTENSION crm drops it.
--------------------------------------------------------------------------
CREATE SCHEMA crm_internal;
COMMENT ON SCHEMA crm_internal IS 'Internals of extension crm (aggregate tables, transition tables, secrets, helper and trigger functions); not for direct use: read schema crm';
