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
 * statuses were taken in (by id; changed_at is the transaction's start).
 * A statement's entries are written when it ends, but a statement may run
 * inside another one that changes leads: crm.convert_lead() in the
 * RETURNING list of an UPDATE of the lead, a function in an UPDATE's
 * expressions, a trigger.  The inner one ends first, although the outer
 * one changed the lead first (PostgreSQL refuses the outer statement's
 * change of a row that a statement inside it changed already).  So every
 * INSERT or UPDATE statement on crm.lead opens a frame (the BEFORE
 * STATEMENT trigger; PostgreSQL fires it, and the AFTER trigger, once per
 * statement and table and event); when it ends, its AFTER trigger closes
 * the frame and, if a frame of an enclosing statement is open, hands its
 * entries (and those handed to it) on to that frame instead of writing
 * them: the outermost statement writes its own entries, then those of the
 * statements inside it, in the order they ended.  Frames and the entries
 * handed on live in this backend: the abort of a subtransaction drops
 * those opened and handed on inside it (its changes are undone).  A frame
 * is opened only when the statement's AFTER trigger will fire (enabled for
 * the session's replication role), so every frame is closed; an entry held
 * at commit would be a bug, and fails the commit rather than be lost.
 
 *
 * "By whom" is the role the statement runs as.  The rows are written as the
 * owner of schema crm, so users need no write privilege on the history tables
 * and cannot forge or remove entries.  Every write path -- INSERT, COPY,
 * UPDATE, INSERT ... ON CONFLICT DO UPDATE, MERGE -- fills the transition
 * tables, so every path is recorded.
 */
#include "crm.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
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

/* insert_one -- one entry (from_status NULL for a captured lead) by role */
static void
insert_one(Datum lead_id, Datum from_status, bool from_null, Datum to_status, Oid role)
{
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	values[0] = lead_id;
	values[1] = from_status;
	nulls[1] = from_null ? 'n' : ' ';
	values[2] = to_status;
	values[3] = ObjectIdGetDatum(role);

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
			   from_status == NULL, CStringGetTextDatum(to_status), crm_acting_role());
}

/*
 * The frames of the statements on crm.lead running now, innermost last,
 * and the entries handed on to them (see above).
 */
typedef struct HeldEntry
{
	SubTransactionId subxact;	/* the subtransaction that changed the status */
	int64		lead_id;
	char	   *from_status;	/* NULL for a captured lead */
	char	   *to_status;
	Oid			changed_by;
} HeldEntry;

typedef struct StatusFrame
{
	bool		open[2];		/* AFTER INSERT [0], UPDATE [1] trigger to fire */
	CommandId	cid;			/* the command it was opened in */
	uint64		opened_at;		/* frame_events then */
	SubTransactionId subxact;	/* where it was opened */
	List	   *held;			/* HeldEntry *, in order */
} StatusFrame;

static MemoryContext frames_context = NULL;
static List *frames = NIL;		/* StatusFrame *, outermost first */
static uint64 frame_events = 0; /* frames opened and closed so far */

/*
 * At commit no entry may be held: a frame is opened only when the AFTER
 * trigger that closes it will fire (after_trigger_fires()).  At the end,
 * every frame goes.
 */
static void
frames_xact_callback(XactEvent event, void *arg pg_attribute_unused())
{
	ListCell   *lc;

	if (event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PRE_PREPARE)
	{
		foreach(lc, frames)
			if (((StatusFrame *) lfirst(lc))->held != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_INTERNAL_ERROR),
						 errmsg("crm: lead status history entries are held at commit"),
						 errdetail("A statement on crm.lead opened a frame that its AFTER trigger did not close.")));
		return;
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		frames = NIL;
		if (frames_context != NULL)
			MemoryContextReset(frames_context);
	}
}

