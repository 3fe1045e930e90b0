/*
 * furthest_step.c: the furthest step of the pipeline a lead or an
 * opportunity ever reached, which the funnel counts (crm.sales_funnel).
 *
 * crm_internal.lead_furthest_status() is a BEFORE INSERT OR UPDATE row
 * trigger on crm.lead that sets furthest_status; crm_internal.
 * opportunity_furthest_stage() one on crm.opportunity that sets
 * furthest_stage.  Both decide from the old row's furthest step and the new
 * row's status or stage alone: no history is read.  What the client wrote
 * into the column is ignored (no role may write it anyway: 42501).
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

/*
 * The stage the deal moves to, the furthest one it had (NULL on insert):
 * sort order and flags of each; the first open stage; and whether the stage
 * it leaves still exists (NULL on insert).  One query per move.
 */
static CrmQuery stage_pair = {
	"SELECT n.sort_order, n.is_closed, n.is_won, f.sort_order, f.is_closed, f.is_won,"
	" (SELECT x.name FROM crm.opportunity_stage AS x WHERE NOT x.is_closed"
	"   ORDER BY x.sort_order LIMIT 1),"
	" $3 IS NULL OR EXISTS (SELECT 1 FROM crm.opportunity_stage AS o WHERE o.name OPERATOR(pg_catalog.=) $3)"
	" FROM (SELECT) AS one"
	" LEFT JOIN crm.opportunity_stage AS n ON n.name OPERATOR(pg_catalog.=) $1"
	" LEFT JOIN crm.opportunity_stage AS f ON f.name OPERATOR(pg_catalog.=) $2",
	3, {TEXTOID, TEXTOID, TEXTOID}, NULL
};

/* a step of the opportunity pipeline: open or won (lost stages are exits) */
typedef struct StageStep
{
	bool		found;
	bool		is_step;
	bool		is_won;
	int32		sort_order;
} StageStep;

static StageStep
stage_step(int col)
{
	StageStep	s = {false, false, false, 0};
	bool		isnull;
	Datum		d = crm_result_datum(0, col, &isnull);

	if (isnull)
		return s;
	s.found = true;
	s.sort_order = DatumGetInt32(d);
	s.is_won = DatumGetBool(crm_result_datum(0, col + 2, &isnull));
	s.is_step = !DatumGetBool(crm_result_datum(0, col + 1, &isnull)) || s.is_won;
	return s;
}

/* is a further along than b?  won stages come after every open one */
static bool
stage_after(const StageStep *a, const StageStep *b)
{
	if (a->is_won != b->is_won)
		return a->is_won;
	return a->sort_order > b->sort_order;
}

/* crm_opportunity_furthest_stage -- trigger crm_internal.opportunity_furthest_stage() */
PG_FUNCTION_INFO_V1(crm_opportunity_furthest_stage);
Datum
crm_opportunity_furthest_stage(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "opportunity_furthest_stage", true, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	bool		is_insert = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event);
	HeapTuple	oldtup = is_insert ? NULL : trigdata->tg_trigtuple;
	HeapTuple	newtup = is_insert ? trigdata->tg_trigtuple : trigdata->tg_newtuple;
	char	   *stage = crm_column_text(newtup, tupdesc, "stage");
	char	   *old_furthest = is_insert ? NULL : crm_column_text(oldtup, tupdesc, "furthest_stage");
	char	   *furthest;
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	bool		isnull;

	if (stage == NULL)
		return PointerGetDatum(newtup);	/* NOT NULL reports it */

	/*
	 * The deal did not move: it keeps its furthest stage, unless a rename
	 * of that stage cascades to it (the old name is gone then).
	 */
	if (!is_insert && old_furthest != NULL && !crm_column_changed(oldtup, newtup, tupdesc, "stage"))
	{
		char	   *new_furthest = crm_column_text(newtup, tupdesc, "furthest_stage");
		bool		renamed = false;

		if (new_furthest != NULL && strcmp(new_furthest, old_furthest) != 0)
		{
			crm_spi_connect();
			renamed = !crm_stage_exists(old_furthest) && crm_stage_exists(new_furthest);
			crm_spi_finish();
		}
		if (renamed)
			return PointerGetDatum(newtup);
		return PointerGetDatum(crm_keep_column(oldtup, newtup, tupdesc, "furthest_stage"));
	}

	crm_spi_connect();
	values[0] = CStringGetTextDatum(stage);
	if (old_furthest != NULL)
		values[1] = CStringGetTextDatum(old_furthest);
	else
		nulls[1] = 'n';
	if (old_furthest != NULL)
		values[2] = CStringGetTextDatum(crm_column_text(oldtup, tupdesc, "stage"));
	else
		nulls[2] = 'n';
	crm_query_run_as_owner(&stage_pair, values, nulls, 1);

	/*
	 * Renaming a stage cascades to the deals in it: the old name is gone
	 * then, and the deal did not move; its furthest stage follows by its own
	 * cascade.
	 */
	if (old_furthest != NULL && !DatumGetBool(crm_result_datum(0, 8, &isnull)))
	{
		crm_spi_finish();
		return PointerGetDatum(crm_keep_column(oldtup, newtup, tupdesc, "furthest_stage"));
	}
	{
		StageStep	now = stage_step(1);
		StageStep	before = stage_step(4);

		if (!now.found)
			furthest = old_furthest != NULL ? old_furthest : stage;	/* the foreign key reports it */
		else if (before.found && (!now.is_step || !stage_after(&now, &before)))
			furthest = old_furthest;
		else if (now.is_step)
			furthest = stage;
		else
		{
			/* created lost (or lost without a step on record): the first open stage */
			furthest = crm_result_text(0, 7);
			if (furthest == NULL)
				furthest = stage;
		}
	}
	newtup = crm_set_column(newtup, tupdesc, "furthest_stage", CStringGetTextDatum(furthest), false);
	/* the tuple returned must outlive SPI's memory */
	newtup = SPI_copytuple(newtup);
	crm_spi_finish();
	return PointerGetDatum(newtup);
}
