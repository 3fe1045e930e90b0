/*
 * aggregate_stripes.c: adds a group's change to this backend's stripe row of
 * an aggregate table, in place, on the table and buffer primitives.
 *
 * Why it exists: the plain way to add the changes is one statement per
 * aggregate, INSERT ... SELECT FROM unnest(arrays) ... ON CONFLICT DO UPDATE,
 * kept prepared (aggregates.c still runs it, see below).  Set up, executed
 * and torn down after every statement that changes opportunities, it makes
 * a single-row UPDATE of an opportunity cost half as much again: with the
 * aggregates maintained that way, bench/instructions.sh (callgrind, 100,000
 * opportunities, single-row updates of stage and amount) predicts 0.66 of
 * the throughput without them (0.69 when first measured).  Done here,
 * through the primary key and table_tuple_update(), a HOT update per
 * changed group found where this backend last wrote it, it predicts 0.914:
 * 70,000 instructions per update instead of 380,000.  That difference is
 * what the code below, which works under the executor, is paid with.
 *
 * What it does: crm_stripes_add() finds the group's row of the stripe
 * CRM_BACKEND_ID (at the hint this backend kept, or through the primary key,
 * under a snapshot of its own) and replaces it by a new version with the
 * change added, or inserts it; indexes and CHECK constraints are maintained
 * as for any UPDATE or INSERT.  It never waits for a row: where another
 * transaction holds the row of the id, or is inserting it -- a transaction
 * of this backend id that was prepared (PREPARE TRANSACTION), whose locks no
 * deadlock check sees, or a compaction folding the row -- it writes to
 * another stripe of its own (the id plus a multiple of AGG_STRIPE_SPAN, see
 * agg_target_add).  Concurrent backends have different ids, so they never
 * write the same row.
 *
 * What it does not do: when the aggregate table has triggers or stored
 * generated columns of its own (none are installed; a DBA may add some),
 * which only a statement fires and computes the way a user expects, it only
 * chooses the stripe (*written false), and the caller adds the change with
 * its statement.  A table without primary key is not opened at all
 * (crm_stripes_open() returns NULL).
 *
 * Rights: the writes are the extension's own, made below the executor's
 * permission checks; users cannot write aggregates (they have no privilege
 * on the tables), and nothing here runs user-supplied SQL.
 *
 * Concurrency: the table is opened with RowExclusiveLock, as an UPDATE
 * would; rows are read under a registered snapshot and replaced by
 * table_tuple_update(), which reports a version another transaction
 * replaced or deleted meanwhile (a compaction or rebuild): then a new
 * snapshot is taken and the row is looked up again.
 */
#include "aggregate_stripes.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/multixact.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/twophase.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "common/hashfn.h"
#include "common/int.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "storage/bufmgr.h"
#include "storage/procarray.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"

/* What the writer remembers of an aggregate table between statements; each checked before use. */
typedef struct AggStripeCache
{
	int			target_hint[AGG_MAX_KEYS + 2 + AGG_MAX_SUMS];	/* keys, stripe, count, sums */
	Oid			relid;			/* the aggregate table, if still crm.<table> */
	Oid			nspid;			/* schema crm */
	Oid			pkey;			/* its primary key, which the rest is of */
	int			nkeys;
	AttrNumber	key_att[INDEX_MAX_KEYS];	/* table column of each key column */
	Oid			collation[INDEX_MAX_KEYS];
	FmgrInfo	eq[INDEX_MAX_KEYS];	/* equality of each key column */
	struct HTAB *hints;			/* AggHint by group, see there */
	MemoryContext hints_cxt;
	uint64		hints_made;		/* times the hint table was (re)made */
} AggStripeCache;

static AggStripeCache *
agg_stripe_cache(AggStripeTable *spec)
{
	if (spec->cache == NULL)
		spec->cache = MemoryContextAllocZero(TopMemoryContext, sizeof(AggStripeCache));
	return spec->cache;
}

static uint32
agg_group_key_hash(const void *key, Size keysize)
{
	const AggGroupKey *k = (const AggGroupKey *) key;

	(void) keysize;
	return DatumGetUInt32(hash_any((const unsigned char *) k->data, (int) k->len));
}

static int
agg_group_key_match(const void *key1, const void *key2, Size keysize)
{
	const AggGroupKey *a = (const AggGroupKey *) key1;
	const AggGroupKey *b = (const AggGroupKey *) key2;

	(void) keysize;
	if (a->len != b->len)
		return 1;
	return memcmp(a->data, b->data, a->len);
}

/* a hash table in cxt of entries whose first member is an AggGroupKey */
HTAB *
crm_group_table(const char *name, Size entrysize, long nelem, MemoryContext cxt)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(AggGroupKey);
	ctl.entrysize = entrysize;
	ctl.hash = agg_group_key_hash;
	ctl.match = agg_group_key_match;
	ctl.hcxt = cxt;
	return hash_create(name, nelem, &ctl, HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
}

