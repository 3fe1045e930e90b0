/*
 * append_rows.c: appends rows to one of the extension's own log tables
 * (crm.change_log, crm.opportunity_history) below SQL.
 *
 * Why it exists: the change log and the histories get one row for every row
 * a statement changes.  Written by a kept INSERT ... SELECT FROM unnest() of
 * arrays, each entry is first copied into an array, then out of it by
 * unnest's tuplestore, then projected (and the change log's text parsed as
 * jsonb) before it is inserted; and a single-row statement pays for the SPI
 * call, its snapshot and its executor start-up.  Here each entry is formed
 * once, in a slot, and inserted as logical replication's apply inserts a
 * row: the column defaults evaluated (the identity, changed_at), NOT NULL
 * and CHECK constraints checked, the row inserted and its index entries
 * made, the row triggers of the table fired (a foreign key's check, or a
 * DBA's trigger) in a query level of their own.
 *
 * Rows are written in batches of up to APPEND_BATCH_ROWS, as COPY writes
 * them: each row's defaults and constraints as it comes, then the batch's
 * rows stored by one table_multi_insert() (the heap fills a page with one
 * WAL record and one buffer lock), then each row's index entries made and
 * its AFTER row triggers queued, in the order of the rows.  Nothing reads
 * the table between two rows of an appender, and the row triggers fire at
 * crm_append_end() either way, so a batch is what one row at a time would
 * have left.  A table with BEFORE row triggers, which see and may change or
 * skip each row, or with stored generated columns, or a partition, gets one
 * row at a time.
 *
 * What it does not do: statement triggers fire only for a statement.  When
 * the table has any INSERT statement trigger (none are installed; a DBA may
 * add one, say, to forward entries), the entries are written by one
 * INSERT ... SELECT FROM unnest() per crm_append_end() instead, as before,
 * and the trigger fires once for them with all of them in its transition
 * table.
 *
 * Callers pass each column's value in the column's own type (an OID for a
 * regrole or regclass, a jsonb for jsonb): no cast is applied.  A column
 * with a type modifier or of a domain type (a DBA's numeric(8,2), a
 * varchar(3)) gets its value coerced as an INSERT coerces it (length,
 * domain constraints); a column whose type a DBA changed to another type
 * stops the write with 42804 (the target declares each value's type),
 * rather than store a value of one type as another.
 *
 * Rights: the rows are the extension's own; they are written as the
 * extension owner (as crm_query_run_as_owner() ran the INSERT), so that row
 * triggers run with the owner's rights, and row security does not apply to
 * the owner (SECURITY_NOFORCE_RLS).  Users have no INSERT on these tables.
 *
 * Kept between statements, per target: the table's oid, the attribute
 * numbers and types of the target's columns, and the planned default
 * expressions of the others (finding an identity column's sequence reads
 * pg_depend); a relcache invalidation of the table (ALTER TABLE, DROP)
 * forgets them.  An appender copies what it uses of them when it begins,
 * so an invalidation while it is open frees nothing it holds.
 *
 * Locks: the table is opened with RowExclusiveLock, as an INSERT opens it.
 */
#include "crm.h"
#include "compat.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/params.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "rewrite/rewriteHandler.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

/* by statement, the rows are written in statements of at most this many */
#define APPEND_STATEMENT_ROWS	10000

/* directly, the rows are stored in batches of at most this many (COPY's size) */
#define APPEND_BATCH_ROWS	1000

/* what is kept of a target's table between statements (see above) */
typedef struct CrmAppendLayout
{
	Oid			relid;
	AttrNumber	attnum[CRM_APPEND_MAX_COLUMNS];
	Oid			types[CRM_APPEND_MAX_COLUMNS];
	int			ndefaults;
	AttrNumber *default_attnum;
	Expr	  **default_expr;	/* planned */
	Expr	   *typmod_expr[CRM_APPEND_MAX_COLUMNS];	/* planned, or NULL */
	MemoryContext context;
} CrmAppendLayout;

/* the targets with a kept layout, for the invalidation callback */
#define APPEND_MAX_TARGETS	8
static CrmAppendTarget *kept_targets[APPEND_MAX_TARGETS];
static int	nkept_targets = 0;
static bool callback_registered = false;

