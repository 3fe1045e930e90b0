/*
 * opportunity_lifecycle.c: the stage rules of an opportunity.
 *
 * crm_internal.opportunity_lifecycle() is a BEFORE INSERT OR UPDATE row trigger:
 *   - probability defaults from the stage: on insert when not given, on a
 *     stage change when the statement did not set it too;
 *   - a lost stage (closed, not won) needs a loss_reason_code
 *     (crm.loss_reason), an active one when newly chosen (the reason row is
 *     locked FOR SHARE, so an admin deactivating it waits); a deal that is
 *     not lost has no loss_reason_code or competitor (cleared); the free
 *     text loss_reason is an optional comment;
 *   - closed_at is set when the opportunity enters a closed stage, kept while
 *     it stays in that stage, cleared when it reopens -- whatever the client
 *     sends;
 *   - an opportunity with line items has the amount of its lines (only the
 *     line-sum trigger changes it) and keeps its price book;
 *   - a newly chosen price book must be active.
 *
 * crm_internal.opportunity_stage_guard() is a BEFORE UPDATE OF is_closed, is_won
 * trigger on crm.opportunity_stage, fired per statement (it locks the
 * opportunities) and per row: a stage that opportunities are in keeps
 * whether it is closed and won (their closed_at, loss reason, reports and
 * rollups follow from it).
 */
#include "crm.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* REPEATABLE READ: the stage's flags under a fresh snapshot */
static CrmQuery stage_flags = {
	"SELECT s.is_closed, s.is_won FROM crm.opportunity_stage AS s WHERE s.name OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}, NULL
};

static CrmQuery has_line_items = {
	"SELECT 1 FROM crm.opportunity_line_item AS l WHERE l.opportunity_id OPERATOR(pg_catalog.=) $1 LIMIT 1",
	1, {INT8OID}, NULL
};

/*
 * line_probe -- has the deal a line item visible to snapshot?  One probe of
 * the index on crm.opportunity_line_item (opportunity_id), without the
 * executor (as the owner of schema crm would see it: no row security).
 */
static bool
line_probe(Oid indexoid, int64 id, Snapshot snapshot)
{
	Relation	irel = index_open(indexoid, AccessShareLock);
	Relation	rel = table_open(irel->rd_index->indrelid, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	IndexScanDesc scan;
	ScanKeyData key;
	bool		found;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(id));
	scan = crm_index_beginscan(rel, irel, snapshot, 1);
	index_rescan(scan, &key, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, NoLock);
	index_close(irel, NoLock);
	return found;
}

/*
 * opportunity_has_lines -- has the deal line items?  READ COMMITTED looks
 * with a new snapshot, as a statement would; REPEATABLE READ with the
 * transaction's, and a line added since then (it only locked the deal's
 * row) is a serialization failure.  Without the index (a DBA's schema) the
 * kept query looks.
 */
static bool
opportunity_has_lines(int64 id)
{
	Oid			indexoid = get_relname_relid("opportunity_line_item_opportunity_id_idx",
											 get_namespace_oid("crm", false));
	Datum		values[1] = {Int64GetDatum(id)};
	char		nulls[1] = {' '};
	Snapshot	snapshot;
	bool		found;

	if (!OidIsValid(indexoid))
	{
		crm_query_run_as_owner(&has_line_items, values, nulls, 1);
		if (SPI_processed > 0)
			return true;
		if (crm_query_finds_newer_rows(&has_line_items, values, nulls))
			crm_serialization_failure(psprintf("opportunity %lld", (long long) id), NULL);
		return false;
	}
	CommandCounterIncrement();	/* this transaction's lines so far, as a statement sees them */
	snapshot = RegisterSnapshot(IsolationUsesXactSnapshot() ? GetTransactionSnapshot() : GetLatestSnapshot());
	found = line_probe(indexoid, id, snapshot);
	UnregisterSnapshot(snapshot);
	if (found || !IsolationUsesXactSnapshot())
		return found;
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	found = line_probe(indexoid, id, snapshot);
	UnregisterSnapshot(snapshot);
	if (found)
		crm_serialization_failure(psprintf("opportunity %lld", (long long) id), NULL);
	return false;
}

