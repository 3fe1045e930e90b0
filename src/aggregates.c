/*
 * aggregates.c: pipeline, account and campaign aggregates without hot rows.
 *
 * crm.aggregates_maintain() is an AFTER statement trigger on crm.opportunity
 * and crm.lead.  It reads the statement's transition tables directly (no
 * SQL), adds every new row's contribution and subtracts every old row's, per
 * group of each aggregate the table feeds (see AggFold); then it adds the
 * change of every group whose change is not zero to the row of the
 * aggregate table whose stripe is this backend's id (MyBackendId): in place,
 * through the primary key and table_tuple_update() (AggTarget below), or,
 * when the aggregate table has triggers or stored generated columns of its
 * own, with one kept INSERT ... SELECT FROM unnest(arrays) ... ON CONFLICT
 * DO UPDATE per aggregate.
 *
 * Why it is exact: every aggregate is a sum (count, amount, weighted amount),
 * so the contributions of a statement add up to the change of the totals,
 * whatever the statement did; the additions are ordinary row writes in the
 * writer's transaction and commit, roll back and roll back to a savepoint
 * with the change they describe.  TRUNCATE empties the aggregates the table
 * feeds.
 *
 * Why there are no hot rows: concurrent backends have different ids, so they
 * never update the same aggregate row and never wait for one another; a
 * backend's transactions run one after the other, so its own rows are
 * contended only by transactions that outlive it: a transaction it prepared
 * (PREPARE TRANSACTION), which keeps its rows locked until COMMIT or
 * ROLLBACK PREPARED also after the backend is gone, and a compaction folding
 * the row.  No deadlock check sees a wait for a prepared transaction, so a
 * writer never waits for a stripe row: where another transaction holds the
 * row of its id, or is inserting it, it writes to another stripe of its own
 * (its id plus a multiple of AGG_STRIPE_SPAN, see agg_target_add).  Readers
 * sum the stripes of a group, whichever they are.
 *
 * Why it is cheap: an UPDATE that changes no aggregated column, or changes
 * them in ways that cancel out, computes zero changes and writes nothing; the
 * others cost a HOT update per changed group, found where this backend last
 * wrote it (AggHint) or else through the primary key, without a statement
 * to set up.  Amounts are added as whole cents (cents.c) and made numeric
 * once per written row; what is not whole cents or does not fit in 64 bits
 * is added as numeric, with the same result.
 *
 * Users cannot write aggregates: the in-place writes are the extension's own
 * (no privilege applies to them), and the SQL path runs as the extension
 * owner.
 *
 * crm.compact_aggregates() (SQL) takes the lock of
 * crm_aggregates_compaction_lock() at the end of this file, which no
 * maintenance command waits for, instead of a table lock that REINDEX
 * CONCURRENTLY or VACUUM would conflict with.
 */
#include "crm.h"

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
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "common/int.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "storage/backendid.h"
#include "storage/bufmgr.h"
#include "storage/lock.h"
#include "storage/procarray.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datum.h"
#include "utils/datetime.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#define AGG_MAX_KEYS 3
#define AGG_MAX_SUMS 2

/* How a key column of the source row becomes a key of the aggregate. */
typedef enum AggKeyKind
{
	AGG_KEY_BYVAL,				/* stored as is: ids, regrole, enum */
	AGG_KEY_TEXT,				/* a text value */
	AGG_KEY_ENUM,				/* an enum, hashed by oid, written as its label */
	AGG_KEY_MONTH				/* a date truncated to its month; NULL: infinity */
} AggKeyKind;

/* What a sum adds up. */
typedef enum AggSumKind
{
	AGG_SUM_COLUMN,				/* a numeric column */
	AGG_SUM_WEIGHTED			/* round(amount x coalesce(probability, 0) / 100, 2) */
} AggSumKind;

typedef struct AggSpec
{
	const char *name;
	int			nkeys;
	const char *key_column[AGG_MAX_KEYS];
	AggKeyKind	key_kind[AGG_MAX_KEYS];
	bool		skip_null_first_key;	/* rows without the first key don't count */
	int			nsums;
	AggSumKind	sum_kind[AGG_MAX_SUMS];
	const char *amount_column;
	const char *probability_column;
	const char *table;			/* the aggregate table in schema crm */
	const char *target_key[AGG_MAX_KEYS];	/* its key columns */
	const char *count_column;
	const char *sum_column[AGG_MAX_SUMS];
	CrmQuery	add;			/* arrays: stripes, keys, counts, sums */
	Oid			key_type[AGG_MAX_KEYS];	/* element types of the key arrays */
	CrmQuery	empty;			/* on TRUNCATE of the source */
} AggSpec;

/* What an aggregate remembers between calls; each checked before use. */
typedef struct AggCache
{
	int			source_hint[AGG_MAX_KEYS + 2];	/* keys, amount, probability */
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
} AggCache;

