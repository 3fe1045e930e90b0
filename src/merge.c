/*
 * merge.c: crm.merge_accounts(), crm.merge_contacts(), crm.merge_leads() --
 * two records of one kind become one.
 *
 *		crm.merge_accounts(survivor, merged, take text[] DEFAULT NULL) -> survivor
 *
 * One call is one atomic step inside the caller's transaction:
 *   1. both records' duplicate-search keys are locked (accounts: the
 *      company key and the company domain; contacts: the e-mail), as a
 *      conversion locks them (locks.c), so that a conversion that could pick
 *      either record runs before the merge or after it;
 *   2. both records are locked in id order with SELECT ... FOR UPDATE run
 *      with the caller's rights: the caller must be able to update both
 *      (privileges and the UPDATE policies' USING clause); a record it
 *      cannot see or update is "not found" (ZC004, ZC005, ZC001), as one
 *      that does not exist;
 *   3. a converted lead cannot be the merged one (ZC702);
 *   4. the open duplicate_candidate rows of the pair become 'merged'; other
 *      open rows naming the merged record name the survivor (rows that would
 *      then repeat one of the survivor's are dropped);
 *   5. every row referencing the merged record through a foreign key is
 *      re-pointed to the survivor (repoint.c), as the extension owner, with
 *      a permit (permit.c) that lets the guards of converted leads, sent
 *      quotes and orders accept exactly that change;
 *   6. crm.merge_record keeps the merged record's values, who and when;
 *   7. the merged record is deleted, with the caller's rights;
 *   8. the survivor's empty fields are filled from the merged record's
 *      values, and the columns named in take are taken from them, with the
 *      caller's rights (the survivor keeps its owner unless take names it);
 *      a merged contact's primary account, when the survivor's is another,
 *      becomes a link of the survivor (crm.account_contact).
 */
#include "crm.h"

#include "access/htup_details.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

/* consent flags: the survivor keeps an opt-out either record had (README "Personal data") */
static const char *const most_restrictive[] = {
	"email_opt_out", "phone_opt_out", "do_not_contact", NULL
};

/* columns no merge writes: identity, timestamps, the conversion record */
static const char *const never_taken[] = {
	"id", "created_at", "updated_at", NULL
};
static const char *const lead_never_taken[] = {
	"id", "created_at", "updated_at", "status", "account_id", "contact_id",
	"opportunity_id", "converted_at", "converted_by", NULL
};

typedef struct MergeKind
{
	const char *kind;			/* "account": the table crm.<kind>, duplicate_candidate.kind */
	int			not_found;		/* SQLSTATE of "<kind> n does not exist" */
	CrmPermitKind permit;
	const char *const *frozen;	/* columns neither filled nor taken */
	CrmQuery	peek_keys;		/* the merged record's match keys, unlocked */
	CrmQuery	lock_row;		/* FOR UPDATE as the caller */
	CrmQuery	read_values;	/* the record as jsonb, as the owner */
	CrmQuery	delete_row;		/* as the caller */
	CrmQuery	fill;			/* built from the catalog; see fill_query() */
} MergeKind;