static CrmQuery loss_reason_state = {
	"SELECT r.active FROM crm.loss_reason AS r WHERE r.code OPERATOR(pg_catalog.=) $1 FOR SHARE",
	1, {TEXTOID}, NULL
};

static CrmQuery active_loss_reasons = {
	"SELECT pg_catalog.string_agg(r.code, ', ' ORDER BY r.code) FROM crm.loss_reason AS r WHERE r.active",
	0, {InvalidOid}, NULL
};

/* the active reasons, for hints */
static char *
active_reason_list(void)
{
	char	   *list;

	crm_query_run_as_owner(&active_loss_reasons, NULL, NULL, 1);
	list = SPI_processed > 0 ? crm_result_text(0, 1) : NULL;
	return list != NULL ? list : "(none: ask an admin to activate one in crm.loss_reason)";
}

/*
 * check_loss_reason -- a deal in a lost stage names a loss reason; a newly
 * chosen one (on insert, on entering the stage, on a change of the code)
 * must be active.  An unknown code is left to the foreign key.
 */
static void
check_loss_reason(TriggerData *trigdata, HeapTuple oldtup, HeapTuple newtup,
				  int64 id, const char *stage, bool stage_changed)
{
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	char	   *code = crm_column_text(newtup, tupdesc, "loss_reason_code");
	Datum		values[1];
	char		nulls[1] = {' '};
	bool		isnull;

	if (code == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_LOSS_REASON_REQUIRED),
				 errtablecol(trigdata->tg_relation, crm_attnum(tupdesc, "loss_reason_code")),
				 errmsg("opportunity %lld needs a loss_reason_code to be in stage \"%s\"", (long long) id, stage),
				 errhint("Set loss_reason_code in the same statement to one of: %s (crm.loss_reason); loss_reason takes a free-text comment.",
						 active_reason_list())));
	if (oldtup != NULL && !stage_changed &&
		!crm_column_changed(oldtup, newtup, tupdesc, "loss_reason_code"))
		return;					/* a loss already recorded keeps its reason */
	values[0] = CStringGetTextDatum(code);
	crm_query_run_as_owner(&loss_reason_state, values, nulls, 1);
	if (SPI_processed > 0 && !DatumGetBool(crm_result_datum(0, 1, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_CRM_LOSS_REASON_INACTIVE),
				 errtablecol(trigdata->tg_relation, crm_attnum(tupdesc, "loss_reason_code")),
				 errmsg("loss reason \"%s\" is no longer in use", code),
				 errdetail("Deals lost earlier keep it; a deal lost now chooses an active reason."),
				 errhint("Choose one of: %s.", active_reason_list())));
}

/*
 * The columns the trigger sets, applied to the new row at once (one copy of
 * the row, however many it sets).
 */
#define MAX_EDITS	8

typedef struct RowEdits
{
	int			n;
	int			attnum[MAX_EDITS];
	Datum		value[MAX_EDITS];
	char		null[MAX_EDITS];
} RowEdits;

static void
edit_set(RowEdits *e, TupleDesc tupdesc, const char *colname, Datum value, bool isnull)
{
	Assert(e->n < MAX_EDITS);
	e->attnum[e->n] = crm_attnum(tupdesc, colname);
	e->value[e->n] = value;
	e->null[e->n] = isnull ? 'n' : ' ';
	e->n++;
}