/* One ON CONFLICT clause for every aggregate table. */
#define AGG_ON_CONFLICT(keys, sets) \
	" ON CONFLICT (" keys ", stripe) DO UPDATE SET " sets
#define AGG_ADD(col) col " = a." col " OPERATOR(pg_catalog.+) EXCLUDED." col

static AggSpec pipeline_spec = {
	"pipeline", 3, {"stage", "owner", "close_date"},
	{AGG_KEY_TEXT, AGG_KEY_BYVAL, AGG_KEY_MONTH}, false,
	2, {AGG_SUM_COLUMN, AGG_SUM_WEIGHTED}, "amount", "probability",
	"pipeline_aggregate", {"stage", "owner", "close_month"}, "opportunities", {"amount", "weighted_amount"},
	{"INSERT INTO crm.pipeline_aggregate AS a"
	 " (stage, owner, close_month, stripe, opportunities, amount, weighted_amount)"
	 " SELECT u.k1, u.k2, u.k3, u.st, u.n, u.s1, u.s2"
	 "   FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3),"
	 "                   pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6),"
	 "                   pg_catalog.unnest($7))"
	 "        AS u (st, k1, k2, k3, n, s1, s2)"
	 AGG_ON_CONFLICT("stage, owner, close_month",
					 AGG_ADD("opportunities") ", " AGG_ADD("amount") ", " AGG_ADD("weighted_amount")),
	 7, {INT4ARRAYOID, TEXTARRAYOID, REGROLEARRAYOID, DATEARRAYOID, INT8ARRAYOID, NUMERICARRAYOID, NUMERICARRAYOID}, NULL},
	{TEXTOID, REGROLEOID, DATEOID},
	{"DELETE FROM crm.pipeline_aggregate", 0, {InvalidOid}, NULL}
};

static AggSpec account_spec = {
	"account", 3, {"account_id", "owner", "stage"},
	{AGG_KEY_BYVAL, AGG_KEY_BYVAL, AGG_KEY_TEXT}, true,
	1, {AGG_SUM_COLUMN}, "amount", NULL,
	"account_aggregate", {"account_id", "owner", "stage"}, "opportunities", {"amount"},
	{"INSERT INTO crm.account_aggregate AS a"
	 " (account_id, owner, stage, stripe, opportunities, amount)"
	 " SELECT u.k1, u.k2, u.k3, u.st, u.n, u.s1"
	 "   FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3),"
	 "                   pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6))"
	 "        AS u (st, k1, k2, k3, n, s1)"
	 AGG_ON_CONFLICT("account_id, owner, stage", AGG_ADD("opportunities") ", " AGG_ADD("amount")),
	 6, {INT4ARRAYOID, INT8ARRAYOID, REGROLEARRAYOID, TEXTARRAYOID, INT8ARRAYOID, NUMERICARRAYOID}, NULL},
	{INT8OID, REGROLEOID, TEXTOID},
	{"DELETE FROM crm.account_aggregate", 0, {InvalidOid}, NULL}
};

static AggSpec campaign_opportunity_spec = {
	"campaign_opportunity", 3, {"campaign_id", "owner", "stage"},
	{AGG_KEY_BYVAL, AGG_KEY_BYVAL, AGG_KEY_TEXT}, true,
	1, {AGG_SUM_COLUMN}, "amount", NULL,
	"campaign_opportunity_aggregate", {"campaign_id", "owner", "stage"}, "opportunities", {"amount"},
	{"INSERT INTO crm.campaign_opportunity_aggregate AS a"
	 " (campaign_id, owner, stage, stripe, opportunities, amount)"
	 " SELECT u.k1, u.k2, u.k3, u.st, u.n, u.s1"
	 "   FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3),"
	 "                   pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6))"
	 "        AS u (st, k1, k2, k3, n, s1)"
	 AGG_ON_CONFLICT("campaign_id, owner, stage", AGG_ADD("opportunities") ", " AGG_ADD("amount")),
	 6, {INT4ARRAYOID, INT8ARRAYOID, REGROLEARRAYOID, TEXTARRAYOID, INT8ARRAYOID, NUMERICARRAYOID}, NULL},
	{INT8OID, REGROLEOID, TEXTOID},
	{"DELETE FROM crm.campaign_opportunity_aggregate", 0, {InvalidOid}, NULL}
};

static AggSpec campaign_lead_spec = {
	"campaign_lead", 3, {"campaign_id", "owner", "status"},
	{AGG_KEY_BYVAL, AGG_KEY_BYVAL, AGG_KEY_ENUM}, true,
	0, {AGG_SUM_COLUMN}, NULL, NULL,
	"campaign_lead_aggregate", {"campaign_id", "owner", "status"}, "leads", {NULL},
	{"INSERT INTO crm.campaign_lead_aggregate AS a"
	 " (campaign_id, owner, status, stripe, leads)"
	 " SELECT u.k1, u.k2, u.k3::crm.lead_status, u.st, u.n"
	 "   FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3),"
	 "                   pg_catalog.unnest($4), pg_catalog.unnest($5))"
	 "        AS u (st, k1, k2, k3, n)"
	 AGG_ON_CONFLICT("campaign_id, owner, status", AGG_ADD("leads")),
	 5, {INT4ARRAYOID, INT8ARRAYOID, REGROLEARRAYOID, TEXTARRAYOID, INT8ARRAYOID}, NULL},
	{INT8OID, REGROLEOID, TEXTOID},
	{"DELETE FROM crm.campaign_lead_aggregate", 0, {InvalidOid}, NULL}
};

