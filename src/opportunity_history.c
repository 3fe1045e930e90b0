/*
 * opportunity_history.c: crm.opportunity_history, the deal's past states.
 *
 * crm_internal.record_opportunity_change()
 *     AFTER INSERT, UPDATE or DELETE FOR EACH STATEMENT on crm.opportunity,
 *     with the statement's transition tables: one entry for every deal the
 *     statement created, every deal whose stage, amount, probability, close
 *     date, owner or currency it changed, and every deal it deleted
 *     (deleted = true, the last values repeated), appended below SQL
 *     (append_rows.c).
 *     AFTER TRUNCATE (statement): empties the history, as the foreign key's
 *     cascade did before 0.7 (the aggregates are emptied too).
 *     Fired FOR EACH ROW (the trigger of 0.6, until ALTER EXTENSION crm
 *     UPDATE replaces it) it records that row's change.
 * crm_internal.begin_opportunity_change()
 *     BEFORE INSERT, UPDATE or DELETE FOR EACH STATEMENT on crm.opportunity:
 *     opens the statement's frame (history_frames.c), so that a statement
 *     run inside it (a function in its RETURNING list that moves the deal
 *     on) writes its entries after the outer statement's, which changed the
 *     deal first: the entries' ids follow the order of the changes.
 *
 * The history is append-only: an entry is never changed.  A deal's state at
 * a moment t is its last entry (by id) with changed_at <= t (changed_at is
 * the transaction's start, so a writer that waited for the deal's row lock
 * may record an earlier changed_at than the entry before it; the order of
 * the ids is the order of the changes, which the deal's row lock
 * serialises).  crm.pipeline_as_of() reads it so.
 *
 * A rename of the stage cascades to the deal: only the stage changed, and
 * stage_rename.c tells it from a move (also when one statement passes names
 * on between stages, or deletes the stage it moves a deal out of).  That is
 * no move, and no entry is written: the history keeps the names entries had
 * when recorded.
 *
 * The history outlives its deal: no foreign key, row security on the owner
 * columns (95_row_security.sql).  Entries are written as the owner of schema
 * crm; users have no write privilege on the table.
 */
#include "crm.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

/* the columns of an entry, in the order of the queries' parameters */
#define H_OPPORTUNITY	0
#define H_OLD_STAGE		1
#define H_NEW_STAGE		2
#define H_OLD_AMOUNT	3
#define H_NEW_AMOUNT	4
#define H_OLD_PROB		5
#define H_NEW_PROB		6
#define H_OLD_CLOSE		7
#define H_NEW_CLOSE		8
#define H_OLD_OWNER		9
#define H_NEW_OWNER		10
#define H_CURRENCY		11
#define H_DELETED		12
#define H_NCOLUMNS		13

#define ENTRY_COLUMNS \
	"opportunity_id, old_stage, new_stage, old_amount, new_amount, old_probability, new_probability," \
	" old_close_date, new_close_date, old_owner, new_owner, currency, deleted, changed_by"

/* one entry ($14: the acting role) */
static CrmQuery insert_entry = {
	"INSERT INTO crm.opportunity_history (" ENTRY_COLUMNS ")"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::pg_catalog.regrole, $11::pg_catalog.regrole,"
	" $12, $13, $14)",
	14, {INT8OID, TEXTOID, TEXTOID, NUMERICOID, NUMERICOID, NUMERICOID, NUMERICOID,
		DATEOID, DATEOID, OIDOID, OIDOID, TEXTOID, BOOLOID, REGROLEOID}, NULL
};

/* a statement's entries, appended below SQL (append_rows.c) */
static CrmAppendTarget history_target = {
	"opportunity_history", H_NCOLUMNS + 1,
	{"opportunity_id", "old_stage", "new_stage", "old_amount", "new_amount", "old_probability",
	"new_probability", "old_close_date", "new_close_date", "old_owner", "new_owner", "currency",
	"deleted", "changed_by"},
	{INT8OID, TEXTOID, TEXTOID, NUMERICOID, NUMERICOID, NUMERICOID, NUMERICOID, DATEOID, DATEOID,
	REGROLEOID, REGROLEOID, TEXTOID, BOOLOID, REGROLEOID}, NULL, NULL
};

