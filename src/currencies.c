/*
 * currencies.c: the rules of currencies and exchange rates
 * (sql/install/72_currencies.sql, README "Currencies").
 *
 * crm.exchange_rate_on(currency, day)   units of the corporate currency per
 *     unit of currency on day: 1 for the corporate currency, else the rate
 *     with the latest valid_from not after day (NULL day: the latest rate);
 *     none is ZC120 naming the currency and the day, never 1.  STABLE, read
 *     with the calling statement's snapshot and the caller's rights; one
 *     kept generic plan, so a report calling it once per group pays one
 *     index probe per call.
 * crm_internal.exchange_rate_guard()       BEFORE INSERT OR UPDATE on crm.exchange_rate:
 *     no rate for the corporate currency (ZC122).  Locks the settings row
 *     FOR SHARE first, so a change of the corporate currency (which holds
 *     the row FOR NO KEY UPDATE while its own trigger looks for rates) and a
 *     rate write wait for each other.
 * crm_internal.settings_currency_guard()   BEFORE UPDATE OF corporate_currency on
 *     crm.settings: the corporate currency is fixed while rates exist
 *     (ZC121); looks under a fresh snapshot, and in REPEATABLE READ ends
 *     with 40001 when a rate the snapshot does not show was committed.
 * crm_internal.currency_from_price_book()  BEFORE INSERT OR UPDATE OF price_book_id,
 *     currency (and close_date) on crm.opportunity and crm.quote: a row with
 *     a price book has the book's currency, whatever the client sends (the
 *     caller's rights); a deal whose currency has no rate valid on its close
 *     date (any rate without one) is refused (ZC120), so that no writer can
 *     make the converted reports fail for everybody.
 * crm_internal.sales_order_currency()      BEFORE INSERT OR UPDATE OF currency on
 *     crm.sales_order: an order takes its quote's currency and keeps it
 *     (ZC022).
 * crm_internal.price_book_currency_guard() BEFORE UPDATE OF currency on crm.price_book:
 *     a book's currency is fixed while line items or orders use it (ZC121).
 *     The UPDATE holds the book row FOR UPDATE (currency is part of the key
 *     (id, currency)); the guard then locks the book's opportunities and
 *     quotes FOR NO KEY UPDATE -- the lock every line write takes on its
 *     parent, and the rows the ON UPDATE CASCADE of the currency rewrites
 *     anyway -- before it looks for lines and orders under a fresh snapshot.
 *
 * Statements that must see rows the caller may not (the settings lock, the
 * rate and line searches, the order's quote) run as the extension owner;
 * the rest run as the caller.
 */
#include "crm.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "access/xact.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/*
 * The rate valid on $2 (NULL: the latest), 1 for the corporate currency.
 * The scalar subqueries are init plans: the rate lookup is not run for the
 * corporate currency.
 */
static CrmQuery rate_on = {
	"SELECT CASE WHEN $1 OPERATOR(pg_catalog.=) (SELECT s.corporate_currency FROM crm.settings AS s)"
	"            THEN 1::pg_catalog.numeric"
	"            ELSE (SELECT r.rate FROM crm.exchange_rate AS r"
	"                   WHERE r.currency OPERATOR(pg_catalog.=) $1"
	"                     AND r.valid_from OPERATOR(pg_catalog.<=) COALESCE($2, 'infinity'::pg_catalog.date)"
	"                   ORDER BY r.valid_from DESC LIMIT 1) END",
	2, {TEXTOID, DATEOID}, NULL
};

/* the corporate currency, the settings row locked against its change */
static CrmQuery lock_corporate = {
	"SELECT s.corporate_currency FROM crm.settings AS s FOR SHARE OF s",
	0, {InvalidOid}, NULL
};

static CrmQuery any_rate = {
	"SELECT 1 FROM crm.exchange_rate AS r LIMIT 1",
	0, {InvalidOid}, NULL
};

