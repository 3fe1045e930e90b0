/*
 * activities.c: activities, participants and reminders.
 *
 * crm_internal.activity_lifecycle()  BEFORE INSERT OR UPDATE row trigger on
 *     crm.activity: completed_at is set when the status becomes Completed and
 *     cleared when it leaves it; a new activity's reminder is unsent, and a
 *     changed remind_at re-arms it; a changed link must name a record the
 *     caller sees (on INSERT the policy asks it); the recurrence rule is
 *     checked and the series kept by recurrence.c.
 * crm_internal.participant_response()  BEFORE INSERT OR UPDATE row trigger on
 *     crm.activity_participant: responded_at is stamped when the response
 *     changes, and kept otherwise.
 * crm.claim_due_reminders()  hands out due reminders, each exactly once: one
 *     statement selects them FOR UPDATE SKIP LOCKED (a reminder another
 *     worker holds is skipped, not waited for), marks them sent, and queues
 *     one NOTIFY crm_reminder each, which PostgreSQL delivers when -- and only
 *     if -- the claiming transaction commits.  A rolled-back claim leaves the
 *     reminders unsent for the next worker.  SECURITY INVOKER: a worker claims
 *     only reminders of activities it may update.
 * crm.take_reminder()  what a listener calls for each crm_reminder
 *     notification: PostgreSQL lets any role that can connect NOTIFY any
 *     channel, so a payload proves nothing.  The function returns the
 *     reminder once per committed claim (marking it taken) and nothing for a
 *     forged or repeated notification: a listener that delivers only what it
 *     returns delivers each claimed reminder exactly once.
 */
#include "crm.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#define MAX_CLAIM 10000

static HeapTuple
stamp_now(HeapTuple tuple, TupleDesc tupdesc, const char *colname)
{
	return crm_set_column(tuple, tupdesc, colname,
						  TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()), false);
}

/* crm_participant_response -- trigger crm_internal.participant_response() */
PG_FUNCTION_INFO_V1(crm_participant_response);
Datum
crm_participant_response(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "participant_response", true, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	bool		is_insert = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event);
	HeapTuple	oldtup = is_insert ? NULL : trigdata->tg_trigtuple;
	HeapTuple	newtup = is_insert ? trigdata->tg_trigtuple : trigdata->tg_newtuple;

	/* responded_at: when the response last changed from or to an answer */
	if (is_insert ? !crm_column_is(newtup, tupdesc, "response_status", "Needs Action")
		: crm_column_changed(oldtup, newtup, tupdesc, "response_status"))
		newtup = stamp_now(newtup, tupdesc, "responded_at");
	else if (is_insert)
		newtup = crm_set_column(newtup, tupdesc, "responded_at", (Datum) 0, true);
	else
		newtup = crm_keep_column(oldtup, newtup, tupdesc, "responded_at");
	return PointerGetDatum(newtup);
}

/*
 * The records an activity may be about: on INSERT the row-level security
 * policy asks that the caller sees it; on UPDATE the policy cannot compare
 * with the old row (an activity must stay editable when its record is
 * reassigned), so a link that changes is checked here, with the rights of
 * the current user: the caller for a plain UPDATE, the extension owner (who
 * sees everything) for the statements of conversions, merges and series.
 */
static const char *const link_tables[] = {"lead", "account", "contact", "opportunity"};
static CrmQuery link_visible[lengthof(link_tables)];

