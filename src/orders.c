/*
 * orders.c: sales orders and stock.
 *
 * crm_internal.sales_order_guard()       an order is made only by crm.create_order();
 *     status changes follow crm_internal.order_transition (activation and cancellation
 *     only through their functions); amounts, links and the activation and
 *     cancellation records are the database's; shipped/delivered/completed
 *     times are stamped; only Draft and Cancelled orders can be deleted.
 * crm_internal.sales_order_item_guard()  items are written only by crm.create_order()
 *     and deleted only with their order.
 * crm.create_order(), crm.activate_order(), crm.cancel_order(): SECURITY
 *     INVOKER; the order is read and written with the caller's rights, the
 *     stock (crm.product.inventory, which sales roles cannot write) and the
 *     next order number (crm.sales_order_number_seq, which only admins may
 *     use directly: its position is the company's order count) as the
 *     extension owner.  A cancelled order is not cancelled again: its
 *     cancellation record stays.
 *
 * No overselling: activation locks the order, then every tracked product on
 * it FOR NO KEY UPDATE in product id order (so two activations never
 * deadlock), and only then, in a new statement, compares and decreases the
 * stock.  A second activation needing the same product waits for the first
 * to commit and then sees what is left.
 */
#include "crm.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

static CrmQuery order_transition_lookup = {
	"SELECT t.via_function FROM crm_internal.order_transition AS t"
	" WHERE t.from_status OPERATOR(pg_catalog.=) $1::crm.order_status"
	"   AND t.to_status OPERATOR(pg_catalog.=) $2::crm.order_status",
	2, {TEXTOID, TEXTOID}, NULL
};

static CrmQuery order_exists = {
	"SELECT 1 FROM crm.sales_order AS o WHERE o.id OPERATOR(pg_catalog.=) $1",
	1, {INT8OID}, NULL
};

/* columns a user may change on an order (status through its workflow) */
static const char *const user_columns[] = {
	"status", "contact_id", "shipping_status", "carrier", "tracking_number",
	"shipping_address", "owner", "created_at", "updated_at",
	"shipped_at", "delivered_at", "completed_at", NULL
};

/* status -> the column stamped when the order enters it */
static const char *const stamped_on[][2] = {
	{"Shipped", "shipped_at"}, {"Delivered", "delivered_at"}, {"Completed", "completed_at"}, {NULL, NULL}
};


/* the number and the quote's sums of the order crm.create_order() inserts */
static struct
{
	int64		quote_id;
	Datum		number;
	Datum		sums[4];		/* subtotal, discount_amount, tax, total */
}			new_order;

static const char *const order_sums[] = {"subtotal", "discount_amount", "tax", "total"};

