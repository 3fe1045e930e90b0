/*
 * line_items.c: line items of opportunities and quotes.
 *
 * crm_internal.price_line_item()  BEFORE INSERT/UPDATE row trigger: the parent
 *     (opportunity or quote), which the user must be able to see (else it
 *     does not exist for them), is locked FOR NO KEY UPDATE -- which serialises
 *     line edits per parent -- and adopts its account's price book (when
 *     active) or else the standard book when it has none; the product must be
 *     active with an active entry in that book, and the book valid today
 *     (CURRENT_DATE between valid_from and valid_to, ZC102); a missing
 *     unit_price is the price of the entry's quantity tier (the tier with the
 *     highest min_quantity not above the line's quantity) or else the entry's
 *     price.  Tiers are read with the statement's snapshot: a tier edited
 *     concurrently prices lines from its commit on; lines already priced keep
 *     their price (no lock is needed: no invariant ties lines to tiers).
 * crm_internal.sum_line_items()   AFTER statement trigger, from the transition tables:
 *     locks every parent whose lines changed, in id order, then in a new
 *     statement -- so with a snapshot taken after the locks were granted --
 *     sets the opportunity amount / quote subtotal to the sum of its lines.
 *     Two sessions editing lines of one parent therefore cannot lose each
 *     other's lines: the second waits for the first to commit, then sums both.
 *     A quote's lines change only while it is Draft.
 *
 * The triggers' one argument names the parent table, as in
 * EXECUTE FUNCTION crm_internal.price_line_item('quote'): lines of
 * crm.opportunity_line_item belong to crm.opportunity (opportunity_id,
 * amount), lines of crm.quote_line_item to crm.quote (quote_id, subtotal).
 */
#include "crm.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/memutils.h"
#include "utils/rel.h"

typedef enum ParentKind
{
	PARENT_OPPORTUNITY,
	PARENT_QUOTE
} ParentKind;

typedef struct ParentInfo
{
	const char *table;			/* parent table in schema crm */
	const char *line_table;		/* line table */
	const char *fk;				/* line column naming the parent */
	const char *sum_column;		/* parent column holding the sum */
} ParentInfo;

static const ParentInfo parents[] = {
	{"opportunity", "opportunity_line_item", "opportunity_id", "amount"},
	{"quote", "quote_line_item", "quote_id", "subtotal"}
};

/*
 * parent_kind -- the parent table the trigger's one argument names
 * ('opportunity' or 'quote'); triggers of versions before 0.6 have no
 * argument and are known by their table
 */
static ParentKind
parent_kind(TriggerData *trigdata)
{
	Trigger    *trigger = trigdata->tg_trigger;
	const char *name = RelationGetRelationName(trigdata->tg_relation);

	for (int kind = PARENT_OPPORTUNITY; kind <= PARENT_QUOTE; kind++)
		if (trigger->tgnargs == 1 ? strcmp(trigger->tgargs[0], parents[kind].table) == 0
			: strcmp(name, parents[kind].line_table) == 0)
			return (ParentKind) kind;
	ereport(ERROR,
			(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
			 errmsg("crm line item triggers take one argument, 'opportunity' or 'quote'")));
	pg_unreachable();
}

/* CrmQuery with SQL built once from a format and the parent's names */
static void
build_query(CrmQuery *q, const char *fmt, const ParentInfo *p, int nargs, Oid arg0, Oid arg1)
{
	if (q->sql != NULL)
		return;
	q->nargs = nargs;
	q->argtypes[0] = arg0;
	q->argtypes[1] = arg1;
	q->sql = MemoryContextStrdup(TopMemoryContext,
								 psprintf(fmt, p->table, p->table, p->table, p->table));
}

/* the parent as the current user sees it (row-level security applies), and as it is */
static CrmQuery visible_parent[2];
static CrmQuery existing_parent[2];

/* lock the parent, return its price book (adopting the standard one) */
static CrmQuery lock_parent[2];
static CrmQuery adopt_standard_book[2][2];	/* [kind][before 0.7, 0.7] */

/* [0]: before 0.7 (no tiers), [1]: with tiers */
static CrmQuery entry_price[2];

