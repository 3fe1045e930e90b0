/*
 * opportunity_history.c: crm.opportunity_history, the deal's past states.
 *
 * crm_internal.record_opportunity_change()
 *     AFTER INSERT, UPDATE or DELETE (row) on crm.opportunity: one entry when
 *     a deal is created, when its stage, amount, probability, close date,
 *     owner or currency changed, and when it is deleted (deleted = true,
 *     the last values repeated).  The same statement marks the entries the
 *     new one supersedes (superseded_at), so that every entry is the deal's
 *     state from its changed_at to its superseded_at and crm.pipeline_as_of()
 *     reads a moment's pipeline without ordering a deal's entries.
 *     AFTER TRUNCATE (statement): empties the history, as the foreign key's
 *     cascade did before 0.7 (the aggregates are emptied too).
 *
 * The history outlives its deal: no foreign key, row security on the owner
 * columns (95_row_security.sql).  Entries are written as the owner of schema
 * crm; users have no write privilege on the table.
 *
 * superseded_at is the earliest changed_at of the later entries: changed_at
 * is the transaction's start, so a writer that waited for the deal's row lock
 * may record an earlier changed_at than the entry before it.  The UPDATE
 * therefore lowers superseded_at on every earlier entry still above now(),
 * and an entry is the state at t exactly when it is the last one (by id)
 * with changed_at <= t.  Writes to one deal are serialised by its row lock
 * (the trigger runs after the row was updated or deleted), so the entries
 * a new one supersedes are committed or the writer's own.
 */
#include "crm.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "catalog/namespace.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

static CrmQuery insert_opportunity_history = {
	"WITH superseded AS ("
	" UPDATE crm.opportunity_history SET superseded_at = pg_catalog.now()"
	"  WHERE opportunity_id OPERATOR(pg_catalog.=) $1"
	"    AND (superseded_at IS NULL OR superseded_at OPERATOR(pg_catalog.>) pg_catalog.now()))"
	" INSERT INTO crm.opportunity_history (opportunity_id, old_stage, new_stage, old_amount, new_amount,"
	" old_probability, new_probability, old_close_date, new_close_date, old_owner, new_owner, currency,"
	" deleted, changed_by)"
	" VALUES ($1, $2, $3, $4::pg_catalog.numeric, $5::pg_catalog.numeric, $6::pg_catalog.numeric,"
	" $7::pg_catalog.numeric, $8::pg_catalog.date, $9::pg_catalog.date, $10, $11, $12, $13, $14)",
	14, {INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
		REGROLEOID, REGROLEOID, TEXTOID, BOOLOID, REGROLEOID}, NULL
};

/* before 0.7 (this library serves older versions too): no owner, currency, deletion */
static CrmQuery insert_opportunity_history_0_6 = {
	"INSERT INTO crm.opportunity_history (opportunity_id, old_stage, new_stage, old_amount, new_amount,"
	" old_probability, new_probability, old_close_date, new_close_date, changed_by)"
	" VALUES ($1, $2, $3, $4::pg_catalog.numeric, $5::pg_catalog.numeric, $6::pg_catalog.numeric,"
	" $7::pg_catalog.numeric, $8::pg_catalog.date, $9::pg_catalog.date, $10)",
	10, {INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, REGROLEOID}, NULL
};

static CrmQuery truncate_opportunity_history = {
	"TRUNCATE crm.opportunity_history", 0, {InvalidOid}, NULL
};

/*
 * The columns crm.opportunity_history follows, stage first (a rename of the
 * stage is told by it), then the ones with an old and a new value; owner and
 * currency are handled apart (the owner is a regrole, the currency has no
 * old value).
 */
static const char *const tracked_columns[] = {"stage", "amount", "probability", "close_date", "owner", "currency", NULL};
#define TRACKED_OWNER		4
#define TRACKED_CURRENCY	5

/*
 * history_0_7 -- has crm.opportunity_history the columns of 0.7 (owner,
 * currency, deleted, superseded_at)?  Until ALTER EXTENSION UPDATE adds
 * them, entries are written as 0.6 did (two catalog cache probes a call).
 */
static bool
history_0_7(void)
{
	Oid			relid = get_relname_relid("opportunity_history", get_namespace_oid("crm", false));

	return OidIsValid(relid) && get_attnum(relid, "superseded_at") != InvalidAttrNumber;
}

