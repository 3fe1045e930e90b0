-- api/roles.sql: the roles the GraphQL API server (api/server.js) needs, in
-- a database with crm; run as a superuser, again whenever CRM users are
-- added or removed (scripts/api.sh and test/scripts/api.sh run it).
--   crm_api            the login PostGraphile connects as (an authenticator):
--                      NOINHERIT, so that it has no rights of its own until a
--                      request's token makes it SET ROLE; a member of every
--                      CRM user's login role, so that it may SET ROLE to it
--                      (a web form's login IN ROLE crm_intake too: captureLead;
--                      a request runs as its token's role or as
--                      crm_api_anonymous, never as crm_api)
--   crm_api_anonymous  what a request without a token runs as: no rights
-- What a token may become is exactly what crm_api is a member of, so this
-- script keeps that list tight and re-derives it on every run:
--   * logins that are members of a crm_* group and hold no power beyond the
--     CRM: no superuser, CREATEROLE, REPLICATION or BYPASSRLS attribute and
--     no membership (direct or indirect) in any role other than the crm_*
--     groups (crm_admin is itself in crm_privacy_officer); such logins are left out with a NOTICE (a token naming them is
--     refused: "permission denied to set role");
--   * never a crm_* group itself: SET ROLE crm_admin would give any token
--     naming it the rights of every admin.  PostgraphiQL builds its schema
--     from every role crm_api reaches (ignoreRBAC: false), so the groups of
--     the CRM users it may become are in it.  On PostgreSQL 16 and later
--     crm_api is also a member of the five groups WITH INHERIT FALSE, SET
--     FALSE (in the schema even without a user in them; not a role a token
--     can take);
--   * any other membership crm_api has (granted by hand, or a login that
--     has since gained a power) is revoked.
SET client_min_messages = notice;
DO $roles$
DECLARE
    r record;
    crm_groups name[];
    eligible name[];
    pg16 CONSTANT boolean := current_setting('server_version_num')::int >= 160000;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'crm_api') THEN
        CREATE ROLE crm_api LOGIN NOINHERIT;
    END IF;
    ALTER ROLE crm_api NOINHERIT NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'crm_api_anonymous') THEN
        CREATE ROLE crm_api_anonymous NOLOGIN;
    END IF;

    -- The CRM's group roles: crm_admin, crm_manager, crm_sales, crm_analyst,
    -- crm_intake, crm_privacy_officer (and any later crm_* group), never a
    -- role with a power of its own.
    SELECT array_agg(g.rolname) INTO crm_groups FROM pg_roles AS g
     WHERE g.rolname LIKE 'crm\_%' AND NOT g.rolcanlogin AND g.rolname <> 'crm_api_anonymous'
       AND NOT g.rolsuper AND NOT g.rolcreaterole AND NOT g.rolreplication AND NOT g.rolbypassrls;
    -- Every role each login reaches through memberships (to any depth).
    CREATE TEMP TABLE crm_api_reach ON COMMIT DROP AS
    WITH RECURSIVE reach (login, role) AS (
        SELECT u.oid, m.roleid FROM pg_roles AS u JOIN pg_auth_members AS m ON m.member = u.oid
         WHERE u.rolcanlogin
        UNION
        SELECT reach.login, m.roleid FROM reach JOIN pg_auth_members AS m ON m.member = reach.role
    )
    SELECT login, role FROM reach;

    SELECT coalesce(array_agg(u.rolname ORDER BY u.rolname), '{}') INTO eligible
      FROM pg_roles AS u
     WHERE u.rolcanlogin AND u.rolname NOT IN ('crm_api')
       AND EXISTS (SELECT FROM crm_api_reach AS x JOIN pg_roles AS g ON g.oid = x.role
                    WHERE x.login = u.oid AND g.rolname = ANY (crm_groups))
       AND NOT u.rolsuper AND NOT u.rolcreaterole AND NOT u.rolreplication AND NOT u.rolbypassrls
       AND NOT EXISTS (SELECT FROM crm_api_reach AS x JOIN pg_roles AS g ON g.oid = x.role
                        WHERE x.login = u.oid AND g.rolname <> ALL (crm_groups));

    FOR r IN SELECT u.rolname FROM pg_roles AS u
              WHERE u.rolcanlogin AND u.rolname <> 'crm_api' AND u.rolname <> ALL (eligible)
                AND EXISTS (SELECT FROM crm_api_reach AS x JOIN pg_roles AS g ON g.oid = x.role
                             WHERE x.login = u.oid AND g.rolname = ANY (crm_groups))
              ORDER BY 1
    LOOP
        RAISE NOTICE 'crm_api will not act as %: it has rights beyond the CRM (superuser, CREATEROLE, REPLICATION, BYPASSRLS or another role)', r.rolname;
    END LOOP;

    -- Revoke whatever crm_api is a member of and should not be.
    FOR r IN SELECT g.rolname FROM pg_auth_members AS m JOIN pg_roles AS g ON g.oid = m.roleid
              WHERE m.member = 'crm_api'::regrole
                AND g.rolname <> 'crm_api_anonymous' AND g.rolname <> ALL (eligible)
    LOOP
        EXECUTE format('REVOKE %I FROM crm_api', r.rolname);
    END LOOP;

    FOR r IN SELECT x.rolname FROM unnest(eligible || 'crm_api_anonymous'::name) AS x (rolname)
              WHERE NOT EXISTS (SELECT FROM pg_auth_members AS m
                                 WHERE m.member = 'crm_api'::regrole AND m.roleid = x.rolname::regrole)
    LOOP
        EXECUTE format('GRANT %I TO crm_api', r.rolname);
    END LOOP;
    IF pg16 THEN
        EXECUTE 'GRANT crm_admin, crm_manager, crm_sales, crm_analyst, crm_intake TO crm_api WITH INHERIT FALSE, SET FALSE';
    END IF;
END
$roles$;