#define AGG_MAX_SPECS 3			/* aggregates one table feeds */
static AggSpec *const opportunity_specs[AGG_MAX_SPECS + 1] = {&pipeline_spec, &account_spec, &campaign_opportunity_spec, NULL};
static AggSpec *const lead_specs[AGG_MAX_SPECS + 1] = {&campaign_lead_spec, NULL};

static AggCache agg_caches[4];

static AggCache *
agg_cache(const AggSpec *spec)
{
	return &agg_caches[spec == &pipeline_spec ? 0 : spec == &account_spec ? 1 :
					   spec == &campaign_opportunity_spec ? 2 : 3];
}

/*
 * A group of one aggregate while a statement is folded: its key (serialized
 * for hashing, and as datums for the addition) and the change of its count
 * and sums.
 */
typedef struct AggGroupKey
{
	uint32		len;
	char	   *data;
} AggGroupKey;

/*
 * A sum of a group: in whole cents (see cents.c) while every value added to
 * it was whole cents and the total fits, as a numeric from then on.
 */
typedef struct AggSum
{
	int64		cents;
	Datum		numeric;		/* (Datum) 0 while the sum is in cents */
} AggSum;

typedef struct AggGroup
{
	AggGroupKey key;			/* must be first */
	Datum		keys[AGG_MAX_KEYS];
	int64		count;
	AggSum		sums[AGG_MAX_SUMS];
} AggGroup;

static uint32
agg_key_hash(const void *key, Size keysize)
{
	const AggGroupKey *k = (const AggGroupKey *) key;

	(void) keysize;
	return DatumGetUInt32(hash_any((const unsigned char *) k->data, (int) k->len));
}

static int
agg_key_match(const void *key1, const void *key2, Size keysize)
{
	const AggGroupKey *a = (const AggGroupKey *) key1;
	const AggGroupKey *b = (const AggGroupKey *) key2;

	(void) keysize;
	if (a->len != b->len)
		return 1;
	return memcmp(a->data, b->data, a->len);
}

/* date_trunc('month', d)::date, with infinities kept and NULL as infinity */
static Datum
agg_month_of(Datum d, bool isnull)
{
	DateADT		date;
	int			year,
				month,
				day;

	if (isnull)
		return DateADTGetDatum(DATEVAL_NOEND);
	date = DatumGetDateADT(d);
	if (DATE_NOT_FINITE(date))
		return d;
	j2date(date + POSTGRES_EPOCH_JDATE, &year, &month, &day);
	return DateADTGetDatum(date2j(year, month, 1) - POSTGRES_EPOCH_JDATE);
}

/*
 * The weighted amount of one row, exactly as the SQL of crm.pipeline_actual,
 * in numeric (crm_weighted_cents() is the way for most amounts).
 */
static Datum
agg_weighted(Datum amount, Datum probability, bool probability_null)
{
	Datum		p = probability_null ? NumericGetDatum(int64_to_numeric(0)) : probability;
	Datum		x = DirectFunctionCall2(numeric_mul, amount, p);

	x = DirectFunctionCall2(numeric_div, x, NumericGetDatum(int64_to_numeric(100)));
	return DirectFunctionCall2(numeric_round, x, Int32GetDatum(2));
}

/*
 * Per-statement state of one aggregate.  Its groups are in an array, looked
 * up by comparing keys while there are few (a statement that changes one
 * row has one or two per aggregate), through a hash table on the keys once
 * there are more than AGG_FOLD_LINEAR.
 */
#define AGG_FOLD_LINEAR 8

typedef struct AggGroupIndexEntry
{
	AggGroupKey key;			/* must be first */
	int			pos;			/* in AggFold.groups */
} AggGroupIndexEntry;

typedef struct AggFold
{
	AggSpec    *spec;
	AggGroup   *groups;
	int			ngroups;
	int			capacity;
	HTAB	   *index;			/* NULL while ngroups <= AGG_FOLD_LINEAR */
	int			key_att[AGG_MAX_KEYS];
	Oid			key_output[AGG_MAX_KEYS];	/* output functions of enum keys */
	int			amount_att;
	int			probability_att;
	StringInfoData buf;
	MemoryContext keep;			/* groups, keys, sums: the statement's */
	MemoryContext row;			/* one row's temporaries, reset per row */
} AggFold;

