/*
 * stage_cache.c: the rows of crm.opportunity_stage, kept in each backend for
 * the opportunity triggers, which look a stage up for every deal they write
 * (its rules, the furthest stage, whether the stage left still exists).
 *
 * crm_internal.opportunity_stage_changed()
 *     BEFORE INSERT, UPDATE, DELETE or TRUNCATE FOR EACH STATEMENT on
 *     crm.opportunity_stage (enabled ALWAYS), and BEFORE INSERT, UPDATE or
 *     DELETE FOR EACH ROW enabled REPLICA (logical replication's apply
 *     fires row triggers only): takes SHARE ROW EXCLUSIVE on
 *     crm.opportunity, empties this backend's copy and reads the stages
 *     anew for the rest of the transaction, and sends an invalidation of
 *     crm.opportunity_stage's relcache entry, which every other backend
 *     turns into emptying its copy when it next locks a relation after the
 *     commit.
 *
 * Why the copy is never stale where it is read: it is read only by
 * triggers on crm.opportunity, under the writer's ROW EXCLUSIVE lock on it,
 * only in READ COMMITTED (REPEATABLE READ and SERIALIZABLE read the table
 * under the transaction's snapshot instead), and not in a transaction that
 * changed the stages (it reads the table for every lookup, as a statement
 * would: a writable CTE may change the stages in the statement that writes
 * the deals).  A change of the stages holds SHARE ROW EXCLUSIVE on
 * crm.opportunity from before its commit to its end, so no other
 * transaction that writes deals is open when it commits; its invalidation
 * is queued before its lock is released, and a writer's transaction after
 * it takes its ROW EXCLUSIVE lock anew, which reads the invalidation queue
 * first: the copy is emptied and filled again from a snapshot that sees the
 * change.  A lookup's result is valid until the next lookup.

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

static MemoryContext cache_context = NULL;	/* the kept copy */
static MemoryContext transient_context = NULL;	/* a copy read for one lookup */
static StageTable *cache = NULL;	/* NULL: to be read */
static Oid	cache_relid = InvalidOid;
static TransactionId changed_in = InvalidTransactionId; /* this backend changed the stages */

static void
stage_cache_reset(void)
{
	if (cache != NULL)
	{
		cache = NULL;
		MemoryContextReset(cache_context);
	}
}

static void
stage_cache_invalidate(Datum arg, Oid relid)
{
	(void) arg;
	if (relid == InvalidOid || relid == cache_relid)
		stage_cache_reset();
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
	SPI_freetuptable(SPI_tuptable);
	return t;
}

static void
stage_cache_init(void)
{
	if (cache_context != NULL)
		return;
	cache_context = AllocSetContextCreate(TopMemoryContext, "crm stage cache",
										  ALLOCSET_SMALL_SIZES);
	transient_context = AllocSetContextCreate(TopMemoryContext, "crm stage lookup",
											  ALLOCSET_SMALL_SIZES);
	CacheRegisterRelcacheCallback(stage_cache_invalidate, (Datum) 0);
}

/*
 * stage_table -- the stages: the backend's copy, or (see above) read anew
 * into memory that the next lookup frees.  The caller is connected to SPI.
 */
static StageTable *
stage_table(void)
{
	stage_cache_init();
	if (IsolationUsesXactSnapshot() ||
		(TransactionIdIsValid(changed_in) && TransactionIdEquals(changed_in, GetTopTransactionIdIfAny())))
	{
		MemoryContextReset(transient_context);
		return read_stages(transient_context);
	}
	if (cache != NULL)
		return cache;
	cache_relid = crm_relation_oid("opportunity_stage");
	cache = read_stages(cache_context);
	return cache;
}

/*
 * crm_stage_lookup -- the stage of that name, NULL when there is none.  The
 * result is valid until the next lookup.  The caller is connected
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
 * crm_stage_exists -- is there a stage of this name?  Before 0.7 (no
 * rename notes, stage_rename.c) the opportunity triggers take a change from
 * a stage that is gone for the cascade of its rename.  The caller is
 * connected to SPI.
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
	TriggerEvent event = trigdata->tg_event;

	LockRelationOid(crm_relation_oid("opportunity"), ShareRowExclusiveLock);
	stage_cache_init();
	stage_cache_reset();
	changed_in = GetTopTransactionId();
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	if (!TRIGGER_FIRED_FOR_ROW(event))
		return PointerGetDatum(NULL);
	return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(event) ? trigdata->tg_newtuple : trigdata->tg_trigtuple);
}