/*
 * An aggregate table opened for changing this backend's stripe rows in
 * place.  The stripe row of a group is found under a snapshot taken when the
 * first row is needed: at the place this backend last wrote it (a hint, see
 * AggHint), checked to still hold the group's key, or else through the
 * primary key.  The change is added to it by table_tuple_update(), which
 * waits for a transaction that is changing the same version and reports
 * whether one replaced or deleted it meanwhile (a compaction or rebuild):
 * then a new snapshot is taken and the row is looked up again through the
 * primary key.  Indexes and CHECK constraints are maintained as for any
 * UPDATE (NOT NULL holds by construction: the new version has a value
 * wherever the old one had, which met the constraint).  This costs a
 * fraction of a statement, which has to be set up, planned (from the cache)
 * and torn down each time.  Not used when the table has triggers or stored
 * generated columns of its own (none are installed; a DBA may add some),
 * which only a statement fires and computes the way a user expects.
 *
 * A group the stripe has no row for yet is inserted the same way.  While
 * prepared transactions are enabled, a prepared transaction of this backend
 * id may be inserting the same key (the insert's unique check would wait for
 * it) or hold the row: agg_target_add then writes to another of the
 * backend's stripes.  (Stripe 0, which compaction and rebuild write, is no
 * backend's.)  A table with triggers or stored generated columns of its own
 * (in_place false) is only looked up here, to choose the stripes that the SQL
 * path's INSERT ... ON CONFLICT then writes.
 */

/*
 * A backend's stripes: its id, then its id plus multiples of AGG_STRIPE_SPAN
 * (above every backend id), as many as fit in the integer column.
 */
#define AGG_STRIPE_SPAN (MAX_BACKENDS + 1)
#define AGG_STRIPES ((int) ((PG_INT32_MAX - MAX_BACKENDS) / AGG_STRIPE_SPAN) + 1)
struct AggStripeWriter
{
	AggStripeTable *spec;
	Relation	rel;
	Relation	index;			/* the primary key; NULL until a lookup needs it */
	AggStripeCache *cache;
	Datum		keyval[INDEX_MAX_KEYS];	/* the group's value of each key column */
	bool		checks;			/* the table has CHECK constraints */
	EState	   *estate;			/* NULL until an insert or check needs it */
	ResultRelInfo *rri;
	bool		indices_open;	/* ExecOpenIndices done (for inserts, non-HOT updates) */
	Snapshot	snap;			/* registered; NULL until the first lookup */
	IndexScanDesc scan;			/* on index under snap; NULL until needed */
	SnapshotData dirty;			/* for dirty_scan */
	IndexScanDesc dirty_scan;	/* on index under dirty; NULL until needed */
	bool		remember;		/* hints are remembered (see crm_stripes_many) */
	bool		saw_entry;		/* the last lookup met an index entry of the key */
	bool		heap;			/* a heap table (see agg_target_fetch_heap) */
	IndexFetchTableData *fetch; /* fetches at hints of other tables; NULL until needed */
	TupleTableSlot *found;		/* the stripe row */
	uint16		found_infomask;	/* its heap tuple header's, read under the buffer lock */
	TransactionId found_xmax;	/* likewise */
	TupleTableSlot *next;		/* its new version */
	int			key_att[AGG_MAX_KEYS];
	int			stripe_att;
	int			count_att;
	int			sum_att[AGG_MAX_SUMS];
	bool		in_place;		/* changes written here, not by SQL */
	bool		can_insert;		/* new groups inserted here too, not by SQL */
};

static void agg_target_insert(AggStripeWriter *t, AggStripeTable *spec, const AggGroup *group, int32 stripe,
							  bool remember);

/*
 * The aggregate table, opened with RowExclusiveLock: by the OID it had last
 * time when that relation still is crm.<table>, else looked up by name.
 */
static Relation
agg_target_table(AggStripeTable *spec, AggStripeCache *cache)
{
	Relation	rel = NULL;

	if (OidIsValid(cache->relid))
	{
		rel = try_table_open(cache->relid, RowExclusiveLock);
		if (rel != NULL && (RelationGetNamespace(rel) != cache->nspid ||
							strcmp(RelationGetRelationName(rel), spec->table) != 0))
		{
			table_close(rel, RowExclusiveLock);
			rel = NULL;
		}
	}
	if (rel == NULL)
	{
		cache->nspid = crm_internal_namespace();
		cache->relid = crm_internal_relation_oid(spec->table);
		rel = table_open(cache->relid, RowExclusiveLock);
	}
	return rel;
}

/*
 * What the cache knows of the primary key pkey: its columns and their
 * equality functions (for index lookups and for checking a hint).
 */