/* edit_keep -- the column as it is in the old row, whatever the client sent */
static void
edit_keep(RowEdits *e, HeapTuple oldtup, HeapTuple newtup, TupleDesc tupdesc, const char *colname)
{
	int			attnum = crm_attnum(tupdesc, colname);
	bool		isnull;
	Datum		value;

	if (!crm_attribute_changed(oldtup, newtup, tupdesc, attnum))
		return;
	value = heap_getattr(oldtup, attnum, tupdesc, &isnull);
	Assert(e->n < MAX_EDITS);
	e->attnum[e->n] = attnum;
	e->value[e->n] = value;
	e->null[e->n] = isnull ? 'n' : ' ';
	e->n++;
}

/* a stage as a step of the pipeline (furthest_step.c) */
static CrmStageStep
stage_step(const CrmStage *stage)
{
	CrmStageStep s = {false, false, false, 0};

	if (stage == NULL)
		return s;
	s.found = true;
	s.sort_order = stage->sort_order;
	s.is_won = stage->is_won;
	s.is_step = !stage->is_closed || stage->is_won;
	return s;
}

/*
 * furthest_kept -- the furthest stage of a deal that did not move: kept,
 * unless a rename of that stage cascades to it (stage_rename.c).  Returns
 * false when the client's value may stand.
 */
static bool
furthest_kept(HeapTuple newtup, TupleDesc tupdesc, const char *old_furthest)
{
	char	   *new_furthest = crm_column_text(newtup, tupdesc, "furthest_stage");

	if (new_furthest != NULL && strcmp(new_furthest, old_furthest) != 0 &&
		crm_stage_rename_cascades(0, old_furthest, new_furthest, false))
		return false;
	return true;
}

/* moved_this_transaction -- did the deal enter its stage in this transaction? */
static bool
moved_this_transaction(HeapTuple oldtup, TupleDesc tupdesc)
{
	bool		isnull;
	Datum		entered = heap_getattr(oldtup, crm_attnum(tupdesc, "stage_changed_at"), tupdesc, &isnull);

	return !isnull && DatumGetTimestampTz(entered) == GetCurrentTransactionStartTimestamp();
}

