/*
 * quotes.c: quotes, their workflow and approval.
 *
 * crm_internal.quote_guard()  BEFORE INSERT OR UPDATE row trigger: a new quote is a
 *     Draft with subtotal 0, not synced, numbered Q-000001, ... from
 *     crm.quote_number_seq (drawn as the extension owner; the number never
 *     changes); a quote past its valid_until (before CURRENT_DATE, the
 *     session's TimeZone) is not presented or accepted (ZC209) and only such
 *     a quote becomes Expired; status changes follow
 *     crm_internal.quote_transition, the approval states only through the functions
 *     below; Draft -> Presented only within the approval threshold; only a
 *     Draft quote's content changes; the subtotal is the lines' (line-sum
 *     permit) and the synced flag is set only by crm.sync_quote().  One
 *     exception: deleting a contact clears it from every quote (ON DELETE
 *     SET NULL), recognised by the contact being gone.
 * crm.create_quote(), crm.submit_quote(), crm.approve_quote(),
 * crm.reject_quote(), crm.sync_quote(): SECURITY INVOKER -- every row is read
 * and written with the caller's own rights; only the approval record is
 * written as the extension owner.  Each locks the quote first (FOR UPDATE).
 */
#include "crm.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/rel.h"

static CrmQuery quote_transition_lookup = {
	"SELECT t.via_function FROM crm_internal.quote_transition AS t"
	" WHERE t.from_status OPERATOR(pg_catalog.=) $1::crm.quote_status"
	"   AND t.to_status OPERATOR(pg_catalog.=) $2::crm.quote_status",
	2, {TEXTOID, TEXTOID}, NULL
};

/*
 * The largest discount on a quote -- the header's, or any line's below the
 * price book price (a lowered unit price counts like a line discount) --
 * and the threshold.
 */
/* [0]: before 0.7 (no tiers), [1]: with tiers */
static CrmQuery quote_discounts[2];

static CrmQuery *
quote_discounts_query(void)
{
	bool		tiers = crm_has_price_rules();
	CrmQuery   *q = &quote_discounts[tiers ? 1 : 0];

	if (q->sql == NULL)
	{
		q->nargs = 2;
		q->argtypes[0] = INT8OID;
		q->argtypes[1] = NUMERICOID;
		q->sql = MemoryContextStrdup(TopMemoryContext, psprintf(
			"SELECT pg_catalog.round(d.discount, 2)::pg_catalog.text, s.quote_approval_threshold::pg_catalog.text,"
			"       d.discount OPERATOR(pg_catalog.>) s.quote_approval_threshold"
			"  FROM crm.settings AS s,"
			"       (SELECT GREATEST($2, COALESCE((SELECT pg_catalog.max("
			"                 100 OPERATOR(pg_catalog.-) ((l.unit_price OPERATOR(pg_catalog.*) (100 OPERATOR(pg_catalog.-) l.discount))"
			"                                             OPERATOR(pg_catalog./) r.price))"
			"            FROM crm.quote_line_item AS l"
			"            JOIN crm.quote AS q ON q.id OPERATOR(pg_catalog.=) l.quote_id"
			"            JOIN crm.price_book_entry AS e ON e.price_book_id OPERATOR(pg_catalog.=) q.price_book_id"
			"                                          AND e.product_id OPERATOR(pg_catalog.=) l.product_id"
			"            CROSS JOIN LATERAL (SELECT %s AS price) AS r"
			"           WHERE l.quote_id OPERATOR(pg_catalog.=) $1 AND r.price OPERATOR(pg_catalog.>) 0), 0),"
			"                         COALESCE((SELECT pg_catalog.max(l.discount) FROM crm.quote_line_item AS l"
			"                                    WHERE l.quote_id OPERATOR(pg_catalog.=) $1), 0)) AS discount) AS d",
			crm_price_sql(tiers, "e", "l.quantity")));
	}
	return q;
}

static CrmQuery quote_has_lines = {
	"SELECT 1 FROM crm.quote_line_item AS l WHERE l.quote_id OPERATOR(pg_catalog.=) $1 LIMIT 1",
	1, {INT8OID}, NULL
};

/* a quote keeps its price book while it has lines; a new one must be active */
static void
check_quote_price_book(int64 id, HeapTuple newtup, TupleDesc tupdesc)
{
	bool		isnull;
	int64		book = crm_column_int64(newtup, tupdesc, "price_book_id", &isnull);
	Datum		values[1] = {Int64GetDatum(id)};
	char		nulls[1] = {' '};

	crm_query_run_as_owner(&quote_has_lines, values, nulls, 1);
	if (SPI_processed == 0 && crm_query_finds_newer_rows(&quote_has_lines, values, nulls))
		crm_serialization_failure(psprintf("quote %lld", (long long) id), NULL);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_PRICE_BOOK_FIXED),
				 errmsg("quote %lld keeps its price book while it has line items", (long long) id),
				 errhint("Remove the line items first.")));
	if (!isnull)
		crm_require_active_price_book(book);
}