static void
agg_fold_init(AggFold *fold, AggSpec *spec, TupleDesc tupdesc, MemoryContext row)
{
	fold->spec = spec;
	for (int i = 0; i < spec->nkeys; i++)
	{
		fold->key_att[i] = crm_attnum_hint(tupdesc, spec->key_column[i], &agg_cache(spec)->source_hint[i]);
		fold->key_output[i] = InvalidOid;
		if (spec->key_kind[i] == AGG_KEY_ENUM)
		{
			bool		varlena;

			getTypeOutputInfo(TupleDescAttr(tupdesc, fold->key_att[i] - 1)->atttypid,
							  &fold->key_output[i], &varlena);
		}
	}
	fold->amount_att = spec->amount_column
		? crm_attnum_hint(tupdesc, spec->amount_column, &agg_cache(spec)->source_hint[AGG_MAX_KEYS]) : 0;
	fold->probability_att = spec->probability_column
		? crm_attnum_hint(tupdesc, spec->probability_column, &agg_cache(spec)->source_hint[AGG_MAX_KEYS + 1]) : 0;
	fold->capacity = 4;
	fold->ngroups = 0;
	fold->groups = palloc(sizeof(AggGroup) * fold->capacity);
	fold->index = NULL;
	initStringInfo(&fold->buf);
	fold->keep = CurrentMemoryContext;
	fold->row = row;
}

static AggGroup *
agg_fold_find(AggFold *fold, const AggGroupKey *key)
{
	if (fold->index != NULL)
	{
		AggGroupIndexEntry *e = hash_search(fold->index, key, HASH_FIND, NULL);

		return e != NULL ? &fold->groups[e->pos] : NULL;
	}
	for (int i = 0; i < fold->ngroups; i++)
		if (agg_key_match(&fold->groups[i].key, key, sizeof(AggGroupKey)) == 0)
			return &fold->groups[i];
	return NULL;
}

static void
agg_fold_index(AggFold *fold, int pos)
{
	AggGroupIndexEntry *e = hash_search(fold->index, &fold->groups[pos].key, HASH_ENTER, NULL);

	e->pos = pos;
}

/* a new group for key (whose bytes are the fold's), uninitialized */
static AggGroup *
agg_fold_new(AggFold *fold, const AggGroupKey *key)
{
	int			pos = fold->ngroups;

	if (pos == fold->capacity)
	{
		fold->capacity *= 2;
		fold->groups = repalloc(fold->groups, sizeof(AggGroup) * fold->capacity);
	}
	fold->groups[pos].key = *key;
	fold->ngroups++;
	if (fold->index != NULL)
		agg_fold_index(fold, pos);
	else if (fold->ngroups > AGG_FOLD_LINEAR)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(AggGroupKey);
		ctl.entrysize = sizeof(AggGroupIndexEntry);
		ctl.hash = agg_key_hash;
		ctl.match = agg_key_match;
		ctl.hcxt = fold->keep;
		fold->index = hash_create("crm aggregate groups", 64, &ctl,
								  HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
		for (int i = 0; i < fold->ngroups; i++)
			agg_fold_index(fold, i);
	}
	return &fold->groups[pos];
}

/* a sum as a numeric */
static Datum
agg_sum_numeric(const AggSum *sum)
{
	return sum->numeric != (Datum) 0 ? sum->numeric : crm_cents_numeric(sum->cents);
}

