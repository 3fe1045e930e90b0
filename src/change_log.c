/*
 * change_log.c: the change log, crm.change_log, kept by the database.
 *
 * crm_internal.record_change()       AFTER INSERT, UPDATE, DELETE, TRUNCATE FOR EACH
 *     STATEMENT (with transition tables): one crm.change_log row for every
 *     row the statement changed, with the changed fields, appended below
 *     SQL (append_rows.c); a value longer than 2,000 bytes is kept as its
 *     beginning, length and SHA-256.  Fired FOR EACH ROW (the triggers of
 *     0.6, before the update script ran) it logs that row.
 * crm_internal.audit_append_only()   BEFORE UPDATE/DELETE (row) and TRUNCATE
 *     (statement) on crm.change_log and crm.erasure_log: the audit trail only
 *     grows, even for its owner.  The two sanctioned exceptions hold a
 *     permit: crm.erase_person() (erasure.c) rewrites values of change-log
 *     entries, crm.purge_change_log() (retention.c) deletes old ones.
 *
 * "By whom" is the role the statement runs as.  The rows are written as the
 * owner of schema crm, so users need no write privilege on the change log
 * and cannot forge or remove entries.
 */
#include "crm.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "executor/tuptable.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/rel.h"

static CrmQuery insert_change_log = {
	"INSERT INTO crm.change_log (table_name, row_id, operation, changes, changed_by) "
	"VALUES ($1, $2, $3, $4, $5)",
	5, {REGCLASSOID, INT8OID, TEXTOID, JSONBOID, REGROLEOID}, NULL
};

/*
 * A value longer than this (in bytes, as text) is kept in the change log as
 * its first characters, at most this many bytes, with its length and
 * SHA-256: {"truncated": "<first characters>", "bytes": n, "sha256": "<hex>"}.
 * Entries are never removed (append-only), so what one write can add to the
 * log is bounded; the hash still tells which value it was.
 */
#define CHANGE_LOG_VALUE_MAX	2000

/*
 * a string as the next key or value of the jsonb being built; the jsonb
 * points at it until it is made (JsonbValueToJsonb)
 */
static void
push_json_string(JsonbParseState **state, JsonbIteratorToken token, const char *str, size_t len)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) str;
	v.val.string.len = (int) len;
	(void) pushJsonbValue(state, token, &v);
}

/*
 * push_json_value -- a column's text as the next value of the jsonb being
 * built: a string, or bounded (above); null for NULL.  The values are built
 * as jsonb directly, as jsonb_in() would parse their JSON text.
 */
static void
push_json_value(JsonbParseState **state, const char *value)
{
	size_t		len;
	int			prefix;
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	char		hex[PG_SHA256_DIGEST_LENGTH * 2 + 1];
	pg_cryptohash_ctx *ctx;
	JsonbValue	v;

	if (value == NULL)
	{
		v.type = jbvNull;
		(void) pushJsonbValue(state, WJB_VALUE, &v);
		return;
	}
	len = strlen(value);
	if (len <= CHANGE_LOG_VALUE_MAX)
	{
		push_json_string(state, WJB_VALUE, value, len);
		return;
	}

	ctx = pg_cryptohash_create(PG_SHA256);
	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) value, len) < 0 ||
		pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
		elog(ERROR, "crm: could not compute SHA-256: %s", pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
	hex_encode((const char *) digest, sizeof(digest), hex);
	hex[sizeof(hex) - 1] = '\0';

	/* whole characters only */
	prefix = pg_mbcliplen(value, (int) Min(len, (size_t) INT_MAX), CHANGE_LOG_VALUE_MAX);
	(void) pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
	push_json_string(state, WJB_KEY, "truncated", strlen("truncated"));
	push_json_string(state, WJB_VALUE, value, prefix);
	push_json_string(state, WJB_KEY, "bytes", strlen("bytes"));
	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric((int64) len);
	(void) pushJsonbValue(state, WJB_VALUE, &v);
	push_json_string(state, WJB_KEY, "sha256", strlen("sha256"));
	push_json_string(state, WJB_VALUE, pstrdup(hex), strlen(hex));	/* kept by reference */
	(void) pushJsonbValue(state, WJB_END_OBJECT, NULL);
}

/*
 * The columns a table's log entries show, looked up once per statement (or
 * row trigger call): not dropped or generated columns, nor the derived
 * ones (log_column_derived); an UPDATE also leaves out the
 * updated_at stamp.  Values are written as their type's text output.
 */
