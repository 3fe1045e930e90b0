/*
 * campaigns.c: campaign hierarchy and member responses.
 *
 * crm_internal.campaign_guard() is a BEFORE row trigger on crm.campaign (INSERT,
 *     UPDATE OF parent_id): a parent that would make the
 *     campaign its own ancestor is refused.  Hierarchy changes take the
 *     extension's campaign hierarchy lock (locks.c), so two
 *     concurrent re-parentings cannot each pass the check and together make a
 *     cycle; the check runs after the lock, with a fresh snapshot in READ
 *     COMMITTED, and fails with 40001 in REPEATABLE READ when only a fresh
 *     snapshot would see the cycle.  Rows of one multi-row INSERT are
 *     checked too (with OVERRIDING SYSTEM VALUE they can name each other).
 *     The check walks every ancestor of the new parent, at any depth.
 * crm_internal.campaign_member_response() is a BEFORE row trigger on
 *     crm.campaign_member: first_responded_at is stamped the first time the
 *     member is marked responded, and kept from then on; a member whose
 *     person opted out (do not contact; e-mail for an Email campaign, calls
 *     for a Telemarketing one) is marked opted_out, with a WARNING.
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

/*
 * Had the member's lead or contact ($2, $3) opted out of what campaign $1
 * does?  Read with the caller's rights: nothing is told about a person the
 * caller cannot see (such an insert fails its policy anyway).
 */
static CrmQuery member_opted_out = {
	"SELECT p.do_not_contact"
	"    OR (k.type OPERATOR(pg_catalog.=) 'Email' AND p.email_opt_out)"
	"    OR (k.type OPERATOR(pg_catalog.=) 'Telemarketing' AND p.phone_opt_out)"
	"  FROM crm.campaign AS k,"
	"       (SELECT l.do_not_contact, l.email_opt_out, l.phone_opt_out FROM crm.lead AS l WHERE l.id OPERATOR(pg_catalog.=) $2"
	"        UNION ALL"
	"        SELECT c.do_not_contact, c.email_opt_out, c.phone_opt_out FROM crm.contact AS c WHERE c.id OPERATOR(pg_catalog.=) $3) AS p"
	" WHERE k.id OPERATOR(pg_catalog.=) $1",
	3, {INT8OID, INT8OID, INT8OID}, NULL
};

/*
 * mark_opted_out -- a member added (or pointed at another person) gets
 * opted_out set when the person opted out, with a WARNING; otherwise the
 * mark is kept as it was (false for a new member)
 */
static HeapTuple
mark_opted_out(HeapTuple oldtup, HeapTuple newtup, TupleDesc tupdesc, Relation rel)
{
	Datum		values[3];
	char		nulls[3];
	bool		isnull;
	bool		opted_out = false;

	if (SPI_fnumber(tupdesc, "opted_out") <= 0)
		return newtup;			/* before 0.7 */
	if (oldtup != NULL && !crm_column_changed(oldtup, newtup, tupdesc, "lead_id") &&
		!crm_column_changed(oldtup, newtup, tupdesc, "contact_id") &&
		!crm_column_changed(oldtup, newtup, tupdesc, "campaign_id"))
		return crm_keep_column(oldtup, newtup, tupdesc, "opted_out");

	for (int i = 0; i < 3; i++)
	{
		static const char *const cols[] = {"campaign_id", "lead_id", "contact_id"};
		int64		id = crm_column_int64(newtup, tupdesc, cols[i], &isnull);

		crm_param_int64(values, nulls, i, id, isnull);
	}
	crm_spi_connect();
	crm_query_run(&member_opted_out, values, nulls, 1);
	for (uint64 r = 0; r < SPI_processed; r++)
		opted_out = opted_out || DatumGetBool(crm_result_datum((int) r, 1, &isnull));
	crm_spi_finish();
	if (opted_out)
		ereport(WARNING,
				(errcode(ERRCODE_CRM_MEMBER_OPTED_OUT),
				 errtable(rel),
				 errmsg("the %s added to campaign %lld has opted out of being contacted this way",
						nulls[1] == ' ' ? "lead" : "contact", (long long) DatumGetInt64(values[0])),
				 errdetail("The membership is marked opted_out."),
				 errhint("Leave opted-out people out of campaign sends; crm.contactable lists who may be contacted.")));
	return crm_set_column(newtup, tupdesc, "opted_out", BoolGetDatum(opted_out), false);
}

/* crm_campaign_member_response -- trigger crm_internal.campaign_member_response() */
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
	newtup = mark_opted_out(oldtup, newtup, tupdesc, trigdata->tg_relation);
	return PointerGetDatum(newtup);
}

/* crm_campaign_guard -- trigger crm_internal.campaign_guard() */
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
