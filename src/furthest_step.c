/*
 * furthest_step.c: the furthest step of the pipeline a lead or an
 * opportunity ever reached, which the funnel counts (crm.sales_funnel).
 *
 * crm_internal.lead_furthest_status() is a BEFORE INSERT OR UPDATE row
 * trigger on crm.lead that sets furthest_status; crm_furthest_stage()
 * decides crm.opportunity.furthest_stage for the opportunity lifecycle
 * trigger (opportunity_lifecycle.c), which reads the stages it needs in the
 * one stage query it runs anyway.  Both decide from the old row's furthest
 * step and the new row's status or stage alone: no history is read.  What
 * the client wrote into the column is ignored (no role may write it
 * anyway: 42501).
 *
 * A lead: the working statuses in their enum order, 'New Lead' <
 * 'Processing' < 'Following Up' < 'In Transaction' < 'Completed' <
 * 'Converted'; the furthest is the highest the lead ever had.  'Not
 * Qualified' is an exit, not a step: a lead that becomes Not Qualified keeps
 * the furthest working status it reached, and a lead captured as Not
 * Qualified has reached 'New Lead' (every captured lead entered the funnel
 * at its top).
 *
 * An opportunity: the open stages in sort_order, then the won stages; the
 * furthest is the highest of those the deal was ever in (a won deal's is its
 * won stage, and stays so if it is reopened).  A lost stage is an exit: a
 * lost deal keeps the furthest open stage it reached; one created lost has
 * reached the first open stage (where converted leads start).  A stage is
 * compared by the sort_order it has when the deal moves; reordering the
 * stages later does not rewrite the furthest stage recorded, and the funnel
 * compares by the order of the day.  Renaming a stage cascades to
 * furthest_stage (its foreign key is ON UPDATE CASCADE): the cascaded update
 * takes the new name, as the stage column does.
 *
 * Concurrency: the furthest step only grows, and is computed from the old
 * row that the updating statement holds locked (under READ COMMITTED the
 * newest version), so concurrent updates of one record serialize on its row
 * lock and none is lost.
 */
#include "crm.h"

#include "access/htup_details.h"
#include "catalog/pg_enum.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/syscache.h"

/* the exit status of a lead, and the first step */
#define LEAD_EXIT_STATUS	"Not Qualified"
#define LEAD_FIRST_STATUS	"New Lead"

/* an enum value's sort order and whether it is the exit status */
static float4
lead_status_rank(Oid value, bool *is_exit)
{
	HeapTuple	tup = SearchSysCache1(ENUMOID, ObjectIdGetDatum(value));
	Form_pg_enum e;
	float4		rank;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "crm: lead status %u not found", value);
	e = (Form_pg_enum) GETSTRUCT(tup);
	rank = e->enumsortorder;
	*is_exit = strcmp(NameStr(e->enumlabel), LEAD_EXIT_STATUS) == 0;
	ReleaseSysCache(tup);
	return rank;
}

/* crm_lead_furthest_status -- trigger crm_internal.lead_furthest_status() */
PG_FUNCTION_INFO_V1(crm_lead_furthest_status);
Datum
crm_lead_furthest_status(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "lead_furthest_status", true, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	bool		is_insert = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event);
	HeapTuple	newtup = is_insert ? trigdata->tg_trigtuple : trigdata->tg_newtuple;
	int			status_att = crm_attnum(tupdesc, "status");
	int			furthest_att = crm_attnum(tupdesc, "furthest_status");
	Oid			status_type = TupleDescAttr(tupdesc, status_att - 1)->atttypid;
	bool		isnull;
	Datum		status = heap_getattr(newtup, status_att, tupdesc, &isnull);
	Datum		furthest = (Datum) 0;
	bool		have_furthest = false;
	bool		is_exit;
	float4		rank;

	if (isnull)
		return PointerGetDatum(newtup);	/* NOT NULL reports it */
	if (!is_insert)
		furthest = heap_getattr(trigdata->tg_trigtuple, furthest_att, tupdesc, &isnull);
	have_furthest = !is_insert && !isnull;

	rank = lead_status_rank(DatumGetObjectId(status), &is_exit);
	if (!is_exit)
	{
		bool		furthest_exit;

		if (!have_furthest ||
			lead_status_rank(DatumGetObjectId(furthest), &furthest_exit) < rank)
			furthest = status;
	}
	else if (!have_furthest)
	{
		furthest = GetSysCacheOid2(ENUMTYPOIDNAME, Anum_pg_enum_oid, ObjectIdGetDatum(status_type),
								   CStringGetDatum(LEAD_FIRST_STATUS));
		if (!OidIsValid(DatumGetObjectId(furthest)))
			elog(ERROR, "crm: lead status \"%s\" not found", LEAD_FIRST_STATUS);
	}
	return PointerGetDatum(crm_set_column(newtup, tupdesc, "furthest_status", furthest, false));
}

/* is a further along than b?  won stages come after every open one */
static bool
stage_after(const CrmStageStep *a, const CrmStageStep *b)
{
	if (a->is_won != b->is_won)
		return a->is_won;
	return a->sort_order > b->sort_order;
}

/*
 * crm_furthest_stage -- the furthest stage of a deal that is now in stage
 * (now: that stage's row), when before was the row of the furthest stage
 * it had (old_furthest; not found on insert); first_open is the first open
 * stage, needed only for a deal created lost (NULL otherwise).  The
 * opportunity lifecycle trigger (opportunity_lifecycle.c) reads the rows in
 * its one stage query and calls this on every insert and every move.
 */
const char *
crm_furthest_stage(const char *stage, const CrmStageStep *now,
				   const char *old_furthest, const CrmStageStep *before,
				   const char *first_open)
{
	if (!now->found)
		return old_furthest != NULL ? old_furthest : stage;	/* the foreign key reports it */
	if (before->found && (!now->is_step || !stage_after(now, before)))
		return old_furthest;
	if (now->is_step)
		return stage;
	/* created lost (or lost without a step on record): the first open stage */
	return first_open != NULL ? first_open : stage;
}
