/*
 * repoint.c: moving every reference to one row over to another -- the
 * catalog walk behind crm.merge_accounts(), merge_contacts() and
 * merge_leads().
 *
 * crm_repoint_references(relid, from, to) finds, at run time, every foreign
 * key that references table relid (pg_constraint, contype 'f'): the
 * extension's own and any a DBA added on their own tables.  For each it runs
 *
 *		UPDATE <referencing table> SET <column> = to WHERE <column> = from
 *
 * as the owner of the referencing table, as core runs the cascaded actions
 * of a foreign key (an owner statement of spi_util.c: security-restricted,
 * search_path pg_catalog, pg_temp, no forced row-level security): rows the
 * caller cannot see are re-pointed too (nothing of them is returned).  For
 * the extension's tables that is the extension owner; a DBA's table is
 * written with its own owner's rights, so its triggers, CHECK constraints
 * and index expressions never run with the extension owner's.  The
 * referencing table's triggers fire as for any update (change log,
 * aggregates, guards).
 *
 * Unique keys.  Where the referencing column is part of a unique index
 * (crm.account_contact's primary key, crm.campaign_member's (campaign_id,
 * lead_id), crm.activity_participant's (activity_id, contact_id), or a DBA's
 * own), a row pointing at "from" may collide with one pointing at "to" on
 * the other columns of the key.  Each such pair is folded into one first:
 * the earliest row (created_at, then primary key; row position without
 * either) is kept, its empty (NULL) columns are filled from the other, rows
 * referencing the other are moved to it (the same routine, recursively,
 * when its primary key is a single integer column) and the other is deleted.
 *
 * Only single-column foreign keys that reference the primary key are
 * supported; any other foreign key on the table is refused with ZC722
 * naming it, before anything is changed (silently leaving it behind would
 * make the delete of the merged row fail or cascade).  Partial and
 * expression unique indexes are not folded: a collision on one fails with
 * unique_violation (23505) and the merge rolls back.
 *
 * Plans.  The statements of each foreign key are built once per backend
 * from the catalog (identifiers quoted, schema-qualified, operators
 * OPERATOR(pg_catalog.x)) and their plans kept, in a cache keyed by the
 * constraint's OID.  A relcache invalidation of the referencing table (ALTER
 * TABLE, CREATE INDEX, DROP ...) or any change of pg_constraint marks
 * entries stale; they are rebuilt at their next use.
 */
#include "crm.h"

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

/* the statements of one unique index a re-pointed column is part of */
typedef struct FoldPlan
{
	CrmQuery	pairs;			/* colliding (kept, dropped) rows, locked */
	CrmQuery	fill;			/* kept row's NULL columns from the dropped row */
	CrmQuery	drop;			/* delete the dropped row */
} FoldPlan;

/* the statements of one foreign key */
typedef struct RepointPlan
{
	Oid			conoid;
	Oid			conrelid;
	Oid			relowner;		/* the referencing table's owner: runs the statements */
	bool		stale;
	bool		int_pk;			/* single integer primary key: recurse on folds */
	CrmQuery	update;
	int			nfolds;
	FoldPlan   *folds;
} RepointPlan;

static RepointPlan **plans = NULL;
static int	nplans = 0;
static int	maxplans = 0;
static bool callbacks_registered = false;

static CrmQuery foreign_keys = {
	"SELECT c.oid, c.conrelid, c.conname::pg_catalog.text,"
	" c.conrelid::pg_catalog.regclass::pg_catalog.text,"
	" (pg_catalog.cardinality(c.conkey) OPERATOR(pg_catalog.=) 1"
	"  AND EXISTS (SELECT 1 FROM pg_catalog.pg_index AS i"
	"               WHERE i.indexrelid OPERATOR(pg_catalog.=) c.conindid AND i.indisprimary"
	"                 AND i.indnkeyatts OPERATOR(pg_catalog.=) 1))"
	" FROM pg_catalog.pg_constraint AS c"
	" WHERE c.contype OPERATOR(pg_catalog.=) 'f' AND c.confrelid OPERATOR(pg_catalog.=) $1"
	"   AND c.conparentid OPERATOR(pg_catalog.=) 0"
	" ORDER BY c.conrelid, c.oid",
	1, {OIDOID}, NULL
};