/* crm_sales_order_guard -- trigger crm_internal.sales_order_guard() */
PG_FUNCTION_INFO_V1(crm_sales_order_guard);
Datum
crm_sales_order_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "sales_order_guard", true, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	TriggerEvent event = trigdata->tg_event;
	bool		isnull;

	if (TRIGGER_FIRED_BY_INSERT(event))
	{
		HeapTuple	newtup = trigdata->tg_trigtuple;

		if (!crm_permitted(CRM_PERMIT_ORDER_CREATE, crm_column_int64(newtup, tupdesc, "quote_id", &isnull)))
			ereport(ERROR,
					(errcode(ERRCODE_CRM_TRANSITION_RESERVED),
					 errtable(trigdata->tg_relation),
					 errmsg("sales orders are made only by crm.create_order()"),
					 errhint("Call SELECT crm.create_order(quote_id) for an Accepted quote.")));
		if (new_order.quote_id == crm_column_int64(newtup, tupdesc, "quote_id", &isnull))
		{
			newtup = crm_set_column(newtup, tupdesc, "order_number", new_order.number, false);
			for (int i = 0; i < (int) lengthof(order_sums); i++)
				newtup = crm_set_column(newtup, tupdesc, order_sums[i], new_order.sums[i], false);
		}
		return PointerGetDatum(newtup);
	}
	if (TRIGGER_FIRED_BY_DELETE(event))
	{
		HeapTuple	oldtup = trigdata->tg_trigtuple;
		char	   *status = crm_column_text(oldtup, tupdesc, "status");

		if (strcmp(status, "Draft") != 0 && strcmp(status, "Cancelled") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_CRM_NOT_EDITABLE),
					 errtable(trigdata->tg_relation),
					 errmsg("order %lld is %s and cannot be deleted",
							(long long) crm_column_int64(oldtup, tupdesc, "id", &isnull), status),
					 errhint("Cancel it with crm.cancel_order() first; its stock is then returned.")));
		return PointerGetDatum(oldtup);
	}
	else
	{
		HeapTuple	oldtup = trigdata->tg_trigtuple;
		HeapTuple	newtup = trigdata->tg_newtuple;
		int64		id = crm_column_int64(oldtup, tupdesc, "id", &isnull);
		char	   *from = crm_column_text(oldtup, tupdesc, "status");
		char	   *to = crm_column_text(newtup, tupdesc, "status");
		bool		permitted = crm_permitted(CRM_PERMIT_ORDER_STATUS, id);

		if (to == NULL)
			return PointerGetDatum(newtup);	/* NOT NULL reports it */

		if (!permitted)
		{
			const char *col = crm_changed_column_outside(oldtup,
														 crm_without_merge_repoints(oldtup, newtup, tupdesc),
														 tupdesc, user_columns);

			if (col != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_CRM_NOT_EDITABLE),
						 errtablecol(trigdata->tg_relation, crm_attnum(tupdesc, col)),
						 errmsg("%s of order %lld is set by the database", col, (long long) id),
						 errdetail("Orders copy their quote; activation and cancellation are recorded by their functions.")));
		}

		/* fulfilment times: stamped on entering the status, never by hand */
		for (int i = 0; stamped_on[i][0] != NULL; i++)
		{
			bool		entering = strcmp(to, stamped_on[i][0]) == 0 && strcmp(from, to) != 0;

			if (entering)
				newtup = crm_set_column(newtup, tupdesc, stamped_on[i][1],
										TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()), false);
			else
				newtup = crm_keep_column(oldtup, newtup, tupdesc, stamped_on[i][1]);
		}

		/* activation and cancellation: when and by whom, under their functions' permit */
		if (permitted && strcmp(from, to) != 0 &&
			(strcmp(to, "Activated") == 0 || strcmp(to, "Cancelled") == 0))
		{
			bool		cancel = strcmp(to, "Cancelled") == 0;

			newtup = crm_set_column(newtup, tupdesc, cancel ? "cancelled_at" : "activated_at",
									TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()), false);
			newtup = crm_set_column(newtup, tupdesc, cancel ? "cancelled_by" : "activated_by",
									ObjectIdGetDatum(crm_acting_role()), false);
		}

		if (strcmp(from, to) != 0)
		{
			crm_spi_connect();
			crm_check_transition(&order_transition_lookup, "order", id, from, to, CRM_PERMIT_ORDER_STATUS);
			crm_spi_finish();
		}
		return PointerGetDatum(newtup);
	}
}

/* crm_sales_order_item_guard -- trigger crm_internal.sales_order_item_guard() */
PG_FUNCTION_INFO_V1(crm_sales_order_item_guard);
Datum
crm_sales_order_item_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "sales_order_item_guard", true, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	TriggerEvent event = trigdata->tg_event;
	bool		isnull;

	if (TRIGGER_FIRED_BY_DELETE(event))
	{
		HeapTuple	oldtup = trigdata->tg_trigtuple;
		int64		order_id = crm_column_int64(oldtup, tupdesc, "order_id", &isnull);
		Datum		values[1] = {Int64GetDatum(order_id)};
		char		nulls[1] = {' '};
		bool		order_left;

		/* deleting the order cascades to its items: the order is gone by then */
		crm_spi_connect();
		crm_query_run_as_owner(&order_exists, values, nulls, 1);
		order_left = SPI_processed > 0;
		crm_spi_finish();
		if (order_left)
			ereport(ERROR,
					(errcode(ERRCODE_CRM_NOT_EDITABLE),
					 errtable(trigdata->tg_relation),
					 errmsg("the items of order %lld cannot change", (long long) order_id),
					 errdetail("An order's items are those of its accepted quote.")));
		return PointerGetDatum(oldtup);
	}
	else if (TRIGGER_FIRED_BY_UPDATE(event))
	{
		HeapTuple	oldtup = trigdata->tg_trigtuple;
		HeapTuple	newtup = trigdata->tg_newtuple;
		int64		order_id = crm_column_int64(oldtup, tupdesc, "order_id", &isnull);

		/* only activation and cancellation change an item: its reservation */
		static const char *const touched[] = {"updated_at", NULL};
		static const char *const reserved[] = {"updated_at", "reserved_quantity", NULL};
		bool		reserving = crm_permitted(CRM_PERMIT_ORDER_STATUS, order_id);

		if (crm_changed_column_outside(oldtup, newtup, tupdesc, reserving ? reserved : touched) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_CRM_NOT_EDITABLE),
					 errtable(trigdata->tg_relation),
					 errmsg("the items of order %lld cannot change", (long long) order_id),
					 errdetail("An order's items are copied from its accepted quote by crm.create_order().")));
		return PointerGetDatum(newtup);
	}
	else
	{
		HeapTuple	newtup = trigdata->tg_trigtuple;
		int64		order_id = crm_column_int64(newtup, tupdesc, "order_id", &isnull);

		if (!crm_permitted(CRM_PERMIT_ORDER_CREATE, order_id))
			ereport(ERROR,
					(errcode(ERRCODE_CRM_NOT_EDITABLE),
					 errtable(trigdata->tg_relation),
					 errmsg("the items of order %lld cannot change", (long long) order_id),
					 errdetail("An order's items are copied from its accepted quote by crm.create_order().")));
		return PointerGetDatum(newtup);
	}
}