/* before 0.7 (this library serves older versions too): no owner, currency, deletion */
static CrmQuery insert_entry_0_6 = {
	"INSERT INTO crm.opportunity_history (opportunity_id, old_stage, new_stage, old_amount, new_amount,"
	" old_probability, new_probability, old_close_date, new_close_date, changed_by)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
	10, {INT8OID, TEXTOID, TEXTOID, NUMERICOID, NUMERICOID, NUMERICOID, NUMERICOID,
		DATEOID, DATEOID, REGROLEOID}, NULL
};

/* the frames of the statements on crm.opportunity (history_frames.c) */
static CrmFrames opportunity_frames = {"opportunity", NIL, 0, false};

static CrmQuery truncate_opportunity_history = {
	"TRUNCATE crm.opportunity_history", 0, {InvalidOid}, NULL
};

/*
 * The columns of crm.opportunity the history follows, stage first, in the
 * order of their old/new pairs; then owner and currency (the currency has
 * no old value).
 */
static const char *const tracked_columns[] = {"stage", "amount", "probability", "close_date", "owner", "currency"};
#define TRACKED_STAGE		0
#define TRACKED_PAIRS		4	/* stage .. close_date: old and new columns */
#define TRACKED_OWNER		4
#define TRACKED_CURRENCY	5
#define NTRACKED			6

typedef struct Tracked
{
	int			id;
	int			entered;		/* stage_changed_at, 0 before 0.7 */
	int			att[NTRACKED];
} Tracked;

static void
tracked_init(Tracked *t, TupleDesc tupdesc, int ntracked)
{
	t->id = crm_attnum(tupdesc, "id");
	t->entered = Max(SPI_fnumber(tupdesc, "stage_changed_at"), 0);
	for (int i = 0; i < ntracked; i++)
		t->att[i] = crm_attnum(tupdesc, tracked_columns[i]);
}

/*
 * entry_wanted -- does the change of a row from old to new make an entry?
 * Every insert and delete does; an update when a tracked column changed,
 * unless only the stage did and its old name is gone (a rename cascading).
 * The caller is connected to SPI.
 */
static bool
entry_wanted(const Tracked *t, TupleDesc tupdesc, int ntracked,
			 Datum *oldv, bool *oldn, Datum *newv, bool *newn)
{
	int			nchanged = 0;
	bool		stage_changed = false;

	if (oldv == NULL || newv == NULL)
		return true;
	for (int i = 0; i < ntracked; i++)
	{
		int			a = t->att[i] - 1;
		Form_pg_attribute att = TupleDescAttr(tupdesc, a);

		if (oldn[a] != newn[a] ||
			(!oldn[a] && !datumIsEqual(oldv[a], newv[a], att->attbyval, att->attlen)))
		{
			nchanged++;
			stage_changed = stage_changed || i == TRACKED_STAGE;
		}
	}
	if (nchanged == 0)
		return false;
	if (!stage_changed || nchanged > 1 || oldn[t->att[TRACKED_STAGE] - 1])
		return true;

	/*
	 * Only the stage changed: a move, or the cascade of a rename, which
	 * stage_rename.c tells apart (a move sets stage_changed_at, a rename
	 * keeps it).  Before 0.7 the old stage's existence decides.
	 */
	if (t->entered > 0 && !oldn[t->entered - 1] && !newn[t->entered - 1])
		return crm_stage_moved(DatumGetInt64(newv[t->id - 1]),
							   TextDatumGetCString(oldv[t->att[TRACKED_STAGE] - 1]),
							   TextDatumGetCString(newv[t->att[TRACKED_STAGE] - 1]),
							   DatumGetTimestampTz(oldv[t->entered - 1]),
							   DatumGetTimestampTz(newv[t->entered - 1]));
	if (t->entered > 0 && oldn[t->entered - 1] != newn[t->entered - 1])
		return true;
	return crm_stage_exists(TextDatumGetCString(oldv[t->att[TRACKED_STAGE] - 1]));
}