/* the abort of a subtransaction drops the frames and entries of its own */
static void
frames_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid pg_attribute_unused(),
						void *arg pg_attribute_unused())
{
	ListCell   *lc;

	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	foreach(lc, frames)
	{
		StatusFrame *f = lfirst(lc);

		if (f->subxact >= mySubid)
			frames = foreach_delete_current(frames, lc);
	}
	foreach(lc, frames)
	{
		StatusFrame *f = lfirst(lc);
		ListCell   *ec;

		foreach(ec, f->held)
			if (((HeldEntry *) lfirst(ec))->subxact >= mySubid)
				f->held = foreach_delete_current(f->held, ec);
	}
}

/*
 * open_frame -- a statement on crm.lead begins.  A MERGE or an INSERT ...
 * ON CONFLICT DO UPDATE fires the BEFORE triggers of both events, one
 * after the other in the same command: one frame serves both, else its
 * AFTER UPDATE trigger would hand its entries to its own INSERT's frame.
 */
static void
open_frame(int event)
{
	MemoryContext old;
	StatusFrame *f = frames == NIL ? NULL : llast(frames);

	if (f != NULL && !f->open[event] && f->open[1 - event] && f->opened_at == frame_events &&
		f->cid == GetCurrentCommandId(false) && f->subxact == GetCurrentSubTransactionId())
	{
		f->open[event] = true;
		return;
	}
	if (frames_context == NULL)
	{
		frames_context = AllocSetContextCreate(TopMemoryContext, "crm lead status frames",
											   ALLOCSET_SMALL_SIZES);
		RegisterXactCallback(frames_xact_callback, NULL);
		RegisterSubXactCallback(frames_subxact_callback, NULL);
	}
	old = MemoryContextSwitchTo(frames_context);
	f = palloc0(sizeof(StatusFrame));
	f->open[event] = true;
	f->cid = GetCurrentCommandId(false);
	f->opened_at = ++frame_events;
	f->subxact = GetCurrentSubTransactionId();
	frames = lappend(frames, f);
	MemoryContextSwitchTo(old);
}

/*
 * close_frame -- the statement's AFTER trigger of an event fires: the
 * innermost frame open for it closes for it.  *enclosing: the frame below,
 * which the statement's entries go to (NULL: write them).  Returns the
 * frame once closed for every event, taken off (NULL before, and when
 * there is none: the BEFORE trigger did not fire).
 */
static StatusFrame *
close_frame(int event, StatusFrame **enclosing)
{
	*enclosing = NULL;
	for (int i = list_length(frames) - 1; i >= 0; i--)
	{
		StatusFrame *f = list_nth(frames, i);

		if (!f->open[event])
			continue;
		f->open[event] = false;
		frame_events++;
		*enclosing = i > 0 ? list_nth(frames, i - 1) : NULL;
		if (f->open[1 - event])
			return NULL;
		frames = list_delete_nth_cell(frames, i);
		return f;
	}
	*enclosing = frames == NIL ? NULL : llast(frames);
	return NULL;
}

/* hold -- an entry handed on to the enclosing frame */
static void
hold(StatusFrame *enclosing, int64 lead_id, const char *from_status, const char *to_status, Oid role)
{
	MemoryContext old = MemoryContextSwitchTo(frames_context);
	HeldEntry  *e = palloc(sizeof(HeldEntry));

	e->subxact = GetCurrentSubTransactionId();
	e->lead_id = lead_id;
	e->from_status = from_status ? pstrdup(from_status) : NULL;
	e->to_status = to_status ? pstrdup(to_status) : NULL;
	e->changed_by = role;
	enclosing->held = lappend(enclosing->held, e);
	MemoryContextSwitchTo(old);
}

/*
 * release -- the entries held by a closed frame: handed on to the enclosing
 * frame, or appended after the statement's own
 */
