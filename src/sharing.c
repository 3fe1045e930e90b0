/*
 * sharing.c: which accounts and contacts a row may point at, for the
 * row-level security policies that the sharing rule makes necessary.
 *
 * The sharing rule (sql/install/95_row_security.sql) lets a role read an
 * account on which it sees an opportunity or a lead, and a contact on an
 * account it sees.  So writing an opportunity's account_id, or linking a
 * contact to an account, would make that account or contact readable: a rep
 * could read any account by creating a deal on its id.  The INSERT and
 * UPDATE policies of crm.opportunity, crm.contact, crm.account_contact,
 * crm.quote and crm.sales_order therefore ask
 *
 *   crm.may_reference_account(account_id)   crm.may_reference_contact(contact_id)
 *
 * (a quote or an order naming someone else's contact would pin it: the
 * contact's owner could not see what points at it)
 * true when the calling role already sees the row (by the same rule, computed
 * for the caller's team).  crm.convert_lead() has no exception: its
 * duplicate search looks only at what the caller sees, and its writes pass
 * these checks like any other.
 *
 * A new link also changes the account's list of contacts, so it must be on an
 * account the caller's team owns: crm.may_link_account(account_id).
 *
 * The policies cannot say this with sub-selects: the account's own policy
 * reads crm.opportunity, so an opportunity policy reading crm.account would
 * recurse.  These functions read as the extension owner, with the caller's
 * team passed in, and answer only about the caller's own view.
 *
 * Cost: a policy calls them for every row written, so each answer is a
 * fixed number of index probes -- the account by its key, then "a deal (or
 * lead) on this account owned by one of these roles" on the composite
 * indexes crm.opportunity (account_id, owner) and crm.lead (account_id,
 * owner) -- never a scan of the account's deals (bench/sharing.sh).
 */
#include "crm.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/datum.h"
#include "utils/memutils.h"

/*
 * does team member t.r own a row of tbl (crm.opportunity or crm.lead) on
 * account a.id?  A seek on the table's (account_id, owner) index: the first
 * entry at or after (a.id, t.r) in index order, which is (a.id, t.r) itself
 * when there is one.  Written as an ordered LIMIT 1 so that the only cheap
 * plan is that one index probe: a plain "account_id = a.id AND owner = t.r"
 * is, for the planner, as well served by a sequential scan that expects an
 * early match -- a scan of all of the account's deals when they are another
 * owner's (100,000 deals on a shared account: 100,000 rows read per row
 * written).  The IS NOT NULL lets the partial index of crm.lead qualify.
 */
#define OWNED_ON_ACCOUNT(tbl) \
	"EXISTS (SELECT 1 FROM (SELECT s.account_id, s.owner FROM " tbl " AS s" \
	"         WHERE (s.account_id, s.owner::pg_catalog.oid) OPERATOR(pg_catalog.>=) (a.id, t.r)" \
	"           AND s.account_id IS NOT NULL" \
	"         ORDER BY s.account_id, s.owner::pg_catalog.oid LIMIT 1) AS n" \
	"        WHERE n.account_id OPERATOR(pg_catalog.=) a.id AND n.owner::pg_catalog.oid OPERATOR(pg_catalog.=) t.r)"

/*
 * an account the team $2 sees: owns it, or sees a deal or lead on it -- the
 * rule of policy crm_shared_select on crm.account (95_row_security.sql); keep
 * both in step.  One index seek per team member and table, whatever the
 * number of deals on the account ("owner = ANY ($2)" would be a filter over
 * them).
 */
#define ACCOUNT_SEEN(acc) \
	"EXISTS (SELECT 1 FROM crm.account AS a WHERE a.id OPERATOR(pg_catalog.=) " acc \
	"   AND (a.owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($2)" \
	"     OR EXISTS (SELECT 1 FROM pg_catalog.unnest($2) AS t (r)" \
	"                 WHERE " OWNED_ON_ACCOUNT("crm.opportunity") \
	"                    OR " OWNED_ON_ACCOUNT("crm.lead") ")))"

static CrmQuery caller_team = {
	"SELECT pg_catalog.array_agg(t.r) FROM crm.team_roles() AS t (r)",
	0, {InvalidOid}, NULL
};