static CrmQuery contact_exists = {
	"SELECT 1 FROM crm.contact AS c WHERE c.id OPERATOR(pg_catalog.=) $1",
	1, {INT8OID}, NULL
};

/*
 * contact_cleared_by_delete -- is this update the foreign key's ON DELETE
 * SET NULL: contact_id goes to NULL and the contact it named is gone?
 *
 * Deleting a contact clears it from every quote (README "Data model"),
 * whatever the quote's status.  A user cannot clear it by hand on a quote
 * that is no longer Draft: the contact still exists then.  (Read as the
 * extension owner, who sees every contact: the quote's owner may not see it.)
 */
static bool
contact_cleared_by_delete(HeapTuple oldtup, HeapTuple newtup, TupleDesc tupdesc)
{
	bool		old_isnull;
	bool		new_isnull;
	int64		old_contact = crm_column_int64(oldtup, tupdesc, "contact_id", &old_isnull);
	Datum		values[1];
	char		nulls[1] = {' '};
	bool		gone;

	(void) crm_column_int64(newtup, tupdesc, "contact_id", &new_isnull);
	if (old_isnull || !new_isnull)
		return false;
	values[0] = Int64GetDatum(old_contact);
	crm_spi_connect();
	crm_query_run_as_owner(&contact_exists, values, nulls, 1);
	gone = SPI_processed == 0;
	crm_spi_finish();
	return gone;
}

/*
 * columns of a quote that are not its content; with a deleted contact, the
 * contact_id that ON DELETE SET NULL clears
 */
static const char *const workflow_columns[] = {
	"status", "is_synced", "subtotal", "owner", "created_at", "updated_at", NULL
};
static const char *const workflow_columns_contact_gone[] = {
	"status", "is_synced", "subtotal", "owner", "created_at", "updated_at", "contact_id", NULL
};
/* crm.approve_quote() lowering the discount of a quote in review */
static const char *const workflow_columns_discount[] = {
	"status", "is_synced", "subtotal", "owner", "created_at", "updated_at", "discount", NULL
};

static CrmQuery next_quote_number = {
	"SELECT 'Q-' OPERATOR(pg_catalog.||)"
	"       pg_catalog.lpad(pg_catalog.nextval('crm.quote_number_seq'::pg_catalog.regclass)::pg_catalog.text, 6, '0')",
	0, {InvalidOid}, NULL
};

/* is the quote past its valid_until (before today in the session's TimeZone)? */
static bool
quote_past_date(HeapTuple tup, TupleDesc tupdesc, char **until)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, crm_attnum(tupdesc, "valid_until"), tupdesc, &isnull);

	if (isnull)
		return false;
	*until = DatumGetCString(DirectFunctionCall1(date_out, d));
	return DatumGetDateADT(d) < GetSQLCurrentDate();
}

/* crm_require_quote_in_date -- ZC209 when the quote is past its valid_until */
static void
require_in_date(Relation rel, int64 id, HeapTuple tup, const char *doing)
{
	char	   *until = NULL;

	if (quote_past_date(tup, RelationGetDescr(rel), &until))
		ereport(ERROR,
				(errcode(ERRCODE_CRM_QUOTE_EXPIRED),
				 errtable(rel),
				 errmsg("quote %lld expired on %s and cannot be %s", (long long) id, until, doing),
				 errdetail("A quote is valid until the end of its valid_until day (today is judged in the session's TimeZone)."),
				 errhint("Revise it: set it back to Draft with a later valid_until.")));
}

/*
 * refuse presenting a quote over the threshold that was not approved; the
 * header discount is the one the statement is writing
 */
static void
check_within_threshold(int64 id, Datum discount)
{
	Datum		values[2] = {Int64GetDatum(id), discount};
	char		nulls[2] = {' ', ' '};
	bool		isnull;

	CrmQuery   *discounts = quote_discounts_query();

	crm_query_run_as_owner(discounts, values, nulls, 1);
	/* REPEATABLE READ: line discounts changed since our snapshot count too */
	if (!(SPI_processed > 0 && DatumGetBool(crm_result_datum(0, 3, &isnull))) &&
		crm_query_run_fresh(discounts, values, nulls, 1) &&
		SPI_processed > 0 && DatumGetBool(crm_result_datum(0, 3, &isnull)))
		crm_serialization_failure(psprintf("quote %lld", (long long) id), NULL);
	if (SPI_processed > 0 && DatumGetBool(crm_result_datum(0, 3, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_CRM_APPROVAL_REQUIRED),
				 errmsg("quote %lld needs approval before it is presented", (long long) id),
				 errdetail("Its largest discount, %s%%, exceeds the approval threshold of %s%%.",
						   crm_result_text(0, 1), crm_result_text(0, 2)),
				 errhint("Submit it with crm.submit_quote(%lld).", (long long) id)));
}