/* the currency of book $1, else the corporate currency (an unknown book: the foreign key reports it) */
static CrmQuery book_currency = {
	"SELECT COALESCE((SELECT b.currency FROM crm.price_book AS b WHERE b.id OPERATOR(pg_catalog.=) $1),"
	"                (SELECT s.corporate_currency FROM crm.settings AS s))",
	1, {INT8OID}, NULL
};

/* the currency of quote $1, else the corporate currency */
static CrmQuery quote_currency = {
	"SELECT COALESCE((SELECT q.currency FROM crm.quote AS q WHERE q.id OPERATOR(pg_catalog.=) $1),"
	"                (SELECT s.corporate_currency FROM crm.settings AS s))",
	1, {INT8OID}, NULL
};

/* the book's deals and quotes, locked as a line write locks its parent */
static CrmQuery lock_book_deals = {
	"SELECT pg_catalog.count(*) FROM (SELECT 1 FROM crm.opportunity AS o"
	" WHERE o.price_book_id OPERATOR(pg_catalog.=) $1 ORDER BY o.id FOR NO KEY UPDATE OF o) AS l",
	1, {INT8OID}, NULL
};

static CrmQuery lock_book_quotes = {
	"SELECT pg_catalog.count(*) FROM (SELECT 1 FROM crm.quote AS q"
	" WHERE q.price_book_id OPERATOR(pg_catalog.=) $1 ORDER BY q.id FOR NO KEY UPDATE OF q) AS l",
	1, {INT8OID}, NULL
};

/* what uses book $1's prices: one row naming it, none when nothing does */
static CrmQuery book_users = {
	"SELECT u.what FROM (SELECT CASE"
	"   WHEN EXISTS (SELECT FROM crm.opportunity_line_item AS l"
	"                  JOIN crm.opportunity AS o ON o.id OPERATOR(pg_catalog.=) l.opportunity_id"
	"                 WHERE o.price_book_id OPERATOR(pg_catalog.=) $1) THEN 'opportunity line items'"
	"   WHEN EXISTS (SELECT FROM crm.quote_line_item AS l"
	"                  JOIN crm.quote AS q ON q.id OPERATOR(pg_catalog.=) l.quote_id"
	"                 WHERE q.price_book_id OPERATOR(pg_catalog.=) $1) THEN 'quote line items'"
	"   WHEN EXISTS (SELECT FROM crm.sales_order AS so"
	"                  JOIN crm.quote AS q ON q.id OPERATOR(pg_catalog.=) so.quote_id"
	"                 WHERE q.price_book_id OPERATOR(pg_catalog.=) $1) THEN 'sales orders'"
	" END AS what) AS u WHERE u.what IS NOT NULL",
	1, {INT8OID}, NULL
};

