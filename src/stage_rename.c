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
 */
#include "crm.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/rel.h"

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
