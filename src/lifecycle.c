/*
 * lifecycle.c: the stage rules of an opportunity.
 *
 * crm.opportunity_lifecycle() is a BEFORE INSERT OR UPDATE row trigger:
 *   - probability defaults from the stage: on insert when not given, on a
 *     stage change when the statement did not set it too;
 *   - a lost stage (closed, not won) needs a non-blank loss_reason;
 *   - closed_at is set when the opportunity enters a closed stage, kept while
 *     it stays in that stage, cleared when it reopens -- whatever the client
 *     sends;
 *   - an opportunity with line items has the amount of its lines (only the
 *     line-sum trigger changes it) and keeps its price book;
 *   - a newly chosen price book must be active.
 */
#include "crm.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

static CrmQuery stage_rules = {
	"SELECT s.probability, s.is_closed, s.is_won FROM crm.opportunity_stage AS s"
	" WHERE s.name OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}, NULL
};

static CrmQuery has_line_items = {
	"SELECT 1 FROM crm.opportunity_line_item AS l WHERE l.opportunity_id OPERATOR(pg_catalog.=) $1 LIMIT 1",
	1, {INT8OID}, NULL
};

static bool
opportunity_has_lines(int64 id)
{
	Datum		values[1] = {Int64GetDatum(id)};
	char		nulls[1] = {' '};

	crm_query_run_as_owner(&has_line_items, values, nulls, 1);
	if (SPI_processed > 0)
		return true;
	/* REPEATABLE READ: a line added since our snapshot only locked the row */
	if (crm_query_finds_newer_rows(&has_line_items, values, nulls))
		crm_serialization_failure("opportunity", id);
	return false;
}

/* crm_opportunity_lifecycle -- trigger crm.opportunity_lifecycle() */
PG_FUNCTION_INFO_V1(crm_opportunity_lifecycle);
Datum
crm_opportunity_lifecycle(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "opportunity_lifecycle", true, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	bool		is_insert = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event);
	HeapTuple	oldtup = is_insert ? NULL : trigdata->tg_trigtuple;
	HeapTuple	newtup = is_insert ? trigdata->tg_trigtuple : trigdata->tg_newtuple;
	bool		stage_changed = is_insert || crm_column_changed(oldtup, newtup, tupdesc, "stage");
	bool		isnull;
	int64		id = crm_column_int64(newtup, tupdesc, "id", &isnull);
	char	   *stage = crm_column_text(newtup, tupdesc, "stage");
	Datum		values[1];
	char		nulls[1] = {' '};

	if (stage == NULL)
		return PointerGetDatum(newtup);	/* NOT NULL reports it */

	SPI_connect();

	/*
	 * Renaming a stage cascades to its opportunities: the old name is gone
	 * from crm.opportunity_stage then, and the opportunity did not move.
	 */
	if (!is_insert && stage_changed)
	{
		values[0] = CStringGetTextDatum(crm_column_text(oldtup, tupdesc, "stage"));
		crm_query_run_as_owner(&stage_rules, values, nulls, 1);
		if (SPI_processed == 0)
			stage_changed = false;
	}

	/* amount and price book belong to the line items once there are any */
	if (!is_insert)
	{
		if (crm_column_changed(oldtup, newtup, tupdesc, "amount") &&
			!crm_permitted(CRM_PERMIT_LINE_SUM, id) && opportunity_has_lines(id))
			ereport(ERROR,
					(errcode(ERRCODE_CRM_AMOUNT_FROM_LINES),
					 errmsg("the amount of opportunity %lld is the sum of its line items", (long long) id),
					 errhint("Change the line items instead, or remove them to set the amount by hand.")));
		if (crm_column_changed(oldtup, newtup, tupdesc, "price_book_id") && opportunity_has_lines(id))
			ereport(ERROR,
					(errcode(ERRCODE_CRM_PRICE_BOOK_FIXED),
					 errmsg("opportunity %lld keeps its price book while it has line items", (long long) id),
					 errhint("Remove the line items first.")));
	}
	if ((is_insert || crm_column_changed(oldtup, newtup, tupdesc, "price_book_id")))
	{
		int64		book = crm_column_int64(newtup, tupdesc, "price_book_id", &isnull);

		if (!isnull)
			crm_require_active_price_book(book);
	}

	/* stage rules; an unknown stage is left to the foreign key to report */
	values[0] = CStringGetTextDatum(stage);
	crm_query_run_as_owner(&stage_rules, values, nulls, 1);
	if (SPI_processed > 0)
	{
		Datum		default_probability = crm_result_datum(0, 1, &isnull);
		bool		is_closed = DatumGetBool(crm_result_datum(0, 2, &isnull));
		bool		is_won = DatumGetBool(crm_result_datum(0, 3, &isnull));
		bool		probability_given;

		/* probability: the stage's unless the statement set one */
		(void) heap_getattr(newtup, crm_attnum(tupdesc, "probability"), tupdesc, &isnull);
		probability_given = is_insert ? !isnull :
			crm_column_changed(oldtup, newtup, tupdesc, "probability");
		if (stage_changed && !probability_given)
			newtup = crm_set_column(newtup, tupdesc, "probability",
									SPI_datumTransfer(default_probability, false, -1), false);

		/* a lost deal says why */
		if (is_closed && !is_won)
		{
			char	   *reason = crm_column_text(newtup, tupdesc, "loss_reason");

			if (reason == NULL || strspn(reason, " \t\r\n") == strlen(reason))
				ereport(ERROR,
						(errcode(ERRCODE_CRM_LOSS_REASON_REQUIRED),
						 errmsg("opportunity %lld needs a loss_reason to be in stage \"%s\"", (long long) id, stage),
						 errhint("Set loss_reason in the same statement, e.g. UPDATE ... SET stage = '%s', loss_reason = 'price'.", stage)));
		}

		/* closed_at: set on closing, kept while closed, cleared on reopening */
		if (!is_closed)
			newtup = crm_set_column(newtup, tupdesc, "closed_at", (Datum) 0, true);
		else if (stage_changed)
			newtup = crm_set_column(newtup, tupdesc, "closed_at",
									TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()), false);
		else
		{
			bool		old_isnull;
			Datum		old_closed = heap_getattr(oldtup, crm_attnum(tupdesc, "closed_at"), tupdesc, &old_isnull);

			newtup = crm_set_column(newtup, tupdesc, "closed_at", old_closed, old_isnull);
		}
	}
	/* the tuple returned must outlive SPI's memory */
	newtup = SPI_copytuple(newtup);
	SPI_finish();
	return PointerGetDatum(newtup);
}