/* crm_opportunity_lifecycle -- trigger crm_internal.opportunity_lifecycle() */
PG_FUNCTION_INFO_V1(crm_opportunity_lifecycle);
Datum
crm_opportunity_lifecycle(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "opportunity_lifecycle", true, true);
	Relation	rel = trigdata->tg_relation;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	bool		is_insert = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event);
	HeapTuple	oldtup = is_insert ? NULL : trigdata->tg_trigtuple;
	HeapTuple	newtup = is_insert ? trigdata->tg_trigtuple : trigdata->tg_newtuple;
	bool		stage_changed = is_insert || crm_column_changed(oldtup, newtup, tupdesc, "stage");
	bool		isnull;
	int64		id = crm_column_int64(newtup, tupdesc, "id", &isnull);
	char	   *stage = crm_column_text(newtup, tupdesc, "stage");
	/* not before 0.7: no furthest_stage, no stage_changed_at */
	bool		has_furthest = SPI_fnumber(tupdesc, "furthest_stage") > 0;
	char	   *old_furthest = has_furthest && !is_insert ? crm_column_text(oldtup, tupdesc, "furthest_stage") : NULL;
	bool		decide_furthest = has_furthest && (stage_changed || old_furthest == NULL);
	Datum		values[1];
	char		nulls[1] = {' '};
	const CrmStage *rules;
	CrmStage	now = {0};
	RowEdits	edits;
	HeapTuple	result;

	if (stage == NULL)
		return PointerGetDatum(newtup);	/* NOT NULL reports it */
	edits.n = 0;

	crm_spi_connect();

	/* the stage's rules, from the backend's copy of the stages (stage_cache.c) */
	rules = crm_stage_lookup(stage);
	if (rules != NULL)
	{
		now = *rules;
		now.probability = datumCopy(rules->probability, false, -1);
	}

	/*
	 * Renaming a stage cascades to its opportunities: the opportunity did
	 * not move (its furthest stage follows by its own cascade).  Before 0.7
	 * (no rename notes) the old name being gone tells.
	 */
	if (!is_insert && stage_changed &&
		(has_furthest
		 ? crm_stage_rename_cascades(id, crm_column_text(oldtup, tupdesc, "stage"), stage,
									 moved_this_transaction(oldtup, tupdesc))
		 : !crm_stage_exists(crm_column_text(oldtup, tupdesc, "stage"))))
	{
		stage_changed = false;
		decide_furthest = old_furthest == NULL;
	}

	/*
	 * furthest_stage: the furthest step the deal reached (furthest_step.c),
	 * set by the database
	 */
	if (decide_furthest)
	{
		CrmStageStep step_now = stage_step(rules ? &now : NULL);
		CrmStageStep step_before = stage_step(old_furthest ? crm_stage_lookup(old_furthest) : NULL);
		const CrmStage *first_open = NULL;

		if (step_now.found && !step_now.is_step && !step_before.found)
			first_open = crm_first_open_stage();
		edit_set(&edits, tupdesc, "furthest_stage",
				 CStringGetTextDatum(crm_furthest_stage(stage, &step_now, old_furthest, &step_before,
														first_open ? first_open->name : NULL)), false);
	}
	else if (has_furthest && furthest_kept(newtup, tupdesc, old_furthest))
		edit_keep(&edits, oldtup, newtup, tupdesc, "furthest_stage");

	/*
	 * stage_changed_at: when the deal entered its stage (a move, not a
	 * rename), set by the database; stage_velocity.c reads it
	 */
	if (has_furthest)
	{
		if (stage_changed)
			edit_set(&edits, tupdesc, "stage_changed_at",
					 TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()), false);
		else
			edit_keep(&edits, oldtup, newtup, tupdesc, "stage_changed_at");
	}

	/* amount and price book belong to the line items once there are any */
	if (!is_insert)
	{
		if (crm_column_changed(oldtup, newtup, tupdesc, "amount") &&
			!crm_permitted(CRM_PERMIT_LINE_SUM, id) && opportunity_has_lines(id))
			ereport(ERROR,
					(errcode(ERRCODE_CRM_AMOUNT_FROM_LINES),
					 errtable(rel),
					 errmsg("the amount of opportunity %lld is the sum of its line items", (long long) id),
					 errhint("Change the line items instead, or remove them to set the amount by hand.")));
		if (crm_column_changed(oldtup, newtup, tupdesc, "price_book_id") && opportunity_has_lines(id))
			ereport(ERROR,
					(errcode(ERRCODE_CRM_PRICE_BOOK_FIXED),
					 errtable(rel),
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
	if (rules != NULL)
	{
		bool		probability_given;

		/* probability: the stage's unless the statement set one */
		(void) heap_getattr(newtup, crm_attnum(tupdesc, "probability"), tupdesc, &isnull);
		probability_given = is_insert ? !isnull :
			crm_column_changed(oldtup, newtup, tupdesc, "probability");
		if (stage_changed && !probability_given)
			edit_set(&edits, tupdesc, "probability", now.probability, false);

		/* a lost deal names a reason; a deal not lost has none */
		if (SPI_fnumber(tupdesc, "loss_reason_code") <= 0)
		{
			/* before 0.7 (this library serves older versions too): a free text */
			if (now.is_closed && !now.is_won && crm_is_blank(crm_column_text(newtup, tupdesc, "loss_reason")))
				ereport(ERROR,
						(errcode(ERRCODE_CRM_LOSS_REASON_REQUIRED),
						 errtablecol(rel, crm_attnum(tupdesc, "loss_reason")),
						 errmsg("opportunity %lld needs a loss_reason to be in stage \"%s\"", (long long) id, stage)));
		}
		else if (now.is_closed && !now.is_won)
			check_loss_reason(trigdata, oldtup, newtup, id, stage, stage_changed);
		else
		{
			edit_set(&edits, tupdesc, "loss_reason_code", (Datum) 0, true);
			edit_set(&edits, tupdesc, "competitor", (Datum) 0, true);
		}

		/* closed_at: set on closing, kept while closed, cleared on reopening */
		if (!now.is_closed)
			edit_set(&edits, tupdesc, "closed_at", (Datum) 0, true);
		else if (stage_changed)
			edit_set(&edits, tupdesc, "closed_at",
					 TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()), false);
		else
			edit_keep(&edits, oldtup, newtup, tupdesc, "closed_at");

		/*
		 * REPEATABLE READ: an admin may have changed the stage's flags since
		 * our snapshot (the stage guard saw no opportunity in it then).
		 */
		values[0] = CStringGetTextDatum(stage);
		if (stage_changed && crm_query_run_fresh(&stage_flags, values, nulls, 1) && SPI_processed > 0 &&
			(DatumGetBool(crm_result_datum(0, 1, &isnull)) != now.is_closed ||
			 DatumGetBool(crm_result_datum(0, 2, &isnull)) != now.is_won))
			crm_serialization_failure(psprintf("opportunity %lld", (long long) id), NULL);
	}
	/* one copy of the row, in the trigger's caller's memory (SPI's is freed) */
	result = newtup;
	if (edits.n > 0)
	{
		result = SPI_modifytuple(rel, newtup, edits.n, edits.attnum, edits.value, edits.null);
		if (result == NULL)
			elog(ERROR, "crm: SPI_modifytuple failed: %s", SPI_result_code_string(SPI_result));
	}
	crm_spi_finish();
	return PointerGetDatum(result);
}

static CrmQuery stage_in_use = {
	"SELECT 1 FROM crm.opportunity AS o WHERE o.stage OPERATOR(pg_catalog.=) $1 LIMIT 1",
	1, {TEXTOID}, NULL
};

/* crm_opportunity_stage_guard -- trigger crm_internal.opportunity_stage_guard() */
PG_FUNCTION_INFO_V1(crm_opportunity_stage_guard);
Datum
crm_opportunity_stage_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "opportunity_stage_guard", true, false);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	HeapTuple	oldtup = trigdata->tg_trigtuple;
	HeapTuple	newtup = trigdata->tg_newtuple;
	char	   *stage;
	Datum		values[1];
	char		nulls[1] = {' '};

	/*
	 * Writers of opportunities wait until this transaction ends, and the
	 * ones still running are waited for; then a fresh snapshot sees every
	 * opportunity that can be in the stage (also in REPEATABLE READ).  The
	 * lock is taken by the statement-level firing, before the statement
	 * locks any stage row: a writer's foreign-key check on a stage row being
	 * renamed in the same statement would otherwise wait for us while we
	 * wait for it.  It conflicts with itself, so that two admins changing
	 * flags queue rather than deadlock when they go on to write
	 * opportunities.
	 */
	LockRelationOid(crm_relation_oid("opportunity"), ShareRowExclusiveLock);
	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		return PointerGetDatum(NULL);
	if (!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ||
		(!crm_column_changed(oldtup, newtup, tupdesc, "is_closed") &&
		 !crm_column_changed(oldtup, newtup, tupdesc, "is_won")))
		return PointerGetDatum(newtup);
	stage = crm_column_text(oldtup, tupdesc, "name");
	values[0] = CStringGetTextDatum(stage);
	crm_spi_connect();
	crm_query_run_latest_as_owner(&stage_in_use, values, nulls, 1);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_STAGE_IN_USE),
				 errtable(trigdata->tg_relation),
				 errmsg("stage \"%s\" has opportunities and stays %s", stage,
						crm_column_is(oldtup, tupdesc, "is_won", "t") ? "won" :
						crm_column_is(oldtup, tupdesc, "is_closed", "t") ? "closed (lost)" : "open"),
				 errdetail("Whether a stage is closed or won decides its opportunities' close date, loss reason and reports."),
				 errhint("Create a stage with the new flags and move the opportunities to it, or move them out of this stage first.")));
	crm_spi_finish();
	return PointerGetDatum(newtup);
}
