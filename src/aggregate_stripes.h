/*
 * aggregate_stripes.h: what the aggregates' fold (aggregates.c) hands the
 * stripe writer (aggregate_stripes.c): the groups a statement changed, and
 * the aggregate table to add them to.
 */
#ifndef CRM_AGGREGATE_STRIPES_H
#define CRM_AGGREGATE_STRIPES_H

#include "crm.h"

#define AGG_MAX_KEYS 5
#define AGG_MAX_SUMS 2

/* A group's key serialized for hashing: the same bytes for the same group. */
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

/* A group and its change: key columns in the aggregate table's order. */
typedef struct AggGroup
{
	AggGroupKey key;			/* must be first */
	Datum		keys[AGG_MAX_KEYS];
	int64		count;
	AggSum		sums[AGG_MAX_SUMS];
} AggGroup;

/*
 * An aggregate table in schema crm: its group key columns, the stripe
 * column "stripe", a count and sums.  cache is the writer's: what it keeps
 * of the table between statements (NULL until the first).
 */
typedef struct AggStripeTable
{
	const char *aggregate;		/* the aggregate's name, for messages */
	const char *table;
	int			nkeys;
	const char *key_column[AGG_MAX_KEYS];
	const char *count_column;
	int			nsums;
	const char *sum_column[AGG_MAX_SUMS];
	struct AggStripeCache *cache;
} AggStripeTable;

typedef struct AggStripeWriter AggStripeWriter;

/* aggregate_stripes.c */
extern AggStripeWriter *crm_stripes_open(AggStripeTable *table);
extern void crm_stripes_many(AggStripeWriter *w, long ngroups);
extern int32 crm_stripes_add(AggStripeWriter *w, const AggGroup *group, bool *written);
extern void crm_stripes_close(AggStripeWriter *w);
extern struct HTAB *crm_group_table(const char *name, Size entrysize, long nelem,
									MemoryContext cxt);

/* a sum as a numeric */
static inline Datum
agg_sum_numeric(const AggSum *sum)
{
	return sum->numeric != (Datum) 0 ? sum->numeric : crm_cents_numeric(sum->cents);
}

#endif							/* CRM_AGGREGATE_STRIPES_H */