static CrmQuery account_seen = {
	"SELECT " ACCOUNT_SEEN("$1"),
	2, {INT8OID, OIDARRAYOID}, NULL
};

/* an account the team $2 owns */
static CrmQuery account_owned = {
	"SELECT EXISTS (SELECT 1 FROM crm.account AS a WHERE a.id OPERATOR(pg_catalog.=) $1"
	"   AND a.owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($2))",
	2, {INT8OID, OIDARRAYOID}, NULL
};

static CrmQuery contact_seen = {
	"SELECT EXISTS (SELECT 1 FROM crm.contact AS c WHERE c.id OPERATOR(pg_catalog.=) $1"
	"   AND (c.owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($2)"
	"     OR " ACCOUNT_SEEN("c.account_id")
	"     OR EXISTS (SELECT 1 FROM crm.account_contact AS ac"
	"                 WHERE ac.contact_id OPERATOR(pg_catalog.=) c.id AND " ACCOUNT_SEEN("ac.account_id") ")))",
	2, {INT8OID, OIDARRAYOID}, NULL
};

/*
 * The caller's team, computed once per statement: a policy calls these
 * functions for every row written, and within one command of one
 * transaction, for one role, the team cannot change.
 */
static struct
{
	LocalTransactionId lxid;
	CommandId	cid;
	Oid			role;
	bool		valid;
	Datum		team;			/* oid[] in TopMemoryContext, or 0: no team */
}			team_cache;

static Datum
caller_team_array(void)
{
	LocalTransactionId lxid = CRM_LOCAL_XID;
	CommandId	cid = GetCurrentCommandId(false);
	Oid			role = GetUserId();
	bool		isnull;
	Datum		team;

	if (team_cache.valid && team_cache.lxid == lxid && team_cache.cid == cid &&
		team_cache.role == role)
		return team_cache.team;
	crm_query_run(&caller_team, NULL, NULL, 1);
	team = crm_result_datum(0, 1, &isnull);
	if (team_cache.team != (Datum) 0)
		pfree(DatumGetPointer(team_cache.team));
	team_cache.team = (Datum) 0;
	if (!isnull)
	{
		MemoryContext saved = MemoryContextSwitchTo(TopMemoryContext);

		team_cache.team = datumCopy(team, false, -1);
		MemoryContextSwitchTo(saved);
	}
	team_cache.lxid = lxid;
	team_cache.cid = cid;
	team_cache.role = role;
	team_cache.valid = true;
	return team_cache.team;
}

/*
 * may_reference -- does the calling role see the row whose id is the
 * function's argument, by the query given?  NULL points at nothing: true.
 */
static Datum
may_reference(FunctionCallInfo fcinfo, CrmQuery *query)
{
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	bool		isnull;
	bool		seen;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(true);
	crm_spi_connect();
	values[1] = caller_team_array();
	if (values[1] == (Datum) 0)
	{
		crm_spi_finish();
		PG_RETURN_BOOL(false);
	}
	values[0] = PG_GETARG_DATUM(0);
	crm_query_run_as_owner(query, values, nulls, 1);
	seen = DatumGetBool(crm_result_datum(0, 1, &isnull)) && !isnull;
	crm_spi_finish();
	PG_RETURN_BOOL(seen);
}

/* crm_may_reference_account -- crm.may_reference_account(bigint) */
PG_FUNCTION_INFO_V1(crm_may_reference_account);
Datum
crm_may_reference_account(PG_FUNCTION_ARGS)
{
	return may_reference(fcinfo, &account_seen);
}

/* crm_may_reference_contact -- crm.may_reference_contact(bigint) */
PG_FUNCTION_INFO_V1(crm_may_reference_contact);
Datum
crm_may_reference_contact(PG_FUNCTION_ARGS)
{
	return may_reference(fcinfo, &contact_seen);
}

/* crm_may_link_account -- crm.may_link_account(bigint) */
PG_FUNCTION_INFO_V1(crm_may_link_account);
Datum
crm_may_link_account(PG_FUNCTION_ARGS)
{
	return may_reference(fcinfo, &account_owned);
}