/* Add (sign +1) or subtract (sign -1) one row's contribution. */
static void
agg_fold_row(AggFold *fold, TupleTableSlot *slot, int sign)
{
	AggSpec    *spec = fold->spec;
	Datum		keys[AGG_MAX_KEYS];
	AggGroupKey key;
	AggGroup   *group;
	Datum		amount;
	bool		amount_null;
	bool		amount_exact;
	int64		amount_cents = 0;

	resetStringInfo(&fold->buf);
	for (int i = 0; i < spec->nkeys; i++)
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, fold->key_att[i], &isnull);

		if (isnull && i == 0 && spec->skip_null_first_key)
			return;
		if (spec->key_kind[i] == AGG_KEY_MONTH)
		{
			d = agg_month_of(d, isnull);
			isnull = false;
		}
		if (isnull)				/* NOT NULL columns; refuse rather than guess */
			elog(ERROR, "crm: %s aggregate key %s is null", spec->name, spec->key_column[i]);
		if (spec->key_kind[i] == AGG_KEY_TEXT)
		{
			text	   *t = DatumGetTextPP(d);
			uint32		len = VARSIZE_ANY_EXHDR(t);

			appendBinaryStringInfo(&fold->buf, (char *) &len, sizeof(len));
			appendBinaryStringInfo(&fold->buf, VARDATA_ANY(t), len);
			d = PointerGetDatum(t);
		}
		else
			appendBinaryStringInfo(&fold->buf, (char *) &d, sizeof(Datum));
		keys[i] = d;
	}
	key.len = fold->buf.len;
	key.data = fold->buf.data;
	group = agg_fold_find(fold, &key);
	if (group == NULL)
	{
		MemoryContext saved = MemoryContextSwitchTo(fold->keep);

		key.data = palloc(key.len);
		memcpy(key.data, fold->buf.data, key.len);
		group = agg_fold_new(fold, &key);
		for (int i = 0; i < spec->nkeys; i++)
			group->keys[i] = spec->key_kind[i] == AGG_KEY_TEXT
				? PointerGetDatum(DatumGetTextPCopy(keys[i])) : keys[i];
		group->count = 0;
		for (int i = 0; i < spec->nsums; i++)
		{
			group->sums[i].cents = 0;
			group->sums[i].numeric = (Datum) 0;
		}
		MemoryContextSwitchTo(saved);
	}
	group->count += sign;
	if (spec->nsums == 0)
		return;
	amount = slot_getattr(slot, fold->amount_att, &amount_null);
	if (amount_null)
		return;					/* amount is NOT NULL; a NULL adds nothing */
	amount_exact = crm_numeric_cents(amount, &amount_cents);	/* once for all sums */
	for (int i = 0; i < spec->nsums; i++)
	{
		AggSum	   *sum = &group->sums[i];
		bool		pnull = true;
		Datum		p = (Datum) 0;
		Datum		value;
		int64		cents = amount_cents;
		int64		total;
		bool		exact = amount_exact;

		if (spec->sum_kind[i] == AGG_SUM_WEIGHTED)
		{
			int64		pc = 0;

			p = slot_getattr(slot, fold->probability_att, &pnull);
			exact = exact && (pnull || crm_numeric_cents(p, &pc)) &&
				crm_weighted_cents(cents, pc, &cents);
		}
		if (exact && sum->numeric == (Datum) 0 &&
			!pg_add_s64_overflow(sum->cents, sign > 0 ? cents : -cents, &total))
		{
			sum->cents = total;
			continue;
		}

		/*
		 * The numeric way, from here on for this sum: computed in the row's
		 * context, kept in the fold's (one copy per group).
		 */
		if (exact)
			value = crm_cents_numeric(cents);
		else if (spec->sum_kind[i] == AGG_SUM_WEIGHTED)
			value = agg_weighted(amount, p, pnull);
		else
			value = amount;
		value = DirectFunctionCall2(sign > 0 ? numeric_add : numeric_sub,
									agg_sum_numeric(sum), value);
		{
			MemoryContext saved = MemoryContextSwitchTo(fold->keep);
			Datum		old = sum->numeric;

			sum->numeric = datumCopy(value, false, -1);
			if (old != (Datum) 0)
				pfree(DatumGetPointer(old));
			MemoryContextSwitchTo(saved);
		}
	}
}

/*
 * Fold every row of a transition table into the groups of every aggregate
 * the table feeds, reading (and deforming) each row once.
 */
static void
agg_fold_table(AggFold *folds, int nfolds, Tuplestorestate *rows, TupleTableSlot *slot,
			   int sign)
{
	MemoryContext row = folds[0].row;
	int			ptr;

	if (rows == NULL)
		return;
	ptr = tuplestore_alloc_read_pointer(rows, EXEC_FLAG_REWIND);
	tuplestore_select_read_pointer(rows, ptr);
	tuplestore_rescan(rows);
	while (tuplestore_gettupleslot(rows, true, false, slot))
	{
		/* what one row needs lives in a context reset per row */
		MemoryContext saved = MemoryContextSwitchTo(row);

		for (int i = 0; i < nfolds; i++)
			agg_fold_row(&folds[i], slot, sign);
		MemoryContextSwitchTo(saved);
		MemoryContextReset(row);
	}
	ExecClearTuple(slot);
}

static bool
agg_is_zero(const AggSum *sum)
{
	if (sum->numeric == (Datum) 0)
		return sum->cents == 0;
	return DatumGetBool(DirectFunctionCall2(numeric_eq, sum->numeric,
											   NumericGetDatum(int64_to_numeric(0))));
}

/* an array of n datums of one type */
static Datum
agg_array(Datum *elems, int n, Oid type)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;

	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_array(elems, n, type, typlen, typbyval, typalign));
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
typedef struct AggTarget
{
	Relation	rel;
	Relation	index;			/* the primary key; NULL until a lookup needs it */
	AggCache   *cache;
	Datum		keyval[INDEX_MAX_KEYS];	/* the group's value of each key column */
	bool		checks;			/* the table has CHECK constraints */
	EState	   *estate;			/* NULL until an insert or check needs it */
	ResultRelInfo *rri;
	bool		indices_open;	/* ExecOpenIndices done (for inserts, non-HOT updates) */
	Snapshot	snap;			/* registered; NULL until the first lookup */
	IndexScanDesc scan;			/* on index under snap; NULL until needed */
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
} AggTarget;

static void agg_target_insert(AggTarget *t, AggSpec *spec, AggGroup *group, int32 stripe,
							  bool remember);