static CrmQuery *
entry_price_query(void)
{
	bool		tiers = crm_has_price_rules();
	CrmQuery   *q = &entry_price[tiers ? 1 : 0];

	if (q->sql == NULL)
	{
		q->nargs = 3;
		q->argtypes[0] = INT8OID;
		q->argtypes[1] = INT8OID;
		q->argtypes[2] = NUMERICOID;
		q->sql = MemoryContextStrdup(TopMemoryContext, psprintf(
			"SELECT p.active, e.active, %s, p.code,"
			"       COALESCE(b.valid_from OPERATOR(pg_catalog.>) CURRENT_DATE, false)"
			"         OR COALESCE(b.valid_to OPERATOR(pg_catalog.<) CURRENT_DATE, false),"
			"       COALESCE(b.valid_from::pg_catalog.text, 'no start'), COALESCE(b.valid_to::pg_catalog.text, 'no end')"
			"  FROM crm.product AS p"
			"  LEFT JOIN crm.price_book_entry AS e"
			"    ON e.product_id OPERATOR(pg_catalog.=) p.id AND e.price_book_id OPERATOR(pg_catalog.=) $2"
			"  LEFT JOIN crm.price_book AS b ON b.id OPERATOR(pg_catalog.=) $2"
			" WHERE p.id OPERATOR(pg_catalog.=) $1",
			crm_price_sql(tiers, "e", "$3")));
	}
	return q;
}

/*
 * Is there such a parent: for the current user (row-level security applies)
 * or at all (as the owner)?  The owner's lock and price lookup of
 * parent_price_book() are only for a parent the user sees, so that nobody
 * locks another owner's row or reads its price book in an error message by
 * adding a line to it.
 */
static bool
parent_found(ParentKind kind, int64 parent_id, bool as_owner)
{
	CrmQuery   *q = as_owner ? &existing_parent[kind] : &visible_parent[kind];
	Datum		values[1] = {Int64GetDatum(parent_id)};
	char		nulls[1] = {' '};

	build_query(q, "SELECT 1 FROM crm.%s AS x WHERE x.id OPERATOR(pg_catalog.=) $1",
				&parents[kind], 1, INT8OID, InvalidOid);
	if (as_owner)
		crm_query_run_as_owner(q, values, nulls, 1);
	else
		crm_query_run(q, values, nulls, 1);
	return SPI_processed > 0;
}

static int64
parent_price_book(ParentKind kind, int64 parent_id)
{
	const ParentInfo *p = &parents[kind];
	Datum		values[1] = {Int64GetDatum(parent_id)};
	char		nulls[1] = {' '};
	bool		isnull;
	int64		book;
	bool		rules = crm_has_price_rules();
	CrmQuery   *adopt;

	build_query(&lock_parent[kind],
				"SELECT x.price_book_id FROM crm.%s AS x WHERE x.id OPERATOR(pg_catalog.=) $1"
				" FOR NO KEY UPDATE OF x", p, 1, INT8OID, InvalidOid);
	crm_query_run_as_owner(&lock_parent[kind], values, nulls, 1);
	if (SPI_processed == 0)
		return 0;				/* no such parent */
	book = crm_result_int64(0, 1, &isnull);
	if (!isnull)
		return book;

	adopt = &adopt_standard_book[kind][rules ? 1 : 0];
	if (adopt->sql == NULL)
	{
		adopt->nargs = 1;
		adopt->argtypes[0] = INT8OID;
		adopt->sql = MemoryContextStrdup(TopMemoryContext, psprintf(
			"UPDATE crm.%s AS x SET price_book_id = COALESCE(%s, b.id) FROM crm.price_book AS b"
			" WHERE b.is_standard AND x.id OPERATOR(pg_catalog.=) $1 RETURNING x.price_book_id",
			p->table, crm_account_book_sql(rules, "x.account_id")));
	}
	crm_query_run_as_owner(adopt, values, nulls, 0);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_STANDARD_BOOK),
				 errmsg("there is no standard price book to price %s %lld from", p->table, (long long) parent_id)));
	return crm_result_int64(0, 1, &isnull);
}