/* accounts and contacts have no converted_at: the lock query says false */
static MergeKind account_kind = {
	"account", ERRCODE_CRM_ACCOUNT_NOT_FOUND, CRM_PERMIT_MERGE_ACCOUNT, never_taken,
	{"SELECT t.name, t.website::pg_catalog.text FROM crm.account AS t WHERE t.id OPERATOR(pg_catalog.=) $1",
	 1, {INT8OID}, NULL},
	{"SELECT false, t.name, t.website::pg_catalog.text FROM crm.account AS t"
	 " WHERE t.id OPERATOR(pg_catalog.=) $1 FOR UPDATE OF t", 1, {INT8OID}, NULL},
	{"SELECT pg_catalog.to_jsonb(t) OPERATOR(pg_catalog.-) 'search_text'::pg_catalog.text FROM crm.account AS t WHERE t.id OPERATOR(pg_catalog.=) $1", 1, {INT8OID}, NULL},
	{"DELETE FROM crm.account AS t WHERE t.id OPERATOR(pg_catalog.=) $1", 1, {INT8OID}, NULL},
	{NULL, 3, {INT8OID, JSONBOID, TEXTARRAYOID}, NULL}
};
static MergeKind contact_kind = {
	"contact", ERRCODE_CRM_CONTACT_NOT_FOUND, CRM_PERMIT_MERGE_CONTACT, never_taken,
	{"SELECT t.email::pg_catalog.text FROM crm.contact AS t WHERE t.id OPERATOR(pg_catalog.=) $1",
	 1, {INT8OID}, NULL},
	{"SELECT false, t.email::pg_catalog.text FROM crm.contact AS t"
	 " WHERE t.id OPERATOR(pg_catalog.=) $1 FOR UPDATE OF t", 1, {INT8OID}, NULL},
	{"SELECT pg_catalog.to_jsonb(t) OPERATOR(pg_catalog.-) 'search_text'::pg_catalog.text FROM crm.contact AS t WHERE t.id OPERATOR(pg_catalog.=) $1", 1, {INT8OID}, NULL},
	{"DELETE FROM crm.contact AS t WHERE t.id OPERATOR(pg_catalog.=) $1", 1, {INT8OID}, NULL},
	{NULL, 3, {INT8OID, JSONBOID, TEXTARRAYOID}, NULL}
};
static MergeKind lead_kind = {
	"lead", ERRCODE_CRM_LEAD_NOT_FOUND, CRM_PERMIT_MERGE_LEAD, lead_never_taken,
	{NULL, 1, {INT8OID}, NULL},
	{"SELECT t.status OPERATOR(pg_catalog.=) 'Converted'::crm.lead_status FROM crm.lead AS t"
	 " WHERE t.id OPERATOR(pg_catalog.=) $1 FOR UPDATE OF t", 1, {INT8OID}, NULL},
	{"SELECT pg_catalog.to_jsonb(t) OPERATOR(pg_catalog.-) 'search_text'::pg_catalog.text FROM crm.lead AS t WHERE t.id OPERATOR(pg_catalog.=) $1", 1, {INT8OID}, NULL},
	{"DELETE FROM crm.lead AS t WHERE t.id OPERATOR(pg_catalog.=) $1", 1, {INT8OID}, NULL},
	{NULL, 3, {INT8OID, JSONBOID, TEXTARRAYOID}, NULL}
};

/*
 * the columns of a record table a merge may fill or take, in order, and
 * whether the caller ($2) may update each
 */
static CrmQuery record_columns = {
	"SELECT a.attname::pg_catalog.text,"
	" pg_catalog.has_column_privilege($2, $1, a.attnum, 'UPDATE')"
	" FROM pg_catalog.pg_attribute AS a"
	" WHERE a.attrelid OPERATOR(pg_catalog.=) $1 AND a.attnum OPERATOR(pg_catalog.>) 0"
	"   AND NOT a.attisdropped AND a.attidentity OPERATOR(pg_catalog.=) ''"
	"   AND a.attgenerated OPERATOR(pg_catalog.=) ''"
	" ORDER BY a.attnum",
	2, {OIDOID, OIDOID}, NULL
};

static CrmQuery close_pair = {
	"UPDATE crm.duplicate_candidate AS d"
	"   SET status = 'merged', resolved_by = $4, resolved_at = pg_catalog.now()"
	" WHERE d.status OPERATOR(pg_catalog.=) 'open'"
	"   AND d.kind OPERATOR(pg_catalog.=) $3 AND d.duplicate_kind OPERATOR(pg_catalog.=) $3"
	"   AND ((d.id OPERATOR(pg_catalog.=) $1 AND d.duplicate_of OPERATOR(pg_catalog.=) $2)"
	"     OR (d.id OPERATOR(pg_catalog.=) $2 AND d.duplicate_of OPERATOR(pg_catalog.=) $1))",
	4, {INT8OID, INT8OID, TEXTOID, REGROLEOID}, NULL
};