/* text_equal -- two text columns equal (both not NULL) */
static bool
text_equal(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/*
 * The rates one statement has looked up, kept for its other calls.  Rates
 * change only on the first of a month (a CHECK on valid_from), so the rate
 * valid on a day is the rate valid on the first of its month: the key is
 * (currency, month).  A report calls the function once per group, and its
 * groups share a few keys.
 *
 * The cache hangs off the call's FmgrInfo (fn_extra: one expression of one
 * statement) and is used only while the data the lookup would see cannot
 * have changed: the same transaction, subtransaction and user, and an MVCC
 * snapshot with the same command id, xmin, xmax and in-progress
 * transactions (everything that decides what a snapshot shows).
 * Otherwise it is emptied first.  Errors (ZC120) are never cached.
 */
#define RATE_KEY_LEN 16

typedef struct RateKey
{
	char		currency[RATE_KEY_LEN];	/* zero-padded */
	DateADT		month;			/* first of the month; +-infinity as given */
} RateKey;

typedef struct RateEntry
{
	RateKey		key;
	Datum		rate;			/* numeric, in the cache's context */
} RateEntry;

typedef struct RateCache
{
	HTAB	   *entries;
	LocalTransactionId lxid;
	SubTransactionId subxid;
	Oid			user;
	CommandId	curcid;
	TransactionId xmin;
	TransactionId xmax;
	uint32		xcnt;
	int32		subxcnt;
	bool		suboverflowed;
	TransactionId *xids;		/* xip then subxip */
	int			xids_size;
} RateCache;

/* rate_key -- the cache key of a call; false when it is not cached */
static bool
rate_key(Datum currency, bool day_isnull, DateADT day, RateKey *key)
{
	text	   *t = DatumGetTextPP(currency);
	int			len = VARSIZE_ANY_EXHDR(t);

	if (len >= RATE_KEY_LEN)
		return false;
	memset(key, 0, sizeof(*key));
	memcpy(key->currency, VARDATA_ANY(t), len);
	if (day_isnull)
		DATE_NOEND(key->month);	/* as COALESCE(day, 'infinity') */
	else if (DATE_NOT_FINITE(day))
		key->month = day;
	else
	{
		int			year,
					month,
					mday;

		j2date(day + POSTGRES_EPOCH_JDATE, &year, &month, &mday);
		key->month = date2j(year, month, 1) - POSTGRES_EPOCH_JDATE;
	}
	return true;
}

/* same_snapshot -- does snap show what the cache's snapshot showed? */
static bool
same_snapshot(const RateCache *c, Snapshot snap)
{
	return c->entries != NULL &&
		c->lxid == CRM_LOCAL_XID && c->subxid == GetCurrentSubTransactionId() &&
		c->user == GetUserId() && c->curcid == snap->curcid &&
		c->xmin == snap->xmin && c->xmax == snap->xmax &&
		c->xcnt == snap->xcnt && c->subxcnt == snap->subxcnt &&
		c->suboverflowed == snap->suboverflowed &&
		memcmp(c->xids, snap->xip, sizeof(TransactionId) * snap->xcnt) == 0 &&
		memcmp(c->xids + snap->xcnt, snap->subxip, sizeof(TransactionId) * snap->subxcnt) == 0;
}

/* rate_cache -- the statement's cache, emptied when it may be stale; NULL: none */
static RateCache *
rate_cache(FunctionCallInfo fcinfo)
{
	RateCache  *c = (RateCache *) fcinfo->flinfo->fn_extra;
	MemoryContext cxt = fcinfo->flinfo->fn_mcxt;
	Snapshot	snap;
	int			nxids;
	HASHCTL		ctl;

	if (!ActiveSnapshotSet())
		return NULL;
	snap = GetActiveSnapshot();
	if (snap->snapshot_type != SNAPSHOT_MVCC || snap->subxcnt < 0)
		return NULL;
	if (c == NULL)
	{
		c = MemoryContextAllocZero(cxt, sizeof(RateCache));
		fcinfo->flinfo->fn_extra = c;
	}
	if (same_snapshot(c, snap))
		return c;

	if (c->entries != NULL)
		hash_destroy(c->entries);
	c->entries = NULL;
	nxids = snap->xcnt + snap->subxcnt;
	if (nxids > c->xids_size)
	{
		if (c->xids != NULL)
			pfree(c->xids);
		c->xids = MemoryContextAlloc(cxt, sizeof(TransactionId) * nxids);
		c->xids_size = nxids;
	}
	if (snap->xcnt > 0)
		memcpy(c->xids, snap->xip, sizeof(TransactionId) * snap->xcnt);
	if (snap->subxcnt > 0)
		memcpy(c->xids + snap->xcnt, snap->subxip, sizeof(TransactionId) * snap->subxcnt);
	c->lxid = CRM_LOCAL_XID;
	c->subxid = GetCurrentSubTransactionId();
	c->user = GetUserId();
	c->curcid = snap->curcid;
	c->xmin = snap->xmin;
	c->xmax = snap->xmax;
	c->xcnt = snap->xcnt;
	c->subxcnt = snap->subxcnt;
	c->suboverflowed = snap->suboverflowed;
	ctl.keysize = sizeof(RateKey);
	ctl.entrysize = sizeof(RateEntry);
	ctl.hcxt = cxt;
	c->entries = hash_create("crm exchange rates of a statement", 64, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	return c;
}

/*
 * rate_lookup -- the rate of currency values[0] on day values[1] (nulls[1]
 * 'n': the latest), inside an SPI connection: read_only, with the calling
 * statement's snapshot (the function), or else with a fresh one (the
 * checks of writes); none is ZC120 naming the currency and the day.
 */
static Datum
rate_lookup(Datum *values, const char *nulls, bool read_only)
{
	int			ret;
	bool		isnull;
	Datum		rate;

	crm_query_prefer_generic(&rate_on);
	ret = SPI_execute_plan(crm_query_plan(&rate_on), values, nulls, read_only, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "crm: the exchange rate lookup failed: %s", SPI_result_code_string(ret));
	rate = crm_result_datum(0, 1, &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_NO_EXCHANGE_RATE),
				 errmsg("no exchange rate for %s on %s",
						TextDatumGetCString(values[0]),
						nulls[1] == 'n' ? "any day"
						: DatumGetCString(DirectFunctionCall1(date_out, values[1]))),
				 errhint("Add a row to crm.exchange_rate for %s valid from the first of that month or earlier.",
						 TextDatumGetCString(values[0]))));
	return rate;
}

