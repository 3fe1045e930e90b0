/*
 * history.c: what happened to a row, kept by the database.
 *
 * crm_internal.record_lead_status()  AFTER INSERT and AFTER UPDATE FOR EACH
 *     STATEMENT on crm.lead (with transition tables): one
 *     crm.lead_status_history row for every lead the statement captured and
 *     one for every lead whose status it changed (from, to, when, by whom),
 *     written by one INSERT per statement, in the order the statement wrote
 *     the rows; a statement of one row takes a single-row INSERT, and a
 *     statement that changed no status runs no query.  Fired FOR EACH ROW
 *     (the trigger of 0.6, before the update script ran) it records that row.
 * crm_internal.begin_lead_status()  BEFORE INSERT and BEFORE UPDATE FOR EACH
 *     STATEMENT on crm.lead: opens the statement's frame (below).
 * The change log (crm.change_log) and its append-only guard are change_log.c;
 * crm.opportunity_history is opportunity_history.c.
 *
 * The order of the entries.  A lead's entries follow the order its
 * statuses were taken in (by id; changed_at is the transaction's start),
 * also when a statement changing leads runs inside another one (a
 * conversion in the RETURNING list of an UPDATE of the lead): each
 * statement's frame (history_frames.c) hands the inner statement's entries
 * to the outer one, which writes them after its own.
 *
 * "By whom" is the role the statement runs as.  The rows are written as the
 * owner of schema crm, so users need no write privilege on the history tables
 * and cannot forge or remove entries.  Every write path -- INSERT, COPY,
 * UPDATE, INSERT ... ON CONFLICT DO UPDATE, MERGE -- fills the transition
 * tables, so every path is recorded.
 */
#include "crm.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

static CrmQuery insert_status_history = {
	"INSERT INTO crm.lead_status_history (lead_id, from_status, to_status, changed_by) "
	"VALUES ($1, $2::pg_catalog.text::crm.lead_status, $3::pg_catalog.text::crm.lead_status, $4)",
	4, {INT8OID, TEXTOID, TEXTOID, REGROLEOID}, NULL
};

/* the entries of a statement, appended below SQL (append_rows.c) */
static CrmAppendTarget status_history_target = {
	"lead_status_history", 4, {"lead_id", "from_status", "to_status", "changed_by"},
	{INT8OID, InvalidOid, InvalidOid, REGROLEOID}, NULL, NULL
};

/* attribute number of a column the trigger needs, or a loud error */
static int
required_attnum(TupleDesc tupdesc, const char *colname)
{
	int			attnum = SPI_fnumber(tupdesc, colname);

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("crm_internal.record_lead_status() needs a column \"%s\"", colname)));
	return attnum;
}

/* insert_one -- one entry (from_status NULL for a captured lead) */
static void
insert_one(Datum lead_id, Datum from_status, bool from_null, Datum to_status)
{
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	values[0] = lead_id;
	values[1] = from_status;
	nulls[1] = from_null ? 'n' : ' ';
	values[2] = to_status;
	values[3] = ObjectIdGetDatum(crm_acting_role());

	crm_spi_connect();
	crm_query_run_as_owner(&insert_status_history, values, nulls, 0);
	crm_spi_finish();
}

/*
 * A row trigger's call: that row's entry (serves a database whose catalog
 * still has the row trigger of 0.6 until ALTER EXTENSION crm UPDATE).
 */
static void
record_row_status(TriggerData *trigdata)
{
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	int			attnum = required_attnum(tupdesc, "status");
	HeapTuple	newtup;
	char	   *from_status = NULL;
	char	   *to_status;
	bool		isnull;
	Datum		id;

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		newtup = trigdata->tg_trigtuple;
	else
	{
		newtup = trigdata->tg_newtuple;
		from_status = crm_attribute_text(trigdata->tg_trigtuple, tupdesc, attnum);
	}
	to_status = crm_attribute_text(newtup, tupdesc, attnum);
	if (from_status != NULL && to_status != NULL && strcmp(from_status, to_status) == 0)
		return;					/* status unchanged */

	id = heap_getattr(newtup, required_attnum(tupdesc, "id"), tupdesc, &isnull);
	insert_one(id, from_status ? CStringGetTextDatum(from_status) : (Datum) 0,
			   from_status == NULL, CStringGetTextDatum(to_status));
}

