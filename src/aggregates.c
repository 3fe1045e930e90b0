/*
 * aggregates.c: pipeline, account and campaign aggregates without hot rows:
 * their definitions, and the fold of a statement's changes into them.
 *
 * The aggregates are defined once, in agg_specs below: the table each one
 * aggregates, its table in schema crm, its group key columns, count and
 * sums, and how each is computed from a source row.  Everything else is
 * derived from that: the statements this file runs (built at first use),
 * and, through crm_internal.aggregate_definitions(), the SQL of 88_aggregates.sql
 * (the aggregate tables, crm_internal.pipeline_actual, crm_internal.aggregates_compared,
 * crm.rebuild_aggregates() and crm.compact_aggregates()).  Each kind of key
 * and sum is computed here in C and, for the SQL, by the expression next to
 * it (agg_key_sql, agg_sum_sql); the two must agree, which
 * crm.verify_aggregates() checks.
 *
 * crm_internal.aggregates_maintain() is an AFTER statement trigger on the source
 * tables (crm.opportunity and crm.lead).  It reads the statement's
 * transition tables directly (no SQL), adds every new row's contribution
 * and subtracts every old row's, per group of each aggregate the table feeds
 * (see AggFold); then it adds the change of every group whose change is not
 * zero to the row of the aggregate table whose stripe is this backend's:
 * in place, through aggregate_stripes.c, or, when the aggregate table has
 * triggers or stored generated columns of its own, with one kept INSERT ...
 * SELECT FROM unnest(arrays) ... ON CONFLICT DO UPDATE per aggregate.
 *
 * Why it is exact: every aggregate is a sum (count, amount, weighted amount),
 * so the contributions of a statement add up to the change of the totals,
 * whatever the statement did; the additions are ordinary row writes in the
 * writer's transaction and commit, roll back and roll back to a savepoint
 * with the change they describe.  TRUNCATE empties the aggregates the table
 * feeds.
 *
 * Why there are no hot rows: concurrent backends have different ids, so they
 * never update the same aggregate row and never wait for one another; where
 * a transaction that outlives its backend (a prepared one) or a compaction
 * holds the row of the id, the writer uses another stripe of its own (see
 * aggregate_stripes.c).  Readers sum the stripes of a group, whichever they
 * are.
 *
 * Why it is cheap: an UPDATE that changes no aggregated column, or changes
 * them in ways that cancel out, computes zero changes and writes nothing; the
 * others cost a HOT update per changed group.  Amounts are added as whole
 * cents (cents.c) and made numeric once per written row; what is not whole
 * cents or does not fit in 64 bits is added as numeric, with the same
 * result.
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
#include "aggregate_stripes.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "common/int.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
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
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

/* How a key column of the source row becomes a key of the aggregate. */
typedef enum AggKeyKind
{
	AGG_KEY_BYVAL,				/* stored as is: ids, regrole */
	AGG_KEY_TEXT,				/* a text value */
	AGG_KEY_ENUM,				/* an enum, hashed by oid, written as its label */
	AGG_KEY_MONTH,				/* a date truncated to its month; NULL: infinity */
	AGG_KEY_MONTH_UTC			/* a timestamptz's month in UTC, as the date of
								 * its first day (whatever the session's
								 * TimeZone); infinities kept */
} AggKeyKind;

/* What a sum adds up. */
typedef enum AggSumKind
{
	AGG_SUM_COLUMN,				/* the amount column */
	AGG_SUM_WEIGHTED,			/* round(amount x coalesce(probability, 0) / 100, 2) */
	AGG_SUM_SECONDS				/* extract(epoch from until - since): the seconds
								 * between two timestamptz columns, exact to the
								 * microsecond; NULL adds nothing */
} AggSumKind;

/*
 * One aggregate.  target names the aggregate table and its columns (key
 * columns in group order); the rest says how a row of the source table
 * counts.  The fields after the blank line are derived at first use.
 */
typedef struct AggSpec
{
	AggStripeTable target;
	const char *source;			/* the table aggregated, in schema crm */
	const char *key_source[AGG_MAX_KEYS];	/* the source column of each key */
	AggKeyKind	key_kind[AGG_MAX_KEYS];
	bool		skip_null_first_key;	/* rows without the first key don't count */
	AggSumKind	sum_kind[AGG_MAX_SUMS];
	const char *amount_column;
	const char *probability_column;
	const char *since_column;	/* AGG_SUM_SECONDS: from ... */
	const char *until_column;	/* ... to */
	int			optional_keys;	/* the last n keys count only once the table has them */
	bool		optional_table; /* counts only once its table exists (see
								 * agg_spec_present) */

	int			full_nkeys;		/* target.nkeys as defined (0: not yet read) */
	int			source_hint[AGG_MAX_KEYS + 4];	/* keys, amount, probability,
												 * since, until */
	CrmQuery	add;			/* arrays: stripes, keys, counts, sums */
	CrmQuery	empty;			/* on TRUNCATE of the source */
} AggSpec;