/*
 * crm_require_exchange_rate -- a write of a deal or quota in currency with
 * day (NULL: any day) is refused (ZC120) when the reports could not
 * convert it: one writer's deal in a currency without a rate would make the
 * converted reports fail for every reader who sees it.  Inside an SPI
 * connection; a fresh snapshot, the writer's rights.
 */
void
crm_require_exchange_rate(Datum currency, Datum day, bool day_isnull)
{
	Datum		values[2] = {currency, day_isnull ? (Datum) 0 : day};
	char		nulls[2] = {' ', day_isnull ? 'n' : ' '};

	(void) rate_lookup(values, nulls, false);
}

/* crm_exchange_rate_on -- SQL crm.exchange_rate_on(currency text, day date) */
PG_FUNCTION_INFO_V1(crm_exchange_rate_on);
Datum
crm_exchange_rate_on(PG_FUNCTION_ARGS)
{
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	Datum		rate;
	RateKey		key;
	RateCache  *cache = NULL;
	RateEntry  *entry;
	bool		found;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("currency must not be NULL")));
	values[0] = PG_GETARG_DATUM(0);
	values[1] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	nulls[1] = PG_ARGISNULL(1) ? 'n' : ' ';

	if (rate_key(values[0], PG_ARGISNULL(1), PG_ARGISNULL(1) ? 0 : PG_GETARG_DATEADT(1), &key))
		cache = rate_cache(fcinfo);
	if (cache != NULL)
	{
		entry = hash_search(cache->entries, &key, HASH_FIND, NULL);
		if (entry != NULL)		/* a copy: the caller owns its result */
			PG_RETURN_DATUM(datumCopy(entry->rate, false, -1));
	}

	crm_spi_connect();
	rate = rate_lookup(values, nulls, true);
	rate = SPI_datumTransfer(rate, false, -1);
	crm_spi_finish();
	if (cache != NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		Datum		kept = datumCopy(rate, false, -1);

		entry = hash_search(cache->entries, &key, HASH_ENTER, &found);
		entry->rate = kept;
		MemoryContextSwitchTo(old);
	}
	PG_RETURN_DATUM(rate);
}

/* crm_exchange_rate_guard -- trigger crm_internal.exchange_rate_guard() */
PG_FUNCTION_INFO_V1(crm_exchange_rate_guard);
Datum
crm_exchange_rate_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "exchange_rate_guard", true, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	HeapTuple	newtup = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)
		? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	char	   *currency = crm_column_text(newtup, tupdesc, "currency");
	char	   *corporate = NULL;

	crm_spi_connect();
	crm_query_run_as_owner(&lock_corporate, NULL, NULL, 0);
	if (SPI_processed > 0)
		corporate = crm_result_text(0, 1);
	if (text_equal(currency, corporate))
		ereport(ERROR,
				(errcode(ERRCODE_CRM_CORPORATE_RATE),
				 errmsg("no exchange rate for the corporate currency %s", corporate),
				 errhint("Its rate is always 1.")));
	crm_spi_finish();
	return PointerGetDatum(newtup);
}