static void
agg_cache_primary_key(AggStripeCache *cache, AggStripeTable *spec, Relation index)
{
	cache->pkey = InvalidOid;
	cache->nkeys = IndexRelationGetNumberOfKeyAttributes(index);
	for (int i = 0; i < cache->nkeys; i++)
	{
		Oid			optype = index->rd_opcintype[i];
		Oid			op = get_opfamily_member(index->rd_opfamily[i], optype, optype,
											 BTEqualStrategyNumber);

		if (!OidIsValid(op))
			elog(ERROR, "crm: no equality operator for key %d of crm_internal.%s", i + 1, spec->table);
		cache->key_att[i] = index->rd_index->indkey.values[i];
		cache->collation[i] = index->rd_indcollation[i];
		fmgr_info_cxt(get_opcode(op), &cache->eq[i], TopMemoryContext);
	}
	cache->pkey = RelationGetRelid(index);
}

static bool
agg_target_open(AggStripeWriter *t, AggStripeTable *spec)
{
	AggStripeCache *cache = agg_stripe_cache(spec);
	TupleDesc	desc;
	TupleConstr *constr;
	Oid			pkey;

	t->spec = spec;
	t->rel = agg_target_table(spec, cache);
	pkey = crm_primary_key_index(t->rel);
	constr = RelationGetDescr(t->rel)->constr;
	if (!OidIsValid(pkey))
	{
		table_close(t->rel, NoLock);
		return false;
	}
	t->in_place = t->rel->trigdesc == NULL && !(constr != NULL && constr->has_generated_stored);
	t->cache = cache;
	t->index = NULL;
	if (cache->pkey != pkey)
	{
		t->index = index_open(pkey, RowExclusiveLock);
		agg_cache_primary_key(cache, spec, t->index);
	}
	desc = RelationGetDescr(t->rel);
	for (int i = 0; i < spec->nkeys; i++)
		t->key_att[i] = crm_attnum_hint(desc, spec->key_column[i], &cache->target_hint[i]);
	t->stripe_att = crm_attnum_hint(desc, "stripe", &cache->target_hint[AGG_MAX_KEYS]);
	t->count_att = crm_attnum_hint(desc, spec->count_column, &cache->target_hint[AGG_MAX_KEYS + 1]);
	for (int i = 0; i < spec->nsums; i++)
		t->sum_att[i] = crm_attnum_hint(desc, spec->sum_column[i],
										&cache->target_hint[AGG_MAX_KEYS + 2 + i]);

	/*
	 * The lookups fill a key value for the stripe and each group column: a
	 * primary key a DBA changed to other columns is treated as none.
	 */
	{
		bool		usable = cache->nkeys == spec->nkeys + 1;

		for (int i = 0; i < cache->nkeys && usable; i++)
		{
			bool		ours = cache->key_att[i] == t->stripe_att;

			for (int k = 0; k < spec->nkeys; k++)
				ours = ours || cache->key_att[i] == t->key_att[k];
			usable = ours;
		}
		if (!usable)
		{
			if (t->index != NULL)
				index_close(t->index, NoLock);
			table_close(t->rel, NoLock);
			return false;
		}
	}

	t->checks = constr != NULL && constr->num_check > 0;
	t->estate = NULL;
	t->rri = NULL;
	t->indices_open = false;
	t->heap = t->rel->rd_tableam == GetHeapamTableAmRoutine();
	t->snap = NULL;
	t->scan = NULL;
	t->dirty_scan = NULL;
	t->remember = true;
	t->fetch = NULL;

	/* every column is ours (or dropped), so an insert sets them all */
	t->can_insert = t->in_place;
	for (int i = 0; i < desc->natts && t->can_insert; i++)
	{
		int			att = i + 1;
		bool		ours = TupleDescAttr(desc, i)->attisdropped ||
			att == t->stripe_att || att == t->count_att;

		for (int k = 0; k < spec->nkeys; k++)
			ours = ours || att == t->key_att[k];
		for (int k = 0; k < spec->nsums; k++)
			ours = ours || att == t->sum_att[k];
		t->can_insert = ours;
	}

	t->next = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);
	t->found = table_slot_create(t->rel, NULL);
	CheckCmdReplicaIdentity(t->rel, CMD_UPDATE);

	/*
	 * What this transaction wrote to the table before, also earlier in this
	 * command, must be visible to the snapshot taken for the lookups.
	 */
	CommandCounterIncrement();
	return true;
}

/* the executor state that inserts and constraint checks run in */
static void
agg_target_executor(AggStripeWriter *t)
{
	if (t->estate != NULL)
		return;
	t->estate = CreateExecutorState();
	t->rri = crm_result_relation(t->estate, t->rel);
}