/* open rows naming the merged record ($1) that the survivor ($2) has already */
static CrmQuery drop_repeated_candidates = {
	"DELETE FROM crm.duplicate_candidate AS d"
	" WHERE d.status OPERATOR(pg_catalog.=) 'open'"
	"   AND ((d.kind OPERATOR(pg_catalog.=) $3 AND d.id OPERATOR(pg_catalog.=) $1"
	"         AND EXISTS (SELECT 1 FROM crm.duplicate_candidate AS x"
	"                      WHERE x.kind OPERATOR(pg_catalog.=) d.kind AND x.id OPERATOR(pg_catalog.=) $2"
	"                        AND x.duplicate_kind OPERATOR(pg_catalog.=) d.duplicate_kind"
	"                        AND x.duplicate_of OPERATOR(pg_catalog.=) d.duplicate_of))"
	"     OR (d.duplicate_kind OPERATOR(pg_catalog.=) $3 AND d.duplicate_of OPERATOR(pg_catalog.=) $1"
	"         AND EXISTS (SELECT 1 FROM crm.duplicate_candidate AS x"
	"                      WHERE x.kind OPERATOR(pg_catalog.=) d.kind AND x.id OPERATOR(pg_catalog.=) d.id"
	"                        AND x.duplicate_kind OPERATOR(pg_catalog.=) d.duplicate_kind"
	"                        AND x.duplicate_of OPERATOR(pg_catalog.=) $2)))",
	3, {INT8OID, INT8OID, TEXTOID}, NULL
};

static CrmQuery move_candidates = {
	"UPDATE crm.duplicate_candidate AS d"
	"   SET id = CASE WHEN d.kind OPERATOR(pg_catalog.=) $3 AND d.id OPERATOR(pg_catalog.=) $1 THEN $2 ELSE d.id END,"
	"       duplicate_of = CASE WHEN d.duplicate_kind OPERATOR(pg_catalog.=) $3"
	"                            AND d.duplicate_of OPERATOR(pg_catalog.=) $1 THEN $2 ELSE d.duplicate_of END"
	" WHERE d.status OPERATOR(pg_catalog.=) 'open'"
	"   AND ((d.kind OPERATOR(pg_catalog.=) $3 AND d.id OPERATOR(pg_catalog.=) $1)"
	"     OR (d.duplicate_kind OPERATOR(pg_catalog.=) $3 AND d.duplicate_of OPERATOR(pg_catalog.=) $1))",
	3, {INT8OID, INT8OID, TEXTOID}, NULL
};

/* earlier merges into the merged record now lead to the survivor */
static CrmQuery move_merge_records = {
	"UPDATE crm.merge_record AS m SET survivor_id = $2"
	" WHERE m.kind OPERATOR(pg_catalog.=) $3 AND m.survivor_id OPERATOR(pg_catalog.=) $1",
	3, {INT8OID, INT8OID, TEXTOID}, NULL
};

static CrmQuery insert_merge_record = {
	"INSERT INTO crm.merge_record (kind, survivor_id, merged_id, merged_values, taken, merged_by)"
	" VALUES ($1, $2, $3, $4, $5, $6)",
	6, {TEXTOID, INT8OID, INT8OID, JSONBOID, TEXTARRAYOID, REGROLEOID}, NULL
};

/*
 * A merged contact's primary account stays one of the survivor's accounts:
 * when the survivor's primary account is another, a link (as a conversion
 * makes) keeps the merged one's -- and with it every converted lead's
 * "contact on its account".  Written as the owner for the caller ($3).
 */
static CrmQuery keep_primary_account = {
	"INSERT INTO crm.account_contact (account_id, contact_id, owner)"
	" SELECT m.account_id, s.id, $3"
	"   FROM crm.contact AS s, pg_catalog.jsonb_populate_record(NULL::crm.contact, $2) AS m"
	"  WHERE s.id OPERATOR(pg_catalog.=) $1 AND m.account_id IS NOT NULL"
	"    AND s.account_id IS DISTINCT FROM m.account_id"
	" ON CONFLICT DO NOTHING",
	3, {INT8OID, JSONBOID, REGROLEOID}, NULL
};

static bool
in_list(const char *const *list, const char *name)
{
	for (int i = 0; list[i] != NULL; i++)
		if (strcmp(list[i], name) == 0)
			return true;
	return false;
}