struct CrmAppender
{
	CrmAppendTarget *target;
	Relation	rel;
	AttrNumber	attnum[CRM_APPEND_MAX_COLUMNS];
	Oid			types[CRM_APPEND_MAX_COLUMNS];
	bool		direct;
	Oid			owner;			/* the extension owner, who writes the rows */
	MemoryContext context;
	int64		nrows;
	/* direct: the executor state the rows are inserted in */
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;
	ExprState **defaults;		/* per attribute: its default, or NULL */
	ExprState  *typmods[CRM_APPEND_MAX_COLUMNS];	/* per target column, or NULL */
	ParamListInfo params;		/* the typmod coercions' input: the values */
	bool		batch;			/* rows stored in batches (see above) */
	TupleTableSlot *batched[APPEND_BATCH_ROWS]; /* made as needed */
	int			nbatched;		/* rows in the batch */
	/* by statement: one array per column */
	ArrayBuildState *arrays[CRM_APPEND_MAX_COLUMNS];
};

/* a relcache invalidation: forget the layouts of that table (or of all) */
static void
layouts_invalidate(Datum arg pg_attribute_unused(), Oid relid)
{
	for (int i = 0; i < nkept_targets; i++)
	{
		CrmAppendLayout *l = kept_targets[i]->layout;

		if (l != NULL && (!OidIsValid(relid) || l->relid == relid))
		{
			kept_targets[i]->layout = NULL;
			MemoryContextDelete(l->context);
		}
	}
}

/*
 * The coercion of a value to a column with a type modifier (a DBA's
 * numeric(8,2) or varchar(3)) or of a domain type (its constraints), of
 * the value of target column c (parameter c + 1, of the column's base
 * type), planned; or NULL.  An INSERT applies it: a value that does not fit
 * fails, or is rounded, as it would there.
 */
static Expr *
typmod_coercion(Form_pg_attribute att, int c)
{
	Param	   *p;
	Node	   *e;

	Oid			base = getBaseType(att->atttypid);

	if (att->atttypmod < 0 && base == att->atttypid)
		return NULL;
	p = makeNode(Param);
	p->paramkind = PARAM_EXTERN;
	p->paramid = c + 1;
	p->paramtype = base;
	p->paramtypmod = -1;
	p->paramcollid = att->attcollation;
	p->location = -1;
	e = coerce_to_target_type(NULL, (Node *) p, base, att->atttypid, att->atttypmod,
							  COERCION_ASSIGNMENT, COERCE_IMPLICIT_CAST, -1);
	if (e == NULL || e == (Node *) p)
		return NULL;
	return expression_planner((Expr *) e);
}

/* the target's layout, read from the open table when none is kept */
static CrmAppendLayout *
target_layout(CrmAppendTarget *t, Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	MemoryContext context;
	MemoryContext old;
	CrmAppendLayout *l;
	bool		kept = false;

	if (t->layout != NULL && t->layout->relid == RelationGetRelid(rel))
		return t->layout;
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(layouts_invalidate, (Datum) 0);
		callback_registered = true;
	}
	for (int i = 0; i < nkept_targets; i++)
		kept = kept || kept_targets[i] == t;
	if (!kept)
	{
		if (nkept_targets == APPEND_MAX_TARGETS)
			elog(ERROR, "crm: more than %d append targets", APPEND_MAX_TARGETS);
		kept_targets[nkept_targets++] = t;
	}
	if (t->layout != NULL)
		MemoryContextDelete(t->layout->context);
	t->layout = NULL;

	/* the values are of the declared types: a column of another type cannot take them */
	for (int c = 0; c < t->ncolumns; c++)
	{
		int			attnum = SPI_fnumber(desc, t->columns[c]);
		Oid			type;

		if (attnum <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of crm.%s is missing", t->columns[c], t->table),
					 errhint("The extension writes it; restore it, or drop and create the extension again.")));
		type = getBaseType(TupleDescAttr(desc, attnum - 1)->atttypid);
		if (OidIsValid(t->types[c]) && type != t->types[c])
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of crm.%s is of type %s, not %s",
							t->columns[c], t->table, format_type_be(type), format_type_be(t->types[c])),
					 errdetail("The extension writes its values as %s.", format_type_be(t->types[c])),
					 errhint("Change it back: ALTER TABLE crm.%s ALTER COLUMN %s TYPE %s.",
							 t->table, quote_identifier(t->columns[c]), format_type_be(t->types[c]))));
	}

	context = AllocSetContextCreate(CacheMemoryContext, "crm append layout", ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(context);
	l = palloc0(sizeof(CrmAppendLayout));
	l->context = context;
	l->relid = RelationGetRelid(rel);
	for (int c = 0; c < t->ncolumns; c++)
	{
		l->attnum[c] = SPI_fnumber(desc, t->columns[c]);
		if (l->attnum[c] <= 0)
			elog(ERROR, "crm: crm.%s has no column %s", t->table, t->columns[c]);
		l->types[c] = TupleDescAttr(desc, l->attnum[c] - 1)->atttypid;
		l->typmod_expr[c] = typmod_coercion(TupleDescAttr(desc, l->attnum[c] - 1), c);
	}
	l->default_attnum = palloc(sizeof(AttrNumber) * desc->natts);
	l->default_expr = palloc(sizeof(Expr *) * desc->natts);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		bool		given = false;
		Node	   *expr;

		for (int c = 0; c < t->ncolumns; c++)
			given = given || l->attnum[c] == att->attnum;
		if (given || att->attisdropped || att->attgenerated)
			continue;
		expr = build_column_default(rel, att->attnum);
		if (expr == NULL)
			continue;
		l->default_attnum[l->ndefaults] = att->attnum;
		l->default_expr[l->ndefaults++] = expression_planner((Expr *) expr);
	}
	MemoryContextSwitchTo(old);
	t->layout = l;
	return l;
}