/* the referencing column and the table's primary key */
static CrmQuery key_columns = {
	"SELECT a.attname::pg_catalog.text, a.attnum,"
	" ARRAY(SELECT pa.attname::pg_catalog.text"
	"         FROM pg_catalog.pg_index AS i,"
	"              pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k (attnum, n)"
	"         JOIN pg_catalog.pg_attribute AS pa ON pa.attrelid OPERATOR(pg_catalog.=) c.conrelid"
	"                                           AND pa.attnum OPERATOR(pg_catalog.=) k.attnum"
	"        WHERE i.indrelid OPERATOR(pg_catalog.=) c.conrelid AND i.indisprimary"
	"        ORDER BY k.n),"
	" EXISTS (SELECT 1 FROM pg_catalog.pg_index AS i"
	"          JOIN pg_catalog.pg_attribute AS pa ON pa.attrelid OPERATOR(pg_catalog.=) c.conrelid"
	"                                            AND pa.attnum OPERATOR(pg_catalog.=) i.indkey[0]"
	"         WHERE i.indrelid OPERATOR(pg_catalog.=) c.conrelid AND i.indisprimary"
	"           AND i.indnkeyatts OPERATOR(pg_catalog.=) 1"
	"           AND pa.atttypid OPERATOR(pg_catalog.=) ANY (ARRAY['pg_catalog.int2'::pg_catalog.regtype,"
	"               'pg_catalog.int4'::pg_catalog.regtype, 'pg_catalog.int8'::pg_catalog.regtype]::pg_catalog.oid[])),"
	" EXISTS (SELECT 1 FROM pg_catalog.pg_attribute AS ca"
	"          WHERE ca.attrelid OPERATOR(pg_catalog.=) c.conrelid AND ca.attname OPERATOR(pg_catalog.=) 'created_at'"
	"            AND NOT ca.attisdropped)"
	" FROM pg_catalog.pg_constraint AS c"
	" JOIN pg_catalog.pg_attribute AS a ON a.attrelid OPERATOR(pg_catalog.=) c.conrelid"
	"                                  AND a.attnum OPERATOR(pg_catalog.=) c.conkey[1]"
	" WHERE c.oid OPERATOR(pg_catalog.=) $1",
	1, {OIDOID}, NULL
};

/* the plain, whole-table unique indexes with the column: their other columns */
static CrmQuery unique_keys = {
	"SELECT ARRAY(SELECT a.attname::pg_catalog.text"
	"               FROM pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k (attnum, n)"
	"               JOIN pg_catalog.pg_attribute AS a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid"
	"                                                AND a.attnum OPERATOR(pg_catalog.=) k.attnum"
	"              WHERE k.attnum OPERATOR(pg_catalog.<>) $2 AND k.n OPERATOR(pg_catalog.<=) i.indnkeyatts"
	"              ORDER BY k.n)"
	" FROM pg_catalog.pg_index AS i"
	" WHERE i.indrelid OPERATOR(pg_catalog.=) $1 AND i.indisunique AND i.indisvalid"
	"   AND i.indpred IS NULL AND i.indexprs IS NULL"
	"   AND $2 OPERATOR(pg_catalog.=) ANY (i.indkey::pg_catalog.int2[])"
	" ORDER BY i.indexrelid",
	2, {OIDOID, INT2OID}, NULL
};

/* the columns a fold may fill */
static CrmQuery fillable_columns = {
	"SELECT a.attname::pg_catalog.text FROM pg_catalog.pg_attribute AS a"
	" WHERE a.attrelid OPERATOR(pg_catalog.=) $1 AND a.attnum OPERATOR(pg_catalog.>) 0"
	"   AND NOT a.attisdropped AND a.attidentity OPERATOR(pg_catalog.=) ''"
	"   AND a.attgenerated OPERATOR(pg_catalog.=) ''"
	"   AND a.attname OPERATOR(pg_catalog.<>) ALL ($2)"
	" ORDER BY a.attnum",
	2, {OIDOID, TEXTARRAYOID}, NULL
};

/* invalidation: a change of a referencing table or of any constraint */
static void
relcache_changed(Datum arg pg_attribute_unused(), Oid relid)
{
	for (int i = 0; i < nplans; i++)
		if (!OidIsValid(relid) || plans[i]->conrelid == relid)
			plans[i]->stale = true;
}

static void
constraints_changed(Datum arg pg_attribute_unused(), int cacheid pg_attribute_unused(),
					uint32 hashvalue pg_attribute_unused())
{
	for (int i = 0; i < nplans; i++)
		plans[i]->stale = true;
}

static void
free_query(CrmQuery *q)
{
	if (q->plan != NULL)
		SPI_freeplan(q->plan);
	q->plan = NULL;
	if (q->sql != NULL)
		pfree((void *) q->sql);
	q->sql = NULL;
}