/* ---- create ---- */

static CrmQuery lock_quote_for_order = {
	"SELECT q.status::pg_catalog.text, (SELECT o.id FROM crm.sales_order AS o"
	"                                    WHERE o.quote_id OPERATOR(pg_catalog.=) q.id),"
	"       q.valid_until OPERATOR(pg_catalog.<) CURRENT_DATE, q.valid_until::pg_catalog.text,"
	"       q.subtotal, q.discount_amount, q.tax, q.total"
	"  FROM crm.quote AS q WHERE q.id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE OF q",
	1, {INT8OID}, NULL
};

/* the next default order number: run as the extension owner */
static CrmQuery next_order_number = {
	"SELECT 'SO-' OPERATOR(pg_catalog.||)"
	"       pg_catalog.lpad(pg_catalog.nextval('crm.sales_order_number_seq'::pg_catalog.regclass)::pg_catalog.text, 6, '0')",
	0, {InvalidOid}, NULL
};

/*
 * The order, as the caller, without the columns no role may write (its
 * number and sums: 99_privileges.sql); the guard fills those in from
 * new_order below while crm.create_order() holds the permit.
 */
static CrmQuery insert_order = {
	"INSERT INTO crm.sales_order (quote_id, opportunity_id, account_id, contact_id, owner)"
	" SELECT q.id, q.opportunity_id, q.account_id, q.contact_id, q.owner"
	"   FROM crm.quote AS q WHERE q.id OPERATOR(pg_catalog.=) $1"
	" RETURNING id",
	1, {INT8OID}, NULL
};


static CrmQuery copy_quote_items = {
	"INSERT INTO crm.sales_order_item (order_id, product_id, description, quantity, unit_price, discount, sort_order, owner)"
	" SELECT $1, l.product_id, l.description, l.quantity, l.unit_price, l.discount, l.sort_order, o.owner"
	"   FROM crm.quote_line_item AS l, crm.sales_order AS o"
	"  WHERE l.quote_id OPERATOR(pg_catalog.=) o.quote_id AND o.id OPERATOR(pg_catalog.=) $1"
	"  ORDER BY l.sort_order, l.id",
	1, {INT8OID}, NULL
};

/*
 * drawn_number_form -- is number of the form SO-<digits>, the numbers drawn
 * from crm.sales_order_number_seq?  A caller may not give one: it would
 * squat the number of someone else's later order (whose crm.create_order()
 * would then fail), and the unique violation would tell the caller which
 * numbers exist, i.e. the company's order count the sequence hides.
 */
static bool
drawn_number_form(const char *number)
{
	if (strncmp(number, "SO-", 3) != 0 || number[3] == '\0')
		return false;
	for (const char *c = number + 3; *c != '\0'; c++)
		if (*c < '0' || *c > '9')
			return false;
	return true;
}

