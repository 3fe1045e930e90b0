// test/typegen/inserts.ts: typed statements against the types kysely-codegen
// generated from crm (db.d.ts, written by test/scripts/typegen.sh); tsc
// must accept them.  Each insert leaves out what the database fills in.
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { DB } from './db.js';

export async function salesPath(pool: pg.Pool, productId: string): Promise<string> {
    const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
    // no owner (routed or the inserting role), no id, no timestamps
    const lead = await db.insertInto('crm.lead').values({ name: 'Ann Lee', company: 'Lima Consulting' })
        .returning(['id', 'owner', 'status']).executeTakeFirstOrThrow();
    // nullable in the catalog so that inserts may leave it out; a CHECK keeps it set
    const owner: string | null = lead.owner;
    const account = await db.insertInto('crm.account').values({ name: 'Lima Consulting' })
        .returning('id').executeTakeFirstOrThrow();
    const opp = await db.insertInto('crm.opportunity').values({ name: 'Lima - pilot', account_id: account.id })
        .returning('id').executeTakeFirstOrThrow();
    // no unit_price: the price book's
    const line = await db.insertInto('crm.opportunity_line_item')
        .values({ opportunity_id: opp.id, product_id: productId, quantity: '2' })
        .returning(['unit_price', 'total']).executeTakeFirstOrThrow();
    // no quote_number: the database draws it
    const quote = await db.insertInto('crm.quote').values({ opportunity_id: opp.id, name: 'Lima - Quote 1' })
        .returning(['id', 'quote_number']).executeTakeFirstOrThrow();
    await db.insertInto('crm.quote_line_item').values({ quote_id: quote.id, product_id: productId }).execute();
    const totals = await db.selectFrom('crm.pipeline_totals').select(['stage', 'close_month', 'amount']).execute();
    await db.destroy();
    return [owner, lead.status, line.unit_price, line.total, quote.quote_number, totals.length].join(' ');
}