/* the table's indexes, opened for inserting entries into them */
static void
agg_target_open_indices(AggStripeWriter *t)
{
	if (!t->indices_open)
	{
		agg_target_executor(t);
		ExecOpenIndices(t->rri, false);
		t->indices_open = true;
	}
}

/* forget the snapshot and the lookups made under it */
static void
agg_target_end_lookups(AggStripeWriter *t)
{
	ExecClearTuple(t->found);
	if (t->scan != NULL)
		index_endscan(t->scan);
	t->scan = NULL;
	if (t->snap != NULL)
		UnregisterSnapshot(t->snap);
	t->snap = NULL;
}

static void
agg_target_close(AggStripeWriter *t)
{
	agg_target_end_lookups(t);
	if (t->dirty_scan != NULL)
		index_endscan(t->dirty_scan);
	if (t->fetch != NULL)
		table_index_fetch_end(t->fetch);
	ExecDropSingleTupleTableSlot(t->next);
	ExecDropSingleTupleTableSlot(t->found);
	if (t->indices_open)
		ExecCloseIndices(t->rri);
	if (t->index != NULL)
		index_close(t->index, NoLock);
	if (t->estate != NULL)
		FreeExecutorState(t->estate);
	table_close(t->rel, NoLock);
}

/* the new version of the stripe row in t->found: the group's change added */
static void
agg_target_next(AggStripeWriter *t, AggStripeTable *spec, const AggGroup *group)
{
	int			natts = t->next->tts_tupleDescriptor->natts;
	int64		count;

	slot_getallattrs(t->found);
	ExecClearTuple(t->next);
	memcpy(t->next->tts_values, t->found->tts_values, natts * sizeof(Datum));
	memcpy(t->next->tts_isnull, t->found->tts_isnull, natts * sizeof(bool));
	if (t->found->tts_isnull[t->count_att - 1] ||
		pg_add_s64_overflow(DatumGetInt64(t->found->tts_values[t->count_att - 1]),
							group->count, &count))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("crm %s aggregate count out of range", spec->aggregate),
				 errhint("Rebuild the aggregates with crm.rebuild_aggregates().")));
	t->next->tts_values[t->count_att - 1] = Int64GetDatum(count);
	for (int i = 0; i < spec->nsums; i++)
	{
		int			att = t->sum_att[i] - 1;
		const AggSum *sum = &group->sums[i];
		int64		stored;
		int64		total;

		if (t->next->tts_isnull[att])	/* NULL stays NULL, as NULL + x in SQL */
			continue;
		if (sum->numeric == (Datum) 0 &&
			crm_numeric_cents(t->found->tts_values[att], &stored) &&
			!pg_add_s64_overflow(stored, sum->cents, &total))
			t->next->tts_values[att] = crm_cents_numeric(total);
		else
			t->next->tts_values[att] = DirectFunctionCall2(numeric_add, t->found->tts_values[att],
														   agg_sum_numeric(sum));
	}
	ExecStoreVirtualTuple(t->next);
}

/*
 * Replace the stripe row in t->found, visible to t->snap, by its new version;
 * false when another transaction replaced or deleted it since the snapshot
 * was taken.  *hot: the new version is in the same HOT chain (reached from
 * the same index entry).
 */
static bool
agg_target_update(AggStripeWriter *t, AggStripeTable *spec, const AggGroup *group, bool *hot)
{
	TM_FailureData tmfd;
	LockTupleMode lockmode;
	CrmUpdateIndexes update_indexes;
	TM_Result	result;

	agg_target_next(t, spec, group);
	if (t->checks)
	{
		agg_target_executor(t);
		ExecConstraints(t->rri, t->next, t->estate);
	}
	result = table_tuple_update(t->rel, &t->found->tts_tid, t->next, GetCurrentCommandId(true),
								t->snap, InvalidSnapshot, true, &tmfd, &lockmode, &update_indexes);
	if (result == TM_Updated || result == TM_Deleted)
		return false;
	if (result != TM_Ok)
		elog(ERROR, "crm: unexpected result %d updating a row of crm_internal.%s", (int) result, spec->table);
	*hot = crm_update_is_hot(update_indexes);
	if (crm_update_needs_indexes(update_indexes))
	{
		agg_target_open_indices(t);
		list_free(crm_insert_index_tuples(t->rri, t->next, t->estate, update_indexes));
	}
	return true;
}

/*
 * Hints: where this backend last wrote the stripe row of a group, per
 * aggregate, so that the next change of the group goes straight to it
 * instead of through the primary key.  A hint is the TID of the row's index
 * entry (the root of its HOT chain, which HOT updates keep) and the shared
 * buffer the block was in.  It is only a guess: the block is read only if
 * that buffer still holds it (so it was not truncated away: a truncation
 * needs a lock that conflicts with ours, and drops the buffers of the blocks
 * it removes), and the version found there that the snapshot sees is used
 * only if it is this stripe's row of the group, compared column by column
 * with the primary key's equality functions.  Anything else (the row was
 * compacted away, its slot reused, the block evicted, the table rewritten)
 * falls back to the primary key.  Hints live in the backend for its
 * lifetime, at most AGG_MAX_HINTS per aggregate.
 */
