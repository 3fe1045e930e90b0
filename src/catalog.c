/*
 * catalog.c: the rules of products and price books.
 *
 * crm_internal.price_book_guard()        deferred constraint trigger: at commit there
 *                               is exactly one standard price book (the unique
 *                               index price_book_one_standard allows at most
 *                               one; this makes it at least one), and after a
 *                               switch it prices every product other books do.
 * crm_internal.price_book_entry_guard()  a product needs an active standard price
 *                               before another book may price it, and keeps
 *                               it while other books do.  The check locks the
 *                               standard entry (FOR SHARE), so a concurrent
 *                               removal of that entry and a new entry in
 *                               another book cannot both commit.
 * crm_internal.account_price_book_guard() an account's default book is active when
 *                               set (ZC104).  Not locked: a book deactivated
 *                               meanwhile is skipped when lines are priced.
 */
#include "crm.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

static CrmQuery count_standard_books = {
	"SELECT pg_catalog.count(*) FROM crm.price_book AS b WHERE b.is_standard",
	0, {InvalidOid}, NULL
};

/* products priced in some book but not (actively) in the standard one */
static CrmQuery priced_without_standard = {
	"SELECT pg_catalog.count(DISTINCT e.product_id) FROM crm.price_book_entry AS e"
	"  JOIN crm.price_book AS b ON b.id OPERATOR(pg_catalog.=) e.price_book_id"
	" WHERE NOT b.is_standard AND e.active"
	"   AND NOT EXISTS (SELECT 1 FROM crm.price_book_entry AS s"
	"                     JOIN crm.price_book AS sb ON sb.id OPERATOR(pg_catalog.=) s.price_book_id"
	"                    WHERE sb.is_standard AND s.active"
	"                      AND s.product_id OPERATOR(pg_catalog.=) e.product_id)",
	0, {InvalidOid}, NULL
};

static CrmQuery book_active = {
	"SELECT b.active FROM crm.price_book AS b WHERE b.id OPERATOR(pg_catalog.=) $1",
	1, {INT8OID}, NULL
};

/*
 * crm_require_active_price_book -- an opportunity or quote may newly choose
 * only an active price book (ZC104).  The caller is connected to SPI.
 */
void
crm_require_active_price_book(int64 book_id)
{
	Datum		values[1] = {Int64GetDatum(book_id)};
	char		nulls[1] = {' '};
	bool		isnull;

	crm_query_run_as_owner(&book_active, values, nulls, 1);
	if (SPI_processed > 0 && !DatumGetBool(crm_result_datum(0, 1, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_CRM_PRICE_BOOK_FIXED),
				 errmsg("price book %lld is inactive", (long long) book_id),
				 errhint("Choose an active price book.")));
}

/*
 * Locked FOR SHARE: a transaction switching the standard book (which updates
 * this row) and one writing an entry of the book wait for each other, so the
 * entry's rule is decided on the book's committed standing; under REPEATABLE
 * READ the lock fails with 40001 when the switch committed since.
 */
static CrmQuery book_is_standard = {
	"SELECT b.is_standard FROM crm.price_book AS b WHERE b.id OPERATOR(pg_catalog.=) $1 FOR SHARE OF b",
	1, {INT8OID}, NULL
};

/* the product's active standard entry, locked against removal */
static CrmQuery lock_standard_entry = {
	"SELECT e.id FROM crm.price_book_entry AS e"
	"  JOIN crm.price_book AS b ON b.id OPERATOR(pg_catalog.=) e.price_book_id"
	" WHERE b.is_standard AND e.active AND e.product_id OPERATOR(pg_catalog.=) $1"
	" FOR SHARE OF e",
	1, {INT8OID}, NULL
};

/* active entries of the product in other books (the product still existing) */
static CrmQuery other_books_pricing = {
	"SELECT pg_catalog.count(*) FROM crm.price_book_entry AS e"
	"  JOIN crm.price_book AS b ON b.id OPERATOR(pg_catalog.=) e.price_book_id"
	"  JOIN crm.product AS p ON p.id OPERATOR(pg_catalog.=) e.product_id"
	" WHERE NOT b.is_standard AND e.active AND e.product_id OPERATOR(pg_catalog.=) $1",
	1, {INT8OID}, NULL
};