/* the frames of the statements on crm.lead (history_frames.c) */
static CrmFrames lead_frames = {"lead", NIL, 0, false};

/*
 * The labels of the statuses a statement wrote, as text datums: an enum
 * value is its pg_enum row's OID, and a lead has a handful of statuses, so
 * each label is looked up once per statement.
 */
typedef struct StatusLabels
{
	Oid			type;			/* the status column's type */
	FmgrInfo	output;			/* its output function, once n >= 0 */
	int			n;
	Oid			oids[32];
	Datum		labels[32];
} StatusLabels;

static Datum
status_label(StatusLabels *cache, Datum value)
{
	Oid			oid = DatumGetObjectId(value);

	if (cache->n < 0)
	{
		Oid			typoutput;
		bool		typisvarlena;

		getTypeOutputInfo(cache->type, &typoutput, &typisvarlena);
		fmgr_info(typoutput, &cache->output);
		cache->n = 0;
	}
	for (int i = 0; i < cache->n; i++)
		if (cache->oids[i] == oid)
			return cache->labels[i];
	if (cache->n == lengthof(cache->oids))
		return CStringGetTextDatum(OutputFunctionCall(&cache->output, value));
	cache->oids[cache->n] = oid;
	cache->labels[cache->n] = CStringGetTextDatum(OutputFunctionCall(&cache->output, value));
	return cache->labels[cache->n++];
}

/*
 * A status of the lead's column as a value of the history's column: the
 * same datum when both are crm.lead_status, else read from its label.
 */
static Datum
status_value(StatusLabels *labels, Oid history_type, Datum value)
{
	Oid			typinput;
	Oid			typioparam;

	if (labels->type == history_type)
		return value;
	getTypeInputInfo(history_type, &typinput, &typioparam);
	return OidInputFunctionCall(typinput, TextDatumGetCString(status_label(labels, value)),
								typioparam, -1);
}

/* open_store -- a slot and a read pointer of our own on a transition table */
static TupleTableSlot *
open_store(Tuplestorestate *store, TupleDesc tupdesc, int *ptr)
{
	*ptr = tuplestore_alloc_read_pointer(store, EXEC_FLAG_REWIND);
	tuplestore_select_read_pointer(store, *ptr);
	tuplestore_rescan(store);
	return MakeSingleTupleTableSlot(tupdesc, &TTSOpsMinimalTuple);
}

/* next_row -- the store's next row into slot; false at its end */
static bool
next_row(Tuplestorestate *store, int ptr, TupleTableSlot *slot)
{
	tuplestore_select_read_pointer(store, ptr);
	return tuplestore_gettupleslot(store, true, false, slot);
}

/* close_store -- back to the read pointer the other triggers use */
static void
close_store(Tuplestorestate *store, TupleTableSlot *slot)
{
	ExecClearTuple(slot);
	tuplestore_select_read_pointer(store, 0);
	ExecDropSingleTupleTableSlot(slot);
}

/* append_status_entry -- an entry (statuses as the lead's column has them) */
static void
append_status_entry(CrmAppender *history, StatusLabels *labels, Oid history_type,
					const Datum *entry, const bool *entry_null)
{
	Datum		values[4];
	bool		isnull[4];

	memcpy(isnull, entry_null, sizeof(isnull));
	values[0] = entry[0];
	values[1] = isnull[1] ? (Datum) 0 : status_value(labels, history_type, entry[1]);
	values[2] = isnull[2] ? (Datum) 0 : status_value(labels, history_type, entry[2]);
	values[3] = entry[3];
	crm_append_row(history, values, isnull);
}

/*
 * record_statement_statuses -- an AFTER INSERT (NEW TABLE) or AFTER UPDATE
 * (OLD and NEW TABLE) FOR EACH STATEMENT call: one entry per captured lead
 * and per changed status.  The transition tables hold the old and the new
 * version of an updated row at the same position.
 */