/*
 * The definitions, in the order writers, the rebuild and the compaction
 * lock the aggregate tables.  A table's primary key is its integer keys,
 * the stripe, then its text and enum keys (agg_primary_key), so that a
 * writer finds its row with integer comparisons and compares text only
 * between the stages of one group.
 */
static AggSpec agg_specs[] = {
	{
		.target = {"pipeline", "pipeline_aggregate", 4, {"stage", "owner", "close_month", "currency"},
		"opportunities", 2, {"amount", "weighted_amount"}},
		.source = "opportunity",
		.key_source = {"stage", "owner", "close_date", "currency"},
		.key_kind = {AGG_KEY_TEXT, AGG_KEY_BYVAL, AGG_KEY_MONTH, AGG_KEY_TEXT},
		.sum_kind = {AGG_SUM_COLUMN, AGG_SUM_WEIGHTED},
		.amount_column = "amount", .probability_column = "probability",
		.optional_keys = 1		/* currency: 0.7 */
	},
	{
		.target = {"account", "account_aggregate", 5,
		{"account_id", "owner", "stage", "close_month", "currency"}, "opportunities", 1, {"amount"}},
		.source = "opportunity",
		.key_source = {"account_id", "owner", "stage", "close_date", "currency"},
		.key_kind = {AGG_KEY_BYVAL, AGG_KEY_BYVAL, AGG_KEY_TEXT, AGG_KEY_MONTH, AGG_KEY_TEXT},
		.skip_null_first_key = true,
		.sum_kind = {AGG_SUM_COLUMN},
		.amount_column = "amount",
		.optional_keys = 2		/* close month and currency: 0.7 */
	},
	{
		.target = {"campaign_opportunity", "campaign_opportunity_aggregate", 5,
		{"campaign_id", "owner", "stage", "close_month", "currency"}, "opportunities", 1, {"amount"}},
		.source = "opportunity",
		.key_source = {"campaign_id", "owner", "stage", "close_date", "currency"},
		.key_kind = {AGG_KEY_BYVAL, AGG_KEY_BYVAL, AGG_KEY_TEXT, AGG_KEY_MONTH, AGG_KEY_TEXT},
		.skip_null_first_key = true,
		.sum_kind = {AGG_SUM_COLUMN},
		.amount_column = "amount",
		.optional_keys = 2		/* close month and currency: 0.7 */
	},
	{
		.target = {"campaign_lead", "campaign_lead_aggregate", 3, {"campaign_id", "owner", "status"},
		"leads", 0, {NULL}},
		.source = "lead",
		.key_source = {"campaign_id", "owner", "status"},
		.key_kind = {AGG_KEY_BYVAL, AGG_KEY_BYVAL, AGG_KEY_ENUM},
		.skip_null_first_key = true
	},
	/* the funnel (crm.sales_funnel): how far records got, and where they are */
	{
		.target = {"lead_funnel", "lead_funnel_aggregate", 3, {"owner", "furthest_status", "status"},
		"leads", 0, {NULL}},
		.source = "lead",
		.key_source = {"owner", "furthest_status", "status"},
		.key_kind = {AGG_KEY_BYVAL, AGG_KEY_ENUM, AGG_KEY_ENUM},
		.optional_table = true
	},
	{
		.target = {"opportunity_funnel", "opportunity_funnel_aggregate", 5,
		{"owner", "furthest_stage", "stage", "close_month", "currency"}, "opportunities", 1, {"amount"}},
		.source = "opportunity",
		.key_source = {"owner", "furthest_stage", "stage", "close_date", "currency"},
		.key_kind = {AGG_KEY_BYVAL, AGG_KEY_TEXT, AGG_KEY_TEXT, AGG_KEY_MONTH, AGG_KEY_TEXT},
		.sum_kind = {AGG_SUM_COLUMN},
		.amount_column = "amount",
		.optional_table = true
	},
	/* issue 22: crm.lead_conversion_rates by source and owner */
	{
		.target = {"lead_source", "lead_source_aggregate", 3, {"owner", "source", "status"},
		"leads", 0, {NULL}},
		.source = "lead",
		.key_source = {"owner", "source", "status"},
		.key_kind = {AGG_KEY_BYVAL, AGG_KEY_TEXT, AGG_KEY_ENUM},
		.optional_table = true
	},
	/* issue 22: crm.lead_conversion_rates by month of capture (UTC) */
	{
		.target = {"lead_month", "lead_month_aggregate", 3, {"created_month", "owner", "status"},
		"leads", 0, {NULL}},
		.source = "lead",
		.key_source = {"created_at", "owner", "status"},
		.key_kind = {AGG_KEY_MONTH_UTC, AGG_KEY_BYVAL, AGG_KEY_ENUM},
		.optional_table = true
	},
	/*
	 * issue 22: crm.sales_performance: deals with a closing time, per month
	 * of closing (UTC), owner and stage, and per close month and currency
	 * for the conversion at read time
	 */
	{
		.target = {"sales_performance", "sales_performance_aggregate", 5,
			{"closed_month", "owner", "stage", "close_month", "currency"},
		"opportunities", 2, {"amount", "cycle_seconds"}},
		.source = "opportunity",
		.key_source = {"closed_at", "owner", "stage", "close_date", "currency"},
		.key_kind = {AGG_KEY_MONTH_UTC, AGG_KEY_BYVAL, AGG_KEY_TEXT, AGG_KEY_MONTH, AGG_KEY_TEXT},
		.skip_null_first_key = true,
		.sum_kind = {AGG_SUM_COLUMN, AGG_SUM_SECONDS},
		.amount_column = "amount",
		.since_column = "created_at", .until_column = "closed_at",
		.optional_table = true
	},
};

