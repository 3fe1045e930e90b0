/*
 * stage_rename.c: stage renames recorded by the database, so that the
 * reports read from the history follow a stage through its renames.
 *
 * crm_internal.record_stage_rename()
 *     AFTER UPDATE OF name (row, WHEN the name changed) on
 *     crm.opportunity_stage: appends the rename to
 *     crm.opportunity_stage_rename, with last_entry, the highest id the
 *     opportunity history's identity has handed out (the entries with an id
 *     up to it were recorded before the rename, see below), and moves the
 *     stage's kept passages (crm_internal.stage_velocity_aggregate, which
 *     src/stage_velocity.c folds by the name a stage has when a deal leaves
 *     it) from the old name to the new one; the stage's earlier renames
 *     get current_name, the name it has now, too.  It fires after the foreign
 *     keys' cascade to crm.opportunity (RI triggers sort first), whose
 *     history and velocity triggers ignore a rename.
 *
 * The move adds, in one statement, per owner, minus the passages and
 * seconds kept under the old name and plus the same under the new name, to
 * a stripe of the rename's own: minus the rename's id, which no writer or
 * compaction uses (they write backend ids and 0).  So it waits for no
 * stripe row and no compaction: the sums are read under the latest snapshot
 * (also in REPEATABLE READ), and a compaction, which only moves rows
 * between stripes, leaves them unchanged whether or not it has committed.
 * Compaction later folds the rename's rows and drops the old name's groups,
 * which then add up to nothing.
 *
 * Why the sums are complete and last_entry separates the entries: every
 * writer that records the old name holds a lock the rename waits for before
 * this trigger runs -- a deal moving into the stage holds a KEY SHARE lock
 * on the stage's row (its foreign key check), which the rename's update of
 * the key waits for; a deal moving out of it (a passage) holds the deal's
 * row lock, which the cascade waits for.  So their entries and passages are
 * committed (or this transaction's) when the trigger reads, and their ids
 * are at most last_entry; a stage created later with the old name gets
 * entries only after the rename commits (its insert waits for the rename's
 * uncommitted key), with higher ids.  That needs ids handed out in order:
 * the history's identity keeps CACHE 1.
 *
 * Rights: the rows are written as the extension owner (users may not write
 * either table); renamed_by is the role that renamed.
 *
 * crm_internal.note_stage_rename()
 *     BEFORE UPDATE OF name (row, WHEN the name changed) on
 *     crm.opportunity_stage: notes the rename (old name, new name) in this
 *     backend for the rest of the transaction, before the foreign keys'
 *     cascade carries it to the deals.
 *
 * How the opportunity triggers tell the cascade of a rename from a move.
 * The old name being gone does not tell: one statement may pass names on
 * (B to C and A to B: the old name B is still there), and a statement may
 * move a deal out of a stage that it deletes.  A deal's update is the
 * cascade of a rename when it runs inside a foreign key's action (the only
 * action that changes crm.opportunity.stage or furthest_stage is the
 * ON UPDATE CASCADE of a stage's name; PostgreSQL runs it with
 * InNoForceRLSOperation() true, which no statement of a user's sets) and
 * changes the stage from the old to the new name of a rename noted in this
 * transaction: crm_stage_rename_cascades(), asked by the lifecycle trigger
 * for every stage change of a deal.  It keeps stage_changed_at then, and a
 * move sets it to the transaction's start: the statement triggers that
 * read the transition tables (history, velocity) see a move in a changed
 * stage_changed_at, a rename in one kept from before this transaction, and
 * ask crm_stage_moved() only for a deal that moved earlier in this
 * transaction: the lifecycle trigger noted such a deal's rename (by id,
 * with its names) and forgets the note at the deal's next stage change.
 * The notes live in this backend until the transaction ends; a note left
 * by a rolled-back subtransaction names a change the deal no longer has,
 * and only the deal's next stage change (which forgets it) could match it.
 */
#include "crm.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