/* crm_create_order -- SQL crm.create_order(quote_id, order_number) */
PG_FUNCTION_INFO_V1(crm_create_order);
Datum
crm_create_order(PG_FUNCTION_ARGS)
{
	Oid			caller = crm_caller();
	int64		quote_id = crm_required_id(fcinfo, 0, "quote_id");
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	int64		order_id;
	bool		isnull;
	char	   *status;
	bool		no_order;
	int64		existing;
	Datum		sums[4];

	values[0] = Int64GetDatum(quote_id);
	values[1] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	nulls[1] = PG_ARGISNULL(1) ? 'n' : ' ';
	if (!PG_ARGISNULL(1) && drawn_number_form(TextDatumGetCString(values[1])))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("order number \"%s\" has the form of the numbers crm draws",
						TextDatumGetCString(values[1])),
				 errdetail("SO- followed by digits is reserved for the numbers drawn from crm.sales_order_number_seq."),
				 errhint("Pass another number, or none to draw the next SO- number.")));

	crm_spi_connect();
	crm_query_run_as(caller, &lock_quote_for_order, values, nulls, 1);
	if (SPI_processed == 0)
		crm_not_visible(ERRCODE_CRM_QUOTE_NOT_FOUND, "quote", quote_id, caller);
	status = crm_result_text(0, 1);
	existing = crm_result_int64(0, 2, &no_order);
	if (!no_order)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_QUOTE_HAS_ORDER),
				 errmsg("quote %lld already has order %lld", (long long) quote_id, (long long) existing),
				 errdetail("An accepted quote becomes one sales order.")));
	if (strcmp(status, "Accepted") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_QUOTE_NOT_ACCEPTED),
				 errmsg("quote %lld is %s, not Accepted", (long long) quote_id, status),
				 errdetail("Only an accepted quote becomes a sales order."),
				 errhint("Set the quote to Accepted once the customer has accepted it.")));
	if (DatumGetBool(crm_result_datum(0, 3, &isnull)) && !isnull)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_QUOTE_EXPIRED),
				 errmsg("quote %lld expired on %s and cannot become an order", (long long) quote_id,
						crm_result_text(0, 4)),
				 errdetail("A quote is valid until the end of its valid_until day (today is judged in the session's TimeZone)."),
				 errhint("Make a new quote with a later valid_until.")));
	for (int i = 0; i < (int) lengthof(order_sums); i++)
		sums[i] = datumCopy(crm_result_datum(0, 5 + i, &isnull), false, -1);

	/*
	 * The default number is drawn as the extension owner: users have no
	 * right on the sequence, whose position would tell them how many orders
	 * the company has (and nextval would let them burn numbers).
	 */
	if (PG_ARGISNULL(1))
	{
		crm_query_run_as_owner(&next_order_number, NULL, NULL, 1);
		values[1] = datumCopy(crm_result_datum(0, 1, &isnull), false, -1);
		nulls[1] = ' ';
	}

	/* the order, then its items: writes only crm.create_order() may make */
	new_order.quote_id = quote_id;
	new_order.number = values[1];
	for (int i = 0; i < (int) lengthof(order_sums); i++)
		new_order.sums[i] = sums[i];
	crm_permit_push(CRM_PERMIT_ORDER_CREATE, quote_id);
	crm_query_run_as(caller, &insert_order, values, nulls, 0);
	order_id = crm_result_int64(0, 1, &isnull);
	crm_permit_pop(CRM_PERMIT_ORDER_CREATE, quote_id);
	new_order.quote_id = 0;

	values[0] = Int64GetDatum(order_id);
	nulls[0] = ' ';
	crm_permit_push(CRM_PERMIT_ORDER_CREATE, order_id);
	crm_query_run_as(caller, &copy_quote_items, values, nulls, 0);
	crm_permit_pop(CRM_PERMIT_ORDER_CREATE, order_id);
	crm_spi_finish();
	PG_RETURN_INT64(order_id);
}

/* ---- activate, cancel ---- */

static CrmQuery lock_order = {
	"SELECT o.status::pg_catalog.text, o.cancelled_at::pg_catalog.text, o.cancelled_by::pg_catalog.text"
	"  FROM crm.sales_order AS o"
	" WHERE o.id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE OF o",
	1, {INT8OID}, NULL
};