/* has the table an INSERT trigger that fires per statement? */
static bool
statement_triggers(Relation rel)
{
	TriggerDesc *td = rel->trigdesc;

	return td != NULL && (td->trig_insert_before_statement ||
						  td->trig_insert_after_statement ||
						  td->trig_insert_new_table ||
						  td->trig_insert_instead_row);
}

/* the kept INSERT ... SELECT FROM unnest() of the target's columns */
static SPIPlanPtr
statement_plan(CrmAppender *a)
{
	CrmAppendTarget *t = a->target;
	StringInfoData sql;
	Oid			argtypes[CRM_APPEND_MAX_COLUMNS];
	SPIPlanPtr	plan;

	if (t->plan != NULL)
		return t->plan;
	initStringInfo(&sql);
	appendStringInfo(&sql, "INSERT INTO crm.%s (", quote_identifier(t->table));
	for (int i = 0; i < t->ncolumns; i++)
		appendStringInfo(&sql, "%s%s", i ? ", " : "", quote_identifier(t->columns[i]));
	appendStringInfoString(&sql, ") SELECT * FROM ROWS FROM (");
	for (int i = 0; i < t->ncolumns; i++)
	{
		argtypes[i] = get_array_type(a->types[i]);
		if (!OidIsValid(argtypes[i]))
			elog(ERROR, "crm: no array type for column %s of crm.%s", t->columns[i], t->table);
		appendStringInfo(&sql, "%spg_catalog.unnest($%d)", i ? ", " : "", i + 1);
	}
	appendStringInfoChar(&sql, ')');
	plan = SPI_prepare(sql.data, t->ncolumns, argtypes);
	if (plan == NULL)
		elog(ERROR, "crm: SPI_prepare failed for \"%s\": %s", sql.data, SPI_result_code_string(SPI_result));
	SPI_keepplan(plan);
	t->plan = plan;
	return plan;
}

/* the executor state, the slot and the column defaults of the direct path */
static void
direct_open(CrmAppender *a, CrmAppendLayout *layout)
{
	TupleDesc	desc = RelationGetDescr(a->rel);
	MemoryContext old;
	int			ndefaults = layout->ndefaults;
	AttrNumber *default_attnum;
	Expr	  **default_expr;
	Expr	   *typmod_expr[CRM_APPEND_MAX_COLUMNS];

	a->estate = CreateExecutorState();
	old = MemoryContextSwitchTo(a->estate->es_query_cxt);

	/*
	 * The layout copied first: opening the indexes, or a catalog lookup for
	 * an expression, may take a lock and so accept invalidations, and one
	 * of this table (or a reset of all) frees the kept layout.
	 */
	default_attnum = palloc(sizeof(AttrNumber) * Max(ndefaults, 1));
	default_expr = palloc(sizeof(Expr *) * Max(ndefaults, 1));
	for (int d = 0; d < ndefaults; d++)
	{
		default_attnum[d] = layout->default_attnum[d];
		default_expr[d] = copyObject(layout->default_expr[d]);
	}
	for (int c = 0; c < a->target->ncolumns; c++)
		typmod_expr[c] = copyObject(layout->typmod_expr[c]);
	layout = NULL;

	a->rri = crm_result_relation(a->estate, a->rel);
	/* where the row triggers' events find the table */
	a->estate->es_opened_result_relations = lappend(a->estate->es_opened_result_relations, a->rri);
	ExecOpenIndices(a->rri, false);
	a->slot = ExecInitExtraTupleSlot(a->estate, desc, &TTSOpsVirtual);
	a->defaults = palloc0(sizeof(ExprState *) * desc->natts);
	for (int d = 0; d < ndefaults; d++)
		a->defaults[default_attnum[d] - 1] = ExecInitExpr(default_expr[d], NULL);
	a->params = makeParamList(a->target->ncolumns);
	a->params->numParams = a->target->ncolumns;
	for (int c = 0; c < a->target->ncolumns; c++)
	{
		a->params->params[c].ptype = getBaseType(a->types[c]);
		a->params->params[c].pflags = PARAM_FLAG_CONST;
		if (typmod_expr[c] != NULL)
			a->typmods[c] = ExecInitExpr(typmod_expr[c], NULL);
	}
	GetPerTupleExprContext(a->estate)->ecxt_param_list_info = a->params;
	MemoryContextSwitchTo(old);
	a->batch = !(a->rel->trigdesc != NULL && a->rel->trigdesc->trig_insert_before_row) &&
		!(desc->constr != NULL && desc->constr->has_generated_stored) &&
		!a->rel->rd_rel->relispartition;
	a->nbatched = 0;
	AfterTriggerBeginQuery();
}