/*
 * check_expiry_transition -- the changes to and from Expired are the
 * database's own, not rows of crm_internal.quote_transition: an open quote (Draft,
 * Needs Review, In Review, Approved, Rejected, Presented) becomes Expired
 * once past its valid_until, and an Expired quote goes back to Draft only
 * with a valid_until not past (ZC020, ZC209 otherwise).
 */
static void
check_expiry_transition(Relation rel, int64 id, const char *from, const char *to, HeapTuple newtup)
{
	static const char *const open_statuses[] = {
		"Draft", "Needs Review", "In Review", "Approved", "Rejected", "Presented", NULL
	};
	bool		legal = false;
	char	   *until = NULL;

	if (strcmp(to, "Expired") == 0)
		for (int i = 0; open_statuses[i] != NULL; i++)
			legal = legal || strcmp(from, open_statuses[i]) == 0;
	else
		legal = strcmp(to, "Draft") == 0;
	if (!legal)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_ILLEGAL_TRANSITION),
				 errtable(rel),
				 errmsg("quote %lld cannot go from \"%s\" to \"%s\"", (long long) id, from, to),
				 errhint("An open quote past its valid_until becomes Expired; an Expired quote goes back to Draft.")));
	if (strcmp(to, "Expired") == 0 && !quote_past_date(newtup, RelationGetDescr(rel), &until))
		ereport(ERROR,
				(errcode(ERRCODE_CRM_ILLEGAL_TRANSITION),
				 errtable(rel),
				 errmsg("quote %lld is not past its valid_until and cannot be Expired", (long long) id),
				 errdetail("Valid until: %s.", until ? until : "no end")));
	if (strcmp(from, "Expired") == 0)
		require_in_date(rel, id, newtup, "revised without a later valid_until");
}

/*
 * number_quote -- a new quote's number, Q-000001, ...: drawn as the
 * extension owner, since users have no right on the sequence, whose
 * position is the company's quote count.  A number given is refused.
 */
static HeapTuple
number_quote(Relation rel, HeapTuple newtup)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	bool		isnull;

	(void) heap_getattr(newtup, crm_attnum(tupdesc, "quote_number"), tupdesc, &isnull);
	if (!isnull)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_NOT_EDITABLE),
				 errtablecol(rel, crm_attnum(tupdesc, "quote_number")),
				 errmsg("quote numbers are assigned by the database"),
				 errhint("Leave quote_number out; the quote gets the next Q- number.")));
	crm_spi_connect();
	crm_query_run_as_owner(&next_quote_number, NULL, NULL, 1);
	newtup = crm_set_column(newtup, tupdesc, "quote_number",
							datumCopy(crm_result_datum(0, 1, &isnull), false, -1), false);
	newtup = SPI_copytuple(newtup);
	crm_spi_finish();
	return newtup;
}

