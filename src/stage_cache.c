/*
 * stage_cache.c: the rows of crm.opportunity_stage, kept in each backend for
 * the opportunity triggers, which look a stage up for every deal they write
 * (its rules, the furthest stage, whether the stage left still exists).
 *
 * crm_internal.opportunity_stage_changed()
 *     BEFORE INSERT, UPDATE, DELETE or TRUNCATE FOR EACH STATEMENT on
 *     crm.opportunity_stage (enabled ALWAYS, so that replication's apply
 *     fires it too): takes SHARE ROW EXCLUSIVE on crm.opportunity and sends
 *     an invalidation of crm.opportunity_stage's relcache entry, which every
 *     backend (this one at its next command, the others when they next
 *     lock a relation after the commit) turns into emptying its copy.
 *
 * Why the copy is never stale where it is read: it is read only by
 * triggers on crm.opportunity, under the writer's ROW EXCLUSIVE lock on it,
 * and only in READ COMMITTED (REPEATABLE READ and SERIALIZABLE read the
 * table under the transaction's snapshot instead).  A change of the stages
 * holds SHARE ROW EXCLUSIVE on crm.opportunity from before its first row
 * change to its end, so no writer of deals runs meanwhile; its
 * invalidation is queued before its lock is released, and a writer's
 * transaction after it takes its ROW EXCLUSIVE lock anew, which reads the
 * invalidation queue first: the copy is emptied and filled again from a
 * snapshot that sees the change.  A change rolled back (also to a
 * savepoint) empties the copy of its own backend too.  In the backend that
 * changes the stages, the copy is emptied at the end of each of its
 * commands, before the cascade of a rename updates the deals.
 *
 * The table is small (a few dozen stages): it is read whole, in sort order.
 */
#include "crm.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"

static CrmQuery all_stages = {
	"SELECT s.name, s.probability, s.is_closed, s.is_won, s.sort_order"
	"  FROM crm.opportunity_stage AS s ORDER BY s.sort_order",
	0, {InvalidOid}, NULL
};

typedef struct StageTable
{
	int			n;
	CrmStage   *stages;			/* in sort order */
} StageTable;

static MemoryContext cache_context = NULL;
static StageTable *cache = NULL;	/* NULL: to be read */
static Oid	cache_relid = InvalidOid;
static bool callback_registered = false;

static void
stage_cache_invalidate(Datum arg, Oid relid)
{
	(void) arg;
	if (cache != NULL && (relid == InvalidOid || relid == cache_relid))
	{
		cache = NULL;
		MemoryContextReset(cache_context);
	}
}

/* read_stages -- the table, read as the owner of schema crm, into cxt */
static StageTable *
read_stages(MemoryContext cxt)
{
	StageTable *t;
	MemoryContext old;

	crm_query_run_as_owner(&all_stages, NULL, NULL, 0);
	old = MemoryContextSwitchTo(cxt);
	t = palloc(sizeof(StageTable));
	t->n = (int) SPI_processed;
	t->stages = palloc0(sizeof(CrmStage) * Max(t->n, 1));
	for (int i = 0; i < t->n; i++)
	{
		CrmStage   *s = &t->stages[i];
		bool		isnull;

		s->name = pstrdup(crm_result_text(i, 1));
		s->probability = datumCopy(crm_result_datum(i, 2, &isnull), false, -1);
		s->is_closed = DatumGetBool(crm_result_datum(i, 3, &isnull));
		s->is_won = DatumGetBool(crm_result_datum(i, 4, &isnull));
		s->sort_order = DatumGetInt32(crm_result_datum(i, 5, &isnull));
	}
	MemoryContextSwitchTo(old);
	return t;
}

/*
 * stage_table -- the stages: the backend's copy in READ COMMITTED, read
 * anew (into the current memory context) under a transaction snapshot.
 * The caller is connected to SPI.
 */
static StageTable *
stage_table(void)
{
	if (IsolationUsesXactSnapshot())
		return read_stages(CurrentMemoryContext);
	if (cache != NULL)
		return cache;
	if (!callback_registered)
	{
		cache_context = AllocSetContextCreate(TopMemoryContext, "crm stage cache",
											  ALLOCSET_SMALL_SIZES);
		CacheRegisterRelcacheCallback(stage_cache_invalidate, (Datum) 0);
		callback_registered = true;
	}
	cache_relid = crm_relation_oid("opportunity_stage");
	cache = read_stages(cache_context);
	return cache;
}

/*
 * crm_stage_lookup -- the stage of that name, NULL when there is none.  The
 * result is valid until the caller's next SPI call.  The caller is connected
 * to SPI and is a trigger on crm.opportunity (see above).
 */
const CrmStage *
crm_stage_lookup(const char *name)
{
	StageTable *t;

	if (name == NULL)
		return NULL;
	t = stage_table();
	for (int i = 0; i < t->n; i++)
		if (strcmp(t->stages[i].name, name) == 0)
			return &t->stages[i];
	return NULL;
}

/* crm_first_open_stage -- the first open stage in sort order, NULL if none */
const CrmStage *
crm_first_open_stage(void)
{
	StageTable *t = stage_table();

	for (int i = 0; i < t->n; i++)
		if (!t->stages[i].is_closed)
			return &t->stages[i];
	return NULL;
}

/*
 * crm_stage_exists -- is there a stage of this name?  An opportunity's old
 * stage is missing only while a rename of that stage cascades to it: the
 * opportunity did not move.  The caller is connected to SPI.
 */
bool
crm_stage_exists(const char *name)
{
	return crm_stage_lookup(name) != NULL;
}

/* crm_opportunity_stage_changed -- trigger crm_internal.opportunity_stage_changed() */
PG_FUNCTION_INFO_V1(crm_opportunity_stage_changed);
Datum
crm_opportunity_stage_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "opportunity_stage_changed", true, false);

	if (TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errtable(trigdata->tg_relation),
				 errmsg("crm_internal.opportunity_stage_changed() must be fired BEFORE ... FOR EACH STATEMENT")));
	LockRelationOid(crm_relation_oid("opportunity"), ShareRowExclusiveLock);
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	return PointerGetDatum(NULL);
}
