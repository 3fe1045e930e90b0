// test/typegen/drizzle.config.ts: drizzle-kit pull of schema crm, as
// test/scripts/typegen.sh runs it (CRM_DRIZZLE_URL: a CRM user's login).
// Then `node scripts/drizzle_schema.mjs test/typegen/drizzle` makes the
// pulled schema compile (README "Using crm from an application").
import { defineConfig } from 'drizzle-kit';

export default defineConfig({
    dialect: 'postgresql',
    schemaFilter: ['crm'],
    out: './drizzle',
    dbCredentials: { url: process.env.CRM_DRIZZLE_URL ?? 'postgres:///crm' },
});
