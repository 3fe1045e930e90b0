// test/typegen/inserts_drizzle.ts: typed statements against the schema
// drizzle-kit pulled from crm (drizzle/schema.ts, written by
// test/scripts/typegen.sh and rewritten by scripts/drizzle_schema.mjs);
// tsc must accept them.  Each insert leaves out what the database fills in,
// and what nobody may write is refused by the types.
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { accountInCrm, leadInCrm, opportunityInCrm, opportunityLineItemInCrm, pipelineTotalsInCrm,
         quoteInCrm, quoteLineItemInCrm } from './drizzle/schema.js';

export async function salesPathDrizzle(pool: pg.Pool, productId: number): Promise<string> {
    const db = drizzle(pool);
    // no owner (routed or the inserting role), no id, no timestamps
    const [lead] = await db.insert(leadInCrm).values({ name: 'Ann Lee', company: 'Lima Consulting' })
        .returning({ id: leadInCrm.id, owner: leadInCrm.owner, status: leadInCrm.status });
    // nullable in the catalog so that inserts may leave it out; a CHECK keeps it set
    const owner: string | null = lead.owner;
    // the id is the database's (GENERATED ALWAYS): not an insert column
    // @ts-expect-error -- id
    const forged: typeof leadInCrm.$inferInsert = { id: 1, name: 'Forged' };
    const [account] = await db.insert(accountInCrm).values({ name: 'Lima Consulting' })
        .returning({ id: accountInCrm.id });
    const [opp] = await db.insert(opportunityInCrm).values({ name: 'Lima - pilot', accountId: account.id })
        .returning({ id: opportunityInCrm.id });
    // no unit_price: the price book's
    const [line] = await db.insert(opportunityLineItemInCrm)
        .values({ opportunityId: opp.id, productId, quantity: '2' })
        .returning({ unitPrice: opportunityLineItemInCrm.unitPrice, total: opportunityLineItemInCrm.total });
    // no quote_number: the database draws it
    const [quote] = await db.insert(quoteInCrm).values({ opportunityId: opp.id, name: 'Lima - Quote 1' })
        .returning({ id: quoteInCrm.id, quoteNumber: quoteInCrm.quoteNumber });
    await db.insert(quoteLineItemInCrm).values({ quoteId: quote.id, productId });
    const totals = await db.select({ stage: pipelineTotalsInCrm.stage, closeMonth: pipelineTotalsInCrm.closeMonth,
                                     amount: pipelineTotalsInCrm.amount }).from(pipelineTotalsInCrm);
    return [forged.name, owner, lead.status, line.unitPrice, line.total, quote.quoteNumber, totals.length].join(' ');
}