/*
 * entry_values -- the entry's parameters: old values from old (NULL on
 * insert), new ones from new (a deletion repeats the old row's).
 */
static void
entry_values(const Tracked *t, int ntracked, bool deleted,
			 Datum *oldv, bool *oldn, Datum *newv, bool *newn,
			 Datum *values, bool *isnull)
{
	values[H_OPPORTUNITY] = newv[t->id - 1];
	isnull[H_OPPORTUNITY] = newn[t->id - 1];
	for (int i = 0; i < Min(ntracked, TRACKED_PAIRS + 1); i++)
	{
		int			a = t->att[i] - 1;

		values[1 + 2 * i] = oldv ? oldv[a] : (Datum) 0;
		isnull[1 + 2 * i] = oldv ? oldn[a] : true;
		values[2 + 2 * i] = newv[a];
		isnull[2 + 2 * i] = newn[a];
	}
	if (ntracked > TRACKED_CURRENCY)
	{
		values[H_CURRENCY] = newv[t->att[TRACKED_CURRENCY] - 1];
		isnull[H_CURRENCY] = newn[t->att[TRACKED_CURRENCY] - 1];
	}
	values[H_DELETED] = BoolGetDatum(deleted);
	isnull[H_DELETED] = false;
}

/* run_entry -- one entry by the single-row INSERT (0.6: its columns only) */
static void
run_entry(Datum *values, bool *isnull, bool current)
{
	Datum		params[H_NCOLUMNS + 1];
	char		nulls[H_NCOLUMNS + 1];
	int			n = current ? H_NCOLUMNS : H_OLD_OWNER;

	for (int i = 0; i < n; i++)
	{
		params[i] = values[i];
		nulls[i] = isnull[i] ? 'n' : ' ';
	}
	params[n] = ObjectIdGetDatum(crm_acting_role());
	nulls[n] = ' ';
	crm_query_run_as_owner(current ? &insert_entry : &insert_entry_0_6, params, nulls, 0);
}

/*
 * history_0_7 -- has crm.opportunity_history the columns of 0.7 (owner,
 * currency, deleted)?  Until ALTER EXTENSION UPDATE adds them, the row
 * trigger of 0.6 writes entries as 0.6 did.
 */
static bool
history_0_7(void)
{
	Oid			relid = get_relname_relid("opportunity_history", get_namespace_oid("crm", false));

	return OidIsValid(relid) && get_attnum(relid, "new_owner") != InvalidAttrNumber;
}

/* record_row_change -- the row trigger of 0.6: that row's entry */
static void
record_row_change(TriggerData *trigdata)
{
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	TriggerEvent event = trigdata->tg_event;
	bool		is_insert = TRIGGER_FIRED_BY_INSERT(event);
	bool		is_delete = TRIGGER_FIRED_BY_DELETE(event);
	bool		current = history_0_7();
	int			ntracked = current ? NTRACKED : TRACKED_PAIRS;
	HeapTuple	oldtup = is_insert ? NULL : trigdata->tg_trigtuple;
	HeapTuple	newtup = is_insert || is_delete ? trigdata->tg_trigtuple : trigdata->tg_newtuple;
	Datum	   *oldv = NULL;
	bool	   *oldn = NULL;
	Datum	   *newv = palloc(sizeof(Datum) * tupdesc->natts);
	bool	   *newn = palloc(sizeof(bool) * tupdesc->natts);
	Datum		values[H_NCOLUMNS];
	bool		isnull[H_NCOLUMNS];
	Tracked		t;

	if (is_delete && !current)
		return;					/* 0.6 kept no deletions */
	tracked_init(&t, tupdesc, ntracked);
	heap_deform_tuple(newtup, tupdesc, newv, newn);
	if (oldtup)
	{
		oldv = palloc(sizeof(Datum) * tupdesc->natts);
		oldn = palloc(sizeof(bool) * tupdesc->natts);
		heap_deform_tuple(oldtup, tupdesc, oldv, oldn);
	}
	crm_spi_connect();
	if (entry_wanted(&t, tupdesc, ntracked, is_delete ? NULL : oldv, oldn, newv, newn))
	{
		entry_values(&t, ntracked, is_delete, oldv, oldn, newv, newn, values, isnull);
		run_entry(values, isnull, current);
	}
	crm_spi_finish();
}