/* crm_quote_guard -- trigger crm_internal.quote_guard() */
PG_FUNCTION_INFO_V1(crm_quote_guard);
Datum
crm_quote_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "quote_guard", true, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	bool		isnull;

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		HeapTuple	newtup = trigdata->tg_trigtuple;
		char	   *status = crm_column_text(newtup, tupdesc, "status");

		if (SPI_fnumber(tupdesc, "quote_number") > 0)	/* 0.7 on */
			newtup = number_quote(trigdata->tg_relation, newtup);
		if (status == NULL)
			return PointerGetDatum(newtup);	/* NOT NULL reports it */
		if (strcmp(status, "Draft") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_CRM_ILLEGAL_TRANSITION),
					 errtable(trigdata->tg_relation),
					 errmsg("a new quote starts as Draft, not \"%s\"", status)));
		newtup = crm_set_column(newtup, tupdesc, "is_synced", BoolGetDatum(false), false);
		newtup = crm_set_column(newtup, tupdesc, "subtotal",
								DirectFunctionCall1(int4_numeric, Int32GetDatum(0)), false);
		return PointerGetDatum(newtup);
	}
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		HeapTuple	oldtup = trigdata->tg_trigtuple;
		HeapTuple	newtup = trigdata->tg_newtuple;
		int64		id = crm_column_int64(oldtup, tupdesc, "id", &isnull);
		char	   *from = crm_column_text(oldtup, tupdesc, "status");
		char	   *to = crm_column_text(newtup, tupdesc, "status");

		if (to == NULL)
			return PointerGetDatum(newtup);	/* NOT NULL reports it */

		if (SPI_fnumber(tupdesc, "quote_number") > 0 &&
			crm_column_changed(oldtup, newtup, tupdesc, "quote_number"))
			ereport(ERROR,
					(errcode(ERRCODE_CRM_NOT_EDITABLE),
					 errtablecol(trigdata->tg_relation, crm_attnum(tupdesc, "quote_number")),
					 errmsg("the number of quote %lld never changes", (long long) id),
					 errdetail("Quote numbers are assigned by the database when the quote is made.")));

		/* content changes only in Draft (also when going back to Draft) */
		if (strcmp(from, "Draft") != 0 && strcmp(to, "Draft") != 0)
		{
			const char *col = crm_changed_column_outside(oldtup,
														 crm_without_merge_repoints(oldtup, newtup, tupdesc),
														 tupdesc,
														 contact_cleared_by_delete(oldtup, newtup, tupdesc)
														 ? workflow_columns_contact_gone
														 : crm_permitted(CRM_PERMIT_QUOTE_DISCOUNT, id)
														 ? workflow_columns_discount : workflow_columns);

			if (col != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_CRM_NOT_EDITABLE),
						 errtablecol(trigdata->tg_relation, crm_attnum(tupdesc, col)),
						 errmsg("quote %lld is %s and its %s cannot change", (long long) id, from, col),
						 errdetail("Only a Draft quote can be edited."),
						 errhint("Revise it: a Rejected or Denied quote goes back to Draft.")));
		}
		if (crm_column_changed(oldtup, newtup, tupdesc, "opportunity_id"))
			ereport(ERROR,
					(errcode(ERRCODE_CRM_NOT_EDITABLE),
					 errtablecol(trigdata->tg_relation, crm_attnum(tupdesc, "opportunity_id")),
					 errmsg("quote %lld stays with opportunity %lld", (long long) id,
							(long long) crm_column_int64(oldtup, tupdesc, "opportunity_id", &isnull)),
					 errhint("Create a new quote for the other opportunity.")));
		if (crm_column_changed(oldtup, newtup, tupdesc, "price_book_id"))
		{
			crm_spi_connect();
			check_quote_price_book(id, newtup, tupdesc);
			crm_spi_finish();
		}
		if (crm_column_changed(oldtup, newtup, tupdesc, "subtotal") &&
			!crm_permitted(CRM_PERMIT_LINE_SUM, id))
			ereport(ERROR,
					(errcode(ERRCODE_CRM_AMOUNT_FROM_LINES),
					 errtable(trigdata->tg_relation),
					 errmsg("the subtotal of quote %lld is the sum of its line items", (long long) id),
					 errhint("Change the line items instead.")));
		if (crm_column_changed(oldtup, newtup, tupdesc, "is_synced") &&
			crm_column_is(newtup, tupdesc, "is_synced", "t") &&
			!crm_permitted(CRM_PERMIT_QUOTE_STATUS, id))
			ereport(ERROR,
					(errcode(ERRCODE_CRM_TRANSITION_RESERVED),
					 errtable(trigdata->tg_relation),
					 errmsg("quote %lld can be marked synced only through crm.sync_quote()", (long long) id),
					 errhint("Call SELECT crm.sync_quote(%lld).", (long long) id)));

		if (strcmp(from, to) != 0)
		{
			crm_spi_connect();
			if (strcmp(to, "Expired") == 0 || strcmp(from, "Expired") == 0)
				check_expiry_transition(trigdata->tg_relation, id, from, to, newtup);
			else
				crm_check_transition(&quote_transition_lookup, "quote", id, from, to,
									 CRM_PERMIT_QUOTE_STATUS);
			if (strcmp(to, "Presented") == 0 || strcmp(to, "Accepted") == 0)
				require_in_date(trigdata->tg_relation, id, newtup,
								strcmp(to, "Presented") == 0 ? "presented" : "accepted");
			if (strcmp(from, "Draft") == 0 && strcmp(to, "Presented") == 0)
				check_within_threshold(id, heap_getattr(newtup, crm_attnum(tupdesc, "discount"), tupdesc, &isnull));
			crm_spi_finish();
		}
		return PointerGetDatum(newtup);
	}
	ereport(ERROR,
			(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
			 errtable(trigdata->tg_relation),
			 errmsg("crm_internal.quote_guard() must be fired for INSERT or UPDATE")));
	pg_unreachable();
}

/* ---- functions ---- */

static CrmQuery lock_opportunity = {
	"SELECT o.name, o.account_id, o.contact_id, o.price_book_id,"
	"       (SELECT pg_catalog.count(*) FROM crm.quote AS q WHERE q.opportunity_id OPERATOR(pg_catalog.=) o.id)"
	"  FROM crm.opportunity AS o WHERE o.id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE OF o",
	1, {INT8OID}, NULL
};

/* [0]: before 0.7 (no account books), [1]: 0.7 */
static CrmQuery insert_quote[2];