#define AGG_MAX_HINTS 65536

/* a page visited through a hint is pruned when its free space is below this */
#define AGG_PRUNE_BELOW (BLCKSZ / 4)

typedef struct AggHint
{
	AggGroupKey key;			/* must be first */
	ItemPointerData tid;
	Buffer		buffer;			/* InvalidBuffer: not known */
} AggHint;

static AggHint *
agg_hint_find(AggStripeCache *cache, const AggGroupKey *key)
{
	if (cache->hints == NULL)
		return NULL;
	return (AggHint *) hash_search(cache->hints, key, HASH_FIND, NULL);
}

static void
agg_hint_remember(AggStripeCache *cache, const AggGroupKey *key, ItemPointer tid, Buffer buffer)
{
	AggHint    *hint;
	AggGroupKey copy;
	bool		found;

	if (cache->hints == NULL || hash_get_num_entries(cache->hints) >= AGG_MAX_HINTS)
	{
		cache->hints = NULL;	/* until it is made again: an error may come first */
		if (cache->hints_cxt == NULL)
			cache->hints_cxt = AllocSetContextCreate(TopMemoryContext, "crm aggregate hints",
													 ALLOCSET_DEFAULT_SIZES);
		else
			MemoryContextReset(cache->hints_cxt);	/* the table and its keys */
		cache->hints_made++;
		cache->hints = crm_group_table("crm aggregate hints", sizeof(AggHint), 1024,
									   cache->hints_cxt);
	}
	/* the key's bytes copied first, so that an entry never points at the caller's */
	copy.len = key->len;
	copy.data = MemoryContextAlloc(cache->hints_cxt, key->len);
	memcpy(copy.data, key->data, key->len);
	hint = (AggHint *) hash_search(cache->hints, &copy, HASH_ENTER, &found);
	if (found)
		pfree(copy.data);
	hint->tid = *tid;
	hint->buffer = buffer;
}

/*
 * The group's row is not where the hint says.  The entry stays (so that its
 * key bytes are reused when the group is remembered again, rather than left
 * behind in the hint context) but no longer leads anywhere.
 */
static void
agg_hint_forget(AggHint *hint)
{
	if (hint != NULL)
		hint->buffer = InvalidBuffer;
}

/* the buffer a stripe row found by a lookup is in */
static Buffer
agg_found_buffer(TupleTableSlot *found)
{
	return TTS_IS_BUFFERTUPLE(found) ? ((BufferHeapTupleTableSlot *) found)->buffer : InvalidBuffer;
}

static void
agg_target_snapshot(AggStripeWriter *t)
{
	if (t->snap == NULL)
		t->snap = RegisterSnapshot(GetLatestSnapshot());
}

/*
 * The version of the HOT chain rooted at root that the snapshot sees, into
 * t->found; buffer is the chain's block, pinned by the caller, and unpinned
 * here.  As heapam's index fetch, except for when the page is pruned: only
 * once its free space is below AGG_PRUNE_BELOW, not at every visit (with
 * fill factor 20, heap_page_prune_opt() alone would prune whenever a dead
 * version is there, that is after every update of one of the page's rows).
 * The chains walked meanwhile stay short: a page holds few rows.  *all_dead:
 * no transaction can see any version of the chain.
 */
static bool
agg_target_fetch_heap(AggStripeWriter *t, ItemPointer root, Buffer buffer, bool *all_dead)
{
	ItemPointerData tid = *root;	/* the search moves it to the version it finds */
	HeapTuple	tuple = &((BufferHeapTupleTableSlot *) t->found)->base.tupdata;
	bool		found;

	Assert(TTS_IS_BUFFERTUPLE(t->found));
	ExecClearTuple(t->found);	/* the tuple is the slot's own header */
	if (PageGetHeapFreeSpace(BufferGetPage(buffer)) < AGG_PRUNE_BELOW)
		heap_page_prune_opt(t->rel, buffer);
	LockBuffer(buffer, BUFFER_LOCK_SHARE);
	found = heap_hot_search_buffer(&tid, t->rel, buffer, t->snap, tuple, all_dead, true);
	if (found)
	{
		/* who holds the version, read while no one can change it (see agg_target_held) */
		t->found_infomask = tuple->t_data->t_infomask;
		t->found_xmax = HeapTupleHeaderGetRawXmax(tuple->t_data);
		ExecStoreBufferHeapTuple(tuple, t->found, buffer);	/* the slot pins it */
	}
	LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
	ReleaseBuffer(buffer);
	return found;
}