static void
check_moved_links(Relation rel, HeapTuple oldtup, HeapTuple newtup, TupleDesc tupdesc)
{
	for (int i = 0; i < (int) lengthof(link_tables); i++)
	{
		char	   *col = psprintf("%s_id", link_tables[i]);
		bool		isnull;
		int64		id;
		Datum		values[1];

		if (!crm_column_changed(oldtup, newtup, tupdesc, col))
			continue;
		id = crm_column_int64(newtup, tupdesc, col, &isnull);
		if (isnull)
			continue;
		if (link_visible[i].sql == NULL)
		{
			link_visible[i].sql = MemoryContextStrdup(TopMemoryContext, psprintf(
				"SELECT 1 FROM crm.%s AS t WHERE t.id OPERATOR(pg_catalog.=) $1", link_tables[i]));
			link_visible[i].nargs = 1;
			link_visible[i].argtypes[0] = INT8OID;
		}
		values[0] = Int64GetDatum(id);
		crm_spi_connect();
		crm_query_run(&link_visible[i], values, NULL, 1);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errtablecol(rel, crm_attnum(tupdesc, col)),
					 errmsg("activity %lld cannot be moved to %s %lld",
							(long long) crm_column_int64(oldtup, tupdesc, "id", &isnull),
							link_tables[i], (long long) id),
					 errdetail("No %s with this id is visible to role \"%s\".", link_tables[i],
							   GetUserNameFromId(GetUserId(), false)),
					 errhint("An activity is about a record you see.")));
		crm_spi_finish();
	}
}

/* crm_activity_lifecycle -- trigger crm_internal.activity_lifecycle() */
PG_FUNCTION_INFO_V1(crm_activity_lifecycle);
Datum
crm_activity_lifecycle(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "activity_lifecycle", true, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	bool		is_insert = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event);
	HeapTuple	oldtup = is_insert ? NULL : trigdata->tg_trigtuple;
	HeapTuple	newtup = is_insert ? trigdata->tg_trigtuple : trigdata->tg_newtuple;

	/* versions before 0.6 fire this trigger on the participants too */
	if (strcmp(RelationGetRelationName(trigdata->tg_relation), "activity_participant") == 0)
		return crm_participant_response(fcinfo);

	/* completed_at follows the status */
	if (!crm_column_is(newtup, tupdesc, "status", "Completed"))
		newtup = crm_set_column(newtup, tupdesc, "completed_at", (Datum) 0, true);
	else if (is_insert || crm_column_changed(oldtup, newtup, tupdesc, "status"))
		newtup = stamp_now(newtup, tupdesc, "completed_at");
	else
		newtup = crm_keep_column(oldtup, newtup, tupdesc, "completed_at");

	/* a new or moved reminder is unsent */
	if (is_insert || crm_column_changed(oldtup, newtup, tupdesc, "remind_at"))
		newtup = crm_set_column(newtup, tupdesc, "reminder_sent_at", (Datum) 0, true);
	/*
	 * an unsent reminder is not taken either: its next claim is new (the
	 * column exists from version 0.5 on; this library serves older ones too)
	 */
	if (SPI_fnumber(tupdesc, "reminder_taken_at") > 0 &&
		heap_attisnull(newtup, crm_attnum(tupdesc, "reminder_sent_at"), tupdesc))
		newtup = crm_set_column(newtup, tupdesc, "reminder_taken_at", (Datum) 0, true);
	/* a changed link names a record the caller sees */
	if (!is_insert)
		check_moved_links(trigdata->tg_relation, oldtup, newtup, tupdesc);
	/* the recurrence rule, its time zone and the series (recurrence.c) */
	newtup = crm_recurrence_row(oldtup, newtup, tupdesc);
	return PointerGetDatum(newtup);
}

static CrmQuery claim_reminders = {
	"WITH due AS ("
	"   SELECT a.id FROM crm.activity AS a"
	"    WHERE a.remind_at OPERATOR(pg_catalog.<=) $2 AND a.reminder_sent_at IS NULL"
	"      AND a.status OPERATOR(pg_catalog.<>) ALL (ARRAY['Completed', 'Cancelled']::crm.activity_status[])"
	"    ORDER BY a.remind_at, a.id"
	"    LIMIT $1"
	"    FOR UPDATE OF a SKIP LOCKED),"
	" claimed AS ("
	"   UPDATE crm.activity AS a SET reminder_sent_at = pg_catalog.now()"
	"     FROM due WHERE a.id OPERATOR(pg_catalog.=) due.id"
	"   RETURNING a.id, a.owner, a.type, a.subject, a.remind_at, a.due_at, a.starts_at,"
	"             a.lead_id, a.account_id, a.contact_id, a.opportunity_id)"
	" SELECT c.id, c.owner, c.type, c.subject, c.remind_at, c.due_at, c.starts_at,"
	"        c.lead_id, c.account_id, c.contact_id, c.opportunity_id,"
	"        pg_catalog.pg_notify('crm_reminder', pg_catalog.json_build_object("
	"          'activity_id', c.id, 'remind_at', c.remind_at)::pg_catalog.text)"
	"   FROM claimed AS c ORDER BY c.remind_at, c.id",
	2, {INT4OID, TIMESTAMPTZOID}, NULL
};