/* crm_settings_currency_guard -- trigger crm_internal.settings_currency_guard() */
PG_FUNCTION_INFO_V1(crm_settings_currency_guard);
Datum
crm_settings_currency_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "settings_currency_guard", true, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	HeapTuple	newtup;
	char	   *old_currency;
	char	   *new_currency;

	if (!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function crm_internal.settings_currency_guard() must be fired by UPDATE")));
	newtup = trigdata->tg_newtuple;
	old_currency = crm_column_text(trigdata->tg_trigtuple, tupdesc, "corporate_currency");
	new_currency = crm_column_text(newtup, tupdesc, "corporate_currency");
	/* unchanged, or NULL: the NOT NULL constraint reports it */
	if (old_currency == NULL || new_currency == NULL || strcmp(old_currency, new_currency) == 0)
		return PointerGetDatum(newtup);

	crm_spi_connect();
	crm_query_run_as_owner(&any_rate, NULL, NULL, 1);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_CURRENCY_FIXED),
				 errmsg("the corporate currency cannot change while exchange rates exist"),
				 errdetail("The rates are in units of %s.", old_currency),
				 errhint("Delete the exchange rates, change the corporate currency, then enter the rates in the new one.")));
	/* a rate writer held the row FOR SHARE and committed: no 40001 by itself */
	if (crm_query_finds_newer_rows(&any_rate, NULL, NULL))
		crm_serialization_failure("the corporate currency",
								  "An exchange rate was entered by a transaction that committed after this one started.");
	crm_spi_finish();
	return PointerGetDatum(newtup);
}

/* crm_currency_from_price_book -- trigger crm_internal.currency_from_price_book() */
PG_FUNCTION_INFO_V1(crm_currency_from_price_book);
Datum
crm_currency_from_price_book(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "currency_from_price_book", true, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	bool		is_update = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event);
	HeapTuple	oldtup = is_update ? trigdata->tg_trigtuple : NULL;
	HeapTuple	newtup = is_update ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	bool		is_deal = strcmp(RelationGetRelationName(trigdata->tg_relation), "opportunity") == 0;
	bool		book_isnull;
	int64		book = crm_column_int64(newtup, tupdesc, "price_book_id", &book_isnull);
	bool		book_changed = !is_update ||
		crm_column_changed(oldtup, newtup, tupdesc, "price_book_id") ||
		crm_column_changed(oldtup, newtup, tupdesc, "currency");
	bool		currency_isnull;
	Datum		currency;

	/* book and currency as they were: the (book, currency) foreign key holds */
	if (!book_isnull && book_changed)
	{
		Datum		values[1] = {Int64GetDatum(book)};

		crm_spi_connect();
		crm_query_run(&book_currency, values, NULL, 1);
		currency = crm_result_datum(0, 1, &currency_isnull);
		if (!currency_isnull)
			currency = SPI_datumTransfer(currency, false, -1);
		crm_spi_finish();
		newtup = crm_set_column(newtup, tupdesc, "currency", currency, currency_isnull);
	}

	/* a deal the reports cannot convert is refused (ZC120) */
	if (is_deal && (book_changed || crm_column_changed(oldtup, newtup, tupdesc, "close_date")))
	{
		int			currency_att = crm_attnum(tupdesc, "currency");
		int			day_att = crm_attnum(tupdesc, "close_date");
		bool		day_isnull;
		Datum		day = heap_getattr(newtup, day_att, tupdesc, &day_isnull);

		currency = heap_getattr(newtup, currency_att, tupdesc, &currency_isnull);
		if (!currency_isnull)	/* else the NOT NULL constraint reports it */
		{
			crm_spi_connect();
			crm_require_exchange_rate(currency, day, day_isnull);
			crm_spi_finish();
		}
	}
	return PointerGetDatum(newtup);
}