#define AGG_NSPECS lengthof(agg_specs)
#define AGG_MAX_SPECS 8			/* aggregates one table feeds */

/*
 * Aggregates added in a later version (optional_table: those of issue 22,
 * 0.7) count only once their table exists: a database of an earlier
 * version keeps working with this library until ALTER EXTENSION UPDATE has
 * made the table, and the update script, whose earlier steps generate SQL
 * from crm_internal.aggregate_definitions(), sees them only from the step
 * that makes their tables.  While no aggregate table exists at all (CREATE
 * EXTENSION, which makes them all from the definitions), every aggregate is
 * listed.  listing: for crm_internal.aggregate_definitions(); otherwise for
 * the trigger, which writes to existing tables only.
 */
static bool
agg_spec_present(const AggSpec *spec, bool listing)
{
	Oid			nsp;

	if (!spec->optional_table)
		return true;
	nsp = crm_internal_namespace();
	if (OidIsValid(get_relname_relid(spec->target.table, nsp)))
		return true;
	return listing && !OidIsValid(get_relname_relid(agg_specs[0].target.table, nsp));
}

/*
 * Keys added in a later version (the optional_keys last ones: the
 * pipeline's currency, the close month and currency of the account and
 * campaign aggregates, 0.7) count only once the aggregate table has their
 * columns (or while there is no table): until ALTER EXTENSION UPDATE has
 * added them, a database of an earlier version keeps working with this
 * library, grouped as that version defines (the keys before the first
 * missing column).  Checked at every use (a syscache probe per optional
 * key); when the answer changes, the statement of the SQL path, built for
 * the other key set, is built again.
 */