static CrmQuery *
insert_quote_query(void)
{
	bool		rules = crm_has_price_rules();
	CrmQuery   *q = &insert_quote[rules ? 1 : 0];
	static const Oid types[11] = {INT8OID, TEXTOID, TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID,
	DATEOID, NUMERICOID, NUMERICOID, REGROLEOID};

	if (q->sql == NULL)
	{
		q->nargs = 11;
		memcpy(q->argtypes, types, sizeof(types));
		q->sql = MemoryContextStrdup(TopMemoryContext, psprintf(
			"INSERT INTO crm.quote (opportunity_id, name, account_id, contact_id, price_book_id,"
			"                       valid_until, discount, tax_rate, owner)"
			" SELECT $1, COALESCE($2, $3 OPERATOR(pg_catalog.||) ' - Quote ' OPERATOR(pg_catalog.||) $4::pg_catalog.text),"
			"        $5, $6, COALESCE($7, %s, (SELECT b.id FROM crm.price_book AS b WHERE b.is_standard)),"
			"        COALESCE($8, CURRENT_DATE OPERATOR(pg_catalog.+) 30), $9, $10, $11"
			" RETURNING id",
			crm_account_book_sql(rules, "$5")));
	}
	return q;
}

static CrmQuery copy_opportunity_lines = {
	"INSERT INTO crm.quote_line_item (quote_id, product_id, description, quantity, unit_price, discount, sort_order, owner)"
	" SELECT $1, l.product_id, l.description, l.quantity, l.unit_price, l.discount, l.sort_order, $3"
	"   FROM crm.opportunity_line_item AS l WHERE l.opportunity_id OPERATOR(pg_catalog.=) $2"
	"  ORDER BY l.sort_order, l.id",
	3, {INT8OID, INT8OID, REGROLEOID}, NULL
};

static CrmQuery lock_quote = {
	"SELECT q.status::pg_catalog.text, q.opportunity_id, q.price_book_id,"
	"       (SELECT a.acted_by FROM crm.quote_approval AS a"
	"         WHERE a.quote_id OPERATOR(pg_catalog.=) q.id AND a.action OPERATOR(pg_catalog.=) 'submitted'"
	"         ORDER BY a.id DESC LIMIT 1), q.discount"
	"  FROM crm.quote AS q WHERE q.id OPERATOR(pg_catalog.=) $1 FOR UPDATE OF q",
	1, {INT8OID}, NULL
};

static CrmQuery set_quote_status = {
	"UPDATE crm.quote AS q SET status = $2::crm.quote_status WHERE q.id OPERATOR(pg_catalog.=) $1",
	2, {INT8OID, TEXTOID}, NULL
};

static CrmQuery insert_approval_0_6 = {
	"INSERT INTO crm.quote_approval (quote_id, action, comment, acted_by) VALUES ($1, $2, $3, $4)",
	4, {INT8OID, TEXTOID, TEXTOID, REGROLEOID}, NULL
};

static CrmQuery insert_approval = {
	"INSERT INTO crm.quote_approval (quote_id, action, comment, acted_by, old_discount, new_discount)"
	" VALUES ($1, $2, $3, $4, $5, $6)",
	6, {INT8OID, TEXTOID, TEXTOID, REGROLEOID, NUMERICOID, NUMERICOID}, NULL
};

static CrmQuery set_quote_discount = {
	"UPDATE crm.quote AS q SET discount = $2 WHERE q.id OPERATOR(pg_catalog.=) $1",
	2, {INT8OID, NUMERICOID}, NULL
};

/* the quote locked for the caller; ZC201 when it is not there for them */
typedef struct QuoteRow
{
	int64		id;
	char	   *status;
	int64		opportunity_id;
	int64		price_book_id;
	bool		submitter_isnull;
	Oid			submitter;
	Datum		discount;		/* numeric, in the caller's memory */
} QuoteRow;

static void
lock_quote_for(Oid caller, int64 id, QuoteRow *q)
{
	Datum		values[1] = {Int64GetDatum(id)};
	char		nulls[1] = {' '};
	bool		isnull;

	crm_query_run_as(caller, &lock_quote, values, nulls, 1);
	if (SPI_processed == 0)
		crm_not_visible(ERRCODE_CRM_QUOTE_NOT_FOUND, "quote", id, caller);
	q->id = id;
	q->status = crm_result_text(0, 1);
	q->opportunity_id = crm_result_int64(0, 2, &isnull);
	q->price_book_id = crm_result_int64(0, 3, &isnull);
	q->submitter = DatumGetObjectId(crm_result_datum(0, 4, &q->submitter_isnull));
	q->discount = crm_result_datum(0, 5, &isnull);
}

/* the quote functions start only from their statuses (ZC020 otherwise) */
static void
require_status(const QuoteRow *q, const char *one, const char *other, const char *to)
{
	if (strcmp(q->status, one) == 0 || (other != NULL && strcmp(q->status, other) == 0))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_CRM_ILLEGAL_TRANSITION),
			 errmsg("quote %lld cannot go from \"%s\" to \"%s\"", (long long) q->id, q->status, to),
			 errhint("The legal status changes are listed in crm_internal.quote_transition.")));
}

