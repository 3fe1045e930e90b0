/*
 * stage_velocity.c: the stage passages behind crm.stage_velocity, kept per
 * stage and owner as the deals move (crm_internal.stage_velocity_aggregate).
 *
 * crm_internal.stage_velocity_fold()
 *     AFTER UPDATE (statement, transition tables velocity_old and
 *     velocity_new) on crm.opportunity: every deal whose stage changed (a
 *     move, not the cascade of a stage rename: the old stage still exists,
 *     the rule of crm.opportunity_history) left its old stage; one passage
 *     and the seconds it spent there (new stage_changed_at minus old
 *     stage_changed_at, both transaction times written by the lifecycle
 *     trigger) are added to (old stage, old owner) in this backend's stripe,
 *     by one statement per UPDATE statement.  No history is read.
 *     AFTER TRUNCATE (statement): empties the aggregate (the history is
 *     emptied too).
 *
 * INSERT enters a stage and DELETE leaves none: a deleted deal's passages
 * stay (its history outlives it), so neither changes the aggregate; the
 * deals now in a stage come from the pipeline aggregate.  The sums equal a
 * recomputation from crm.opportunity_history (crm.verify_aggregates()): a
 * passage is an entry whose stage differs from the one before (not a
 * deletion), its seconds the time since the deal's previous stage entry.
 *
 * Cost: an UPDATE statement that moved no deal reads its new rows once in C
 * (is a stage_changed_at of this transaction among them?) and runs no SQL.
 *
 * Concurrency: writers of different backends write different stripes
 * (CRM_BACKEND_ID); ON CONFLICT adds to the backend's row.  A deal's moves
 * are serialised by its row lock, as its history entries are.
 */
#include "crm.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

static CrmQuery fold_passages = {
	"INSERT INTO crm_internal.stage_velocity_aggregate AS a (stage, owner, stripe, passages, seconds)"
	" SELECT o.stage, o.owner, $1, pg_catalog.count(*),"
	"        pg_catalog.sum(pg_catalog.extract('epoch', n.stage_changed_at OPERATOR(pg_catalog.-) o.stage_changed_at))"
	"   FROM velocity_old AS o JOIN velocity_new AS n ON n.id OPERATOR(pg_catalog.=) o.id"
	"  WHERE n.stage OPERATOR(pg_catalog.<>) o.stage"
	"    AND EXISTS (SELECT 1 FROM crm.opportunity_stage AS s WHERE s.name OPERATOR(pg_catalog.=) o.stage)"
	"  GROUP BY o.stage, o.owner"
	" ON CONFLICT (stage, owner, stripe) DO UPDATE"
	"    SET passages = a.passages OPERATOR(pg_catalog.+) excluded.passages,"
	"        seconds = a.seconds OPERATOR(pg_catalog.+) excluded.seconds",
	1, {INT4OID}, NULL
};

static CrmQuery empty_velocity = {
	"DELETE FROM crm_internal.stage_velocity_aggregate", 0, {InvalidOid}, NULL
};

/*
 * moved_now -- does a row of rows carry a stage_changed_at of this
 * transaction (the lifecycle trigger sets it on every move)?  A deal moved
 * earlier in the same transaction answers yes too; the statement then finds
 * what moved.
 */
static bool
moved_now(Tuplestorestate *rows, TupleDesc tupdesc)
{
	int			attnum = crm_attnum(tupdesc, "stage_changed_at");
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	TupleTableSlot *slot;
	bool		found = false;
	int			ptr;

	if (rows == NULL)
		return false;
	slot = MakeSingleTupleTableSlot(tupdesc, &TTSOpsMinimalTuple);
	ptr = tuplestore_alloc_read_pointer(rows, EXEC_FLAG_REWIND);
	tuplestore_select_read_pointer(rows, ptr);
	tuplestore_rescan(rows);
	while (!found && tuplestore_gettupleslot(rows, true, false, slot))
	{
		bool		isnull;
		Datum		value = slot_getattr(slot, attnum, &isnull);

		found = !isnull && DatumGetTimestampTz(value) == now;
	}
	ExecClearTuple(slot);
	ExecDropSingleTupleTableSlot(slot);
	return found;
}

/* crm_stage_velocity_fold -- trigger crm_internal.stage_velocity_fold() */
PG_FUNCTION_INFO_V1(crm_stage_velocity_fold);
Datum
crm_stage_velocity_fold(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "stage_velocity_fold", false, false);
	TriggerEvent event = trigdata->tg_event;
	Datum		values[1];
	char		nulls[1] = {' '};
	int			ret;

	if (TRIGGER_FIRED_BY_TRUNCATE(event))
	{
		crm_spi_connect();
		crm_query_run_latest_as_owner(&empty_velocity, NULL, NULL, 0);
		crm_spi_finish();
		return PointerGetDatum(NULL);
	}
	if (TRIGGER_FIRED_FOR_ROW(event) || !TRIGGER_FIRED_BY_UPDATE(event) ||
		trigdata->tg_oldtable == NULL || trigdata->tg_newtable == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errtable(trigdata->tg_relation),
				 errmsg("crm_internal.stage_velocity_fold() must be fired AFTER UPDATE FOR EACH STATEMENT with transition tables velocity_old and velocity_new, or AFTER TRUNCATE")));

	if (!moved_now(trigdata->tg_newtable, RelationGetDescr(trigdata->tg_relation)))
		return PointerGetDatum(NULL);

	crm_spi_connect();
	ret = SPI_register_trigger_data(trigdata);
	if (ret != SPI_OK_TD_REGISTER)
		elog(ERROR, "crm: SPI_register_trigger_data failed: %s", SPI_result_code_string(ret));
	values[0] = Int32GetDatum(CRM_BACKEND_ID);
	crm_query_run_as_owner(&fold_passages, values, nulls, 0);
	crm_spi_finish();
	return PointerGetDatum(NULL);
}
