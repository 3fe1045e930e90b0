/*
 * campaigns.c: campaign hierarchy and member responses.
 *
 * crm.campaign_guard() is a BEFORE row trigger on crm.campaign (INSERT,
 *     UPDATE OF parent_id): a parent that would make the
 *     campaign its own ancestor is refused.  Hierarchy changes take the
 *     extension's campaign hierarchy lock (locks.c), so two
 *     concurrent re-parentings cannot each pass the check and together make a
 *     cycle; the check runs after the lock, with a fresh snapshot in READ
 *     COMMITTED, and fails with 40001 in REPEATABLE READ when only a fresh
 *     snapshot would see the cycle.  Rows of one multi-row INSERT are
 *     checked too (with OVERRIDING SYSTEM VALUE they can name each other).
 *     The check walks every ancestor of the new parent, at any depth.
 * crm.campaign_member_response() is a BEFORE row trigger on
 *     crm.campaign_member: first_responded_at is stamped the first time the
 *     member is marked responded, and kept from then on.
 */
#include "crm.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/timestamp.h"


/*
 * is $2 among the ancestors of campaign $1 (itself included)?  The walk goes
 * up to the root whatever the depth, one primary-key lookup per level (a
 * scalar subquery: a join could be planned as a hash join, which reads the
 * whole table at every level), and the outer query stops at the first hit.
 * The root's parent is NULL, which ends the walk; UNION (not UNION ALL)
 * drops an id met twice, so it ends even on a cycle made with the trigger
 * disabled.
 */
static CrmQuery is_ancestor = {
	"WITH RECURSIVE up (id) AS ("
	"   SELECT $1::pg_catalog.int8"
	"   UNION"
	"   SELECT (SELECT c.parent_id FROM crm.campaign AS c WHERE c.id OPERATOR(pg_catalog.=) up.id)"
	"     FROM up WHERE up.id IS NOT NULL)"
	" SELECT 1 FROM up WHERE up.id OPERATOR(pg_catalog.=) $2 LIMIT 1",
	2, {INT8OID, INT8OID}, NULL
};

/* crm_campaign_member_response -- trigger crm.campaign_member_response() */
PG_FUNCTION_INFO_V1(crm_campaign_member_response);
Datum
crm_campaign_member_response(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "campaign_member_response", true, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	bool		is_insert = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event);
	HeapTuple	oldtup = is_insert ? NULL : trigdata->tg_trigtuple;
	HeapTuple	newtup = is_insert ? trigdata->tg_trigtuple : trigdata->tg_newtuple;

	/* first_responded_at: stamped once, at the first response, then kept */
	if (oldtup != NULL && !heap_attisnull(oldtup, crm_attnum(tupdesc, "first_responded_at"), tupdesc))
		newtup = crm_keep_column(oldtup, newtup, tupdesc, "first_responded_at");
	else if (crm_column_is(newtup, tupdesc, "responded", "t"))
		newtup = crm_set_column(newtup, tupdesc, "first_responded_at",
								TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()), false);
	else
		newtup = crm_set_column(newtup, tupdesc, "first_responded_at", (Datum) 0, true);
	return PointerGetDatum(newtup);
}

/* crm_campaign_guard -- trigger crm.campaign_guard() */
PG_FUNCTION_INFO_V1(crm_campaign_guard);
Datum
crm_campaign_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "campaign_guard", true, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	bool		is_insert = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event);
	HeapTuple	newtup = is_insert ? trigdata->tg_trigtuple : trigdata->tg_newtuple;
	bool		isnull;
	int64		id;
	int64		parent;
	CrmLock		lock;
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	bool		cycle;

	/* versions before 0.6 fire this trigger on the members too */
	if (strcmp(RelationGetRelationName(trigdata->tg_relation), "campaign_member") == 0)
		return crm_campaign_member_response(fcinfo);

	id = crm_column_int64(newtup, tupdesc, "id", &isnull);
	parent = crm_column_int64(newtup, tupdesc, "parent_id", &isnull);
	if (isnull)
		return PointerGetDatum(newtup);

	lock = crm_lock_global(CRM_LOCK_CAMPAIGN_HIERARCHY);
	crm_lock_all(&lock, 1);

	values[0] = Int64GetDatum(parent);
	values[1] = Int64GetDatum(id);
	crm_spi_connect();
	crm_query_run_as_owner(&is_ancestor, values, nulls, 1);
	cycle = SPI_processed > 0;
	/* REPEATABLE READ: a re-parenting committed since our snapshot counts */
	if (!cycle && crm_query_finds_newer_rows(&is_ancestor, values, nulls))
		crm_serialization_failure(psprintf("campaign %lld", (long long) id), NULL);
	crm_spi_finish();
	if (cycle)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_CAMPAIGN_CYCLE),
				 errtable(trigdata->tg_relation),
				 errmsg("campaign %lld cannot have campaign %lld as parent", (long long) id, (long long) parent),
				 errdetail("Campaign %lld is campaign %lld itself or one of its sub-campaigns.",
						   (long long) parent, (long long) id)));
	return PointerGetDatum(newtup);
}