/*
 * apply_statuses -- the status changes of a quote function, in order
 * (statuses is NULL-terminated), under the quote-status permit
 */
static void
apply_statuses(Oid caller, int64 id, const char *const *statuses)
{
	Datum		values[2];
	char		nulls[2] = {' ', ' '};

	crm_permit_push(CRM_PERMIT_QUOTE_STATUS, id);
	values[0] = Int64GetDatum(id);
	for (int i = 0; statuses[i] != NULL; i++)
	{
		values[1] = CStringGetTextDatum(statuses[i]);
		crm_query_run_as(caller, &set_quote_status, values, nulls, 0);
	}
	crm_permit_pop(CRM_PERMIT_QUOTE_STATUS, id);
}

/*
 * record_approval -- an entry of crm.quote_approval; old and new discount
 * (numeric Datums, or 0 for NULL) for approvals
 */
static void
record_approval(int64 id, const char *action, const char *comment, Oid caller,
				Datum old_discount, Datum new_discount)
{
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};

	values[0] = Int64GetDatum(id);
	values[1] = CStringGetTextDatum(action);
	values[2] = comment ? CStringGetTextDatum(comment) : (Datum) 0;
	nulls[2] = comment ? ' ' : 'n';
	values[3] = ObjectIdGetDatum(caller);
	values[4] = old_discount;
	nulls[4] = old_discount ? ' ' : 'n';
	values[5] = new_discount;
	nulls[5] = new_discount ? ' ' : 'n';
	crm_query_run_as_owner(crm_has_price_rules() ? &insert_approval : &insert_approval_0_6, values, nulls, 0);
}

/* crm_create_quote -- SQL crm.create_quote(opportunity_id, name, valid_until, discount, tax_rate) */
PG_FUNCTION_INFO_V1(crm_create_quote);
Datum
crm_create_quote(PG_FUNCTION_ARGS)
{
	Oid			caller = crm_caller();
	int64		opportunity_id = crm_required_id(fcinfo, 0, "opportunity_id");
	Datum		values[11];
	char		nulls[11];
	bool		isnull;
	int64		quote_id;
	Oid			owner = caller;

	if (PG_ARGISNULL(3) || PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", PG_ARGISNULL(3) ? "discount" : "tax_rate"),
				 errhint("Pass 0 for none.")));

	crm_spi_connect();
	values[0] = Int64GetDatum(opportunity_id);
	nulls[0] = ' ';
	crm_query_run_as(caller, &lock_opportunity, values, nulls, 1);
	if (SPI_processed == 0)
		crm_not_visible(ERRCODE_CRM_OPPORTUNITY_NOT_FOUND, "opportunity", opportunity_id, caller);

	values[1] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	nulls[1] = PG_ARGISNULL(1) ? 'n' : ' ';
	values[2] = crm_result_datum(0, 1, &isnull);	/* opportunity name */
	nulls[2] = ' ';
	values[3] = Int64GetDatum(crm_result_int64(0, 5, &isnull) + 1);	/* quote number */
	nulls[3] = ' ';
	for (int i = 2; i <= 4; i++)	/* account, contact, price book */
	{
		values[2 + i] = crm_result_datum(0, i, &isnull);
		nulls[2 + i] = isnull ? 'n' : ' ';
	}
	values[7] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	nulls[7] = PG_ARGISNULL(2) ? 'n' : ' ';
	values[8] = PG_GETARG_DATUM(3);
	nulls[8] = ' ';
	values[9] = PG_GETARG_DATUM(4);
	nulls[9] = ' ';
	values[10] = ObjectIdGetDatum(owner);
	nulls[10] = ' ';
	crm_query_run_as(caller, insert_quote_query(), values, nulls, 0);
	quote_id = crm_result_int64(0, 1, &isnull);

	values[0] = Int64GetDatum(quote_id);
	values[1] = Int64GetDatum(opportunity_id);
	values[2] = ObjectIdGetDatum(owner);
	nulls[1] = nulls[2] = ' ';
	crm_query_run_as(caller, &copy_opportunity_lines, values, nulls, 0);
	crm_spi_finish();
	PG_RETURN_INT64(quote_id);
}

/* crm_submit_quote -- SQL crm.submit_quote(quote_id, comment) */
PG_FUNCTION_INFO_V1(crm_submit_quote);
Datum
crm_submit_quote(PG_FUNCTION_ARGS)
{
	Oid			caller = crm_caller();
	int64		id = crm_required_id(fcinfo, 0, "quote_id");
	char	   *comment = crm_optional_text(fcinfo, 1);
	static const char *const path[] = {"Needs Review", NULL};
	QuoteRow	q;

	crm_spi_connect();
	lock_quote_for(caller, id, &q);
	require_status(&q, "Draft", NULL, "Needs Review");
	apply_statuses(caller, id, path);
	record_approval(id, "submitted", comment, caller, (Datum) 0, (Datum) 0);
	crm_spi_finish();
	PG_RETURN_DATUM(crm_enum_result(fcinfo, "Needs Review"));
}