/* crm_price_line_item -- trigger crm_internal.price_line_item() */
PG_FUNCTION_INFO_V1(crm_price_line_item);
Datum
crm_price_line_item(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "price_line_item", true, true);
	Relation	rel = trigdata->tg_relation;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	ParentKind	kind = parent_kind(trigdata);
	const ParentInfo *p = &parents[kind];
	bool		is_insert = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event);
	HeapTuple	newtup = is_insert ? trigdata->tg_trigtuple : trigdata->tg_newtuple;
	HeapTuple	oldtup = is_insert ? NULL : trigdata->tg_trigtuple;
	bool		isnull;
	bool		parent_isnull;
	bool		product_isnull;
	int64		parent_id = crm_column_int64(newtup, tupdesc, p->fk, &parent_isnull);
	int64		product_id = crm_column_int64(newtup, tupdesc, "product_id", &product_isnull);
	bool		repriced = is_insert ||
		crm_column_changed(oldtup, newtup, tupdesc, "product_id") ||
		crm_column_changed(oldtup, newtup, tupdesc, p->fk);
	bool		price_missing;
	int64		book;
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};

	(void) heap_getattr(newtup, crm_attnum(tupdesc, "unit_price"), tupdesc, &price_missing);
	if ((!repriced && !price_missing) || parent_isnull || product_isnull)
		return PointerGetDatum(newtup);	/* NOT NULL reports missing keys */

	crm_spi_connect();

	/*
	 * A parent that exists but that the user cannot see is refused as the
	 * row-level security check after this trigger refuses any row pointing
	 * at a hidden one (42501).  Raised here, not left to that check: the
	 * check uses the statement's snapshot, this lookup a newer one, and a
	 * parent given to another owner in between would pass the check
	 * unpriced and fail on the unit_price_priced check (23514) instead.
	 */
	if (!parent_found(kind, parent_id, false) && parent_found(kind, parent_id, true))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errtable(trigdata->tg_relation),
				 errmsg("new row violates row-level security policy for table \"%s\"",
						RelationGetRelationName(rel)),
				 errdetail("The line's %s is not visible to the current role.", p->table)));
	book = parent_price_book(kind, parent_id);
	if (book == 0)				/* before the unit_price_priced check would hide it */
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errtable(trigdata->tg_relation),
				 errmsg("%s %lld does not exist", p->table, (long long) parent_id),
				 errdetail("Key (%s)=(%lld) is not present in table \"%s\".",
						   p->fk, (long long) parent_id, p->table)));

	values[0] = Int64GetDatum(product_id);
	values[1] = Int64GetDatum(book);
	values[2] = heap_getattr(newtup, crm_attnum(tupdesc, "quantity"), tupdesc, &isnull);
	nulls[2] = isnull ? 'n' : ' ';
	crm_query_run_as_owner(entry_price_query(), values, nulls, 1);
	if (SPI_processed > 0)
	{
		bool		product_active = DatumGetBool(crm_result_datum(0, 1, &isnull));
		bool		entry_isnull;
		bool		entry_active = DatumGetBool(crm_result_datum(0, 2, &entry_isnull));
		char	   *code = crm_result_text(0, 4);

		if (repriced && !product_active)
			ereport(ERROR,
					(errcode(ERRCODE_CRM_NOT_IN_PRICE_BOOK),
					 errtable(trigdata->tg_relation),
					 errmsg("product %s is inactive", code),
					 errdetail("Inactive products cannot be added to line items.")));
		if (entry_isnull || !entry_active)
			ereport(ERROR,
					(errcode(ERRCODE_CRM_NOT_IN_PRICE_BOOK),
					 errtable(trigdata->tg_relation),
					 errmsg("product %s has no active price in price book %lld of %s %lld",
							code, (long long) book, p->table, (long long) parent_id),
					 errhint("Add the product to that price book, or choose another product.")));
		if (DatumGetBool(crm_result_datum(0, 5, &isnull)))
			ereport(ERROR,
					(errcode(ERRCODE_CRM_NOT_IN_PRICE_BOOK),
					 errtable(trigdata->tg_relation),
					 errmsg("price book %lld of %s %lld is not valid today", (long long) book,
							p->table, (long long) parent_id),
					 errdetail("Its prices apply from %s to %s; today is %s.",
							   crm_result_text(0, 6), crm_result_text(0, 7),
							   DatumGetCString(DirectFunctionCall1(date_out,
																   DateADTGetDatum(GetSQLCurrentDate())))),
					 errhint("Choose a price book valid today, or extend this one's validity.")));
		if (price_missing)
		{
			Datum		price = SPI_datumTransfer(crm_result_datum(0, 3, &isnull), false, -1);

			newtup = crm_set_column(newtup, tupdesc, "unit_price", price, false);
		}
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errtable(trigdata->tg_relation),
				 errmsg("product %lld does not exist", (long long) product_id),
				 errdetail("Key (product_id)=(%lld) is not present in table \"product\".",
						   (long long) product_id)));
	newtup = SPI_copytuple(newtup);	/* must outlive SPI's memory */
	crm_spi_finish();
	return PointerGetDatum(newtup);
}