/*
 * The aggregate table, opened with RowExclusiveLock: by the OID it had last
 * time when that relation still is crm.<table>, else looked up by name.
 */
static Relation
agg_target_table(AggSpec *spec, AggCache *cache)
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
		cache->nspid = get_namespace_oid("crm", false);
		cache->relid = crm_relation_oid(spec->table);
		rel = table_open(cache->relid, RowExclusiveLock);
	}
	return rel;
}

/*
 * What the cache knows of the primary key pkey: its columns and their
 * equality functions (for index lookups and for checking a hint).
 */
static void
agg_cache_primary_key(AggCache *cache, AggSpec *spec, Relation index)
{
	cache->pkey = InvalidOid;
	cache->nkeys = IndexRelationGetNumberOfKeyAttributes(index);
	for (int i = 0; i < cache->nkeys; i++)
	{
		Oid			optype = index->rd_opcintype[i];
		Oid			op = get_opfamily_member(index->rd_opfamily[i], optype, optype,
											 BTEqualStrategyNumber);

		if (!OidIsValid(op))
			elog(ERROR, "crm: no equality operator for key %d of crm.%s", i + 1, spec->table);
		cache->key_att[i] = index->rd_index->indkey.values[i];
		cache->collation[i] = index->rd_indcollation[i];
		fmgr_info_cxt(get_opcode(op), &cache->eq[i], TopMemoryContext);
	}
	cache->pkey = RelationGetRelid(index);
}