static void
record_statement_statuses(TriggerData *trigdata)
{
	Relation	rel = trigdata->tg_relation;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	bool		is_update = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event);
	Tuplestorestate *olds = is_update ? trigdata->tg_oldtable : NULL;
	Tuplestorestate *news = trigdata->tg_newtable;
	int			status_att = required_attnum(tupdesc, "status");
	int			id_att = required_attnum(tupdesc, "id");
	int64		nrows;
	TupleTableSlot *o = NULL;
	TupleTableSlot *n;
	int			optr = 0;
	int			nptr;
	StatusLabels labels;
	CrmAppender *history = NULL;
	Oid			history_type = InvalidOid;
	CrmFrame   *frame;
	CrmFrame   *enclosing;
	List	   *held;
	ListCell   *lc;
	Datum		values[4];
	bool		isnull[4] = {false, true, false, false};

	if (news == NULL || (is_update && olds == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errtable(rel),
				 errmsg("crm_internal.record_lead_status() fired FOR EACH STATEMENT needs its transition tables"),
				 errhint("REFERENCING NEW TABLE for INSERT, OLD TABLE and NEW TABLE for UPDATE.")));
	frame = crm_frame_close(&lead_frames, is_update ? CRM_FRAME_UPDATE : CRM_FRAME_INSERT, &enclosing);
	held = crm_frame_release(frame, enclosing);
	nrows = tuplestore_tuple_count(news);
	if (nrows == 0 && held == NIL)
		return;

	labels.type = TupleDescAttr(tupdesc, status_att - 1)->atttypid;
	labels.n = -1;

	/* inside another statement on crm.lead: the entries go to its frame */
	if (enclosing == NULL)
	{
		history = crm_append_begin(&status_history_target);
		history_type = crm_append_column_type(history, 2);
	}
	values[3] = ObjectIdGetDatum(crm_acting_role());
	if (olds)
		o = open_store(olds, tupdesc, &optr);
	n = open_store(news, tupdesc, &nptr);
	for (;;)
	{
		Datum		from = (Datum) 0;
		bool		from_null = true;
		Datum		to;
		bool		to_null;

		if (olds && !next_row(olds, optr, o))
			break;
		if (!next_row(news, nptr, n))
			break;
		to = slot_getattr(n, status_att, &to_null);
		if (olds)
		{
			from = slot_getattr(o, status_att, &from_null);
			if (!from_null && !to_null && DatumGetObjectId(from) == DatumGetObjectId(to))
				continue;		/* status unchanged */
		}
		values[0] = slot_getattr(n, id_att, &isnull[0]);
		values[1] = from;
		isnull[1] = from_null;
		values[2] = to;
		isnull[2] = to_null;
		if (enclosing != NULL)
		{
			Oid			types[4] = {INT8OID, labels.type, labels.type, OIDOID};

			crm_frame_hold(enclosing, 4, types, values, isnull);
			continue;
		}
		append_status_entry(history, &labels, history_type, values, isnull);
	}

	if (o)
		close_store(olds, o);
	close_store(news, n);
	/* the entries of the statements run inside this one, after its own */
	foreach(lc, held)
	{
		CrmHeld    *e = lfirst(lc);

		append_status_entry(history, &labels, history_type, e->values, e->isnull);
	}
	if (history != NULL)
		crm_append_end(history);
}

/* crm_begin_lead_status -- trigger crm_internal.begin_lead_status() */
PG_FUNCTION_INFO_V1(crm_begin_lead_status);
Datum
crm_begin_lead_status(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "begin_lead_status", true, false);
	bool		is_update = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event);

	if (TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		(!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) && !TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errtable(trigdata->tg_relation),
				 errmsg("crm_internal.begin_lead_status() must be fired BEFORE INSERT or UPDATE FOR EACH STATEMENT")));
	if (crm_after_trigger_fires(trigdata->tg_relation,
								is_update ? "record_lead_status_update" : "record_lead_status_insert"))
		crm_frame_open(&lead_frames, is_update ? CRM_FRAME_UPDATE : CRM_FRAME_INSERT);
	return PointerGetDatum(NULL);
}

/* crm_record_lead_status -- trigger crm_internal.record_lead_status() */
PG_FUNCTION_INFO_V1(crm_record_lead_status);
Datum
crm_record_lead_status(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "record_lead_status", false, false);

	if (!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) && !TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errtable(trigdata->tg_relation),
				 errmsg("crm_internal.record_lead_status() must be fired for INSERT or UPDATE")));
	if (TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		record_row_status(trigdata);
	else
		record_statement_statuses(trigdata);
	return PointerGetDatum(NULL);
}