/*
 * decide -- approve or reject: managers and admins only, not one's own
 * submission (admins excepted); from Needs Review the quote passes through
 * In Review.  An approval may lower the quote discount (new_discount, a
 * numeric Datum, or 0 for none): written while the quote is In Review under
 * the discount permit, so the generated amounts follow as on any edit.
 */
static Datum
decide(FunctionCallInfo fcinfo, const char *outcome, const char *action, Datum new_discount)
{
	Oid			caller = crm_caller();
	int64		id = crm_required_id(fcinfo, 0, "quote_id");
	char	   *comment = crm_optional_text(fcinfo, 1);
	static const char *const deciders[] = {"crm_manager", "crm_admin", NULL};
	static const char *const in_review[] = {"In Review", NULL};
	const char *path[2] = {outcome, NULL};
	QuoteRow	q;
	bool		approving = strcmp(action, "approved") == 0;

	crm_require_role(caller, deciders, psprintf("%s quotes", approving ? "approve" : "reject"));
	if (!approving &&
		crm_is_blank(comment))
		ereport(ERROR,
				(errcode(ERRCODE_CRM_COMMENT_REQUIRED),
				 errmsg("rejecting quote %lld needs a comment", (long long) id),
				 errhint("Say why, so the rep can rework it.")));

	crm_spi_connect();
	lock_quote_for(caller, id, &q);
	require_status(&q, "Needs Review", "In Review", outcome);
	if (!q.submitter_isnull && q.submitter == caller)
	{
		Oid			admin = get_role_oid("crm_admin", true);

		if (!OidIsValid(admin) || !has_privs_of_role(caller, admin))
			ereport(ERROR,
					(errcode(ERRCODE_CRM_SELF_APPROVAL),
					 errmsg("quote %lld was submitted by you and needs another approver", (long long) id),
					 errhint("Ask another manager, or an admin.")));
	}
	q.discount = datumCopy(q.discount, false, -1);
	if (new_discount != (Datum) 0 &&
		DatumGetInt32(DirectFunctionCall2(numeric_cmp, new_discount, q.discount)) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_DISCOUNT_RAISED),
				 errmsg("approving quote %lld can lower its discount, not raise it", (long long) id),
				 errdetail("The quote discount is %s%%; %s%% was given.",
						   DatumGetCString(DirectFunctionCall1(numeric_out, q.discount)),
						   DatumGetCString(DirectFunctionCall1(numeric_out, new_discount))),
				 errhint("Reject the quote so the rep can rework it.")));
	if (strcmp(q.status, "Needs Review") == 0)
		apply_statuses(caller, id, in_review);
	if (new_discount != (Datum) 0)
	{
		Datum		values[2] = {Int64GetDatum(id), new_discount};
		char		nulls[2] = {' ', ' '};

		crm_permit_push(CRM_PERMIT_QUOTE_DISCOUNT, id);
		crm_query_run_as(caller, &set_quote_discount, values, nulls, 0);
		crm_permit_pop(CRM_PERMIT_QUOTE_DISCOUNT, id);
	}
	apply_statuses(caller, id, path);
	if (approving)
		record_approval(id, action, comment, caller, q.discount,
						new_discount != (Datum) 0 ? new_discount : q.discount);
	else
		record_approval(id, action, comment, caller, (Datum) 0, (Datum) 0);
	crm_spi_finish();
	return crm_enum_result(fcinfo, outcome);
}

/* crm_approve_quote -- SQL crm.approve_quote(quote_id, comment, discount) */
PG_FUNCTION_INFO_V1(crm_approve_quote);
Datum
crm_approve_quote(PG_FUNCTION_ARGS)
{
	/* discount: NULL keeps the quote's; a 0.6 definition has no third argument */
	Datum		discount = PG_NARGS() > 2 && !PG_ARGISNULL(2) ? PG_GETARG_DATUM(2) : (Datum) 0;

	PG_RETURN_DATUM(decide(fcinfo, "Approved", "approved", discount));
}

/* crm_reject_quote -- SQL crm.reject_quote(quote_id, comment) */
PG_FUNCTION_INFO_V1(crm_reject_quote);
Datum
crm_reject_quote(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(decide(fcinfo, "Rejected", "rejected", (Datum) 0));
}

/* ---- sync ---- */

static CrmQuery quote_opportunity = {
	"SELECT q.opportunity_id FROM crm.quote AS q WHERE q.id OPERATOR(pg_catalog.=) $1",
	1, {INT8OID}, NULL
};