/*
 * Look for the group's stripe row at the hint; true when the version the
 * snapshot sees there is the row (in t->found).
 */
static bool
agg_target_fetch_hint(AggStripeWriter *t, AggHint *hint)
{
	AggStripeCache *cache = t->cache;
	bool		all_dead = false;

	if (!BufferIsValid(hint->buffer) ||
		!ReadRecentBuffer(CRM_REL_FILE(t->rel), MAIN_FORKNUM, ItemPointerGetBlockNumber(&hint->tid),
						  hint->buffer))
		return false;
	agg_target_snapshot(t);
	if (t->heap)
	{
		if (!agg_target_fetch_heap(t, &hint->tid, hint->buffer, &all_dead))
			return false;
	}
	else
	{
		bool		call_again = false;
		ItemPointerData tid = hint->tid;

		ReleaseBuffer(hint->buffer);	/* the block exists; the fetch pins it again */
		if (t->fetch == NULL)
			t->fetch = table_index_fetch_begin(t->rel);
		if (!table_index_fetch_tuple(t->fetch, &tid, t->snap, t->found, &call_again, &all_dead))
			return false;
	}
	for (int i = 0; i < cache->nkeys; i++)
	{
		bool		isnull;
		Datum		d = slot_getattr(t->found, cache->key_att[i], &isnull);

		if (isnull || !DatumGetBool(FunctionCall2Coll(&cache->eq[i], cache->collation[i],
													  d, t->keyval[i])))
		{
			ExecClearTuple(t->found);
			return false;
		}
	}
	return true;
}

/*
 * Look the group's stripe row up through the primary key; true when found
 * (in t->found), with the TID of its index entry in *root.
 */
static bool
agg_target_lookup(AggStripeWriter *t, ItemPointer root)
{
	AggStripeCache *cache = t->cache;
	ScanKeyData skey[INDEX_MAX_KEYS];

	agg_target_snapshot(t);
	if (t->index == NULL)
		t->index = index_open(cache->pkey, RowExclusiveLock);
	if (t->scan == NULL)
		t->scan = crm_index_beginscan(t->rel, t->index, t->snap, cache->nkeys);
	for (int i = 0; i < cache->nkeys; i++)
	{
		ScanKeyEntryInitializeWithInfo(&skey[i], 0, i + 1, BTEqualStrategyNumber, InvalidOid,
									   cache->collation[i], &cache->eq[i], t->keyval[i]);
	}
	index_rescan(t->scan, skey, cache->nkeys, NULL, 0);
	t->saw_entry = false;

	/*
	 * index_getnext_slot(), keeping the index entry's TID (the fetch moves
	 * xs_heaptid to the version it finds), and, for heap tables, with the
	 * fetch above.  An MVCC snapshot sees at most one version of a chain, so
	 * a fetch is never to be repeated.
	 */
	for (;;)
	{
		ItemPointer tid = index_getnext_tid(t->scan, ForwardScanDirection);
		bool		all_dead = false;

		if (tid == NULL)
			return false;
		t->saw_entry = true;
		*root = *tid;
		if (!t->heap)
		{
			if (index_fetch_heap(t->scan, t->found))
				return true;
			continue;
		}
		if (agg_target_fetch_heap(t, root, ReadBuffer(t->rel, ItemPointerGetBlockNumber(root)),
								  &all_dead))
			return true;
		/* as index_fetch_heap(): let the index mark an entry nobody needs */
		if (!t->scan->xactStartedInRecovery)
			t->scan->kill_prior_tuple = all_dead;
	}
}

/*
 * Whether the stripe row in t->found is held by another transaction, running
 * or prepared: locked, or replaced or deleted by a transaction that has not
 * ended.  For heap tables, from the tuple header as it was read under the
 * buffer lock (agg_target_fetch_heap): a version no one holds has an invalid
 * xmax, so the common case costs a test of one bit.  For other table access
 * methods, by trying to lock the row without waiting.  AGG_ROW_CHANGED: a
 * transaction that ended replaced or deleted it since the snapshot.
 */
typedef enum AggRowState
{
	AGG_ROW_FREE,
	AGG_ROW_HELD,
	AGG_ROW_CHANGED
} AggRowState;