static CrmQuery record_rename = {
	"WITH earlier AS ("
	"  UPDATE crm.opportunity_stage_rename SET current_name = $2"
	"   WHERE current_name OPERATOR(pg_catalog.=) $1),"
	" logged AS ("
	"  INSERT INTO crm.opportunity_stage_rename (old_name, new_name, renamed_by, last_entry, current_name)"
	"  VALUES ($1, $2, $3, COALESCE(pg_catalog.pg_sequence_last_value("
	"      pg_catalog.pg_get_serial_sequence('crm.opportunity_history', 'id')::pg_catalog.regclass), 0), $2)"
	"  RETURNING id),"
	" kept AS ("
	"  SELECT a.owner, pg_catalog.sum(a.passages) AS passages, pg_catalog.sum(a.seconds) AS seconds"
	"    FROM crm_internal.stage_velocity_aggregate AS a"
	"   WHERE a.stage OPERATOR(pg_catalog.=) $1"
	"   GROUP BY a.owner"
	"  HAVING pg_catalog.sum(a.passages) OPERATOR(pg_catalog.<>) 0"
	"      OR pg_catalog.sum(a.seconds) OPERATOR(pg_catalog.<>) 0)"
	" INSERT INTO crm_internal.stage_velocity_aggregate (stage, owner, stripe, passages, seconds)"
	" SELECT m.stage, k.owner, (OPERATOR(pg_catalog.-) l.id)::integer,"
	"        CASE WHEN m.added THEN k.passages ELSE OPERATOR(pg_catalog.-) k.passages END,"
	"        CASE WHEN m.added THEN k.seconds ELSE OPERATOR(pg_catalog.-) k.seconds END"
	"   FROM logged AS l CROSS JOIN kept AS k"
	"  CROSS JOIN (VALUES ($1, false), ($2, true)) AS m (stage, added)",
	3, {TEXTOID, TEXTOID, REGROLEOID}, NULL
};

/* crm_record_stage_rename -- trigger crm_internal.record_stage_rename() */
PG_FUNCTION_INFO_V1(crm_record_stage_rename);
Datum
crm_record_stage_rename(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "record_stage_rename", false, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	char	   *old_name;
	char	   *new_name;
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};

	if (!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errtable(trigdata->tg_relation),
				 errmsg("crm_internal.record_stage_rename() must be fired AFTER UPDATE FOR EACH ROW")));
	old_name = crm_column_text(trigdata->tg_trigtuple, tupdesc, "name");
	new_name = crm_column_text(trigdata->tg_newtuple, tupdesc, "name");
	if (old_name == NULL || new_name == NULL || strcmp(old_name, new_name) == 0)
		return PointerGetDatum(NULL);

	values[0] = CStringGetTextDatum(old_name);
	values[1] = CStringGetTextDatum(new_name);
	values[2] = ObjectIdGetDatum(crm_acting_role());
	crm_spi_connect();
	crm_query_run_latest_as_owner(&record_rename, values, nulls, 0);
	crm_spi_finish();
	return PointerGetDatum(NULL);
}

/* the renames this transaction made, and the renamed deals that moved in it too */
typedef struct RenameNote
{
	int64		deal;			/* hash key */
	char	   *old_name;
	char	   *new_name;
} RenameNote;

static MemoryContext renames_context = NULL;
static TransactionId renames_xid = InvalidTransactionId;
static List *renames = NIL;		/* of char *: old name, new name, ... */
static HTAB *rename_notes = NULL;	/* RenameNote by deal */

/* renames_current -- the notes of this transaction; false when there are none */
static bool
renames_current(bool create)
{
	TransactionId xid = GetTopTransactionIdIfAny();

	if (renames_context != NULL && TransactionIdIsValid(xid) && TransactionIdEquals(renames_xid, xid))
		return true;
	if (!create && renames_context == NULL)
		return false;
	if (renames_context == NULL)
		renames_context = AllocSetContextCreate(TopMemoryContext, "crm stage renames",
												ALLOCSET_SMALL_SIZES);
	MemoryContextReset(renames_context);
	renames = NIL;
	rename_notes = NULL;
	renames_xid = InvalidTransactionId;
	if (!create)
		return false;
	renames_xid = GetTopTransactionId();
	return true;
}