/* crm_price_book_guard -- constraint trigger crm_internal.price_book_guard() */
PG_FUNCTION_INFO_V1(crm_price_book_guard);
Datum
crm_price_book_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "price_book_guard", false, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	bool		was_standard = crm_column_is(trigdata->tg_trigtuple, tupdesc, "is_standard", "t");
	bool		is_standard = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) &&
		crm_column_is(trigdata->tg_newtuple, tupdesc, "is_standard", "t");
	bool		isnull;
	int64		n;
	int64		unpriced;

	/* only a change of the standard book matters */
	if (was_standard == is_standard)
		return PointerGetDatum(NULL);

	crm_spi_connect();
	crm_query_run_as_owner(&count_standard_books, NULL, NULL, 1);
	n = crm_result_int64(0, 1, &isnull);
	crm_query_run_as_owner(&priced_without_standard, NULL, NULL, 1);
	unpriced = crm_result_int64(0, 1, &isnull);
	/* REPEATABLE READ: entries of other books added since our snapshot */
	if (n == 1 && unpriced == 0 && crm_query_run_fresh(&priced_without_standard, NULL, NULL, 1) &&
		crm_result_int64(0, 1, &isnull) > 0)
		crm_serialization_failure(psprintf("price book %lld", (long long) crm_column_int64(trigdata->tg_trigtuple, tupdesc, "id", &isnull)), NULL);
	crm_spi_finish();
	if (n == 1 && unpriced > 0)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_NO_STANDARD_PRICE),
				 errtable(trigdata->tg_relation),
				 errmsg("the new standard price book lacks %lld products that other books price", (long long) unpriced),
				 errdetail("Every product priced in another book needs an active price in the standard book."),
				 errhint("Add those products to the new standard book in the same transaction.")));
	if (n != 1)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_STANDARD_BOOK),
				 errtable(trigdata->tg_relation),
				 errmsg("there must be exactly one standard price book"),
				 errdetail("This transaction leaves %lld.", (long long) n),
				 errhint("To switch, unset is_standard on the old book and set it on the new one in one transaction.")));
	return PointerGetDatum(NULL);
}

static bool
is_standard_book(int64 book_id)
{
	Datum		values[1] = {Int64GetDatum(book_id)};
	char		nulls[1] = {' '};
	bool		isnull;

	crm_query_run_as_owner(&book_is_standard, values, nulls, 1);
	return SPI_processed > 0 && DatumGetBool(crm_result_datum(0, 1, &isnull));
}

/* a non-standard entry for a product needs its standard price */
static void
require_standard_price(int64 product_id)
{
	Datum		values[1] = {Int64GetDatum(product_id)};
	char		nulls[1] = {' '};

	crm_query_run_as_owner(&lock_standard_entry, values, nulls, 0);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_NO_STANDARD_PRICE),
				 errmsg("product %lld has no standard price", (long long) product_id),
				 errdetail("A product is priced in the standard price book before any other book may price it."),
				 errhint("Add an active entry for it to the standard price book first.")));
}

/* the standard price of a product cannot go while other books price it */
static void
keep_standard_price(int64 product_id)
{
	Datum		values[1] = {Int64GetDatum(product_id)};
	char		nulls[1] = {' '};
	bool		isnull;
	int64		n;

	crm_query_run_as_owner(&other_books_pricing, values, nulls, 1);
	n = crm_result_int64(0, 1, &isnull);
	/* REPEATABLE READ: an entry added since our snapshot only locked this one */
	if (n == 0 && crm_query_run_fresh(&other_books_pricing, values, nulls, 1) &&
		crm_result_int64(0, 1, &isnull) > 0)
		crm_serialization_failure(psprintf("product %lld", (long long) product_id), NULL);
	if (n > 0)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_NO_STANDARD_PRICE),
				 errmsg("the standard price of product %lld is still needed", (long long) product_id),
				 errdetail("%lld other price book entries price it.", (long long) n),
				 errhint("Remove or deactivate those entries first.")));
}