static CrmQuery lock_opportunity_quotes = {
	"SELECT q.id FROM crm.quote AS q WHERE q.opportunity_id OPERATOR(pg_catalog.=) $1"
	" ORDER BY q.id FOR UPDATE OF q",
	1, {INT8OID}, NULL
};

static CrmQuery unsync_others = {
	"UPDATE crm.quote AS q SET is_synced = false"
	" WHERE q.opportunity_id OPERATOR(pg_catalog.=) $1 AND q.is_synced AND q.id OPERATOR(pg_catalog.<>) $2",
	2, {INT8OID, INT8OID}, NULL
};

static CrmQuery mark_synced = {
	"UPDATE crm.quote AS q SET is_synced = true WHERE q.id OPERATOR(pg_catalog.=) $1",
	1, {INT8OID}, NULL
};

static CrmQuery clear_opportunity_lines = {
	"DELETE FROM crm.opportunity_line_item AS l WHERE l.opportunity_id OPERATOR(pg_catalog.=) $1",
	1, {INT8OID}, NULL
};

static CrmQuery set_opportunity_book = {
	"UPDATE crm.opportunity AS o SET price_book_id = $2"
	" WHERE o.id OPERATOR(pg_catalog.=) $1"
	"   AND (o.price_book_id OPERATOR(pg_catalog.<>) $2"	/* IS DISTINCT FROM, qualified */
	"        OR (o.price_book_id IS NULL) OPERATOR(pg_catalog.<>) ($2 IS NULL))",
	2, {INT8OID, INT8OID}, NULL
};

static CrmQuery copy_quote_lines = {
	"INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, description, quantity, unit_price, discount, sort_order, owner)"
	" SELECT $1, l.product_id, l.description, l.quantity, l.unit_price, l.discount, l.sort_order, $3"
	"   FROM crm.quote_line_item AS l WHERE l.quote_id OPERATOR(pg_catalog.=) $2"
	"  ORDER BY l.sort_order, l.id",
	3, {INT8OID, INT8OID, REGROLEOID}, NULL
};

/*
 * write_sync -- make quote q the opportunity's synced quote and copy its
 * lines over the opportunity's, under the quote-status permit
 */
static void
write_sync(Oid caller, const QuoteRow *q)
{
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};

	crm_permit_push(CRM_PERMIT_QUOTE_STATUS, q->id);
	values[0] = Int64GetDatum(q->opportunity_id);
	values[1] = Int64GetDatum(q->id);
	crm_query_run_as(caller, &unsync_others, values, nulls, 0);
	crm_query_run_as(caller, &mark_synced, &values[1], nulls, 0);
	crm_query_run_as(caller, &clear_opportunity_lines, values, nulls, 0);
	values[1] = Int64GetDatum(q->price_book_id);
	nulls[1] = q->price_book_id == 0 ? 'n' : ' ';
	crm_query_run_as(caller, &set_opportunity_book, values, nulls, 0);
	values[1] = Int64GetDatum(q->id);
	nulls[1] = ' ';
	values[2] = ObjectIdGetDatum(caller);
	crm_query_run_as(caller, &copy_quote_lines, values, nulls, 0);
	crm_permit_pop(CRM_PERMIT_QUOTE_STATUS, q->id);
}

/* crm_sync_quote -- SQL crm.sync_quote(quote_id) */
PG_FUNCTION_INFO_V1(crm_sync_quote);
Datum
crm_sync_quote(PG_FUNCTION_ARGS)
{
	Oid			caller = crm_caller();
	int64		id = crm_required_id(fcinfo, 0, "quote_id");
	QuoteRow	q;
	Datum		values[1];
	char		nulls[1] = {' '};

	crm_spi_connect();

	/*
	 * Lock order: the opportunity, then all its quotes in id order -- so two
	 * syncs of quotes of one opportunity queue up instead of deadlocking.
	 * (A quote never moves to another opportunity.)
	 */
	values[0] = Int64GetDatum(id);
	crm_query_run_as(caller, &quote_opportunity, values, nulls, 1);
	if (SPI_processed > 0)
	{
		bool		isnull;

		values[0] = crm_result_datum(0, 1, &isnull);
		crm_query_run_as(caller, &lock_opportunity, values, nulls, 1);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_CRM_OPPORTUNITY_NOT_FOUND),
					 errmsg("opportunity %lld of quote %lld is not visible to role \"%s\"",
							(long long) DatumGetInt64(values[0]), (long long) id, crm_role_name(caller))));
		crm_query_run_as(caller, &lock_opportunity_quotes, values, nulls, 0);
	}
	lock_quote_for(caller, id, &q);
	write_sync(caller, &q);
	crm_spi_finish();
	PG_RETURN_INT64(q.opportunity_id);
}