typedef struct LogColumns
{
	TupleDesc	tupdesc;
	int			id_attnum;		/* the id column, 0 for none */
	bool	   *shown;			/* by attribute number - 1 */
	bool	   *stamp;			/* updated_at */
	FmgrInfo   *output;			/* the type's output function */
} LogColumns;

/*
 * Columns the database derives from the others, which an entry would only
 * repeat: search_text (a generated column, 92_search.sql), furthest_status
 * and furthest_stage (furthest_step.c), stage_changed_at
 * (opportunity_lifecycle.c).
 */
static bool
log_column_derived(const char *name)
{
	static const char *const derived[] = {"search_text", "furthest_status", "furthest_stage", "stage_changed_at"};

	for (int i = 0; i < (int) lengthof(derived); i++)
		if (strcmp(name, derived[i]) == 0)
			return true;
	return false;
}

static void
log_columns_init(LogColumns *cols, TupleDesc tupdesc)
{
	cols->tupdesc = tupdesc;
	cols->id_attnum = SPI_fnumber(tupdesc, "id");
	if (cols->id_attnum < 0)
		cols->id_attnum = 0;
	cols->shown = palloc0(sizeof(bool) * tupdesc->natts);
	cols->stamp = palloc0(sizeof(bool) * tupdesc->natts);
	cols->output = palloc0(sizeof(FmgrInfo) * tupdesc->natts);
	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		Oid			typoutput;
		bool		typisvarlena;

		if (att->attisdropped || att->attgenerated || log_column_derived(NameStr(att->attname)))
			continue;
		cols->shown[i] = true;
		cols->stamp[i] = strcmp(NameStr(att->attname), "updated_at") == 0;
		getTypeOutputInfo(att->atttypid, &typoutput, &typisvarlena);
		fmgr_info(typoutput, &cols->output[i]);
	}
}

/* value_text -- a column's text form, NULL when null */
static char *
value_text(LogColumns *cols, int i, Datum value, bool isnull)
{
	return isnull ? NULL : OutputFunctionCall(&cols->output[i], value);
}

/*
 * changes_json -- the changes of one row operation as a jsonb object:
 * UPDATE: {"col": {"old": ..., "new": ...}} for every changed column (its
 * text form changed) except the updated_at stamp; DELETE: {"col": value} of
 * the removed row; INSERT: {}.  Returns NULL for an UPDATE that changed
 * nothing.  old/new are the deformed rows (tts_values/tts_isnull).
 */