/*
 * crm_append_begin -- crm.<target->table> opened for appending rows of the
 * target's columns (the other columns take their defaults).
 */
CrmAppender *
crm_append_begin(CrmAppendTarget *target)
{
	CrmAppender *a = palloc0(sizeof(CrmAppender));
	CrmAppendLayout *layout;

	Assert(target->ncolumns <= CRM_APPEND_MAX_COLUMNS);
	a->target = target;
	a->owner = crm_schema_owner();
	a->rel = table_open(target->layout != NULL ? target->layout->relid : crm_relation_oid(target->table),
						RowExclusiveLock);
	layout = target_layout(target, a->rel);
	memcpy(a->attnum, layout->attnum, sizeof(a->attnum));
	memcpy(a->types, layout->types, sizeof(a->types));
	a->context = AllocSetContextCreate(CurrentMemoryContext, "crm appended rows",
									   ALLOCSET_DEFAULT_SIZES);
	a->direct = !statement_triggers(a->rel) && a->rel->rd_rel->relkind == RELKIND_RELATION;
	if (a->direct)
		direct_open(a, layout);
	else
		for (int c = 0; c < target->ncolumns; c++)
			a->arrays[c] = initArrayResult(a->types[c], a->context, false);
	return a;
}

/* crm_append_column_type -- the type of the target's column c (0-based) */
Oid
crm_append_column_type(CrmAppender *a, int c)
{
	return a->types[c];
}

static void statement_flush(CrmAppender *a);

/* as the extension owner, the way crm_query_run_as_owner() runs a statement */
static void
as_owner(CrmAppender *a, Oid *save_user, int *save_sec)
{
	GetUserIdAndSecContext(save_user, save_sec);
	SetUserIdAndSecContext(a->owner,
						   *save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);
}

/*
 * The batch's rows stored, their index entries made and their AFTER row
 * triggers queued, as ExecSimpleRelationInsert() does for one row; run as
 * the owner.  One row is stored alone (a single-row statement's case).
 */
static void
batch_flush(CrmAppender *a)
{
	ExprContext *econtext = GetPerTupleExprContext(a->estate);
	CommandId	cid = GetCurrentCommandId(true);
	MemoryContext old;

	if (a->nbatched == 0)
		return;
	if (a->nbatched == 1)
		table_tuple_insert(a->rel, a->batched[0], cid, 0, NULL);
	else
		table_multi_insert(a->rel, a->batched, a->nbatched, cid, 0, NULL);
	for (int i = 0; i < a->nbatched; i++)
	{
		List	   *recheck = NIL;

		ResetExprContext(econtext);
		old = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
		if (a->rri->ri_NumIndices > 0)
			recheck = crm_insert_new_index_tuples(a->rri, a->batched[i], a->estate);
		ExecARInsertTriggers(a->estate, a->rri, a->batched[i], recheck, NULL);
		MemoryContextSwitchTo(old);
		ExecClearTuple(a->batched[i]);
	}
	a->nbatched = 0;
}

/* the row in s checked and copied into the batch; the batch stored when full */
static void
batch_add(CrmAppender *a, TupleTableSlot *s)
{
	MemoryContext old;

	if (a->rel->rd_att->constr)
	{
		old = MemoryContextSwitchTo(GetPerTupleExprContext(a->estate)->ecxt_per_tuple_memory);
		ExecConstraints(a->rri, s, a->estate);
		MemoryContextSwitchTo(old);
	}
	if (a->batched[a->nbatched] == NULL)
	{
		old = MemoryContextSwitchTo(a->estate->es_query_cxt);
		a->batched[a->nbatched] = table_slot_create(a->rel, &a->estate->es_tupleTable);
		MemoryContextSwitchTo(old);
	}
	ExecCopySlot(a->batched[a->nbatched++], s);
	if (a->nbatched == APPEND_BATCH_ROWS)
		batch_flush(a);
}

