/*
 * stage_velocity.c: the stage passages behind crm.stage_velocity, kept per
 * stage and owner as the deals move (crm_internal.stage_velocity_aggregate).
 *
 * crm_internal.stage_velocity_fold()
 *     AFTER UPDATE (statement, transition tables velocity_old and
 *     velocity_new) on crm.opportunity: every deal whose stage changed (a
 *     move, not the cascade of a stage rename, told apart by stage_rename.c
 *     as for crm.opportunity_history) left its old stage; one passage
 *     and the seconds it spent there (new stage_changed_at minus old
 *     stage_changed_at, both transaction times written by the lifecycle
 *     trigger) are added to (old stage, old owner) in this backend's stripe,
 *     in place by the aggregates' stripe writer (aggregate_stripes.c), one
 *     row per group changed by the statement.  No history is read.
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
 * Concurrency: writers of different backends write different stripes, and
 * the stripe writer never waits for a row (a transaction of this backend
 * that was prepared holds its rows: it writes another stripe of its own).
 * A deal's moves are serialised by its row lock, as its history entries
 * are.  The old and new versions of the statement's rows are paired by id.
 */
#include "aggregate_stripes.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "common/int.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

/* the aggregate table, for the stripe writer */
static AggStripeTable velocity_table = {
	"stage_velocity", "stage_velocity_aggregate", 2, {"stage", "owner"}, "passages", 1, {"seconds"}, NULL
};

/* a group's change when the stripe writer leaves it to a statement */
static CrmQuery add_passages = {
	"INSERT INTO crm_internal.stage_velocity_aggregate AS a (stage, owner, stripe, passages, seconds)"
	" VALUES ($1, $2, $3, $4, $5)"
	" ON CONFLICT (stage, owner, stripe) DO UPDATE"
	"    SET passages = a.passages OPERATOR(pg_catalog.+) excluded.passages,"
	"        seconds = a.seconds OPERATOR(pg_catalog.+) excluded.seconds",
	5, {TEXTOID, REGROLEOID, INT4OID, INT8OID, NUMERICOID}, NULL
};

/* a row before the statement: where the deal was and since when */
typedef struct OldRow
{
	int64		id;				/* hash key */
	char	   *stage;
	Oid			owner;
	TimestampTz entered;
	bool		entered_null;
} OldRow;

/* a group's change: passages (count) and seconds (microseconds, then numeric) */
typedef struct VelocityGroup
{
	AggGroup	group;			/* must be first */
	int64		usec;
	Datum		seconds;		/* (Datum) 0 while all in usec */
} VelocityGroup;

/* add usec microseconds to a group's seconds, exactly */
static void
add_usec(VelocityGroup *g, int64 usec)
{
	int64		sum;

	if (!pg_add_s64_overflow(g->usec, usec, &sum))
	{
		g->usec = sum;
		return;
	}
	g->seconds = g->seconds == (Datum) 0
		? NumericGetDatum(int64_div_fast_to_numeric(g->usec, 6))
		: DirectFunctionCall2(numeric_add, g->seconds, NumericGetDatum(int64_div_fast_to_numeric(g->usec, 6)));
	g->usec = usec;
}

static Datum
group_seconds(VelocityGroup *g)
{
	Datum		usec = NumericGetDatum(int64_div_fast_to_numeric(g->usec, 6));

	return g->seconds == (Datum) 0 ? usec : DirectFunctionCall2(numeric_add, g->seconds, usec);
}

/*
 * fold_passages -- the statement's passages per (old stage, old owner),
 * added to this backend's stripe rows
 */
