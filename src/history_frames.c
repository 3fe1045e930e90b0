/*
 * history_frames.c: the histories' entries in the order the changes were
 * made, also for a statement run inside another statement on the same table.
 *
 * The lead status history (history.c) and the opportunity history
 * (opportunity_history.c) are written per statement, when it ends, from its
 * transition tables.  A statement may run inside another one that changes
 * the same table -- crm.convert_lead() in the RETURNING list of an UPDATE
 * of the lead, a function in an UPDATE's expressions, a trigger -- and the
 * inner one ends first, although the outer one changed its rows first
 * (PostgreSQL refuses the outer statement's change of a row that a
 * statement inside it changed already).  So each INSERT, UPDATE or DELETE
 * statement on such a table opens a frame (a BEFORE STATEMENT trigger;
 * PostgreSQL fires it, and the AFTER trigger, once per statement, table and
 * event) and its AFTER trigger closes it: if a frame of an enclosing
 * statement is open then, the statement's entries, and those handed on to
 * it, are handed on to that frame instead of being written.  The outermost
 * statement writes its own entries, then those of the statements run inside
 * it, in the order they ended.
 *
 * A MERGE or an INSERT ... ON CONFLICT DO UPDATE fires the BEFORE triggers
 * of several events one after the other in one command: one frame serves
 * them all (else its AFTER UPDATE trigger would hand its entries to its own
 * INSERT's frame).
 *
 * Frames and held entries live in this backend: the abort of a
 * subtransaction drops those opened and handed on inside it (its changes
 * are undone).  A frame is opened only when the AFTER trigger that closes it
 * will fire (crm_after_trigger_fires(): enabled for the session's
 * replication role), so every frame is closed; an entry still held at
 * commit would be a bug, and fails the commit rather than be lost.
 */
#include "crm.h"

#include "access/xact.h"
#include "commands/trigger.h"
#include "nodes/pg_list.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

struct CrmFrame
{
	bool		open[CRM_FRAME_EVENTS]; /* AFTER trigger of the event to fire */
	CommandId	cid;			/* the command it was opened in */
	uint64		opened_at;		/* the set's events then */
	SubTransactionId subxact;	/* where it was opened */
	List	   *held;			/* CrmHeld *, in order */
};

static MemoryContext frames_context = NULL;
static CrmFrames *sets[4];
static int	nsets = 0;

/* at commit no entry may be held; at the end, every frame goes */
static void
frames_xact_callback(XactEvent event, void *arg pg_attribute_unused())
{
	ListCell   *lc;

	for (int s = 0; s < nsets; s++)
	{
		if (event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PRE_PREPARE)
		{
			foreach(lc, sets[s]->frames)
				if (((CrmFrame *) lfirst(lc))->held != NIL)
					elog(ERROR, "crm: history entries of crm.%s are held at commit (a statement opened a frame that its AFTER trigger did not close)",
						 sets[s]->table);
		}
		else if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE ||
				 event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
			sets[s]->frames = NIL;
	}
	if (frames_context != NULL && event != XACT_EVENT_PRE_COMMIT && event != XACT_EVENT_PRE_PREPARE &&
		event != XACT_EVENT_PARALLEL_PRE_COMMIT)
		MemoryContextReset(frames_context);
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
	for (int s = 0; s < nsets; s++)
	{
		foreach(lc, sets[s]->frames)
			if (((CrmFrame *) lfirst(lc))->subxact >= mySubid)
				sets[s]->frames = foreach_delete_current(sets[s]->frames, lc);
		foreach(lc, sets[s]->frames)
		{
			CrmFrame   *f = lfirst(lc);
			ListCell   *ec;

			foreach(ec, f->held)
				if (((CrmHeld *) lfirst(ec))->subxact >= mySubid)
					f->held = foreach_delete_current(f->held, ec);
		}
	}
}