/* crm_sales_order_currency -- trigger crm_internal.sales_order_currency() */
PG_FUNCTION_INFO_V1(crm_sales_order_currency);
Datum
crm_sales_order_currency(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "sales_order_currency", true, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	HeapTuple	newtup;

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		bool		isnull;
		int64		quote = crm_column_int64(trigdata->tg_trigtuple, tupdesc, "quote_id", &isnull);
		Datum		values[1];
		char		nulls[1];
		bool		currency_isnull;
		Datum		currency;

		crm_param_int64(values, nulls, 0, quote, isnull);
		crm_spi_connect();
		crm_query_run_as_owner(&quote_currency, values, nulls, 1);
		currency = crm_result_datum(0, 1, &currency_isnull);
		if (!currency_isnull)
			currency = SPI_datumTransfer(currency, false, -1);
		crm_spi_finish();
		return PointerGetDatum(crm_set_column(trigdata->tg_trigtuple, tupdesc, "currency",
											  currency, currency_isnull));
	}
	newtup = trigdata->tg_newtuple;
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		char	   *old_currency = crm_column_text(trigdata->tg_trigtuple, tupdesc, "currency");
		char	   *new_currency = crm_column_text(newtup, tupdesc, "currency");

		if (old_currency != NULL && new_currency != NULL && strcmp(old_currency, new_currency) != 0)
		{
			char	   *number = crm_column_text(trigdata->tg_trigtuple, tupdesc, "order_number");

			ereport(ERROR,
					(errcode(ERRCODE_CRM_NOT_EDITABLE),
					 errmsg("the currency of order %s cannot change", number ? number : "<NULL>"),
					 errdetail("It is %s, the currency of its quote.", old_currency)));
		}
	}
	return PointerGetDatum(newtup);
}

/* crm_price_book_currency_guard -- trigger crm_internal.price_book_currency_guard() */
PG_FUNCTION_INFO_V1(crm_price_book_currency_guard);
Datum
crm_price_book_currency_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "price_book_currency_guard", true, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	HeapTuple	oldtup = trigdata->tg_trigtuple;
	HeapTuple	newtup;
	char	   *old_currency;
	bool		isnull;
	Datum		values[1];

	if (!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function crm_internal.price_book_currency_guard() must be fired by UPDATE")));
	newtup = trigdata->tg_newtuple;
	old_currency = crm_column_text(oldtup, tupdesc, "currency");
	if (text_equal(old_currency, crm_column_text(newtup, tupdesc, "currency")))
		return PointerGetDatum(newtup);

	values[0] = Int64GetDatum(crm_column_int64(oldtup, tupdesc, "id", &isnull));
	crm_spi_connect();
	/* a line being added to one of them commits first (and is seen below) or waits */
	crm_query_run_as_owner(&lock_book_deals, values, NULL, 1);
	crm_query_run_as_owner(&lock_book_quotes, values, NULL, 1);
	crm_query_run_as_owner(&book_users, values, NULL, 1);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_CURRENCY_FIXED),
				 errmsg("the currency of price book \"%s\" cannot change while %s use it",
						crm_column_text(oldtup, tupdesc, "name"), crm_result_text(0, 1)),
				 errdetail("Their prices are in %s.", old_currency ? old_currency : "<NULL>"),
				 errhint("Create a price book in the new currency.")));
	if (crm_query_finds_newer_rows(&book_users, values, NULL))
		crm_serialization_failure(psprintf("price book \"%s\"", crm_column_text(oldtup, tupdesc, "name")),
								  "Line items or orders priced from it were committed after this transaction started.");
	crm_spi_finish();
	return PointerGetDatum(newtup);
}