/*
 * record_statement_changes -- the statement's entries from its transition
 * tables (NEW for INSERT, OLD and NEW for UPDATE, OLD for DELETE), which
 * hold the old and the new version of an updated row at the same position.
 */
static void
record_statement_changes(TriggerData *trigdata)
{
	Relation	rel = trigdata->tg_relation;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	TriggerEvent event = trigdata->tg_event;
	bool		is_insert = TRIGGER_FIRED_BY_INSERT(event);
	bool		is_update = TRIGGER_FIRED_BY_UPDATE(event);
	bool		is_delete = TRIGGER_FIRED_BY_DELETE(event);
	Tuplestorestate *olds = is_insert ? NULL : trigdata->tg_oldtable;
	Tuplestorestate *news = is_insert || is_update ? trigdata->tg_newtable : NULL;
	Tuplestorestate *rows = news ? news : olds;
	TupleTableSlot *o = NULL;
	TupleTableSlot *n = NULL;
	int			optr = 0;
	int			nptr = 0;
	int64		nrows;
	Tracked		t;
	CrmAppender *history = NULL;
	CrmFrame   *frame;
	CrmFrame   *enclosing;
	List	   *held;
	ListCell   *lc;
	Datum		values[H_NCOLUMNS + 1];
	bool		isnull[H_NCOLUMNS + 1];

	if (rows == NULL || (is_update && olds == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errtable(rel),
				 errmsg("crm_internal.record_opportunity_change() fired FOR EACH STATEMENT needs its transition tables"),
				 errhint("REFERENCING NEW TABLE for INSERT, OLD TABLE and NEW TABLE for UPDATE, OLD TABLE for DELETE.")));
	frame = crm_frame_close(&opportunity_frames,
							is_insert ? CRM_FRAME_INSERT : is_update ? CRM_FRAME_UPDATE : CRM_FRAME_DELETE,
							&enclosing);
	held = crm_frame_release(frame, enclosing);
	nrows = tuplestore_tuple_count(rows);
	if (nrows == 0 && held == NIL)
		return;

	tracked_init(&t, tupdesc, NTRACKED);
	values[H_NCOLUMNS] = ObjectIdGetDatum(crm_acting_role());
	isnull[H_NCOLUMNS] = false;

	if (olds)
	{
		o = MakeSingleTupleTableSlot(tupdesc, &TTSOpsMinimalTuple);
		optr = tuplestore_alloc_read_pointer(olds, EXEC_FLAG_REWIND);
		tuplestore_select_read_pointer(olds, optr);
		tuplestore_rescan(olds);
	}
	if (news)
	{
		n = MakeSingleTupleTableSlot(tupdesc, &TTSOpsMinimalTuple);
		nptr = tuplestore_alloc_read_pointer(news, EXEC_FLAG_REWIND);
		tuplestore_select_read_pointer(news, nptr);
		tuplestore_rescan(news);
	}

	crm_spi_connect();			/* the stage lookups may read the table */
	/* inside another statement on crm.opportunity: the entries go to its frame */
	if (enclosing == NULL)
		history = crm_append_begin(&history_target);
	for (;;)
	{
		Datum	   *oldv = NULL;
		bool	   *oldn = NULL;
		Datum	   *newv;
		bool	   *newn;

		if (olds)
		{
			tuplestore_select_read_pointer(olds, optr);
			if (!tuplestore_gettupleslot(olds, true, false, o))
				break;
			slot_getallattrs(o);
			oldv = o->tts_values;
			oldn = o->tts_isnull;
		}
		if (news)
		{
			tuplestore_select_read_pointer(news, nptr);
			if (!tuplestore_gettupleslot(news, true, false, n))
				break;
			slot_getallattrs(n);
		}
		/* a deletion repeats the last values as the new ones */
		newv = n ? n->tts_values : oldv;
		newn = n ? n->tts_isnull : oldn;
		if (is_update && !entry_wanted(&t, tupdesc, NTRACKED, oldv, oldn, newv, newn))
			continue;
		entry_values(&t, NTRACKED, is_delete, oldv, oldn, newv, newn, values, isnull);
		if (enclosing != NULL)
			crm_frame_hold(enclosing, H_NCOLUMNS + 1, history_target.types, values, isnull);
		else
			crm_append_row(history, values, isnull);
	}
	/* the entries of the statements run inside this one, after its own */
	foreach(lc, held)
		crm_append_row(history, ((CrmHeld *) lfirst(lc))->values, ((CrmHeld *) lfirst(lc))->isnull);
	if (history != NULL)
		crm_append_end(history);

	/*
	 * A tuple read back from a store spilled to disk is allocated in the
	 * current context (SPI's, since the connection) and freed by its slot:
	 * the slots are cleared before SPI's memory goes.
	 */
	if (o)
	{
		ExecClearTuple(o);
		tuplestore_select_read_pointer(olds, 0);
		ExecDropSingleTupleTableSlot(o);
	}
	if (n)
	{
		ExecClearTuple(n);
		tuplestore_select_read_pointer(news, 0);
		ExecDropSingleTupleTableSlot(n);
	}
	crm_spi_finish();
}