/* crm_append_row -- one row: values[i] (isnull[i]) for the target's column i */
void
crm_append_row(CrmAppender *a, const Datum *values, const bool *isnull)
{
	Oid			save_user;
	int			save_sec;

	if (!a->direct)
	{
		for (int c = 0; c < a->target->ncolumns; c++)
			accumArrayResult(a->arrays[c], values[c], isnull[c], a->types[c], a->context);
		if (++a->nrows >= APPEND_STATEMENT_ROWS)
			statement_flush(a);
		return;
	}
	a->nrows++;
	{
		TupleTableSlot *s = a->slot;
		int			natts = s->tts_tupleDescriptor->natts;
		ExprContext *econtext = GetPerTupleExprContext(a->estate);
		MemoryContext old;

		ResetExprContext(econtext);
		ExecClearTuple(s);
		as_owner(a, &save_user, &save_sec);
		for (int i = 0; i < natts; i++)
		{
			s->tts_isnull[i] = true;
			s->tts_values[i] = (Datum) 0;
			if (a->defaults[i] != NULL)
				s->tts_values[i] = ExecEvalExprSwitchContext(a->defaults[i], econtext, &s->tts_isnull[i]);
		}
		for (int c = 0; c < a->target->ncolumns; c++)
		{
			int			i = a->attnum[c] - 1;

			s->tts_values[i] = values[c];
			s->tts_isnull[i] = isnull[c];
			if (a->typmods[c] != NULL)
			{
				a->params->params[c].value = values[c];
				a->params->params[c].isnull = isnull[c];
				s->tts_values[i] = ExecEvalExprSwitchContext(a->typmods[c], econtext, &s->tts_isnull[i]);
			}
		}
		ExecStoreVirtualTuple(s);
		if (a->batch)
		{
			batch_add(a, s);
			SetUserIdAndSecContext(save_user, save_sec);
			return;
		}
		/*
		 * In the row's memory (reset at the next row): what the insert
		 * leaves in the current context (a copy of the row for a DBA's
		 * BEFORE row trigger) would otherwise pile up until the caller's
		 * SPI_finish, some 300 bytes a row.
		 */
		old = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
		ExecSimpleRelationInsert(a->rri, a->estate, s);
		MemoryContextSwitchTo(old);
		SetUserIdAndSecContext(save_user, save_sec);
	}
}

/* by statement: the rows gathered so far, written by one INSERT */
static void
statement_flush(CrmAppender *a)
{
	Datum		params[CRM_APPEND_MAX_COLUMNS];
	MemoryContext old;
	SPIPlanPtr	plan;
	Oid			save_user;
	int			save_sec;
	int			rc;

	if (a->nrows == 0)
		return;
	old = MemoryContextSwitchTo(a->context);
	for (int c = 0; c < a->target->ncolumns; c++)
		params[c] = makeArrayResult(a->arrays[c], a->context);
	MemoryContextSwitchTo(old);
	crm_spi_connect();
	plan = statement_plan(a);
	as_owner(a, &save_user, &save_sec);
	rc = SPI_execute_plan(plan, params, NULL, false, 0);
	SetUserIdAndSecContext(save_user, save_sec);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "crm: appending to crm.%s failed: %s", a->target->table, SPI_result_code_string(rc));
	crm_spi_finish();
	MemoryContextReset(a->context);
	for (int c = 0; c < a->target->ncolumns; c++)
		a->arrays[c] = initArrayResult(a->types[c], a->context, false);
	a->nrows = 0;
}

/* crm_append_end -- the rows written, their row triggers fired, the table closed */
void
crm_append_end(CrmAppender *a)
{
	if (a->direct)
	{
		Oid			save_user;
		int			save_sec;

		as_owner(a, &save_user, &save_sec);
		batch_flush(a);
		AfterTriggerEndQuery(a->estate);
		SetUserIdAndSecContext(save_user, save_sec);
		ExecCloseIndices(a->rri);
		ExecResetTupleTable(a->estate->es_tupleTable, false);
		FreeExecutorState(a->estate);
	}
	else
		statement_flush(a);
	table_close(a->rel, NoLock);
	MemoryContextDelete(a->context);
	pfree(a);
}