/*
 * fill_query -- (re)build the statement that fills the survivor ($1) from
 * the merged record's values ($2, jsonb) and takes the columns named in $3:
 *
 *   UPDATE crm.account AS s SET c = CASE WHEN 'c' = ANY ($3) THEN m.c
 *                                       ELSE COALESCE(s.c, m.c) END, ...
 *     FROM pg_catalog.jsonb_populate_record(NULL::crm.account, $2) AS m
 *    WHERE s.id = $1
 *
 * owner is only taken; an opt-out of either record stays (most_restrictive),
 * whatever take says.  Built from the table's columns (a DBA's too) that
 * the caller may update: a column it may not (one a DBA added and granted
 * to nobody) is left as it is, not filled.  The text is compared with the
 * kept one at every merge, so a column added or dropped since, or another
 * caller's privileges, give a new plan.  Returns the columns (for checking
 * take); *denied those of them the caller may not update.
 */
static List *
fill_query(MergeKind *k, Oid caller, List **denied)
{
	Datum		values[2] = {ObjectIdGetDatum(crm_relation_oid(k->kind)), ObjectIdGetDatum(caller)};
	char		nulls[2] = {' ', ' '};
	StringInfoData buf;
	List	   *columns = NIL;
	bool		first = true;
	bool		isnull;

	*denied = NIL;
	crm_query_run(&record_columns, values, nulls, 0);
	initStringInfo(&buf);
	appendStringInfo(&buf, "UPDATE crm.%s AS s SET ", k->kind);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *col = crm_result_text((int) i, 1);
		const char *q;

		if (in_list(k->frozen, col))
			continue;
		columns = lappend(columns, col);
		if (!DatumGetBool(crm_result_datum((int) i, 2, &isnull)))
		{
			*denied = lappend(*denied, col);
			continue;
		}
		q = quote_identifier(col);
		if (in_list(most_restrictive, col))
			appendStringInfo(&buf, "%s%s = s.%s OR m.%s", first ? "" : ", ", q, q, q);
		else if (strcmp(col, "attributes") == 0)	/* custom fields: the survivor's win */
			appendStringInfo(&buf, "%s%s = CASE WHEN %s OPERATOR(pg_catalog.=) ANY ($3) THEN m.%s"
							 " ELSE m.%s OPERATOR(pg_catalog.||) s.%s END",
							 first ? "" : ", ", q, quote_literal_cstr(col), q, q, q);
		else if (strcmp(col, "owner") == 0)
			appendStringInfo(&buf, "%s%s = CASE WHEN %s OPERATOR(pg_catalog.=) ANY ($3) THEN m.%s ELSE s.%s END",
							 first ? "" : ", ", q, quote_literal_cstr(col), q, q);
		else
			appendStringInfo(&buf, "%s%s = CASE WHEN %s OPERATOR(pg_catalog.=) ANY ($3) THEN m.%s"
							 " ELSE COALESCE(s.%s, m.%s) END",
							 first ? "" : ", ", q, quote_literal_cstr(col), q, q, q);
		first = false;
	}
	if (first)					/* no column the caller may update: nothing to fill */
	{
		resetStringInfo(&buf);
		appendStringInfoString(&buf, "SELECT $1, $2, $3");
	}
	else
		appendStringInfo(&buf, " FROM pg_catalog.jsonb_populate_record(NULL::crm.%s, $2) AS m"
						 " WHERE s.id OPERATOR(pg_catalog.=) $1", k->kind);
	if (k->fill.sql == NULL || strcmp(k->fill.sql, buf.data) != 0)
	{
		if (k->fill.plan != NULL)
			SPI_freeplan(k->fill.plan);
		k->fill.plan = NULL;
		if (k->fill.sql != NULL)
			pfree((void *) k->fill.sql);
		k->fill.sql = MemoryContextStrdup(TopMemoryContext, buf.data);
	}
	pfree(buf.data);
	return columns;
}