/* crm_record_opportunity_change -- trigger crm_internal.record_opportunity_change() */
PG_FUNCTION_INFO_V1(crm_record_opportunity_change);
Datum
crm_record_opportunity_change(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "record_opportunity_change", false, false);
	TriggerEvent event = trigdata->tg_event;

	if (TRIGGER_FIRED_BY_TRUNCATE(event))
	{
		crm_spi_connect();
		crm_query_run_as_owner(&truncate_opportunity_history, NULL, NULL, 0);
		crm_spi_finish();
	}
	else if (TRIGGER_FIRED_FOR_ROW(event))
		record_row_change(trigdata);
	else
		record_statement_changes(trigdata);
	return PointerGetDatum(NULL);
}

/* crm_begin_opportunity_change -- trigger crm_internal.begin_opportunity_change() */
PG_FUNCTION_INFO_V1(crm_begin_opportunity_change);
Datum
crm_begin_opportunity_change(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "begin_opportunity_change", true, false);
	TriggerEvent event = trigdata->tg_event;

	if (TRIGGER_FIRED_FOR_ROW(event) || TRIGGER_FIRED_BY_TRUNCATE(event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errtable(trigdata->tg_relation),
				 errmsg("crm_internal.begin_opportunity_change() must be fired BEFORE INSERT, UPDATE or DELETE FOR EACH STATEMENT")));
	if (TRIGGER_FIRED_BY_INSERT(event) &&
		crm_after_trigger_fires(trigdata->tg_relation, "record_opportunity_change_insert"))
		crm_frame_open(&opportunity_frames, CRM_FRAME_INSERT);
	else if (TRIGGER_FIRED_BY_UPDATE(event) &&
			 crm_after_trigger_fires(trigdata->tg_relation, "record_opportunity_change_update"))
		crm_frame_open(&opportunity_frames, CRM_FRAME_UPDATE);
	else if (TRIGGER_FIRED_BY_DELETE(event) &&
			 crm_after_trigger_fires(trigdata->tg_relation, "record_opportunity_change_delete"))
		crm_frame_open(&opportunity_frames, CRM_FRAME_DELETE);
	return PointerGetDatum(NULL);
}
