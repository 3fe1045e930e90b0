-- api/roles.sql: the roles the GraphQL API server (api/server.js) needs, in
-- a database with crm; run as a superuser, again whenever CRM users are
-- added (scripts/api.sh and test/scripts/api.sh run it).
--   crm_api            the login PostGraphile connects as; a member of every
--                      CRM user's login role, so that it may SET ROLE to the
--                      role a request's token names, and of the crm_* groups,
--                      so that the schema it builds has what they may use
--                      (crm_intake too: captureLead, for a web form's login
--                      IN ROLE crm_intake; a request runs as its token's role
--                      or as crm_api_anonymous, never as crm_api, so this
--                      gives capture to no one else)
--   crm_api_anonymous  what a request without a token runs as: no rights
SET client_min_messages = warning;
DO $roles$
DECLARE
    r name;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'crm_api') THEN
        CREATE ROLE crm_api LOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'crm_api_anonymous') THEN
        CREATE ROLE crm_api_anonymous NOLOGIN;
    END IF;
    GRANT crm_api_anonymous TO crm_api;
    GRANT crm_admin, crm_manager, crm_sales, crm_analyst, crm_intake TO crm_api;
    -- every login that is a CRM user (the demo's alice, bob, carol, dana) or
    -- captures leads (a web form's login)
    FOR r IN SELECT DISTINCT u.rolname FROM pg_auth_members m
               JOIN pg_roles u ON u.oid = m.member JOIN pg_roles g ON g.oid = m.roleid
              WHERE g.rolname IN ('crm_admin', 'crm_manager', 'crm_sales', 'crm_analyst', 'crm_intake')
                AND u.rolcanlogin AND u.rolname <> 'crm_api'
    LOOP
        EXECUTE format('GRANT %I TO crm_api', r);
    END LOOP;
END
$roles$;