/*
 * crm_stage_rename_cascades -- is this change of a deal's stage (or furthest
 * stage) from old_name to new_name the cascade of a rename of this
 * transaction (see above)?  For the lifecycle row trigger, which passes the
 * deal's id and whether it moved earlier in this transaction when it asks
 * about its stage (deal 0 for the furthest stage).
 */
bool
crm_stage_rename_cascades(int64 deal, const char *old_name, const char *new_name, bool moved_before)
{
	bool		cascade = false;
	ListCell   *lc;

	if (!renames_current(false))
		return false;
	if (InNoForceRLSOperation())
	{
		for (lc = list_head(renames); lc != NULL && !cascade; lc = lnext(renames, lnext(renames, lc)))
			cascade = strcmp((char *) lfirst(lc), old_name) == 0 &&
				strcmp((char *) lfirst(lnext(renames, lc)), new_name) == 0;
	}
	if (deal == 0)
		return cascade;
	if (cascade && moved_before)
	{
		MemoryContext old = MemoryContextSwitchTo(renames_context);
		RenameNote *note;

		if (rename_notes == NULL)
		{
			HASHCTL		ctl;

			memset(&ctl, 0, sizeof(ctl));
			ctl.keysize = sizeof(int64);
			ctl.entrysize = sizeof(RenameNote);
			ctl.hcxt = renames_context;
			rename_notes = hash_create("crm renamed deals", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		}
		note = hash_search(rename_notes, &deal, HASH_ENTER, NULL);
		note->old_name = pstrdup(old_name);
		note->new_name = pstrdup(new_name);
		MemoryContextSwitchTo(old);
	}
	else if (rename_notes != NULL)
		(void) hash_search(rename_notes, &deal, HASH_REMOVE, NULL);
	return cascade;
}

/*
 * crm_stage_moved -- did a deal whose stage a statement changed from
 * old_name to new_name move (rather than follow a rename), given its
 * stage_changed_at before and after?  For the statement triggers.
 */
bool
crm_stage_moved(int64 deal, const char *old_name, const char *new_name,
				TimestampTz entered_before, TimestampTz entered_after)
{
	RenameNote *note;

	if (entered_before != entered_after)
		return true;
	if (entered_before != GetCurrentTransactionStartTimestamp())
		return false;
	if (!renames_current(false) || rename_notes == NULL)
		return true;
	note = hash_search(rename_notes, &deal, HASH_FIND, NULL);
	return note == NULL || strcmp(note->old_name, old_name) != 0 || strcmp(note->new_name, new_name) != 0;
}

/* crm_note_stage_rename -- trigger crm_internal.note_stage_rename() */
PG_FUNCTION_INFO_V1(crm_note_stage_rename);
Datum
crm_note_stage_rename(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "note_stage_rename", true, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	char	   *old_name;
	char	   *new_name;
	MemoryContext old;

	if (!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errtable(trigdata->tg_relation),
				 errmsg("crm_internal.note_stage_rename() must be fired BEFORE UPDATE FOR EACH ROW")));
	old_name = crm_column_text(trigdata->tg_trigtuple, tupdesc, "name");
	new_name = crm_column_text(trigdata->tg_newtuple, tupdesc, "name");
	if (old_name != NULL && new_name != NULL && strcmp(old_name, new_name) != 0)
	{
		(void) renames_current(true);
		old = MemoryContextSwitchTo(renames_context);
		renames = lappend(renames, pstrdup(old_name));
		renames = lappend(renames, pstrdup(new_name));
		MemoryContextSwitchTo(old);
	}
	return PointerGetDatum(trigdata->tg_newtuple);
}