/* check_take -- every name in take is a column the merge may take */
static void
check_take(MergeKind *k, ArrayType *take, List *columns, List *denied, Datum *taken_array)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	*taken_array = PointerGetDatum(construct_empty_array(TEXTOID));
	if (take == NULL)
		return;
	if (ARR_NDIM(take) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_MERGE_BAD_TAKE),
				 errmsg("take must be a one-dimensional array of column names")));
	deconstruct_array(take, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		char	   *name;
		bool		known = false;
		ListCell   *lc;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_CRM_MERGE_BAD_TAKE),
					 errmsg("take must not contain null"),
					 errhint("Name the columns of the %s to take from the merged one.", k->kind)));
		name = TextDatumGetCString(elems[i]);
		if (in_list(k->frozen, name))
			ereport(ERROR,
					(errcode(ERRCODE_CRM_MERGE_BAD_TAKE),
					 errmsg("column \"%s\" of a %s cannot be taken in a merge", name, k->kind),
					 errdetail("The survivor keeps its id, its timestamps%s.",
							   k == &lead_kind ? ", its status and its conversion record" : ""),
					 errhint("Leave \"%s\" out of take.", name)));
		foreach(lc, columns)
			if (strcmp((char *) lfirst(lc), name) == 0)
				known = true;
		if (!known)
			ereport(ERROR,
					(errcode(ERRCODE_CRM_MERGE_BAD_TAKE),
					 errmsg("crm.%s has no column \"%s\" to take", k->kind, name),
					 errhint("Name columns of crm.%s, e.g. take => ARRAY['phone'].", k->kind)));
		foreach(lc, denied)
			if (strcmp((char *) lfirst(lc), name) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("permission denied to take column \"%s\" of crm.%s", name, k->kind),
						 errdetail("The caller may not update this column."),
						 errhint("Leave \"%s\" out of take.", name)));
	}
	*taken_array = PointerGetDatum(take);
}

/* the match keys of an account or contact, as a conversion computes them */
static int
record_keys(MergeKind *k, int col, CrmLock *locks)
{
	int			n = 0;

	if (k == &account_kind)
	{
		char	   *name = crm_result_text(0, col);
		char	   *website = crm_result_text(0, col + 1);
		char	   *company = name ? crm_company_key(name) : NULL;
		char	   *domain = website ? crm_company_domain(crm_domain_of(website)) : NULL;

		if (company != NULL)
			locks[n++] = crm_lock_key(CRM_LOCK_COMPANY, company);
		if (domain != NULL)
			locks[n++] = crm_lock_key(CRM_LOCK_DOMAIN, domain);
	}
	else if (k == &contact_kind)
	{
		char	   *email = crm_result_text(0, col);

		if (email != NULL)
			locks[n++] = crm_lock_key(CRM_LOCK_EMAIL,
									  str_tolower(email, strlen(email), DEFAULT_COLLATION_OID));
	}
	return n;
}

/* lock_record -- lock one record as the caller; "not found" unless it may update it */
static bool
lock_record(MergeKind *k, Oid caller, int64 id)
{
	Datum		values[1] = {Int64GetDatum(id)};
	char		nulls[1] = {' '};
	bool		isnull;

	crm_query_run_as(caller, &k->lock_row, values, nulls, 0);
	if (SPI_processed == 0)
		crm_not_visible(k->not_found, k->kind, id, caller);
	return DatumGetBool(crm_result_datum(0, 1, &isnull));
}