/* crm_frame_open -- a statement of this event on the set's table begins */
void
crm_frame_open(CrmFrames *set, int event)
{
	MemoryContext old;
	CrmFrame   *f = set->frames == NIL ? NULL : llast(set->frames);
	bool		other_open = false;

	for (int e = 0; f != NULL && e < CRM_FRAME_EVENTS; e++)
		other_open = other_open || (e != event && f->open[e]);
	if (other_open && !f->open[event] && f->opened_at == set->events &&
		f->cid == GetCurrentCommandId(false) && f->subxact == GetCurrentSubTransactionId())
	{
		f->open[event] = true;	/* another event of the same statement */
		return;
	}
	if (frames_context == NULL)
	{
		frames_context = AllocSetContextCreate(TopMemoryContext, "crm history frames",
											   ALLOCSET_SMALL_SIZES);
		RegisterXactCallback(frames_xact_callback, NULL);
		RegisterSubXactCallback(frames_subxact_callback, NULL);
	}
	if (!set->registered)
	{
		if (nsets == lengthof(sets))
			elog(ERROR, "crm: too many history frame sets");
		sets[nsets++] = set;
		set->registered = true;
	}
	old = MemoryContextSwitchTo(frames_context);
	f = palloc0(sizeof(CrmFrame));
	f->open[event] = true;
	f->cid = GetCurrentCommandId(false);
	f->opened_at = ++set->events;
	f->subxact = GetCurrentSubTransactionId();
	set->frames = lappend(set->frames, f);
	MemoryContextSwitchTo(old);
}

/*
 * crm_frame_close -- the statement's AFTER trigger of an event fires: the
 * innermost frame open for it closes for it.  *enclosing: the frame below,
 * which the statement's entries go to (NULL: write them).  Returns the
 * frame once closed for every event, taken off (NULL before, and when there
 * is none: the BEFORE trigger did not fire).
 */
CrmFrame *
crm_frame_close(CrmFrames *set, int event, CrmFrame **enclosing)
{
	*enclosing = set->frames == NIL ? NULL : llast(set->frames);
	for (int i = list_length(set->frames) - 1; i >= 0; i--)
	{
		CrmFrame   *f = list_nth(set->frames, i);

		if (!f->open[event])
			continue;
		f->open[event] = false;
		set->events++;
		*enclosing = i > 0 ? list_nth(set->frames, i - 1) : NULL;
		for (int e = 0; e < CRM_FRAME_EVENTS; e++)
			if (f->open[e])
				return NULL;
		set->frames = list_delete_nth_cell(set->frames, i);
		return f;
	}
	return NULL;
}

/* crm_frame_hold -- an entry (values of those types) handed on to the enclosing frame */
void
crm_frame_hold(CrmFrame *enclosing, int nvalues, const Oid *types, const Datum *values, const bool *isnull)
{
	MemoryContext old = MemoryContextSwitchTo(frames_context);
	CrmHeld    *e = palloc(sizeof(CrmHeld));

	e->subxact = GetCurrentSubTransactionId();
	e->values = palloc(sizeof(Datum) * nvalues);
	e->isnull = palloc(sizeof(bool) * nvalues);
	for (int i = 0; i < nvalues; i++)
	{
		int16		typlen;
		bool		typbyval;

		e->isnull[i] = isnull[i];
		e->values[i] = (Datum) 0;
		if (isnull[i])
			continue;
		get_typlenbyval(types[i], &typlen, &typbyval);
		e->values[i] = datumCopy(values[i], typbyval, typlen);
	}
	enclosing->held = lappend(enclosing->held, e);
	MemoryContextSwitchTo(old);
}

/*
 * crm_frame_release -- the entries a closed frame holds (CrmHeld *): handed
 * on to the enclosing frame (NIL returned), or returned for the caller to
 * write after the statement's own
 */
List *
crm_frame_release(CrmFrame *f, CrmFrame *enclosing)
{
	MemoryContext old;

	if (f == NULL || f->held == NIL || enclosing == NULL)
		return f == NULL ? NIL : f->held;
	old = MemoryContextSwitchTo(frames_context);
	enclosing->held = list_concat(enclosing->held, f->held);
	MemoryContextSwitchTo(old);
	return NIL;
}

/*
 * crm_after_trigger_fires -- will the trigger of this name on rel fire, as
 * PostgreSQL decides it (enabled, for this session_replication_role)?
 */
bool
crm_after_trigger_fires(Relation rel, const char *tgname)
{
	TriggerDesc *td = rel->trigdesc;

	for (int i = 0; td != NULL && i < td->numtriggers; i++)
	{
		Trigger    *t = &td->triggers[i];

		if (strcmp(t->tgname, tgname) != 0)
			continue;
		if (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA)
			return t->tgenabled == TRIGGER_FIRES_ON_REPLICA || t->tgenabled == TRIGGER_FIRES_ALWAYS;
		return t->tgenabled == TRIGGER_FIRES_ON_ORIGIN || t->tgenabled == TRIGGER_FIRES_ALWAYS;
	}
	return false;
}