static AggRowState
agg_target_held(AggStripeWriter *t)
{
	TM_FailureData tmfd;
	TM_Result	result;

	if (t->heap)
	{
		/* set by agg_target_fetch_heap, the heap's only way to a found row */
		uint16		mask = t->found_infomask;
		TransactionId xmax = t->found_xmax;

		if ((mask & HEAP_XMAX_INVALID) || !TransactionIdIsValid(xmax))
			return AGG_ROW_FREE;
		if (mask & HEAP_XMAX_IS_MULTI)	/* counts this transaction as running too */
			return MultiXactIdIsRunning(xmax, HEAP_XMAX_IS_LOCKED_ONLY(mask))
				? AGG_ROW_HELD : AGG_ROW_FREE;
		if (TransactionIdIsCurrentTransactionId(xmax) || !TransactionIdIsInProgress(xmax))
			return AGG_ROW_FREE;	/* ours, or ended: the update tells which */
		return AGG_ROW_HELD;
	}
	result = table_tuple_lock(t->rel, &t->found->tts_tid, t->snap, t->found,
							  GetCurrentCommandId(true), LockTupleNoKeyExclusive, LockWaitSkip,
							  0, &tmfd);
	if (result == TM_Ok)
		return AGG_ROW_FREE;
	ExecClearTuple(t->found);
	return result == TM_WouldBlock ? AGG_ROW_HELD : AGG_ROW_CHANGED;
}

/*
 * Whether the primary key has an entry for the key in t->keyval that leads
 * to a row version no snapshot of ours saw: one another transaction, running
 * or prepared, is inserting or deleting (an insert of the key would wait for
 * it in the unique check), or one committed since the lookup's snapshot.
 * Only a transaction that wrote this backend's stripes can have made one: a
 * prepared transaction of this session or of an earlier backend with the same
 * id.  A dirty snapshot sees them all.  Asked only when the lookup that
 * did not find the row met an index entry of the key: without one, no
 * version of the key exists (a version's entry is made before its
 * transaction can commit or prepare, and nothing else writes this
 * backend's stripes meanwhile).  The scan is kept for the next
 * group (a dirty snapshot is not registered; each fetch reads the state of
 * the row at that moment).
 */
static bool
agg_target_other_row(AggStripeWriter *t)
{
	AggStripeCache *cache = t->cache;
	ScanKeyData skey[INDEX_MAX_KEYS];
	bool		other;

	if (t->index == NULL)
		t->index = index_open(cache->pkey, RowExclusiveLock);
	for (int i = 0; i < cache->nkeys; i++)
		ScanKeyEntryInitializeWithInfo(&skey[i], 0, i + 1, BTEqualStrategyNumber, InvalidOid,
									   cache->collation[i], &cache->eq[i], t->keyval[i]);
	if (t->dirty_scan == NULL)
	{
		InitDirtySnapshot(t->dirty);
		t->dirty_scan = crm_index_beginscan(t->rel, t->index, &t->dirty, cache->nkeys);
	}
	index_rescan(t->dirty_scan, skey, cache->nkeys, NULL, 0);
	other = index_getnext_slot(t->dirty_scan, ForwardScanDirection, t->found);
	ExecClearTuple(t->found);
	return other;
}

/*
 * Add a group's change to one of this backend's stripe rows of it, or choose
 * the stripe the SQL path adds it to (when !t->in_place, or the row is new
 * and !t->can_insert); returns the stripe, *written: added here.
 *
 * The stripe is the backend's id unless another transaction holds the
 * group's row of it (agg_target_held) or is inserting or deleting one
 * (agg_target_other_row): a prepared transaction of this session or of an
 * earlier backend with the same id, whose locks no deadlock check sees, or a
 * compaction folding the row.  Then it is the first of id + n x
 * AGG_STRIPE_SPAN (n = 1, 2, ...) that no other transaction holds: never a
 * backend's id, so no other backend writes it, and only held while this
 * backend id's own transactions are prepared, so the next free one is near.
 * Nothing waits for a row lock, and the change lands in exactly one row,
 * written in this transaction.
 */