/* stock needed per tracked product, with the product locked, in id order */
static CrmQuery lock_stock = {
	"SELECT p.id, p.code, p.inventory::pg_catalog.text, n.quantity::pg_catalog.text,"
	"       p.inventory OPERATOR(pg_catalog.<) n.quantity"
	"  FROM crm.product AS p,"
	"       (SELECT i.product_id, pg_catalog.sum(i.quantity) AS quantity FROM crm.sales_order_item AS i"
	"         WHERE i.order_id OPERATOR(pg_catalog.=) $1 GROUP BY i.product_id) AS n"
	" WHERE p.id OPERATOR(pg_catalog.=) n.product_id AND p.track_inventory"
	" ORDER BY p.id FOR NO KEY UPDATE OF p",
	1, {INT8OID}, NULL
};

/* take the order's quantities from stock */
static CrmQuery take_stock = {
	"UPDATE crm.product AS p SET inventory = p.inventory OPERATOR(pg_catalog.-) n.quantity"
	"  FROM (SELECT i.product_id, pg_catalog.sum(i.quantity) AS quantity FROM crm.sales_order_item AS i"
	"         WHERE i.order_id OPERATOR(pg_catalog.=) $1 GROUP BY i.product_id) AS n"
	" WHERE p.id OPERATOR(pg_catalog.=) n.product_id AND p.track_inventory",
	1, {INT8OID}, NULL
};

/* activation records what it took; cancellation returns exactly that */
static CrmQuery mark_reserved = {
	"UPDATE crm.sales_order_item AS i SET reserved_quantity = i.quantity FROM crm.product AS p"
	" WHERE p.id OPERATOR(pg_catalog.=) i.product_id AND p.track_inventory"
	"   AND i.order_id OPERATOR(pg_catalog.=) $1",
	1, {INT8OID}, NULL
};

static CrmQuery lock_reserved = {
	"SELECT p.id FROM crm.product AS p WHERE p.id OPERATOR(pg_catalog.=) ANY (ARRAY("
	"   SELECT i.product_id FROM crm.sales_order_item AS i"
	"    WHERE i.order_id OPERATOR(pg_catalog.=) $1 AND i.reserved_quantity OPERATOR(pg_catalog.>) 0))"
	" ORDER BY p.id FOR NO KEY UPDATE OF p",
	1, {INT8OID}, NULL
};

static CrmQuery return_reserved = {
	"UPDATE crm.product AS p SET inventory = p.inventory OPERATOR(pg_catalog.+) n.quantity"
	"  FROM (SELECT i.product_id, pg_catalog.sum(i.reserved_quantity) AS quantity FROM crm.sales_order_item AS i"
	"         WHERE i.order_id OPERATOR(pg_catalog.=) $1 GROUP BY i.product_id) AS n"
	" WHERE p.id OPERATOR(pg_catalog.=) n.product_id AND n.quantity OPERATOR(pg_catalog.>) 0",
	1, {INT8OID}, NULL
};

static CrmQuery clear_reserved = {
	"UPDATE crm.sales_order_item AS i SET reserved_quantity = 0"
	" WHERE i.order_id OPERATOR(pg_catalog.=) $1 AND i.reserved_quantity OPERATOR(pg_catalog.>) 0",
	1, {INT8OID}, NULL
};

/*
 * As the caller; who and when (columns no role may write) are stamped by the
 * guard on entering the status under the order-status permit.
 */
static CrmQuery mark_activated = {
	"UPDATE crm.sales_order AS o SET status = 'Activated'"
	" WHERE o.id OPERATOR(pg_catalog.=) $1",
	1, {INT8OID}, NULL
};

static CrmQuery mark_cancelled = {
	"UPDATE crm.sales_order AS o SET status = 'Cancelled', cancel_reason = $2"
	" WHERE o.id OPERATOR(pg_catalog.=) $1",
	2, {INT8OID, TEXTOID}, NULL
};

/* lock the order for the caller; its status */
static char *
lock_order_for(Oid caller, int64 id)
{
	Datum		values[1] = {Int64GetDatum(id)};
	char		nulls[1] = {' '};

	crm_query_run_as(caller, &lock_order, values, nulls, 1);
	if (SPI_processed == 0)
		crm_not_visible(ERRCODE_CRM_ORDER_NOT_FOUND, "order", id, caller);
	return crm_result_text(0, 1);
}