static void
release(StatusFrame *f, StatusFrame *enclosing, CrmAppender *history, Oid history_type)
{
	ListCell   *lc;
	Oid			typinput;
	Oid			typioparam;

	if (f == NULL || f->held == NIL)
		return;
	if (enclosing != NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(frames_context);

		enclosing->held = list_concat(enclosing->held, f->held);
		MemoryContextSwitchTo(old);
		return;
	}
	getTypeInputInfo(history_type, &typinput, &typioparam);
	foreach(lc, f->held)
	{
		HeldEntry  *e = lfirst(lc);
		Datum		values[4];
		bool		isnull[4] = {false, e->from_status == NULL, e->to_status == NULL, false};

		values[0] = Int64GetDatum(e->lead_id);
		values[1] = e->from_status ? OidInputFunctionCall(typinput, e->from_status, typioparam, -1) : (Datum) 0;
		values[2] = e->to_status ? OidInputFunctionCall(typinput, e->to_status, typioparam, -1) : (Datum) 0;
		values[3] = ObjectIdGetDatum(e->changed_by);
		crm_append_row(history, values, isnull);
	}
}

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
	StatusFrame *frame;
	StatusFrame *enclosing;
	Oid			role = crm_acting_role();
	Datum		values[4];
	bool		isnull[4] = {false, true, false, false};

	if (news == NULL || (is_update && olds == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errtable(rel),
				 errmsg("crm_internal.record_lead_status() fired FOR EACH STATEMENT needs its transition tables"),
				 errhint("REFERENCING NEW TABLE for INSERT, OLD TABLE and NEW TABLE for UPDATE.")));
	frame = close_frame(is_update ? 1 : 0, &enclosing);
	nrows = tuplestore_tuple_count(news);
	if (nrows == 0 && (frame == NULL || frame->held == NIL))
		return;

	labels.type = TupleDescAttr(tupdesc, status_att - 1)->atttypid;
	labels.n = -1;

	/* inside another statement on crm.lead: the entries go to its frame */
	if (enclosing == NULL)
	{
		history = crm_append_begin(&status_history_target);
		history_type = crm_append_column_type(history, 2);
	}
	values[3] = ObjectIdGetDatum(role);
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
		if (enclosing != NULL)
		{
			hold(enclosing, DatumGetInt64(values[0]),
				 from_null ? NULL : TextDatumGetCString(status_label(&labels, from)),
				 to_null ? NULL : TextDatumGetCString(status_label(&labels, to)), role);
			continue;
		}
		values[1] = from_null ? (Datum) 0 : status_value(&labels, history_type, from);
		isnull[1] = from_null;
		values[2] = to_null ? (Datum) 0 : status_value(&labels, history_type, to);
		isnull[2] = to_null;
		crm_append_row(history, values, isnull);
	}

	if (o)
		close_store(olds, o);
	close_store(news, n);
	release(frame, enclosing, history, history_type);
	if (history != NULL)
		crm_append_end(history);
}

/*
 * after_trigger_fires -- will the statement's AFTER trigger of this event
 * (record_lead_status_insert or _update) fire, as PostgreSQL decides it
 * (enabled, for this session_replication_role)?
 */
static bool
after_trigger_fires(Relation rel, bool is_update)
{
	const char *name = is_update ? "record_lead_status_update" : "record_lead_status_insert";
	TriggerDesc *td = rel->trigdesc;

	for (int i = 0; td != NULL && i < td->numtriggers; i++)
	{
		Trigger    *t = &td->triggers[i];

		if (strcmp(t->tgname, name) != 0)
			continue;
		if (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA)
			return t->tgenabled == TRIGGER_FIRES_ON_REPLICA || t->tgenabled == TRIGGER_FIRES_ALWAYS;
		return t->tgenabled == TRIGGER_FIRES_ON_ORIGIN || t->tgenabled == TRIGGER_FIRES_ALWAYS;
	}
	return false;
}

/* crm_begin_lead_status -- trigger crm_internal.begin_lead_status() */
PG_FUNCTION_INFO_V1(crm_begin_lead_status);
Datum
crm_begin_lead_status(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "begin_lead_status", true, false);

	if (TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		(!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) && !TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errtable(trigdata->tg_relation),
				 errmsg("crm_internal.begin_lead_status() must be fired BEFORE INSERT or UPDATE FOR EACH STATEMENT")));
	if (after_trigger_fires(trigdata->tg_relation, TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)))
		open_frame(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? 1 : 0);
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