static int32
agg_target_add(AggStripeWriter *t, AggStripeTable *spec, const AggGroup *group, bool *written)
{
	AggStripeCache *cache = t->cache;
	AggHint    *entry = agg_hint_find(cache, &group->key);
	uint64		made = cache->hints_made;	/* entry is valid while this holds */
	int			stripe_key = 0;

	*written = false;
	for (int i = 0; i < cache->nkeys; i++)
	{
		int			att = cache->key_att[i];

		if (att == t->stripe_att)
			stripe_key = i;
		else
			for (int k = 0; k < spec->nkeys; k++)
				if (att == t->key_att[k])
					t->keyval[i] = group->keys[k];
	}
	for (int n = 0; n < AGG_STRIPES; n++)
	{
		int32		stripe = CRM_BACKEND_ID + n * AGG_STRIPE_SPAN;
		AggHint    *hint = n == 0 ? entry : NULL;	/* where to look first; NULL: the primary key */

		t->keyval[stripe_key] = Int32GetDatum(stripe);
		for (;;)
		{
			ItemPointerData root;
			Buffer		buffer;
			bool		hot;
			AggRowState state;

			if (hint != NULL && agg_target_fetch_hint(t, hint))
				root = hint->tid;
			else if (!agg_target_lookup(t, &root))
			{
				if (n == 0)
					agg_hint_forget(cache->hints_made == made ? entry : agg_hint_find(cache, &group->key));
				if (max_prepared_xacts > 0 && t->saw_entry && agg_target_other_row(t))
					break;		/* next stripe */
				if (t->can_insert)
				{
					agg_target_insert(t, spec, group, stripe, n == 0 && t->remember);
					*written = true;
				}
				return stripe;
			}
			state = agg_target_held(t);
			if (state == AGG_ROW_HELD)
			{
				ExecClearTuple(t->found);
				break;			/* next stripe */
			}
			if (state == AGG_ROW_FREE && !t->in_place)
			{
				ExecClearTuple(t->found);
				return stripe;
			}
			buffer = agg_found_buffer(t->found);
			if (state == AGG_ROW_FREE && agg_target_update(t, spec, group, &hot))
			{
				if (!hot)
				{
					root = t->next->tts_tid;
					buffer = InvalidBuffer;
				}

				/*
				 * The group's entry, without a second hash lookup, unless the
				 * table was remade meanwhile (user code a CHECK constraint
				 * ran may have written opportunities, and so hints, in
				 * between).  Hints lead to the backend's first stripe only.
				 */
				if (n > 0)
					;
				else if (entry != NULL && cache->hints_made == made)
				{
					entry->tid = root;
					entry->buffer = buffer;
				}
				else if (t->remember)
					agg_hint_remember(cache, &group->key, &root, buffer);
				ExecClearTuple(t->found);
				*written = true;
				return stripe;
			}
			/* changed meanwhile: look again, under a new snapshot */
			agg_target_end_lookups(t);
			hint = NULL;
			CHECK_FOR_INTERRUPTS();
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("every stripe of backend %d in crm_internal.%s is held by another transaction",
					CRM_BACKEND_ID, spec->table),
			 errdetail("%d stripes are held by prepared transactions of this backend id.", AGG_STRIPES),
			 errhint("Commit or roll back prepared transactions (pg_prepared_xacts).")));
	return 0;					/* not reached */
}

/*
 * Insert the stripe row of a group the stripe has none for yet; remember
 * where, when it is the backend's first stripe.
 */
static void
agg_target_insert(AggStripeWriter *t, AggStripeTable *spec, const AggGroup *group, int32 stripe, bool remember)
{
	TupleTableSlot *s = t->next;
	int			natts = s->tts_tupleDescriptor->natts;

	ExecClearTuple(s);
	for (int i = 0; i < natts; i++)
	{
		s->tts_values[i] = (Datum) 0;
		s->tts_isnull[i] = true;
	}
	for (int i = 0; i < spec->nkeys; i++)
	{
		s->tts_values[t->key_att[i] - 1] = group->keys[i];
		s->tts_isnull[t->key_att[i] - 1] = false;
	}
	s->tts_values[t->stripe_att - 1] = Int32GetDatum(stripe);
	s->tts_isnull[t->stripe_att - 1] = false;
	s->tts_values[t->count_att - 1] = Int64GetDatum(group->count);
	s->tts_isnull[t->count_att - 1] = false;
	for (int i = 0; i < spec->nsums; i++)
	{
		s->tts_values[t->sum_att[i] - 1] = agg_sum_numeric(&group->sums[i]);
		s->tts_isnull[t->sum_att[i] - 1] = false;
	}
	ExecStoreVirtualTuple(s);
	agg_target_open_indices(t);
	ExecSimpleRelationInsert(t->rri, t->estate, s);
	if (remember)
		agg_hint_remember(t->cache, &group->key, &s->tts_tid, InvalidBuffer);
}

/*
 * The aggregate table opened to add changes to this backend's stripe rows;
 * NULL when it has no primary key of the stripe and group columns (then
 * the caller's statement adds them, to the stripe CRM_BACKEND_ID).
 */
AggStripeWriter *
crm_stripes_open(AggStripeTable *table)
{
	AggStripeWriter *t = palloc(sizeof(AggStripeWriter));

	if (agg_target_open(t, table))
		return t;
	pfree(t);
	return NULL;
}

/*
 * The statement changes ngroups groups of the table.  Above the hints'
 * capacity (AGG_MAX_HINTS), the hint table would be made again and again
 * while they are written, and would keep only the last ones: no hint is
 * remembered (those the table has still lead to their rows).
 */
void
crm_stripes_many(AggStripeWriter *t, long ngroups)
{
	t->remember = ngroups <= AGG_MAX_HINTS;
}

/*
 * Add a group's change to one of this backend's stripe rows (*written), or
 * only choose the stripe the caller's statement is to add it to (!*written);
 * returns the stripe.
 */
int32
crm_stripes_add(AggStripeWriter *t, const AggGroup *group, bool *written)
{
	return agg_target_add(t, t->spec, group, written);
}

void
crm_stripes_close(AggStripeWriter *t)
{
	agg_target_close(t);
	pfree(t);
}