/* parents touched by the statement, locked in id order */
static CrmQuery lock_changed_parents[2][3];
static CrmQuery recompute_sums[2];

/* crm_sum_line_items -- trigger crm_internal.sum_line_items() */
PG_FUNCTION_INFO_V1(crm_sum_line_items);
Datum
crm_sum_line_items(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "sum_line_items", false, false);
	TriggerEvent event = trigdata->tg_event;
	ParentKind	kind = parent_kind(trigdata);
	const ParentInfo *p = &parents[kind];
	int			which = TRIGGER_FIRED_BY_INSERT(event) ? 0 : TRIGGER_FIRED_BY_UPDATE(event) ? 1 : 2;
	static const char *const changed_ids[3] = {
		"SELECT n.%s FROM new_rows AS n",
		"SELECT n.%s FROM new_rows AS n UNION SELECT o.%s FROM old_rows AS o",
		"SELECT o.%s FROM old_rows AS o"
	};
	CrmQuery   *lock = &lock_changed_parents[kind][which];
	Datum	   *ids;
	ArrayType  *id_array;
	Datum		values[1];
	char		nulls[1] = {' '};
	uint64		n;

	if (!TRIGGER_FIRED_FOR_STATEMENT(event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errtable(trigdata->tg_relation),
				 errmsg("crm_internal.sum_line_items() must be fired FOR EACH STATEMENT")));

	if (lock->sql == NULL)
	{
		char	   *ids_sql = psprintf(changed_ids[which], p->fk, p->fk);

		lock->nargs = 0;
		lock->sql = MemoryContextStrdup(TopMemoryContext,
										psprintf("SELECT x.id, %s FROM crm.%s AS x"
												 " WHERE x.id OPERATOR(pg_catalog.=) ANY (ARRAY(%s))"
												 " ORDER BY x.id FOR NO KEY UPDATE OF x",
												 kind == PARENT_QUOTE ? "x.status::pg_catalog.text" : "NULL::pg_catalog.text",
												 p->table, ids_sql));
	}
	if (recompute_sums[kind].sql == NULL)
	{
		recompute_sums[kind].nargs = 1;
		recompute_sums[kind].argtypes[0] = INT8ARRAYOID;
		recompute_sums[kind].sql =
			MemoryContextStrdup(TopMemoryContext,
								psprintf("UPDATE crm.%s AS x SET %s = s.total"
										 "  FROM (SELECT y.id, COALESCE((SELECT pg_catalog.sum(l.total) FROM crm.%s AS l"
										 "                               WHERE l.%s OPERATOR(pg_catalog.=) y.id), 0) AS total"
										 "          FROM pg_catalog.unnest($1) AS y(id)) AS s"
										 " WHERE x.id OPERATOR(pg_catalog.=) s.id AND x.%s OPERATOR(pg_catalog.<>) s.total",
										 p->table, p->sum_column, p->line_table, p->fk, p->sum_column));
	}

	crm_spi_connect();
	if (SPI_register_trigger_data(trigdata) != SPI_OK_TD_REGISTER)
		elog(ERROR, "crm: SPI_register_trigger_data failed");
	crm_query_run_as_owner(lock, NULL, NULL, 0);
	n = SPI_processed;
	if (n == 0)
	{
		crm_spi_finish();
		return PointerGetDatum(NULL);
	}
	ids = palloc(n * sizeof(Datum));
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		char	   *status = crm_result_text(i, 2);

		ids[i] = crm_result_datum(i, 1, &isnull);
		if (status != NULL && strcmp(status, "Draft") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_CRM_NOT_EDITABLE),
					 errtable(trigdata->tg_relation),
					 errmsg("quote %lld is %s and its line items cannot change", (long long) DatumGetInt64(ids[i]), status),
					 errdetail("Only a Draft quote can be edited."),
					 errhint("Revise it: a Rejected or Denied quote goes back to Draft.")));
	}
	id_array = construct_array(ids, (int) n, INT8OID, sizeof(int64), true, TYPALIGN_DOUBLE);
	values[0] = PointerGetDatum(id_array);
	crm_permit_push(CRM_PERMIT_LINE_SUM, CRM_PERMIT_ANY_ROW);
	crm_query_run_as_owner(&recompute_sums[kind], values, nulls, 0);
	crm_permit_pop(CRM_PERMIT_LINE_SUM, CRM_PERMIT_ANY_ROW);
	crm_spi_finish();
	return PointerGetDatum(NULL);
}