static bool
agg_target_open(AggTarget *t, AggSpec *spec)
{
	AggCache   *cache = agg_cache(spec);
	TupleDesc	desc;
	TupleConstr *constr;
	Oid			pkey;

	t->rel = agg_target_table(spec, cache);
	pkey = RelationGetPrimaryKeyIndex(t->rel);
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
		t->key_att[i] = crm_attnum_hint(desc, spec->target_key[i], &cache->target_hint[i]);
	t->stripe_att = crm_attnum_hint(desc, "stripe", &cache->target_hint[AGG_MAX_KEYS]);
	t->count_att = crm_attnum_hint(desc, spec->count_column, &cache->target_hint[AGG_MAX_KEYS + 1]);
	for (int i = 0; i < spec->nsums; i++)
		t->sum_att[i] = crm_attnum_hint(desc, spec->sum_column[i],
										&cache->target_hint[AGG_MAX_KEYS + 2 + i]);

	t->checks = constr != NULL && constr->num_check > 0;
	t->estate = NULL;
	t->rri = NULL;
	t->indices_open = false;
	t->heap = t->rel->rd_tableam == GetHeapamTableAmRoutine();
	t->snap = NULL;
	t->scan = NULL;
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
agg_target_executor(AggTarget *t)
{
	RangeTblEntry *rte;

	if (t->estate != NULL)
		return;
	t->estate = CreateExecutorState();
	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(t->rel);
	rte->relkind = t->rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	ExecInitRangeTable(t->estate, list_make1(rte));
	t->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(t->rri, t->rel, 1, NULL, 0);
}

/* the table's indexes, opened for inserting entries into them */
static void
agg_target_open_indices(AggTarget *t)
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
agg_target_end_lookups(AggTarget *t)
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
agg_target_close(AggTarget *t)
{
	agg_target_end_lookups(t);
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
agg_target_next(AggTarget *t, AggSpec *spec, AggGroup *group)
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
				 errmsg("crm %s aggregate count out of range", spec->name),
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
agg_target_update(AggTarget *t, AggSpec *spec, AggGroup *group, bool *hot)
{
	TM_FailureData tmfd;
	LockTupleMode lockmode;
	bool		update_indexes;
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
		elog(ERROR, "crm: unexpected result %d updating a row of crm.%s", (int) result, spec->table);
	*hot = !update_indexes;
	if (update_indexes)
	{
		agg_target_open_indices(t);
		list_free(ExecInsertIndexTuples(t->rri, t->next, t->estate, true, false, NULL, NIL));
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
agg_hint_find(AggCache *cache, AggGroupKey *key)
{
	if (cache->hints == NULL)
		return NULL;
	return (AggHint *) hash_search(cache->hints, key, HASH_FIND, NULL);
}

static void
agg_hint_remember(AggCache *cache, AggGroupKey *key, ItemPointer tid, Buffer buffer)
{
	AggHint    *hint;
	AggGroupKey copy;
	bool		found;

	if (cache->hints == NULL || hash_get_num_entries(cache->hints) >= AGG_MAX_HINTS)
	{
		HASHCTL		ctl;

		cache->hints = NULL;	/* until it is made again: an error may come first */
		if (cache->hints_cxt == NULL)
			cache->hints_cxt = AllocSetContextCreate(TopMemoryContext, "crm aggregate hints",
													 ALLOCSET_DEFAULT_SIZES);
		else
			MemoryContextReset(cache->hints_cxt);	/* the table and its keys */
		cache->hints_made++;
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(AggGroupKey);
		ctl.entrysize = sizeof(AggHint);
		ctl.hash = agg_key_hash;
		ctl.match = agg_key_match;
		ctl.hcxt = cache->hints_cxt;
		cache->hints = hash_create("crm aggregate hints", 1024, &ctl,
								   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
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
agg_target_snapshot(AggTarget *t)
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
agg_target_fetch_heap(AggTarget *t, ItemPointer root, Buffer buffer, bool *all_dead)
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
agg_target_fetch_hint(AggTarget *t, AggHint *hint)
{
	AggCache   *cache = t->cache;
	bool		all_dead = false;

	if (!BufferIsValid(hint->buffer) ||
		!ReadRecentBuffer(t->rel->rd_node, MAIN_FORKNUM, ItemPointerGetBlockNumber(&hint->tid),
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
agg_target_lookup(AggTarget *t, ItemPointer root)
{
	AggCache   *cache = t->cache;
	ScanKeyData skey[INDEX_MAX_KEYS];

	agg_target_snapshot(t);
	if (t->index == NULL)
		t->index = index_open(cache->pkey, RowExclusiveLock);
	if (t->scan == NULL)
		t->scan = index_beginscan(t->rel, t->index, t->snap, cache->nkeys, 0);
	for (int i = 0; i < cache->nkeys; i++)
	{
		ScanKeyEntryInitializeWithInfo(&skey[i], 0, i + 1, BTEqualStrategyNumber, InvalidOid,
									   cache->collation[i], &cache->eq[i], t->keyval[i]);
	}
	index_rescan(t->scan, skey, cache->nkeys, NULL, 0);

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
agg_target_held(AggTarget *t)
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
 * id.  A dirty snapshot sees them all.
 */
static bool
agg_target_other_row(AggTarget *t)
{
	AggCache   *cache = t->cache;
	SnapshotData dirty;
	ScanKeyData skey[INDEX_MAX_KEYS];
	IndexScanDesc scan;
	bool		other;

	InitDirtySnapshot(dirty);
	if (t->index == NULL)
		t->index = index_open(cache->pkey, RowExclusiveLock);
	for (int i = 0; i < cache->nkeys; i++)
		ScanKeyEntryInitializeWithInfo(&skey[i], 0, i + 1, BTEqualStrategyNumber, InvalidOid,
									   cache->collation[i], &cache->eq[i], t->keyval[i]);
	scan = index_beginscan(t->rel, t->index, &dirty, cache->nkeys, 0);
	index_rescan(scan, skey, cache->nkeys, NULL, 0);
	other = index_getnext_slot(scan, ForwardScanDirection, t->found);
	index_endscan(scan);
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
agg_target_add(AggTarget *t, AggSpec *spec, AggGroup *group, bool *written)
{
	AggCache   *cache = t->cache;
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
		int32		stripe = MyBackendId + n * AGG_STRIPE_SPAN;
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
				if (max_prepared_xacts > 0 && agg_target_other_row(t))
					break;		/* next stripe */
				if (t->can_insert)
				{
					agg_target_insert(t, spec, group, stripe, n == 0);
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
				else
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
			 errmsg("every stripe of backend %d in crm.%s is held by another transaction",
					MyBackendId, spec->table),
			 errdetail("%d stripes are held by prepared transactions of this backend id.", AGG_STRIPES),
			 errhint("Commit or roll back prepared transactions (pg_prepared_xacts).")));
	return 0;					/* not reached */
}

/*
 * Insert the stripe row of a group the stripe has none for yet; remember
 * where, when it is the backend's first stripe.
 */
static void
agg_target_insert(AggTarget *t, AggSpec *spec, AggGroup *group, int32 stripe, bool remember)
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
 * Add the changes of every group that changed: in place where this backend's
 * stripe has the group's row, the rest in one statement that unnests one
 * array per column (stripes chosen here too, see agg_target_add); returns
 * whether SPI is open.
 */
static bool
agg_write_groups(AggFold *fold, bool connected)
{
	AggSpec    *spec = fold->spec;
	int			ngroups = fold->ngroups;
	Datum	   *stripes;
	Datum	   *cols[AGG_MAX_KEYS + 1 + AGG_MAX_SUMS];
	int			ncols = spec->nkeys + 1 + spec->nsums;
	Datum		values[1 + AGG_MAX_KEYS + 1 + AGG_MAX_SUMS];
	char		nulls[1 + AGG_MAX_KEYS + 1 + AGG_MAX_SUMS];
	AggTarget	target;
	bool		open = false;
	bool		opened = false;
	int			n = 0;

	if (ngroups == 0)
		return connected;
	stripes = palloc(sizeof(Datum) * ngroups);
	for (int i = 0; i < ncols; i++)
		cols[i] = palloc(sizeof(Datum) * ngroups);
	for (int g = 0; g < ngroups; g++)
	{
		AggGroup   *group = &fold->groups[g];
		bool		changed = group->count != 0;
		int32		stripe = MyBackendId;	/* a table without primary key */
		int			col = 0;

		for (int i = 0; i < spec->nsums && !changed; i++)
			changed = !agg_is_zero(&group->sums[i]);
		if (!changed)
			continue;
		if (!opened)
		{
			open = agg_target_open(&target, spec);
			opened = true;
		}
		if (open)
		{
			bool		written;

			stripe = agg_target_add(&target, spec, group, &written);
			if (written)
				continue;
		}
		stripes[n] = Int32GetDatum(stripe);
		for (int i = 0; i < spec->nkeys; i++)
			cols[col++][n] = spec->key_kind[i] == AGG_KEY_ENUM
				? CStringGetTextDatum(OidOutputFunctionCall(fold->key_output[i], group->keys[i]))
				: group->keys[i];
		cols[col++][n] = Int64GetDatum(group->count);
		for (int i = 0; i < spec->nsums; i++)
			cols[col++][n] = agg_sum_numeric(&group->sums[i]);
		n++;
	}
	if (open)
		agg_target_close(&target);
	if (n == 0)
		return connected;		/* all added in place, or every change cancelled out */

	values[0] = agg_array(stripes, n, INT4OID);
	for (int i = 0; i < spec->nkeys; i++)
		values[1 + i] = agg_array(cols[i], n, spec->key_type[i]);
	values[1 + spec->nkeys] = agg_array(cols[spec->nkeys], n, INT8OID);
	for (int i = 0; i < spec->nsums; i++)
		values[2 + spec->nkeys + i] = agg_array(cols[spec->nkeys + 1 + i], n, NUMERICOID);
	memset(nulls, ' ', 1 + ncols);
	if (!connected)
	{
		SPI_connect();
		connected = true;
	}
	crm_query_run_as_owner(&spec->add, values, nulls, 0);
	return connected;
}

/* crm_aggregates_maintain -- trigger crm.aggregates_maintain() */
PG_FUNCTION_INFO_V1(crm_aggregates_maintain);
Datum
crm_aggregates_maintain(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "aggregates_maintain", false, false);
	TriggerEvent event = trigdata->tg_event;
	const char *relname = RelationGetRelationName(trigdata->tg_relation);
	AggSpec *const *specs;
	bool		connected = false;

	if (TRIGGER_FIRED_FOR_ROW(event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("crm.aggregates_maintain() must be fired FOR EACH STATEMENT")));
	if (strcmp(relname, "opportunity") == 0)
		specs = opportunity_specs;
	else if (strcmp(relname, "lead") == 0)
		specs = lead_specs;
	else
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("crm.aggregates_maintain() does not maintain aggregates of table \"%s\"",
						relname)));

	if (TRIGGER_FIRED_BY_TRUNCATE(event))
	{
		SPI_connect();
		for (int i = 0; specs[i] != NULL; i++)
			crm_query_run_latest_as_owner(&specs[i]->empty, NULL, NULL, 0);
		SPI_finish();
		return PointerGetDatum(NULL);
	}

	{
		TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
		TupleTableSlot *slot = MakeSingleTupleTableSlot(tupdesc, &TTSOpsMinimalTuple);
		MemoryContext row = AllocSetContextCreate(CurrentMemoryContext, "crm aggregate row",
												  ALLOCSET_DEFAULT_SIZES);
		AggFold		folds[AGG_MAX_SPECS];
		int			nfolds = 0;

		for (; specs[nfolds] != NULL; nfolds++)
			agg_fold_init(&folds[nfolds], specs[nfolds], tupdesc, row);
		agg_fold_table(folds, nfolds, trigdata->tg_newtable, slot, 1);
		agg_fold_table(folds, nfolds, trigdata->tg_oldtable, slot, -1);
		for (int i = 0; i < nfolds; i++)
		{
			connected = agg_write_groups(&folds[i], connected);
			if (folds[i].index != NULL)
				hash_destroy(folds[i].index);
		}
		MemoryContextDelete(row);
		ExecDropSingleTupleTableSlot(slot);
	}
	if (connected)
		SPI_finish();
	return PointerGetDatum(NULL);
}

/*
 * The lock that lets one compaction run at a time (crm.compact_aggregates()
 * takes it first): one of the extension's own locks (locks.c), which only
 * its own code can take, held until the transaction ends.  A table lock
 * would do the same only in a mode that conflicts with REINDEX CONCURRENTLY
 * and VACUUM, and a compaction waiting for one of those while its snapshot
 * makes them wait for it is a deadlock.
 */

/* crm_aggregates_compaction_lock -- crm.aggregates_compaction_lock() */
PG_FUNCTION_INFO_V1(crm_aggregates_compaction_lock);
Datum
crm_aggregates_compaction_lock(PG_FUNCTION_ARGS)
{
	CrmLock		lock = crm_lock_global(CRM_LOCK_COMPACTION);

	(void) fcinfo;
	crm_lock_all(&lock, 1);
	PG_RETURN_VOID();
}