static void
fold_passages(TriggerData *trigdata)
{
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	int			id_att = crm_attnum(tupdesc, "id");
	int			stage_att = crm_attnum(tupdesc, "stage");
	int			owner_att = crm_attnum(tupdesc, "owner");
	int			entered_att = crm_attnum(tupdesc, "stage_changed_at");
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "crm stage velocity",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext saved = MemoryContextSwitchTo(cxt);
	TupleTableSlot *slot = MakeSingleTupleTableSlot(tupdesc, &TTSOpsMinimalTuple);
	Tuplestorestate *rows;
	HASHCTL		ctl;
	HTAB	   *old_rows;
	HTAB	   *groups = crm_group_table("crm stage velocity groups", sizeof(VelocityGroup), 16, cxt);
	HASH_SEQ_STATUS seq;
	VelocityGroup *g;
	AggStripeWriter *writer = NULL;
	int			ptr;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(OldRow);
	ctl.hcxt = cxt;
	old_rows = hash_create("crm stage velocity rows", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	/* the rows before: by id */
	rows = trigdata->tg_oldtable;
	ptr = tuplestore_alloc_read_pointer(rows, EXEC_FLAG_REWIND);
	tuplestore_select_read_pointer(rows, ptr);
	tuplestore_rescan(rows);
	while (tuplestore_gettupleslot(rows, true, false, slot))
	{
		bool		isnull;
		int64		id = DatumGetInt64(slot_getattr(slot, id_att, &isnull));
		OldRow	   *row = hash_search(old_rows, &id, HASH_ENTER, NULL);

		row->stage = TextDatumGetCString(slot_getattr(slot, stage_att, &isnull));
		row->owner = DatumGetObjectId(slot_getattr(slot, owner_att, &isnull));
		row->entered = DatumGetTimestampTz(slot_getattr(slot, entered_att, &row->entered_null));
	}
	ExecClearTuple(slot);

	/* the rows after: a deal whose stage changed (not by a rename) passed */
	rows = trigdata->tg_newtable;
	ptr = tuplestore_alloc_read_pointer(rows, EXEC_FLAG_REWIND);
	tuplestore_select_read_pointer(rows, ptr);
	tuplestore_rescan(rows);
	while (tuplestore_gettupleslot(rows, true, false, slot))
	{
		bool		isnull;
		int64		id = DatumGetInt64(slot_getattr(slot, id_att, &isnull));
		OldRow	   *row = hash_search(old_rows, &id, HASH_FIND, NULL);
		char	   *stage;
		bool		left_null;
		TimestampTz left;
		AggGroupKey key;
		bool		found;

		if (row == NULL)
			continue;
		stage = TextDatumGetCString(slot_getattr(slot, stage_att, &isnull));
		left = DatumGetTimestampTz(slot_getattr(slot, entered_att, &left_null));
		if (strcmp(stage, row->stage) == 0)
			continue;
		if (left_null || row->entered_null)
			elog(ERROR, "crm: opportunity %lld has no stage_changed_at", (long long) id);

		/* a move, not the cascade of a rename (stage_rename.c) */
		if (!crm_stage_moved(id, row->stage, stage, row->entered, left))
			continue;

		key.len = strlen(row->stage) + 1 + sizeof(Oid);
		key.data = palloc(key.len);
		memcpy(key.data, row->stage, key.len - sizeof(Oid));
		memcpy(key.data + key.len - sizeof(Oid), &row->owner, sizeof(Oid));
		g = hash_search(groups, &key, HASH_ENTER, &found);
		if (!found)
		{
			memset(((char *) g) + sizeof(AggGroupKey), 0, sizeof(VelocityGroup) - sizeof(AggGroupKey));
			g->group.keys[0] = CStringGetTextDatum(row->stage);
			g->group.keys[1] = ObjectIdGetDatum(row->owner);
		}
		g->group.count++;
		add_usec(g, left - row->entered);
	}
	ExecClearTuple(slot);
	ExecDropSingleTupleTableSlot(slot);

	/* each group to this backend's stripe row, in place where the writer can */
	hash_seq_init(&seq, groups);
	while ((g = hash_seq_search(&seq)) != NULL)
	{
		int32		stripe = CRM_BACKEND_ID;
		bool		written = false;
		Datum		values[5];
		char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

		g->group.sums[0].cents = 0;
		g->group.sums[0].numeric = group_seconds(g);
		if (writer == NULL)
			writer = crm_stripes_open(&velocity_table);
		if (writer != NULL)
			stripe = crm_stripes_add(writer, &g->group, &written);
		if (written)
			continue;
		values[0] = g->group.keys[0];
		values[1] = g->group.keys[1];
		values[2] = Int32GetDatum(stripe);
		values[3] = Int64GetDatum(g->group.count);
		values[4] = g->group.sums[0].numeric;
		crm_query_run_as_owner(&add_passages, values, nulls, 0);
	}
	if (writer != NULL)
		crm_stripes_close(writer);
	hash_destroy(old_rows);
	hash_destroy(groups);
	MemoryContextSwitchTo(saved);
	MemoryContextDelete(cxt);
}

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
	fold_passages(trigdata);
	crm_spi_finish();
	return PointerGetDatum(NULL);
}
