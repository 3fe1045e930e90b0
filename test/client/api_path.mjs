// test/client/api_path.mjs (run by test/scripts/api.sh): the sales path
// lead -> conversion -> quote -> approval -> order through PostGraphile 4
// (GraphQL over HTTP, a JWT per user) and through node-postgres, as two sales
// reps, their manager and an analyst.  Row-level security must show in the
// answers, SQLSTATEs in the errors.  Exits non-zero on the first failure.
import pg from 'pg';
import jwt from 'jsonwebtoken';

const { API_URL, JWT_SECRET, PGHOST, PGPORT, PGDATABASE } = process.env;
let failures = 0;
const check = (ok, what) => {
    console.log(`${ok ? 'ok' : 'FAIL'}: ${what}`);
    if (!ok) {
        failures++;
        console.log('  last answer: ' + JSON.stringify(r).slice(0, 600));
    }
};

async function gql(role, query, variables = {}) {
    const headers = { 'Content-Type': 'application/json' };
    if (role) headers.Authorization = 'Bearer ' + jwt.sign({ role }, JWT_SECRET, { audience: 'postgraphile', expiresIn: '10m' });
    const res = await fetch(API_URL, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
    return res.json();
}
const errcode = (r) => r.errors?.[0]?.errcode;

// ---- through GraphQL -------------------------------------------------------
// the rep's lead, converted
let r = await gql('api_rep1', `mutation { createLead(input: {lead: {name: "Ann Lee", company: "Lima Consulting", email: "ann@lima.example"}}) { lead { id owner status } } }`);
const leadId = r.data?.createLead?.lead?.id;
check(leadId && r.data.createLead.lead.owner === 'api_rep1' && r.data.createLead.lead.status === 'NEW_LEAD', 'rep1 creates a lead she owns (GraphQL)');
r = await gql('api_rep1', `mutation($id: BigInt!) { convertLead(input: {leadId: $id, opportunityName: "Lima - pilot"}) { conversionResult { accountId contactId opportunityId accountCreated } } }`, { id: leadId });
const conv = r.data?.convertLead?.conversionResult;
check(conv?.opportunityId && conv.accountCreated === true, 'rep1 converts it: account, contact and opportunity');
r = await gql('api_rep1', `mutation($id: BigInt!) { convertLead(input: {leadId: $id}) { conversionResult { accountId } } }`, { id: leadId });
check(errcode(r) === 'ZC002' && /into account/.test(r.errors[0].detail), 'a second conversion is ZC002 with its detail');
// the insert input offers no database-set column
r = await gql('api_rep1', `{ __type(name: "LeadInput") { inputFields { name } } }`);
const leadInput = r.data.__type.inputFields.map((f) => f.name);
check(!leadInput.some((f) => ['id', 'createdAt', 'updatedAt', 'accountId', 'convertedAt', 'score', 'searchText'].includes(f)),
      'LeadInput offers no id, timestamps, conversion fields, score or search_text');
// a line without unit price (the price book's), then the quote
r = await gql('api_rep1', `mutation($o: BigInt!) { createOpportunityLineItem(input: {opportunityLineItem: {opportunityId: $o, productId: "1", quantity: "2", discount: "15"}}) { opportunityLineItem { unitPrice total } } }`, { o: conv?.opportunityId });
check(r.data?.createOpportunityLineItem?.opportunityLineItem?.unitPrice === '100.00', 'a line item without unitPrice gets the price book\'s');
r = await gql('api_rep1', `mutation($o: BigInt!) { createQuoteFromOpportunity(input: {opportunityId: $o}) { bigInt } }`, { o: conv?.opportunityId });
const quoteId = r.data?.createQuoteFromOpportunity?.bigInt;
check(quoteId, 'createQuoteFromOpportunity (crm.create_quote) makes a quote');
r = await gql('api_rep1', `mutation($q: BigInt!) { updateQuoteById(input: {id: $q, quotePatch: {status: PRESENTED}}) { quote { status } } }`, { q: quoteId });
check(errcode(r) === 'ZC205', 'a 15% discount cannot be presented before approval (ZC205)');
r = await gql('api_rep1', `mutation($q: BigInt!) { submitQuote(input: {quoteId: $q, comment: "15% for a pilot"}) { quoteStatus } }`, { q: quoteId });
check(r.data?.submitQuote?.quoteStatus === 'NEEDS_REVIEW', 'rep1 submits it for review');
r = await gql('api_rep1', `mutation($q: BigInt!) { approveQuote(input: {quoteId: $q, comment: "self"}) { quoteStatus } }`, { q: quoteId });
check(errcode(r) === '42501', 'rep1 cannot approve (42501)');
r = await gql('api_manager', `mutation($q: BigInt!) { approveQuote(input: {quoteId: $q, comment: "ok"}) { quoteStatus } }`, { q: quoteId });
check(r.data?.approveQuote?.quoteStatus === 'APPROVED', 'the manager approves it');
for (const s of ['PRESENTED', 'ACCEPTED']) {
    r = await gql('api_rep1', `mutation($q: BigInt!, $s: QuoteStatus!) { updateQuoteById(input: {id: $q, quotePatch: {status: $s}}) { quote { status } } }`, { q: quoteId, s });
    check(r.data?.updateQuoteById?.quote?.status === s, `rep1 sets the quote ${s}`);
}
r = await gql('api_rep1', `mutation($q: BigInt!) { createOrderFromQuote(input: {quoteId: $q}) { bigInt } }`, { q: quoteId });
const orderId = r.data?.createOrderFromQuote?.bigInt;
check(orderId, 'createOrderFromQuote (crm.create_order) makes the order');
r = await gql('api_rep1', `query($id: BigInt!) { salesOrderById(id: $id) { status total owner } }`, { id: orderId });
check(r.data?.salesOrderById?.total === '170.00', 'the order totals 2 x 100.00 less 15%');
// row-level security in the answers
r = await gql('api_rep2', `query($id: BigInt!) { leadById(id: $id) { id } allLeads { totalCount } }`, { id: leadId });
check(r.data?.leadById === null && r.data.allLeads.totalCount === 0, 'rep2 sees neither the lead nor any other');
r = await gql('api_rep2', `mutation($id: BigInt!) { convertLead(input: {leadId: $id}) { conversionResult { accountId } } }`, { id: leadId });
check(['42501', 'ZC001'].includes(errcode(r)), `rep2 cannot convert it (${errcode(r)})`);
r = await gql('api_rep1', `query($a: BigInt!) { accountById(id: $a) { contactsByAccountId { totalCount } opportunitiesByAccountId { nodes { name } } } }`, { a: conv?.accountId });
check(r.data?.accountById?.contactsByAccountId?.totalCount === 1 && r.data.accountById.opportunitiesByAccountId.nodes[0]?.name === 'Lima - pilot',
      'rep1 follows the account to its contact and opportunity (relations over partial indexes)');
r = await gql('api_manager', `{ allLeads { totalCount } allSalesOrders { totalCount } }`);
check(r.data?.allLeads?.totalCount === 1 && r.data.allSalesOrders.totalCount === 1, 'the manager sees the team\'s lead and order');
r = await gql('api_analyst', `{ allPipelineTotals { nodes { stage owner closeMonth amount } } allQuoteToOrders { totalCount } }`);
check(r.data?.allPipelineTotals?.nodes?.length >= 1 && !r.errors, 'the analyst reads the pipeline totals and quote_to_order');
r = await gql('api_analyst', `{ allLeads { nodes { name email } } }`);
check(errcode(r) === '42501', 'the analyst cannot read names and e-mail addresses of leads (42501)');
r = await gql(null, `{ allLeads { totalCount } }`);
check(errcode(r) === '42501', 'without a token nothing is readable (42501)');
// lead capture: a web form's token names an intake login (crm_intake);
// nobody else captures, a request without a token least of all
const capture = `mutation { captureLead(input: {name: "Maria Garcia", email: "maria@garcia.example", details: {city: "Madrid"}}) { bigInt } }`;
r = await gql('api_form', capture);
check(r.data?.captureLead?.bigInt, 'the web form\'s login captures a lead (captureLead)');
r = await gql(null, capture);
check(errcode(r) === '42501', 'without a token no lead is captured (42501)');
r = await gql('api_rep1', capture);
check(errcode(r) === '42501', 'a rep does not capture: crm_intake only (42501)');
r = await gql('api_form', `{ allLeads { totalCount } }`);
check(errcode(r) === '42501', 'the web form\'s login reads no lead (42501)');
// crm.find_duplicates, overloaded in SQL: one query taking id or candidate
r = await gql('api_rep1', `{ findDuplicates(kind: "contact", candidate: {name: "Ann Lee", email: "ann@lima.example"}) { kind id owner rule score } }`);
check(r.data?.findDuplicates?.some((m) => m.kind === 'contact' && m.id === conv?.contactId && m.owner === 'api_rep1'),
      'findDuplicates(candidate) finds rep1\'s contact');
r = await gql('api_rep1', `query($id: BigInt!) { findDuplicates(kind: "contact", id: $id) { id } }`, { id: conv?.contactId });
check(Array.isArray(r.data?.findDuplicates) && !r.errors, 'findDuplicates(id) answers for a stored contact');
r = await gql('api_rep2', `query($id: BigInt!) { findDuplicates(kind: "contact", id: $id) { id } }`, { id: conv?.contactId });
check(r.errors?.length > 0 && errcode(r) !== undefined, `rep2 cannot search from rep1's contact (${errcode(r)})`);
r = await gql('api_rep1', `{ findDuplicates(kind: "contact") { id } }`);
check(r.errors?.length > 0, 'findDuplicates needs id or candidate');

// ---- hostile tokens ---------------------------------------------------------
// A token's role claim cannot pick a group, the authenticator, a superuser
// that is also a CRM user, or a CRM login with powers beyond the CRM: no
// data comes back, only an error: 42501 from the server, or PostgreSQL's
// "permission denied to set role" (raised before PostGraphile runs the
// query, so without an errcode).
for (const role of ['crm_admin', 'crm_manager', 'crm_api', 'postgres', 'api_root', 'api_files', 'pg_read_server_files']) {
    r = await gql(role, `{ allLeads { totalCount } }`);
    check(r.data?.allLeads == null && (errcode(r) === '42501' || /^permission denied to set role/.test(r.errors?.[0]?.message)),
          `a token naming ${role} reads nothing (refused)`);
}
r = await gql(null, `{ allLeads { totalCount } }`);
check(r.data?.allLeads == null && r.errors?.length > 0, 'a request without a token reads nothing');

// ---- through node-postgres --------------------------------------------------
const connect = async (user) => {
    const c = new pg.Client({ host: PGHOST, port: Number(PGPORT), database: PGDATABASE, user });
    await c.connect();
    return c;
};
const rep = await connect('api_rep1');
const { rows: [lead2] } = await rep.query('INSERT INTO crm.lead (name, company) VALUES ($1, $2) RETURNING id', ['Bo Ek', 'Lima Consulting']);
const { rows: [c2] } = await rep.query('SELECT * FROM crm.convert_lead($1, opportunity_name => $2)', [lead2.id, 'Lima - phase 2']);
check(c2.account_id === conv?.accountId && c2.account_created === false, 'node-postgres: a second lead of the company reuses the account');
await rep.query('INSERT INTO crm.opportunity_line_item (opportunity_id, product_id) VALUES ($1, 1)', [c2.opportunity_id]);
const { rows: [q2] } = await rep.query('SELECT crm.create_quote($1) AS id', [c2.opportunity_id]);
await rep.query("UPDATE crm.quote SET status = 'Presented' WHERE id = $1", [q2.id]);
await rep.query("UPDATE crm.quote SET status = 'Accepted' WHERE id = $1", [q2.id]);
const { rows: [o2] } = await rep.query('SELECT crm.create_order($1) AS id', [q2.id]);
check(o2.id, 'node-postgres: quote presented, accepted and ordered without approval (no discount)');
try {
    await rep.query('UPDATE crm.lead SET created_at = now() WHERE id = $1', [lead2.id]);
    check(false, 'node-postgres: created_at is not writable');
} catch (e) {
    check(e.code === '42501', 'node-postgres: created_at is not writable (42501)');
}
const rep2 = await connect('api_rep2');
const { rowCount } = await rep2.query('SELECT FROM crm.sales_order');
check(rowCount === 0, 'node-postgres: rep2 sees no order');
const analyst = await connect('api_analyst');
const { rows: pt } = await analyst.query('SELECT close_month FROM crm.pipeline_totals');
check(pt.length >= 1, 'node-postgres: the analyst reads pipeline_totals');
await Promise.all([rep.end(), rep2.end(), analyst.end()]);

console.log(failures ? `${failures} checks failed` : 'all checks passed');
process.exit(failures ? 1 : 0);