/* lock the order's tracked products in id order; refuse any shortage */
static void
lock_products(int64 order_id)
{
	Datum		values[1] = {Int64GetDatum(order_id)};
	char		nulls[1] = {' '};
	StringInfoData missing;
	int			nmissing = 0;

	crm_query_run_as_owner(&lock_stock, values, nulls, 0);
	initStringInfo(&missing);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		if (DatumGetBool(crm_result_datum(i, 5, &isnull)))
			appendStringInfo(&missing, "%sproduct %s: %s needed, %s on hand",
							 nmissing++ > 0 ? "; " : "",
							 crm_result_text(i, 2), crm_result_text(i, 4), crm_result_text(i, 3));
	}
	if (nmissing > 0)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_INSUFFICIENT_STOCK),
				 errmsg("order %lld cannot be activated: not enough stock", (long long) order_id),
				 errdetail("%s.", missing.data),
				 errhint("Restock the products, or change the quote and make a new order.")));
}

static void
take_order_stock(int64 order_id)
{
	Datum		values[1] = {Int64GetDatum(order_id)};
	char		nulls[1] = {' '};

	crm_query_run_as_owner(&take_stock, values, nulls, 0);
}

/*
 * write_order_status -- the reservation and the status change of an
 * activation or a cancellation, under the order-status permit
 */
static void
write_order_status(Oid caller, int64 id, bool activate, const char *reason)
{
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};

	crm_permit_push(CRM_PERMIT_ORDER_STATUS, id);
	values[0] = Int64GetDatum(id);
	if (activate)
		crm_query_run_as_owner(&mark_reserved, values, nulls, 0);
	else
	{
		crm_query_run_as_owner(&return_reserved, values, nulls, 0);
		crm_query_run_as_owner(&clear_reserved, values, nulls, 0);
	}
	values[1] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	nulls[1] = reason ? ' ' : 'n';
	crm_query_run_as(caller, activate ? &mark_activated : &mark_cancelled, values, nulls, 0);
	crm_permit_pop(CRM_PERMIT_ORDER_STATUS, id);
}

/* crm_activate_order -- SQL crm.activate_order(order_id) */
PG_FUNCTION_INFO_V1(crm_activate_order);
Datum
crm_activate_order(PG_FUNCTION_ARGS)
{
	Oid			caller = crm_caller();
	int64		id = crm_required_id(fcinfo, 0, "order_id");
	char	   *status;

	crm_spi_connect();
	status = lock_order_for(caller, id);
	if (strcmp(status, "Draft") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_ILLEGAL_TRANSITION),
				 errmsg("order %lld cannot go from \"%s\" to \"Activated\"", (long long) id, status),
				 errhint("Only a Draft order is activated.")));
	lock_products(id);
	take_order_stock(id);
	write_order_status(caller, id, true, NULL);
	crm_spi_finish();
	PG_RETURN_DATUM(crm_enum_result(fcinfo, "Activated"));
}

/* crm_cancel_order -- SQL crm.cancel_order(order_id, reason) */
PG_FUNCTION_INFO_V1(crm_cancel_order);
Datum
crm_cancel_order(PG_FUNCTION_ARGS)
{
	Oid			caller = crm_caller();
	int64		id = crm_required_id(fcinfo, 0, "order_id");
	char	   *reason = crm_optional_text(fcinfo, 1);
	char	   *status;

	crm_spi_connect();
	status = lock_order_for(caller, id);
	/* the cancellation record (who, when, why) is written once */
	if (strcmp(status, "Cancelled") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_ILLEGAL_TRANSITION),
				 errmsg("order %lld is already cancelled", (long long) id),
				 errdetail("It was cancelled at %s by %s.",
						   crm_result_text(0, 2) ? crm_result_text(0, 2) : "an unknown time",
						   crm_result_text(0, 3) ? crm_result_text(0, 3) : "an unknown role"),
				 errhint("A cancellation is recorded once; its time, role and reason stay as they are.")));
	if (strcmp(status, "Activated") == 0)
	{
		Datum		values[1] = {Int64GetDatum(id)};
		char		nulls[1] = {' '};

		/* the products holding this order's reservation, in id order */
		crm_query_run_as_owner(&lock_reserved, values, nulls, 0);
	}
	/* from any other status the transition check decides */
	write_order_status(caller, id, false, reason);
	crm_spi_finish();
	PG_RETURN_DATUM(crm_enum_result(fcinfo, "Cancelled"));
}