/*
 * Take an announced reminder: succeeds once per claim, for the activity and
 * remind_at of a claim that committed.  A notification someone forged (any
 * role that can connect may NOTIFY crm_reminder), or a real one received
 * again, finds the reminder unclaimed, moved or already taken, and returns
 * nothing.  Two listeners taking the same reminder at once: the second waits
 * for the first's row lock and then finds it taken.
 */
static CrmQuery take_reminder = {
	"UPDATE crm.activity AS a SET reminder_taken_at = pg_catalog.now()"
	" WHERE a.id OPERATOR(pg_catalog.=) $1 AND a.remind_at OPERATOR(pg_catalog.=) $2"
	"   AND a.reminder_sent_at IS NOT NULL AND a.reminder_taken_at IS NULL"
	" RETURNING a.id, a.owner, a.type, a.subject, a.remind_at, a.due_at, a.starts_at,"
	"           a.lead_id, a.account_id, a.contact_id, a.opportunity_id",
	2, {INT8OID, TIMESTAMPTZOID}, NULL
};

/* return_rows -- the rows of the last SPI result into a materialized SRF */
static void
return_rows(ReturnSetInfo *rsinfo)
{
	TupleDesc	tupdesc = rsinfo->setDesc;
	int			natts = tupdesc->natts;

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		Datum		row[32];
		bool		rownulls[32];

		for (int c = 0; c < natts && c < 32; c++)
			row[c] = crm_result_datum(i, c + 1, &rownulls[c]);
		tuplestore_putvalues(rsinfo->setResult, tupdesc, row, rownulls);
	}
}

/* crm_take_reminder -- SQL crm.take_reminder(activity_id, remind_at) */
PG_FUNCTION_INFO_V1(crm_take_reminder);
Datum
crm_take_reminder(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[2];
	char		nulls[2] = {' ', ' '};

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", PG_ARGISNULL(0) ? "activity_id" : "remind_at"),
				 errhint("Pass the activity_id and remind_at of the crm_reminder notification.")));
	values[0] = PG_GETARG_DATUM(0);
	values[1] = PG_GETARG_DATUM(1);

	InitMaterializedSRF(fcinfo, 0);
	crm_spi_connect();
	crm_query_run(&take_reminder, values, nulls, 0);
	return_rows(rsinfo);
	crm_spi_finish();
	return (Datum) 0;
}

/* crm_claim_due_reminders -- SQL crm.claim_due_reminders(max_count, due_before) */
PG_FUNCTION_INFO_V1(crm_claim_due_reminders);
Datum
crm_claim_due_reminders(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int32		max_count;
	Datum		values[2];
	char		nulls[2] = {' ', ' '};

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("max_count must not be null")));
	max_count = PG_GETARG_INT32(0);
	if (max_count < 1 || max_count > MAX_CLAIM)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_count must be between 1 and %d, not %d", MAX_CLAIM, max_count)));
	values[0] = Int32GetDatum(max_count);
	values[1] = PG_ARGISNULL(1) ? TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()) : PG_GETARG_DATUM(1);

	InitMaterializedSRF(fcinfo, 0);
	crm_spi_connect();
	crm_query_run(&claim_reminders, values, nulls, 0);
	return_rows(rsinfo);
	crm_spi_finish();
	return (Datum) 0;
}