static void
agg_spec_keys(AggSpec *spec)
{
	int			nkeys;

	if (spec->full_nkeys == 0)
		spec->full_nkeys = spec->target.nkeys;
	nkeys = spec->full_nkeys;
	if (spec->optional_keys > 0)
	{
		/* no table yet: CREATE EXTENSION makes it from these definitions */
		Oid			table = get_relname_relid(spec->target.table, crm_internal_namespace());

		for (int i = nkeys - spec->optional_keys; OidIsValid(table) && i < spec->full_nkeys; i++)
			if (get_attnum(table, spec->target.key_column[i]) == InvalidAttrNumber)
			{
				nkeys = i;
				break;
			}
	}
	if (nkeys == spec->target.nkeys)
		return;
	spec->target.nkeys = nkeys;
	if (spec->add.plan != NULL)
		SPI_freeplan(spec->add.plan);
	spec->add.plan = NULL;
	spec->add.sql = NULL;
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
 * The month of a timestamptz in UTC, as the date of its first day:
 * date_trunc('month', t AT TIME ZONE 'UTC')::date; infinities kept
 */
static Datum
agg_month_utc_of(Datum t)
{
	TimestampTz ts = DatumGetTimestampTz(t);
	int64		days;
	int			year,
				month,
				day;

	if (TIMESTAMP_IS_NOBEGIN(ts))
		return DateADTGetDatum(DATEVAL_NOBEGIN);
	if (TIMESTAMP_IS_NOEND(ts))
		return DateADTGetDatum(DATEVAL_NOEND);
	/* days since 2000-01-01 UTC, rounded down */
	days = ts / USECS_PER_DAY;
	if (ts % USECS_PER_DAY < 0)
		days--;
	j2date((int) (days + POSTGRES_EPOCH_JDATE), &year, &month, &day);
	return DateADTGetDatum(date2j(year, month, 1) - POSTGRES_EPOCH_JDATE);
}

/*
 * The seconds from since to until (timestamptz), exact: extract(epoch from
 * until - since), a numeric with six decimals
 */
static Datum
agg_seconds_between(Datum since, Datum until)
{
	TimestampTz a = DatumGetTimestampTz(since);
	TimestampTz b = DatumGetTimestampTz(until);
	int64		usecs;

	/* set by the database; refuse rather than guess */
	if (TIMESTAMP_NOT_FINITE(a) || TIMESTAMP_NOT_FINITE(b) || pg_sub_s64_overflow(b, a, &usecs))
		elog(ERROR, "crm: cannot aggregate the time between infinite timestamps");
	return NumericGetDatum(int64_div_fast_to_numeric(usecs, 6));
}

/*
 * The weighted amount of one row, in numeric (crm_weighted_cents() is the
 * way for most amounts).
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
 * The SQL of a key, a sum and the filter of an aggregate, over the source
 * row s: what crm_internal.aggregate_definitions() gives the SQL generated from the
 * definitions, and what agg_fold_row() computes.
 */
static char *
agg_key_sql(const AggSpec *spec, int i)
{
	const char *c = quote_identifier(spec->key_source[i]);

	if (spec->key_kind[i] == AGG_KEY_MONTH_UTC)	/* as agg_month_utc_of() */
		return psprintf("pg_catalog.date_trunc('month', pg_catalog.timezone('UTC', s.%s))::pg_catalog.date", c);
	if (spec->key_kind[i] != AGG_KEY_MONTH)
		return psprintf("s.%s", c);
	/* as agg_month_of(), by date arithmetic: date_trunc would go through timestamp */
	return psprintf("CASE WHEN s.%s IS NULL THEN 'infinity'::pg_catalog.date"
					" WHEN NOT pg_catalog.isfinite(s.%s) THEN s.%s"
					" ELSE s.%s OPERATOR(pg_catalog.-)"
					" (pg_catalog.\"extract\"('day', s.%s)::pg_catalog.int4 OPERATOR(pg_catalog.-) 1) END",
					c, c, c, c, c);
}

static char *
agg_sum_sql(const AggSpec *spec, int i)
{
	const char *amount = quote_identifier(spec->amount_column);

	if (spec->sum_kind[i] == AGG_SUM_COLUMN)
		return psprintf("s.%s", amount);
	if (spec->sum_kind[i] == AGG_SUM_SECONDS)	/* as agg_seconds_between() */
		return psprintf("pg_catalog.\"extract\"('epoch', s.%s OPERATOR(pg_catalog.-) s.%s)",
						quote_identifier(spec->until_column), quote_identifier(spec->since_column));
	/* as agg_weighted() and crm_weighted_cents() */
	return psprintf("pg_catalog.round(s.%s OPERATOR(pg_catalog.*) COALESCE(s.%s, 0)"
					" OPERATOR(pg_catalog./) 100, 2)",
					amount, quote_identifier(spec->probability_column));
}

static char *
agg_filter_sql(const AggSpec *spec)
{
	if (!spec->skip_null_first_key)
		return NULL;
	return psprintf("s.%s IS NOT NULL", quote_identifier(spec->key_source[0]));
}

/* the aggregate table's primary key: integer keys, the stripe, text keys */
static int
agg_primary_key(const AggSpec *spec, const char **columns)
{
	int			n = 0;

	for (int i = 0; i < spec->target.nkeys; i++)
		if (spec->key_kind[i] != AGG_KEY_TEXT && spec->key_kind[i] != AGG_KEY_ENUM)
			columns[n++] = spec->target.key_column[i];
	columns[n++] = "stripe";
	for (int i = 0; i < spec->target.nkeys; i++)
		if (spec->key_kind[i] == AGG_KEY_TEXT || spec->key_kind[i] == AGG_KEY_ENUM)
			columns[n++] = spec->target.key_column[i];
	return n;
}

/* the type of a key of the aggregate (and of the table's column) */
static Oid
agg_key_type(const AggSpec *spec, int i, Oid source_type)
{
	return spec->key_kind[i] == AGG_KEY_MONTH || spec->key_kind[i] == AGG_KEY_MONTH_UTC
		? DATEOID : source_type;
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

/* a text[] of n C strings */
static Datum
agg_text_array(const char *const *strings, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * n);

	for (int i = 0; i < n; i++)
		elems[i] = CStringGetTextDatum(strings[i]);
	return agg_array(elems, n, TEXTOID);
}

/*
 * The GROUP BY over the source table that the aggregate must add up to: its
 * columns are the aggregate table's, without the stripe.
 */
static char *
agg_actual_sql(const AggSpec *spec)
{
	const AggStripeTable *t = &spec->target;
	char	   *filter = agg_filter_sql(spec);
	StringInfoData q;

	initStringInfo(&q);
	appendStringInfoString(&q, "SELECT ");
	for (int i = 0; i < t->nkeys; i++)
		appendStringInfo(&q, "%s AS %s, ", agg_key_sql(spec, i), quote_identifier(t->key_column[i]));
	appendStringInfo(&q, "pg_catalog.count(*) AS %s", quote_identifier(t->count_column));
	for (int i = 0; i < t->nsums; i++)
		appendStringInfo(&q, ", pg_catalog.sum(%s) AS %s", agg_sum_sql(spec, i),
						 quote_identifier(t->sum_column[i]));
	appendStringInfo(&q, " FROM crm.%s AS s", quote_identifier(spec->source));
	if (filter != NULL)
		appendStringInfo(&q, " WHERE %s", filter);
	appendStringInfoString(&q, " GROUP BY ");
	for (int i = 0; i < t->nkeys; i++)
		appendStringInfo(&q, i > 0 ? ", %d" : "%d", i + 1);
	return q.data;
}

/*
 * crm_aggregate_definitions -- crm_internal.aggregate_definitions(): one row per
 * aggregate, in the order writers lock the tables, with what the SQL of
 * 88_aggregates.sql is generated from.
 */
PG_FUNCTION_INFO_V1(crm_aggregate_definitions);
Datum
crm_aggregate_definitions(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int a = 0; a < (int) AGG_NSPECS; a++)
		agg_spec_keys(&agg_specs[a]);
	for (int a = 0; a < (int) AGG_NSPECS; a++)
	{
		const AggSpec *spec = &agg_specs[a];
		const AggStripeTable *t = &spec->target;
		Oid			source;
		Datum		types[AGG_MAX_KEYS];
		const char *measures[1 + AGG_MAX_SUMS];
		Datum		measure_types[1 + AGG_MAX_SUMS];
		const char *pkey[AGG_MAX_KEYS + 1];
		int			npkey = agg_primary_key(spec, pkey);
		Datum		values[9];
		bool		nulls[9] = {false};
		bool		defined = true;

		if (!agg_spec_present(spec, true))
			continue;
		source = crm_relation_oid(spec->source);
		/* an aggregate of a later version: not before its columns exist */
		for (int i = 0; spec->optional_table && i < t->nkeys; i++)
			defined = defined && get_attnum(source, spec->key_source[i]) != InvalidAttrNumber;
		if (!defined)
			continue;

		for (int i = 0; i < t->nkeys; i++)
		{
			AttrNumber	att = get_attnum(source, spec->key_source[i]);

			if (att == InvalidAttrNumber)
				elog(ERROR, "crm: column %s of crm.%s not found", spec->key_source[i], spec->source);
			types[i] = ObjectIdGetDatum(agg_key_type(spec, i, get_atttype(source, att)));
		}
		measures[0] = t->count_column;
		measure_types[0] = ObjectIdGetDatum(INT8OID);
		for (int i = 0; i < t->nsums; i++)
		{
			measures[1 + i] = t->sum_column[i];
			measure_types[1 + i] = ObjectIdGetDatum(NUMERICOID);
		}
		values[0] = CStringGetTextDatum(t->aggregate);
		values[1] = CStringGetTextDatum(spec->source);
		values[2] = CStringGetTextDatum(t->table);
		values[3] = agg_text_array(t->key_column, t->nkeys);
		values[4] = agg_array(types, t->nkeys, REGTYPEOID);
		values[5] = agg_text_array(measures, 1 + t->nsums);
		values[6] = agg_array(measure_types, 1 + t->nsums, REGTYPEOID);
		values[7] = agg_text_array(pkey, npkey);
		values[8] = CStringGetTextDatum(agg_actual_sql(spec));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * Per-statement state of one aggregate: its groups, in an array, found
 * through a hash table on their keys (made with the first group).
 */

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
	HTAB	   *index;			/* NULL while there are no groups */
	int			key_att[AGG_MAX_KEYS];
	Oid			key_output[AGG_MAX_KEYS];	/* output functions of enum keys */
	Oid			key_source_type[AGG_MAX_KEYS];	/* types of the source columns */
	int			amount_att;
	int			probability_att;
	int			since_att;		/* AGG_SUM_SECONDS */
	int			until_att;
	StringInfoData buf;
	MemoryContext keep;			/* groups, keys, sums: the statement's */
	MemoryContext row;			/* one row's temporaries, reset per row */
} AggFold;

static void
agg_fold_init(AggFold *fold, AggSpec *spec, TupleDesc tupdesc, MemoryContext row)
{
	fold->spec = spec;
	for (int i = 0; i < spec->target.nkeys; i++)
	{
		fold->key_att[i] = crm_attnum_hint(tupdesc, spec->key_source[i], &spec->source_hint[i]);
		fold->key_output[i] = InvalidOid;
		fold->key_source_type[i] = TupleDescAttr(tupdesc, fold->key_att[i] - 1)->atttypid;
		if (spec->key_kind[i] == AGG_KEY_ENUM)
		{
			bool		varlena;

			getTypeOutputInfo(fold->key_source_type[i], &fold->key_output[i], &varlena);
		}
	}
	fold->amount_att = spec->amount_column
		? crm_attnum_hint(tupdesc, spec->amount_column, &spec->source_hint[AGG_MAX_KEYS]) : 0;
	fold->probability_att = spec->probability_column
		? crm_attnum_hint(tupdesc, spec->probability_column, &spec->source_hint[AGG_MAX_KEYS + 1]) : 0;
	fold->since_att = spec->since_column
		? crm_attnum_hint(tupdesc, spec->since_column, &spec->source_hint[AGG_MAX_KEYS + 2]) : 0;
	fold->until_att = spec->until_column
		? crm_attnum_hint(tupdesc, spec->until_column, &spec->source_hint[AGG_MAX_KEYS + 3]) : 0;
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
	AggGroupIndexEntry *e;

	if (fold->index == NULL)
		return NULL;
	e = hash_search(fold->index, key, HASH_FIND, NULL);
	return e != NULL ? &fold->groups[e->pos] : NULL;
}

/* a new group for key (whose bytes are the fold's), uninitialized */
static AggGroup *
agg_fold_new(AggFold *fold, const AggGroupKey *key)
{
	int			pos = fold->ngroups;
	AggGroupIndexEntry *e;

	if (pos == fold->capacity)
	{
		fold->capacity *= 2;
		fold->groups = repalloc(fold->groups, sizeof(AggGroup) * fold->capacity);
	}
	fold->groups[pos].key = *key;
	fold->ngroups++;
	if (fold->index == NULL)
		fold->index = crm_group_table("crm aggregate groups", sizeof(AggGroupIndexEntry), 64,
									  fold->keep);
	e = hash_search(fold->index, &fold->groups[pos].key, HASH_ENTER, NULL);
	e->pos = pos;
	return &fold->groups[pos];
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
	for (int i = 0; i < spec->target.nkeys; i++)
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
		else if (spec->key_kind[i] == AGG_KEY_MONTH_UTC && !isnull)
			d = agg_month_utc_of(d);
		if (isnull)				/* NOT NULL columns; refuse rather than guess */
			elog(ERROR, "crm: %s aggregate key %s is null", spec->target.aggregate, spec->key_source[i]);
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
		for (int i = 0; i < spec->target.nkeys; i++)
			group->keys[i] = spec->key_kind[i] == AGG_KEY_TEXT
				? PointerGetDatum(DatumGetTextPCopy(keys[i])) : keys[i];
		group->count = 0;
		for (int i = 0; i < spec->target.nsums; i++)
		{
			group->sums[i].cents = 0;
			group->sums[i].numeric = (Datum) 0;
		}
		MemoryContextSwitchTo(saved);
	}
	group->count += sign;
	if (spec->target.nsums == 0)
		return;
	amount = slot_getattr(slot, fold->amount_att, &amount_null);
	/* amount is NOT NULL; a NULL adds nothing */
	amount_exact = !amount_null && crm_numeric_cents(amount, &amount_cents);	/* once for all sums */
	for (int i = 0; i < spec->target.nsums; i++)
	{
		AggSum	   *sum = &group->sums[i];
		bool		pnull = true;
		Datum		p = (Datum) 0;
		Datum		value = (Datum) 0;
		int64		cents = amount_cents;
		int64		total;
		bool		exact = amount_exact;

		if (spec->sum_kind[i] == AGG_SUM_SECONDS)
		{
			bool		since_null,
						until_null;
			Datum		since = slot_getattr(slot, fold->since_att, &since_null);
			Datum		until = slot_getattr(slot, fold->until_att, &until_null);

			if (since_null || until_null)
				continue;
			/* in numeric (microseconds are not cents) */
			exact = false;
			value = agg_seconds_between(since, until);
		}
		else if (amount_null)
			continue;
		else if (spec->sum_kind[i] == AGG_SUM_WEIGHTED)
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
		if (spec->sum_kind[i] == AGG_SUM_SECONDS)
			;					/* computed above */
		else if (exact)
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

/*
 * The element type of a key's array in the SQL path: enums go as their
 * labels, cast back in the statement (agg_add_query).
 */
static Oid
agg_sql_key_type(const AggFold *fold, int i)
{
	const AggSpec *spec = fold->spec;

	if (spec->key_kind[i] == AGG_KEY_ENUM)
		return TEXTOID;
	return agg_key_type(spec, i, getBaseType(fold->key_source_type[i]));
}

/*
 * The SQL path's statement for the fold's aggregate, built once: INSERT ...
 * SELECT FROM ROWS FROM (unnest($1), ...) with the arrays of
 * agg_write_groups (stripes, keys, counts, sums), adding to the row of the
 * group and stripe if there is one.
 */
static void
agg_add_query(const AggFold *fold)
{
	AggSpec    *spec = fold->spec;
	const AggStripeTable *t = &spec->target;
	int			nargs = 1 + t->nkeys + 1 + t->nsums;
	const char *columns[1 + AGG_MAX_KEYS + 1 + AGG_MAX_SUMS];
	const char *names[1 + AGG_MAX_KEYS + 1 + AGG_MAX_SUMS];	/* of the unnested arrays */
	Oid			types[1 + AGG_MAX_KEYS + 1 + AGG_MAX_SUMS];
	StringInfoData q;
	int			n = 0;

	for (int i = 0; i < t->nkeys; i++)
	{
		columns[n] = t->key_column[i];
		names[n] = spec->key_kind[i] == AGG_KEY_ENUM
			? psprintf("u.k%d::%s", i + 1, format_type_be_qualified(fold->key_source_type[i]))
			: psprintf("u.k%d", i + 1);
		types[n++] = get_array_type(agg_sql_key_type(fold, i));
	}
	columns[n] = "stripe";
	names[n] = "u.st";
	types[n++] = INT4ARRAYOID;
	columns[n] = t->count_column;
	names[n] = "u.n";
	types[n++] = INT8ARRAYOID;
	for (int i = 0; i < t->nsums; i++)
	{
		columns[n] = t->sum_column[i];
		names[n] = psprintf("u.s%d", i + 1);
		types[n++] = NUMERICARRAYOID;
	}
	Assert(n == nargs && nargs <= (int) lengthof(spec->add.argtypes));

	initStringInfo(&q);
	appendStringInfo(&q, "INSERT INTO crm_internal.%s AS a (", quote_identifier(t->table));
	for (int i = 0; i < n; i++)
		appendStringInfo(&q, i > 0 ? ", %s" : "%s", quote_identifier(columns[i]));
	appendStringInfoString(&q, ") SELECT ");
	for (int i = 0; i < n; i++)
		appendStringInfo(&q, i > 0 ? ", %s" : "%s", names[i]);
	/* the arrays in the order agg_write_groups passes them: stripes first */
	appendStringInfoString(&q, " FROM ROWS FROM (");
	for (int i = 0; i < nargs; i++)
		appendStringInfo(&q, i > 0 ? ", pg_catalog.unnest($%d)" : "pg_catalog.unnest($%d)", i + 1);
	appendStringInfoString(&q, ") AS u (st");
	for (int i = 0; i < t->nkeys; i++)
		appendStringInfo(&q, ", k%d", i + 1);
	appendStringInfoString(&q, ", n");
	for (int i = 0; i < t->nsums; i++)
		appendStringInfo(&q, ", s%d", i + 1);
	appendStringInfoString(&q, ") ON CONFLICT (");
	for (int i = 0; i < t->nkeys; i++)
		appendStringInfo(&q, "%s, ", quote_identifier(t->key_column[i]));
	appendStringInfoString(&q, "stripe) DO UPDATE SET ");
	for (int i = t->nkeys + 1; i < n; i++)
	{
		const char *c = quote_identifier(columns[i]);

		appendStringInfo(&q, i > t->nkeys + 1 ? ", %s = a.%s OPERATOR(pg_catalog.+) EXCLUDED.%s"
						 : "%s = a.%s OPERATOR(pg_catalog.+) EXCLUDED.%s", c, c, c);
	}

	spec->add.nargs = nargs;
	spec->add.argtypes[0] = INT4ARRAYOID;
	for (int i = 0; i < t->nkeys; i++)
		spec->add.argtypes[1 + i] = types[i];
	for (int i = t->nkeys + 1; i < n; i++)
		spec->add.argtypes[i] = types[i];
	spec->add.sql = MemoryContextStrdup(TopMemoryContext, q.data);
	pfree(q.data);
}

/*
 * Add the changes of every group that changed: in place where this backend's
 * stripe has the group's row, the rest in one statement that unnests one
 * array per column (stripes chosen by the writer too); returns
 * whether SPI is open.
 */
static bool
agg_write_groups(AggFold *fold, bool connected)
{
	AggSpec    *spec = fold->spec;
	int			ngroups = fold->ngroups;
	Datum	   *stripes;
	Datum	   *cols[AGG_MAX_KEYS + 1 + AGG_MAX_SUMS];
	int			ncols = spec->target.nkeys + 1 + spec->target.nsums;
	Datum		values[1 + AGG_MAX_KEYS + 1 + AGG_MAX_SUMS];
	char		nulls[1 + AGG_MAX_KEYS + 1 + AGG_MAX_SUMS];
	AggStripeWriter *writer = NULL;
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
		int32		stripe = CRM_BACKEND_ID;	/* a table without primary key */
		int			col = 0;

		for (int i = 0; i < spec->target.nsums && !changed; i++)
			changed = !agg_is_zero(&group->sums[i]);
		if (!changed)
			continue;
		if (!opened)
		{
			writer = crm_stripes_open(&spec->target);
			if (writer != NULL)
				crm_stripes_many(writer, ngroups - g);
			opened = true;
		}
		if (writer != NULL)
		{
			bool		written;

			stripe = crm_stripes_add(writer, group, &written);
			if (written)
				continue;
		}
		stripes[n] = Int32GetDatum(stripe);
		for (int i = 0; i < spec->target.nkeys; i++)
			cols[col++][n] = spec->key_kind[i] == AGG_KEY_ENUM
				? CStringGetTextDatum(OidOutputFunctionCall(fold->key_output[i], group->keys[i]))
				: group->keys[i];
		cols[col++][n] = Int64GetDatum(group->count);
		for (int i = 0; i < spec->target.nsums; i++)
			cols[col++][n] = agg_sum_numeric(&group->sums[i]);
		n++;
	}
	if (writer != NULL)
		crm_stripes_close(writer);
	if (n == 0)
		return connected;		/* all added in place, or every change cancelled out */

	values[0] = agg_array(stripes, n, INT4OID);
	for (int i = 0; i < spec->target.nkeys; i++)
		values[1 + i] = agg_array(cols[i], n, agg_sql_key_type(fold, i));
	values[1 + spec->target.nkeys] = agg_array(cols[spec->target.nkeys], n, INT8OID);
	for (int i = 0; i < spec->target.nsums; i++)
		values[2 + spec->target.nkeys + i] = agg_array(cols[spec->target.nkeys + 1 + i], n, NUMERICOID);
	memset(nulls, ' ', 1 + ncols);
	if (!connected)
	{
		crm_spi_connect();
		connected = true;
	}
	if (spec->add.sql == NULL)
		agg_add_query(fold);
	crm_query_run_as_owner(&spec->add, values, nulls, 0);
	return connected;
}

/* crm_aggregates_maintain -- trigger crm_internal.aggregates_maintain() */
PG_FUNCTION_INFO_V1(crm_aggregates_maintain);
Datum
crm_aggregates_maintain(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "aggregates_maintain", false, false);
	TriggerEvent event = trigdata->tg_event;
	const char *relname = RelationGetRelationName(trigdata->tg_relation);
	AggSpec    *specs[AGG_MAX_SPECS];
	int			nspecs = 0;
	bool		connected = false;

	if (TRIGGER_FIRED_FOR_ROW(event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("crm_internal.aggregates_maintain() must be fired FOR EACH STATEMENT")));
	for (int a = 0; a < (int) AGG_NSPECS; a++)
		if (strcmp(relname, agg_specs[a].source) == 0 && agg_spec_present(&agg_specs[a], false))
		{
			Assert(nspecs < AGG_MAX_SPECS);
			agg_spec_keys(&agg_specs[a]);
			specs[nspecs++] = &agg_specs[a];
		}
	if (nspecs == 0)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("crm_internal.aggregates_maintain() does not maintain aggregates of table \"%s\"",
						relname)));

	if (TRIGGER_FIRED_BY_TRUNCATE(event))
	{
		crm_spi_connect();
		for (int i = 0; i < nspecs; i++)
		{
			if (specs[i]->empty.sql == NULL)
				specs[i]->empty.sql = MemoryContextStrdup(TopMemoryContext,
														  psprintf("DELETE FROM crm_internal.%s",
																   quote_identifier(specs[i]->target.table)));
			crm_query_run_latest_as_owner(&specs[i]->empty, NULL, NULL, 0);
		}
		crm_spi_finish();
		return PointerGetDatum(NULL);
	}

	{
		TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
		TupleTableSlot *slot = MakeSingleTupleTableSlot(tupdesc, &TTSOpsMinimalTuple);
		MemoryContext row = AllocSetContextCreate(CurrentMemoryContext, "crm aggregate row",
												  ALLOCSET_DEFAULT_SIZES);
		AggFold		folds[AGG_MAX_SPECS];
		int			nfolds = nspecs;

		for (int i = 0; i < nfolds; i++)
			agg_fold_init(&folds[i], specs[i], tupdesc, row);
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
		crm_spi_finish();
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

/* crm_aggregates_compaction_lock -- crm_internal.aggregates_compaction_lock() */
PG_FUNCTION_INFO_V1(crm_aggregates_compaction_lock);
Datum
crm_aggregates_compaction_lock(PG_FUNCTION_ARGS)
{
	CrmLock		lock = crm_lock_global(CRM_LOCK_COMPACTION);

	(void) fcinfo;
	crm_lock_all(&lock, 1);
	PG_RETURN_VOID();
}