static Datum
merge_records(FunctionCallInfo fcinfo, MergeKind *k)
{
	Oid			caller = crm_caller();
	int64		survivor = crm_required_id(fcinfo, 0, "survivor");
	int64		merged = crm_required_id(fcinfo, 1, "merged");
	ArrayType  *take = PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2);
	Datum		taken;
	List	   *columns;
	List	   *denied;
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	CrmLock		locks[4];
	int			nlocks = 0;
	bool		merged_converted = false;
	Datum		merged_values;
	bool		isnull;

	if (survivor == merged)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_MERGE_SAME_RECORD),
				 errmsg("cannot merge %s %lld into itself", k->kind, (long long) survivor),
				 errhint("Pass two different %ss: the survivor first, then the one merged into it.", k->kind)));

	crm_spi_connect();
	columns = fill_query(k, caller, &denied);
	check_take(k, take, columns, denied, &taken);

	/*
	 * The match keys of both records (a conversion may find either, and
	 * link to the survivor what the merge re-points there), read unlocked
	 * and locked in one batch; then both rows in id order; then the keys
	 * again from the locked rows, in case one changed meanwhile (as a
	 * conversion does, so the two never wait for each other in opposite
	 * order).
	 */
	if (k->peek_keys.sql != NULL)
	{
		int64		ids[2] = {survivor, merged};

		for (int r = 0; r < 2; r++)
		{
			values[0] = Int64GetDatum(ids[r]);
			crm_query_run_as(caller, &k->peek_keys, values, nulls, 0);
			if (SPI_processed > 0)
				nlocks += record_keys(k, 1, locks + nlocks);
		}
		crm_lock_all(locks, nlocks);
	}
	nlocks = 0;
	for (int r = 0; r < 2; r++)
	{
		int64		id = (r == 0) == (survivor < merged) ? survivor : merged;
		bool		converted = lock_record(k, caller, id);

		if (id == merged)
			merged_converted = converted;
		nlocks += record_keys(k, 2, locks + nlocks);	/* the locked row's keys */
	}
	crm_lock_all(locks, nlocks);

	if (merged_converted)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_MERGE_CONVERTED_LEAD),
				 errmsg("lead %lld is converted and cannot be merged into another lead", (long long) merged),
				 errdetail("A converted lead keeps its conversion record for good."),
				 errhint("Merge the other way round: crm.merge_leads(%lld, %lld).",
						 (long long) merged, (long long) survivor)));

	/* the merged record's values, for the merge record and the fill */
	values[0] = Int64GetDatum(merged);
	crm_query_run_as_owner(&k->read_values, values, nulls, 0);
	merged_values = SPI_datumTransfer(crm_result_datum(0, 1, &isnull), false, -1);

	/* duplicate candidates of the pair, and those naming the merged record */
	values[0] = Int64GetDatum(survivor);
	values[1] = Int64GetDatum(merged);
	values[2] = CStringGetTextDatum(k->kind);
	values[3] = ObjectIdGetDatum(caller);
	crm_query_run_as_owner(&close_pair, values, nulls, 0);
	values[0] = Int64GetDatum(merged);
	values[1] = Int64GetDatum(survivor);
	crm_query_run_as_owner(&drop_repeated_candidates, values, nulls, 0);
	crm_query_run_as_owner(&move_candidates, values, nulls, 0);
	crm_query_run_as_owner(&move_merge_records, values, nulls, 0);

	/* every reference to the merged record */
	crm_permit_push(k->permit, survivor);
	crm_repoint_references(crm_relation_oid(k->kind), merged, survivor);
	crm_permit_pop(k->permit, survivor);

	values[0] = CStringGetTextDatum(k->kind);
	values[1] = Int64GetDatum(survivor);
	values[2] = Int64GetDatum(merged);
	values[3] = merged_values;
	values[4] = taken;
	values[5] = ObjectIdGetDatum(caller);
	crm_query_run_as_owner(&insert_merge_record, values, nulls, 0);

	values[0] = Int64GetDatum(merged);
	crm_query_run_as(caller, &k->delete_row, values, nulls, 0);
	if (SPI_processed != 1)
		elog(ERROR, "crm: %s %lld vanished during the merge", k->kind, (long long) merged);

	values[0] = Int64GetDatum(survivor);
	values[1] = merged_values;
	values[2] = taken;
	crm_query_run_as(caller, &k->fill, values, nulls, 0);
	if (k == &contact_kind)
	{
		values[2] = ObjectIdGetDatum(caller);
		crm_query_run_as_owner(&keep_primary_account, values, nulls, 0);
	}

	crm_spi_finish();
	PG_RETURN_INT64(survivor);
}

PG_FUNCTION_INFO_V1(crm_merge_accounts);
Datum
crm_merge_accounts(PG_FUNCTION_ARGS)
{
	return merge_records(fcinfo, &account_kind);
}

PG_FUNCTION_INFO_V1(crm_merge_contacts);
Datum
crm_merge_contacts(PG_FUNCTION_ARGS)
{
	return merge_records(fcinfo, &contact_kind);
}

PG_FUNCTION_INFO_V1(crm_merge_leads);
Datum
crm_merge_leads(PG_FUNCTION_ARGS)
{
	return merge_records(fcinfo, &lead_kind);
}