/* set_text -- values[i] as the text of attribute attnum of tuple, or NULL */
static void
set_text(Datum *values, char *nulls, int i, HeapTuple tuple, TupleDesc tupdesc, int attnum)
{
	char	   *text = tuple ? crm_attribute_text(tuple, tupdesc, attnum) : NULL;

	values[i] = text ? CStringGetTextDatum(text) : (Datum) 0;
	nulls[i] = text ? ' ' : 'n';
}

/* crm_record_opportunity_change -- trigger crm_internal.record_opportunity_change() */
PG_FUNCTION_INFO_V1(crm_record_opportunity_change);
Datum
crm_record_opportunity_change(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "record_opportunity_change", false, false);
	TriggerEvent event = trigdata->tg_event;
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	bool		is_insert = TRIGGER_FIRED_BY_INSERT(event);
	bool		is_delete = TRIGGER_FIRED_BY_DELETE(event);
	HeapTuple	oldtup;
	HeapTuple	newtup;
	int			nchanged = 0;
	bool		stage_changed = false;
	Datum		values[14];
	char		nulls[14];
	bool		isnull;
	int			tracked[lengthof(tracked_columns) - 1];
	bool		current;
	int			ntracked;

	if (TRIGGER_FIRED_BY_TRUNCATE(event))
	{
		crm_spi_connect();
		crm_query_run_as_owner(&truncate_opportunity_history, NULL, NULL, 0);
		crm_spi_finish();
		return PointerGetDatum(NULL);
	}
	if (!TRIGGER_FIRED_FOR_ROW(event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errtable(trigdata->tg_relation),
				 errmsg("crm_internal.record_opportunity_change() must be fired FOR EACH ROW, or FOR EACH STATEMENT on TRUNCATE")));

	current = history_0_7();

	/* a deletion repeats the last values as the new ones */
	oldtup = is_insert ? NULL : trigdata->tg_trigtuple;
	newtup = is_insert || is_delete ? trigdata->tg_trigtuple : trigdata->tg_newtuple;

	ntracked = current ? lengthof(tracked_columns) - 1 : TRACKED_OWNER;
	if (is_delete && !current)
		return PointerGetDatum(NULL);	/* 0.6 kept no deletions */
	for (int i = 0; i < ntracked; i++)
		tracked[i] = crm_attnum(tupdesc, tracked_columns[i]);
	for (int i = 0; !is_insert && !is_delete && i < ntracked; i++)
		if (crm_attribute_changed(oldtup, newtup, tupdesc, tracked[i]))
		{
			nchanged++;
			stage_changed = stage_changed || i == 0;
		}
	if (!is_insert && !is_delete && nchanged == 0)
		return PointerGetDatum(NULL);

	crm_spi_connect();

	/*
	 * A rename of the stage cascading to the opportunity is no stage change
	 * (the cascade changes nothing else): the history keeps the names
	 * entries had when they were recorded.
	 */
	if (stage_changed && nchanged == 1 && !crm_stage_exists(crm_attribute_text(oldtup, tupdesc, tracked[0])))
	{
		crm_spi_finish();
		return PointerGetDatum(NULL);
	}

	values[0] = Int64GetDatum(crm_column_int64(newtup, tupdesc, "id", &isnull));
	nulls[0] = ' ';
	for (int i = 0; i < TRACKED_OWNER; i++)
	{
		set_text(values, nulls, 1 + 2 * i, oldtup, tupdesc, tracked[i]);
		set_text(values, nulls, 2 + 2 * i, newtup, tupdesc, tracked[i]);
	}
	if (!current)
	{
		values[9] = ObjectIdGetDatum(crm_acting_role());
		nulls[9] = ' ';
		crm_query_run_as_owner(&insert_opportunity_history_0_6, values, nulls, 0);
		crm_spi_finish();
		return PointerGetDatum(NULL);
	}
	values[9] = oldtup ? heap_getattr(oldtup, tracked[TRACKED_OWNER], tupdesc, &isnull) : (Datum) 0;
	nulls[9] = oldtup && !isnull ? ' ' : 'n';
	values[10] = heap_getattr(newtup, tracked[TRACKED_OWNER], tupdesc, &isnull);
	nulls[10] = isnull ? 'n' : ' ';
	set_text(values, nulls, 11, newtup, tupdesc, tracked[TRACKED_CURRENCY]);
	values[12] = BoolGetDatum(is_delete);
	nulls[12] = ' ';
	values[13] = ObjectIdGetDatum(crm_acting_role());
	nulls[13] = ' ';

	crm_query_run_as_owner(&insert_opportunity_history, values, nulls, 0);
	crm_spi_finish();
	return PointerGetDatum(NULL);
}