static void
set_query(CrmQuery *q, const char *sql, int nargs, Oid t1, Oid t2)
{
	q->sql = MemoryContextStrdup(TopMemoryContext, sql);
	q->nargs = nargs;
	q->argtypes[0] = t1;
	q->argtypes[1] = t2;
	q->plan = NULL;
}

/* a text[] of the strings of a C array (for $n parameters) */
static Datum
text_array(char **items, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		elems[i] = CStringGetTextDatum(items[i]);
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* "a.x, a.y" -- a list of columns of the row alias */
static void
append_columns(StringInfo buf, const char *alias, char **cols, int n)
{
	for (int i = 0; i < n; i++)
		appendStringInfo(buf, "%s%s.%s", i > 0 ? ", " : "", alias, quote_identifier(cols[i]));
}

static char **
text_array_items(Datum array, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	char	  **items;

	deconstruct_array(DatumGetArrayTypeP(array), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, n);
	items = palloc(sizeof(char *) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
		items[i] = TextDatumGetCString(elems[i]);
	return items;
}

/* build_fold -- the statements folding colliding rows on one unique index */
static void
build_fold(FoldPlan *fold, Oid conrelid, const char *table, const char *col,
		   char **others, int nothers, char **pk, int npk, bool int_pk, bool has_created)
{
	StringInfoData buf;
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	char	  **skip;
	int			nskip = 0;
	int			nfill;
	char	  **fill;

	/* pairs: r points at from ($1), s at to ($2), equal on the other columns */
	initStringInfo(&buf);
	appendStringInfoString(&buf, "SELECT r.ctid, s.ctid, ");
	if (has_created || npk > 0)
	{
		appendStringInfoString(&buf, "ROW(");
		if (has_created)
			appendStringInfo(&buf, "r.created_at%s", npk > 0 ? ", " : "");
		append_columns(&buf, "r", pk, npk);
		appendStringInfoString(&buf, ") OPERATOR(pg_catalog.<) ROW(");
		if (has_created)
			appendStringInfo(&buf, "s.created_at%s", npk > 0 ? ", " : "");
		append_columns(&buf, "s", pk, npk);
		appendStringInfoString(&buf, ")");
	}
	else
		appendStringInfoString(&buf, "r.ctid OPERATOR(pg_catalog.<) s.ctid");
	if (int_pk)
		appendStringInfo(&buf, ", r.%s::pg_catalog.int8, s.%s::pg_catalog.int8",
						 quote_identifier(pk[0]), quote_identifier(pk[0]));
	appendStringInfo(&buf, " FROM %s AS r JOIN %s AS s ON s.%s OPERATOR(pg_catalog.=) $2",
					 table, table, quote_identifier(col));
	for (int i = 0; i < nothers; i++)
		appendStringInfo(&buf, " AND s.%s OPERATOR(pg_catalog.=) r.%s",
						 quote_identifier(others[i]), quote_identifier(others[i]));
	appendStringInfo(&buf, " WHERE r.%s OPERATOR(pg_catalog.=) $1 FOR UPDATE OF r, s",
					 quote_identifier(col));
	set_query(&fold->pairs, buf.data, 2, INT8OID, INT8OID);

	/* fill: every plain column but the key's, NULL ones from the dropped row */
	skip = palloc(sizeof(char *) * (nothers + 1));
	skip[nskip++] = (char *) col;
	for (int i = 0; i < nothers; i++)
		skip[nskip++] = others[i];
	values[0] = ObjectIdGetDatum(conrelid);
	values[1] = text_array(skip, nskip);
	crm_query_run(&fillable_columns, values, nulls, 0);
	nfill = (int) SPI_processed;
	fill = palloc(sizeof(char *) * Max(nfill, 1));
	for (int i = 0; i < nfill; i++)
		fill[i] = crm_result_text(i, 1);
	resetStringInfo(&buf);
	if (nfill == 0)
		appendStringInfo(&buf, "SELECT $1, $2");
	else
	{
		appendStringInfo(&buf, "UPDATE %s AS k SET ", table);
		for (int i = 0; i < nfill; i++)
			appendStringInfo(&buf, "%s%s = COALESCE(k.%s, d.%s)", i > 0 ? ", " : "",
							 quote_identifier(fill[i]), quote_identifier(fill[i]),
							 quote_identifier(fill[i]));
		appendStringInfo(&buf, " FROM %s AS d WHERE k.ctid OPERATOR(pg_catalog.=) $1"
						 " AND d.ctid OPERATOR(pg_catalog.=) $2", table);
	}
	set_query(&fold->fill, buf.data, 2, TIDOID, TIDOID);

	resetStringInfo(&buf);
	appendStringInfo(&buf, "DELETE FROM %s AS d WHERE d.ctid OPERATOR(pg_catalog.=) $1", table);
	set_query(&fold->drop, buf.data, 1, TIDOID, InvalidOid);
	pfree(buf.data);
}

/* table_owner -- the owner of a table (an ALTER ... OWNER makes plans stale) */
static Oid
table_owner(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "crm: relation %u is gone", relid);
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

/* build_plan -- the statements of one foreign key, from the catalog */
static void
build_plan(RepointPlan *p)
{
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	char	   *col;
	int16		attnum;
	bool		isnull;
	char	  **pk;
	int			npk;
	bool		has_created;
	char	   *table;
	int			nkeys;
	Datum	   *keys;
	StringInfoData buf;

	table = quote_qualified_identifier(get_namespace_name(get_rel_namespace(p->conrelid)),
									   get_rel_name(p->conrelid));
	p->relowner = table_owner(p->conrelid);
	values[0] = ObjectIdGetDatum(p->conoid);
	crm_query_run(&key_columns, values, nulls, 0);
	if (SPI_processed != 1)
		elog(ERROR, "crm: constraint %u is gone", p->conoid);
	col = crm_result_text(0, 1);
	attnum = DatumGetInt16(crm_result_datum(0, 2, &isnull));
	pk = text_array_items(crm_result_datum(0, 3, &isnull), &npk);
	p->int_pk = DatumGetBool(crm_result_datum(0, 4, &isnull));
	has_created = DatumGetBool(crm_result_datum(0, 5, &isnull));

	initStringInfo(&buf);
	appendStringInfo(&buf, "UPDATE %s AS t SET %s = $2 WHERE t.%s OPERATOR(pg_catalog.=) $1",
					 table, quote_identifier(col), quote_identifier(col));
	set_query(&p->update, buf.data, 2, INT8OID, INT8OID);
	pfree(buf.data);

	values[0] = ObjectIdGetDatum(p->conrelid);
	values[1] = Int16GetDatum(attnum);
	crm_query_run(&unique_keys, values, nulls, 0);
	nkeys = (int) SPI_processed;
	keys = palloc(sizeof(Datum) * Max(nkeys, 1));
	for (int i = 0; i < nkeys; i++)
		keys[i] = datumCopy(crm_result_datum(i, 1, &isnull), false, -1);
	p->folds = MemoryContextAllocZero(TopMemoryContext, sizeof(FoldPlan) * Max(nkeys, 1));
	p->nfolds = nkeys;
	for (int i = 0; i < nkeys; i++)
	{
		int			nothers;
		char	  **others = text_array_items(keys[i], &nothers);

		build_fold(&p->folds[i], p->conrelid, table, col, others, nothers, pk, npk,
				   p->int_pk, has_created);
	}
	p->stale = false;
}

/* plan_for -- the kept statements of a foreign key, built or rebuilt as needed */
static RepointPlan *
plan_for(Oid conoid, Oid conrelid)
{
	RepointPlan *p = NULL;

	if (!callbacks_registered)
	{
		CacheRegisterRelcacheCallback(relcache_changed, (Datum) 0);
		CacheRegisterSyscacheCallback(CONSTROID, constraints_changed, (Datum) 0);
		callbacks_registered = true;
	}
	for (int i = 0; i < nplans; i++)
		if (plans[i]->conoid == conoid)
			p = plans[i];
	if (p != NULL && !p->stale && p->conrelid == conrelid)
		return p;
	if (p == NULL)
	{
		if (nplans == maxplans)
		{
			maxplans = maxplans == 0 ? 32 : maxplans * 2;
			plans = plans == NULL
				? MemoryContextAlloc(TopMemoryContext, sizeof(RepointPlan *) * maxplans)
				: repalloc(plans, sizeof(RepointPlan *) * maxplans);
		}
		p = MemoryContextAllocZero(TopMemoryContext, sizeof(RepointPlan));
		plans[nplans++] = p;
	}
	else
	{
		free_query(&p->update);
		for (int i = 0; i < p->nfolds; i++)
		{
			free_query(&p->folds[i].pairs);
			free_query(&p->folds[i].fill);
			free_query(&p->folds[i].drop);
		}
		if (p->folds != NULL)
			pfree(p->folds);
		p->folds = NULL;
		p->nfolds = 0;
	}
	p->conoid = conoid;
	p->conrelid = conrelid;
	p->stale = true;
	build_plan(p);
	return p;
}

/* a pair of colliding rows, copied out of the SPI result */
typedef struct FoldPair
{
	Datum		keep;
	Datum		drop;
	int64		keep_id;
	int64		drop_id;
} FoldPair;

/* fold -- merge the rows of one unique key that re-pointing would make collide */
static void
fold(RepointPlan *p, FoldPlan *f, int64 from_id, int64 to_id)
{
	Datum		values[2] = {Int64GetDatum(from_id), Int64GetDatum(to_id)};
	char		nulls[2] = {' ', ' '};
	int			npairs;
	FoldPair   *pairs;
	bool		isnull;

	crm_query_run_as_table_owner(p->relowner, &f->pairs, values, nulls, 0);
	npairs = (int) SPI_processed;
	pairs = palloc(sizeof(FoldPair) * Max(npairs, 1));
	for (int i = 0; i < npairs; i++)
	{
		/* keep the earlier row: r (pointing at from) when it is */
		bool		keep_r = DatumGetBool(crm_result_datum(i, 3, &isnull)) && !isnull;
		Datum		r = datumCopy(crm_result_datum(i, 1, &isnull), false, sizeof(ItemPointerData));
		Datum		s = datumCopy(crm_result_datum(i, 2, &isnull), false, sizeof(ItemPointerData));

		pairs[i].keep = keep_r ? r : s;
		pairs[i].drop = keep_r ? s : r;
		if (p->int_pk)
		{
			int64		rid = crm_result_int64(i, 4, &isnull);
			int64		sid = crm_result_int64(i, 5, &isnull);

			pairs[i].keep_id = keep_r ? rid : sid;
			pairs[i].drop_id = keep_r ? sid : rid;
		}
	}
	for (int i = 0; i < npairs; i++)
	{
		values[0] = pairs[i].keep;
		values[1] = pairs[i].drop;
		crm_query_run_as_table_owner(p->relowner, &f->fill, values, nulls, 0);
		if (p->int_pk)
			crm_repoint_references(p->conrelid, pairs[i].drop_id, pairs[i].keep_id);
		values[0] = pairs[i].drop;
		crm_query_run_as_table_owner(p->relowner, &f->drop, values, nulls, 0);
	}
}

/* a foreign key, copied out of the SPI result */
typedef struct ForeignKey
{
	Oid			conoid;
	Oid			conrelid;
} ForeignKey;

/*
 * crm_repoint_references -- make every row that references row from_id of
 * table relid (through a foreign key) reference to_id instead, folding rows
 * a unique key would not allow twice.  Runs inside the caller's SPI
 * connection; the statements run as the referencing tables' owners.
 */
void
crm_repoint_references(Oid relid, int64 from_id, int64 to_id)
{
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	int			nkeys;
	ForeignKey *keys;
	bool		isnull;

	check_stack_depth();
	values[0] = ObjectIdGetDatum(relid);
	crm_query_run(&foreign_keys, values, nulls, 0);
	nkeys = (int) SPI_processed;
	keys = palloc(sizeof(ForeignKey) * Max(nkeys, 1));
	/* refuse an unsupported key before changing anything */
	for (int i = 0; i < nkeys; i++)
	{
		keys[i].conoid = DatumGetObjectId(crm_result_datum(i, 1, &isnull));
		keys[i].conrelid = DatumGetObjectId(crm_result_datum(i, 2, &isnull));
		if (!DatumGetBool(crm_result_datum(i, 5, &isnull)))
			ereport(ERROR,
					(errcode(ERRCODE_CRM_MERGE_FOREIGN_KEY),
					 errmsg("cannot re-point foreign key \"%s\" on table %s",
							crm_result_text(i, 3), crm_result_text(i, 4)),
					 errdetail("A merge re-points only single-column foreign keys that reference the primary key of %s.",
							   get_rel_name(relid)),
					 errhint("Re-point or drop the constraint's rows by hand, or change the constraint, then merge again.")));
	}
	for (int i = 0; i < nkeys; i++)
	{
		RepointPlan *p = plan_for(keys[i].conoid, keys[i].conrelid);

		values[0] = Int64GetDatum(from_id);
		values[1] = Int64GetDatum(to_id);
		for (int f = 0; f < p->nfolds; f++)
			fold(p, &p->folds[f], from_id, to_id);
		values[0] = Int64GetDatum(from_id);
		values[1] = Int64GetDatum(to_id);
		crm_query_run_as_table_owner(p->relowner, &p->update, values, nulls, 0);
	}
}