static Jsonb *
changes_json(LogColumns *cols, TriggerEvent event,
			 Datum *oldv, bool *oldn, Datum *newv, bool *newn)
{
	TupleDesc	tupdesc = cols->tupdesc;
	bool		is_update = TRIGGER_FIRED_BY_UPDATE(event);
	bool		is_delete = TRIGGER_FIRED_BY_DELETE(event);
	JsonbParseState *state = NULL;
	int			nchanges = 0;

	(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < tupdesc->natts && (is_update || is_delete); i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		const char *name = NameStr(att->attname);
		char	   *oldtext;

		if (!cols->shown[i])
			continue;
		if (is_update)
		{
			char	   *newtext;

			if (cols->stamp[i])
				continue;
			/* the same stored bytes have the same text */
			if (oldn[i] && newn[i])
				continue;
			if (!oldn[i] && !newn[i] &&
				datumIsEqual(oldv[i], newv[i], att->attbyval, att->attlen))
				continue;
			oldtext = value_text(cols, i, oldv[i], oldn[i]);
			newtext = value_text(cols, i, newv[i], newn[i]);
			if (oldtext != NULL && newtext != NULL && strcmp(oldtext, newtext) == 0)
				continue;
			nchanges++;
			push_json_string(&state, WJB_KEY, name, strlen(name));
			(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
			push_json_string(&state, WJB_KEY, "old", strlen("old"));
			push_json_value(&state, oldtext);
			push_json_string(&state, WJB_KEY, "new", strlen("new"));
			push_json_value(&state, newtext);
			(void) pushJsonbValue(&state, WJB_END_OBJECT, NULL);
		}
		else if (!oldn[i])
		{
			oldtext = value_text(cols, i, oldv[i], false);
			nchanges++;
			push_json_string(&state, WJB_KEY, name, strlen(name));
			push_json_value(&state, oldtext);
		}
	}
	if (is_update && nchanges == 0)
		return NULL;
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
}

/* the empty object a TRUNCATE's entry shows */
static Jsonb *
empty_json(void)
{
	JsonbParseState *state = NULL;

	(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
}

static const char *
operation_name(TriggerEvent event)
{
	return TRIGGER_FIRED_BY_TRUNCATE(event) ? "TRUNCATE" :
		TRIGGER_FIRED_BY_INSERT(event) ? "INSERT" :
		TRIGGER_FIRED_BY_UPDATE(event) ? "UPDATE" : "DELETE";
}

/* log_one -- one crm.change_log row (row id NULL for none) */
static void
log_one(Relation rel, const char *operation, Datum row_id, bool row_id_null,
		Jsonb *changes)
{
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

	values[0] = ObjectIdGetDatum(RelationGetRelid(rel));
	values[1] = row_id;
	nulls[1] = row_id_null ? 'n' : ' ';
	values[2] = CStringGetTextDatum(operation);
	values[3] = JsonbPGetDatum(changes);
	values[4] = ObjectIdGetDatum(crm_acting_role());

	crm_spi_connect();
	crm_query_run_as_owner(&insert_change_log, values, nulls, 0);
	crm_spi_finish();
}

/*
 * A row trigger's call: one entry (the statement triggers of
 * 96_timestamps_and_change_log.sql log per statement; this path serves a
 * database whose catalog still has the row triggers of 0.6 until ALTER
 * EXTENSION crm UPDATE).
 */
static void
record_row_change(TriggerData *trigdata)
{
	Relation	rel = trigdata->tg_relation;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	TriggerEvent event = trigdata->tg_event;
	HeapTuple	oldtup = TRIGGER_FIRED_BY_INSERT(event) ? NULL : trigdata->tg_trigtuple;
	HeapTuple	newtup = TRIGGER_FIRED_BY_INSERT(event) ? trigdata->tg_trigtuple :
		TRIGGER_FIRED_BY_UPDATE(event) ? trigdata->tg_newtuple : NULL;
	HeapTuple	idtup = newtup ? newtup : oldtup;
	LogColumns	cols;
	Datum	   *oldv = palloc(sizeof(Datum) * tupdesc->natts);
	bool	   *oldn = palloc(sizeof(bool) * tupdesc->natts);
	Datum	   *newv = palloc(sizeof(Datum) * tupdesc->natts);
	bool	   *newn = palloc(sizeof(bool) * tupdesc->natts);
	Jsonb	   *changes;
	Datum		row_id = (Datum) 0;
	bool		row_id_null = true;

	log_columns_init(&cols, tupdesc);
	if (oldtup)
		heap_deform_tuple(oldtup, tupdesc, oldv, oldn);
	if (newtup)
		heap_deform_tuple(newtup, tupdesc, newv, newn);
	changes = changes_json(&cols, event, oldv, oldn, newv, newn);
	if (changes == NULL)
		return;					/* an UPDATE that changed nothing */
	if (cols.id_attnum > 0)
		row_id = heap_getattr(idtup, cols.id_attnum, tupdesc, &row_id_null);
	log_one(rel, operation_name(event), row_id, row_id_null, changes);
}

/* the entries of a statement, appended below SQL (append_rows.c) */
static CrmAppendTarget change_log_target = {
	"change_log", 5, {"table_name", "row_id", "operation", "changes", "changed_by"},
	{REGCLASSOID, INT8OID, TEXTOID, JSONBOID, REGROLEOID}, NULL, NULL
};

/*
 * record_statement_changes -- an AFTER ... FOR EACH STATEMENT trigger with
 * its transition tables (NEW for INSERT, OLD and NEW for UPDATE, OLD for
 * DELETE): one entry per row the statement changed.  The transition tables
 * hold the old and the new version of an updated row at the same position.
 * A statement of one row takes the single-row statement, which costs less
 * than the arrays.
 */
static void
record_statement_changes(TriggerData *trigdata)
{
	Relation	rel = trigdata->tg_relation;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	TriggerEvent event = trigdata->tg_event;
	bool		is_insert = TRIGGER_FIRED_BY_INSERT(event);
	bool		is_update = TRIGGER_FIRED_BY_UPDATE(event);
	Tuplestorestate *olds = is_insert ? NULL : trigdata->tg_oldtable;
	Tuplestorestate *news = is_insert || is_update ? trigdata->tg_newtable : NULL;
	Tuplestorestate *ids = news ? news : olds;
	int64		nrows;
	TupleTableSlot *o = NULL;
	TupleTableSlot *n = NULL;
	int			optr = 0;
	int			nptr = 0;
	LogColumns	cols;
	CrmAppender *log;
	Datum		values[5];
	bool		isnull[5] = {false, false, false, false, false};
	MemoryContext rowcontext;
	MemoryContext old;

	if (ids == NULL || (is_update && olds == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errtable(rel),
				 errmsg("crm_internal.record_change() fired FOR EACH STATEMENT needs its transition tables"),
				 errhint("REFERENCING NEW TABLE for INSERT, OLD TABLE and NEW TABLE for UPDATE, OLD TABLE for DELETE.")));
	nrows = tuplestore_tuple_count(ids);
	if (nrows == 0)
		return;

	log_columns_init(&cols, tupdesc);
	values[0] = ObjectIdGetDatum(RelationGetRelid(rel));
	values[2] = CStringGetTextDatum(operation_name(event));
	values[4] = ObjectIdGetDatum(crm_acting_role());
	rowcontext = AllocSetContextCreate(CurrentMemoryContext, "crm change log row",
									   ALLOCSET_DEFAULT_SIZES);
	log = crm_append_begin(&change_log_target);

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

	for (;;)
	{
		TupleTableSlot *idslot;
		Jsonb	   *changes;
		Datum		row_id = (Datum) 0;
		bool		row_id_null = true;

		/*
		 * The slots are filled here, in the statement's context: a tuple
		 * read back from a spilled store is allocated in the current context
		 * and freed by the slot at the next read, so it must not live in
		 * rowcontext, which is reset below.
		 */
		if (olds)
		{
			tuplestore_select_read_pointer(olds, optr);
			if (!tuplestore_gettupleslot(olds, true, false, o))
				break;
			slot_getallattrs(o);
		}
		if (news)
		{
			tuplestore_select_read_pointer(news, nptr);
			if (!tuplestore_gettupleslot(news, true, false, n))
				break;
			slot_getallattrs(n);
		}
		idslot = n ? n : o;

		old = MemoryContextSwitchTo(rowcontext);
		changes = changes_json(&cols, event,
							   o ? o->tts_values : NULL, o ? o->tts_isnull : NULL,
							   n ? n->tts_values : NULL, n ? n->tts_isnull : NULL);
		if (changes != NULL)
		{
			if (cols.id_attnum > 0)
				row_id = slot_getattr(idslot, cols.id_attnum, &row_id_null);
			values[1] = row_id;
			isnull[1] = row_id_null;
			values[3] = JsonbPGetDatum(changes);
			crm_append_row(log, values, isnull);
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(rowcontext);
	}

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
	crm_append_end(log);
	MemoryContextDelete(rowcontext);
}

/* crm_record_change -- trigger crm_internal.record_change() */
PG_FUNCTION_INFO_V1(crm_record_change);
Datum
crm_record_change(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "record_change", false, false);
	TriggerEvent event = trigdata->tg_event;

	if (TRIGGER_FIRED_BY_TRUNCATE(event))
		log_one(trigdata->tg_relation, "TRUNCATE", (Datum) 0, true, empty_json());
	else if (TRIGGER_FIRED_FOR_ROW(event))
		record_row_change(trigdata);
	else
		record_statement_changes(trigdata);
	return PointerGetDatum(NULL);
}

/* crm_audit_append_only -- trigger crm_internal.audit_append_only() */
PG_FUNCTION_INFO_V1(crm_audit_append_only);
Datum
crm_audit_append_only(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "audit_append_only", true, false);
	TriggerEvent event = trigdata->tg_event;

	/*
	 * The sanctioned exceptions, for crm.change_log only: crm.erase_person()
	 * rewrites the values of entries, crm.purge_change_log() deletes old
	 * entries, each while it holds its permit (permit.c).
	 */
	if (TRIGGER_FIRED_FOR_ROW(event) &&
		strcmp(RelationGetRelationName(trigdata->tg_relation), "change_log") == 0)
	{
		TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
		bool		isnull;
		int64		id = crm_column_int64(trigdata->tg_trigtuple, tupdesc, "id", &isnull);

		if (TRIGGER_FIRED_BY_UPDATE(event) && crm_permitted(CRM_PERMIT_AUDIT_ERASE, id))
			return PointerGetDatum(trigdata->tg_newtuple);
		if (TRIGGER_FIRED_BY_DELETE(event) && crm_permitted(CRM_PERMIT_AUDIT_PURGE, id))
			return PointerGetDatum(trigdata->tg_trigtuple);
	}

	ereport(ERROR,
			(errcode(ERRCODE_CRM_AUDIT_APPEND_ONLY),
			 errtable(trigdata->tg_relation),
			 errmsg("the audit trail %s is append-only", RelationGetRelationName(trigdata->tg_relation)),
			 errdetail("%s is not allowed on it.",
					   TRIGGER_FIRED_BY_UPDATE(event) ? "UPDATE" :
					   TRIGGER_FIRED_BY_DELETE(event) ? "DELETE" : "TRUNCATE"),
			 errhint("Entries are written by the extension's triggers and never changed.")));
	PG_RETURN_NULL();
}
