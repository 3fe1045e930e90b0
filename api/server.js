// api/server.js: crm as a GraphQL API, with PostGraphile 4 (pinned in
// package.json; started by scripts/api.sh, tested by test/scripts/api.sh).
//
// PostGraphile connects as an authenticator login (CRM_API_DATABASE_URL)
// that may SET ROLE to each CRM user.  A request carries a JWT
// (Authorization: Bearer ...) signed with CRM_API_JWT_SECRET whose claim
// "role" names the user's database role (audience "postgraphile"); every
// statement of the request then runs as that role, so the database's
// privileges and row-level security decide what the request sees and may
// do, exactly as for any other driver.  Without a token a request runs as
// CRM_API_ANONYMOUS_ROLE, which may do nothing.
//
// The schema PostGraphile builds follows the catalog: only objects the
// authenticator's CRM roles may use (ignoreRBAC: false), the extension's own
// objects included (crm is an extension); postgraphile.tags.json5 names what
// would collide and hides the internals.  Errors carry their SQLSTATE
// (extensions.exception.errcode ... see extendedErrors).
//
// PostGraphile 4 leaves out overloaded functions, and crm.find_duplicates
// has two (kind, id) and (kind, candidate): FindDuplicatesPlugin below adds
// the query findDuplicates(kind, id | candidate), which calls the one the
// arguments name, in the request's transaction and role like every other
// field.
'use strict';
const http = require('http');
const path = require('path');
const { postgraphile } = require('postgraphile');
const { makePgSmartTagsFromFilePlugin } = require('postgraphile/plugins');
const { makeExtendSchemaPlugin, gql } = require('graphile-utils');

const FindDuplicatesPlugin = makeExtendSchemaPlugin((build) => {
    const { pgSql: sql } = build;
    return {
        typeDefs: gql`
            extend type Query {
                """The leads, accounts and contacts that may duplicate a stored record (id) or one not stored yet (candidate: column names and values), best first; records the caller cannot see only with owner and rule: crm.find_duplicates()"""
                findDuplicates(kind: String!, id: BigInt, candidate: JSON): [DuplicateMatch!]!
            }`,
        resolvers: {
            Query: {
                findDuplicates: (_parent, { kind, id, candidate }, _context, resolveInfo) => {
                    if ((id == null) === (candidate == null)) {
                        throw new Error('findDuplicates takes either id or candidate');
                    }
                    const call = id != null
                        ? sql.fragment`crm.find_duplicates(${sql.value(kind)}::text, ${sql.value(id)}::bigint)`
                        : sql.fragment`crm.find_duplicates(${sql.value(kind)}::text, candidate => ${sql.value(JSON.stringify(candidate))}::jsonb)`;
                    return resolveInfo.graphile.selectGraphQLResultFromTable(call, () => {});
                },
            },
        },
    };
});

const env = (name, fallback) => {
    const v = process.env[name] ?? fallback;
    if (v === undefined) { console.error(`${name} is not set`); process.exit(2); }
    return v;
};
const databaseUrl = env('CRM_API_DATABASE_URL');
const port = Number(env('CRM_API_PORT', '5678'));
const host = env('CRM_API_HOST', '127.0.0.1');

const middleware = postgraphile(databaseUrl, ['crm'], {
    includeExtensionResources: true,
    ignoreRBAC: false,
    // Every foreign key of crm has an index (test/sql/foreign_key_indexes.sql),
    // most of them partial (WHERE column IS NOT NULL), which PostGraphile 4
    // does not count: without this it would leave out the reverse relations
    // (an account's contacts, a lead's activities).
    ignoreIndexes: true,
    appendPlugins: [makePgSmartTagsFromFilePlugin(path.join(__dirname, 'postgraphile.tags.json5')), FindDuplicatesPlugin],
    jwtSecret: env('CRM_API_JWT_SECRET'),
    pgDefaultRole: env('CRM_API_ANONYMOUS_ROLE', 'crm_api_anonymous'),
    extendedErrors: ['errcode', 'detail', 'hint', 'constraint', 'table', 'column'],
    dynamicJson: true,
    setofFunctionsContainNulls: false,
    enableQueryBatching: false,
    graphiql: true,
    enhanceGraphiql: true,
    disableQueryLog: true,
    retryOnInitFail: false,
    exportGqlSchemaPath: process.env.CRM_API_EXPORT_SCHEMA || undefined,
});

// What a token's "role" claim may name is decided by the database: the
// authenticator is NOINHERIT and a member only of the CRM users' logins
// (api/roles.sql).  As a second line, a token naming a group, a built-in
// role or the authenticator itself is refused here, before any statement.
const refusedRoles = new Set(['postgres', 'crm_admin', 'crm_manager', 'crm_sales', 'crm_analyst', 'crm_intake',
                              'crm_privacy_officer', 'crm_api', (() => {
                                  try { return decodeURIComponent(new URL(databaseUrl).username); } catch (e) { return 'crm_api'; }
                              })()]);
const roleClaim = (req) => {
    const m = /^Bearer\s+([^.\s]+)\.([^.\s]+)\./i.exec(req.headers.authorization || '');
    if (!m) return undefined;
    try {
        return JSON.parse(Buffer.from(m[2], 'base64url').toString('utf8')).role;
    } catch (e) {
        return undefined;      // not JSON: PostGraphile refuses the token itself
    }
};
const handler = (req, res) => {
    const role = roleClaim(req);
    if (typeof role === 'string' && (refusedRoles.has(role) || role.startsWith('pg_'))) {
        res.writeHead(403, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ message: `a token may not name the role "${role}"`, errcode: '42501' }] }));
        return;
    }
    middleware(req, res);
};

http.createServer(handler).listen(port, host, () => {
    console.log(`crm GraphQL API on http://${host}:${port}/graphql (GraphiQL: http://${host}:${port}/graphiql)`);
});