/* crm_price_book_entry_guard -- trigger crm_internal.price_book_entry_guard() */
PG_FUNCTION_INFO_V1(crm_price_book_entry_guard);
Datum
crm_price_book_entry_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "price_book_entry_guard", true, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	TriggerEvent event = trigdata->tg_event;
	HeapTuple	oldtup = TRIGGER_FIRED_BY_INSERT(event) ? NULL : trigdata->tg_trigtuple;
	HeapTuple	newtup = TRIGGER_FIRED_BY_INSERT(event) ? trigdata->tg_trigtuple :
		TRIGGER_FIRED_BY_UPDATE(event) ? trigdata->tg_newtuple : NULL;
	bool		isnull;

	crm_spi_connect();

	/* an old standard entry that goes away or stops counting */
	if (oldtup != NULL &&
		is_standard_book(crm_column_int64(oldtup, tupdesc, "price_book_id", &isnull)))
	{
		if (newtup == NULL ||
			crm_column_changed(oldtup, newtup, tupdesc, "price_book_id") ||
			crm_column_changed(oldtup, newtup, tupdesc, "product_id") ||
			!crm_column_is(newtup, tupdesc, "active", "t"))
			keep_standard_price(crm_column_int64(oldtup, tupdesc, "product_id", &isnull));
	}

	/* a new or changed entry in another book */
	if (newtup != NULL &&
		!is_standard_book(crm_column_int64(newtup, tupdesc, "price_book_id", &isnull)))
		require_standard_price(crm_column_int64(newtup, tupdesc, "product_id", &isnull));

	crm_spi_finish();
	return PointerGetDatum(newtup != NULL ? newtup : oldtup);
}

/*
 * crm_has_price_rules -- are the 0.7 quote and price objects there (quote
 * numbers, tiers, account books, approval discounts)?  The library serves
 * databases not yet updated from 0.6 (ALTER EXTENSION crm UPDATE), whose
 * statements must not name them.  Looked up per call: an update may run in
 * the middle of a session.
 */
bool
crm_has_price_rules(void)
{
	return OidIsValid(get_relname_relid("price_book_tier", get_namespace_oid("crm", false)));
}

/*
 * crm_price_sql -- SQL of a line's reference unit price: the price of the
 * quantity tier of price book entry alias `entry` for quantity expression
 * `quantity` (the tier with the highest min_quantity not above it), else
 * the entry's price; before 0.7 the entry's price.  palloc'd.
 */
char *
crm_price_sql(bool tiers, const char *entry, const char *quantity)
{
	if (!tiers)
		return psprintf("%s.unit_price", entry);
	return psprintf("COALESCE((SELECT t.unit_price FROM crm.price_book_tier AS t"
					" WHERE t.price_book_entry_id OPERATOR(pg_catalog.=) %s.id"
					"   AND t.min_quantity OPERATOR(pg_catalog.<=) %s"
					" ORDER BY t.min_quantity DESC LIMIT 1), %s.unit_price)",
					entry, quantity, entry);
}

/*
 * crm_account_book_sql -- SQL of the default price book of the account
 * expression `account`, when that book is active (NULL before 0.7).
 * palloc'd.
 */
char *
crm_account_book_sql(bool rules, const char *account)
{
	if (!rules)
		return pstrdup("NULL::pg_catalog.int8");
	return psprintf("(SELECT a.price_book_id FROM crm.account AS a"
					"   JOIN crm.price_book AS ab ON ab.id OPERATOR(pg_catalog.=) a.price_book_id AND ab.active"
					"  WHERE a.id OPERATOR(pg_catalog.=) %s)", account);
}

/*
 * crm_account_price_book_guard -- trigger crm_internal.account_price_book_guard():
 * an account's default price book must be active when it is set (ZC104);
 * a book deactivated later is skipped when opportunities and quotes of the
 * account are priced (they take the standard book).
 */
PG_FUNCTION_INFO_V1(crm_account_price_book_guard);
Datum
crm_account_price_book_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "account_price_book_guard", true, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	bool		is_insert = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event);
	HeapTuple	newtup = is_insert ? trigdata->tg_trigtuple : trigdata->tg_newtuple;
	bool		isnull;
	int64		book = crm_column_int64(newtup, tupdesc, "price_book_id", &isnull);

	if (!isnull && (is_insert || crm_column_changed(trigdata->tg_trigtuple, newtup, tupdesc, "price_book_id")))
	{
		crm_spi_connect();
		crm_require_active_price_book(book);
		crm_spi_finish();
	}
	return PointerGetDatum(newtup);
}
