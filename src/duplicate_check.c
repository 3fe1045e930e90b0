/*
 * duplicate_check.c: the duplicate check on entry, crm_internal.duplicate_check(),
 * and the forgetting of open pairs whose record is deleted,
 * crm_internal.duplicate_forget().
 *
 * crm_internal.duplicate_check() is an AFTER ... FOR EACH STATEMENT trigger on
 * crm.lead, crm.account and crm.contact (INSERT, hence COPY, and UPDATE),
 * reading the statement's rows from its transition tables.  The policy of
 * the kind (crm.settings.duplicate_policy_lead, _account, _contact):
 *   allow  nothing is checked;
 *   warn   pairs found by any rule (duplicates.c) are queued in
 *          crm.duplicate_candidate and one WARNING (ZC710) per statement
 *          sums them up;
 *   block  a row that matches a record by a key rule (e-mail, company key,
 *          domain, phone) fails the statement with ZC701; similar names
 *          are queued and warned about as under warn.
 * An UPDATE is checked for the keys it changes.  Two rows of one statement
 * can match each other.  The search runs as the extension owner across all
 * owners; the messages name a match by id only when the writer sees it,
 * else by its owner.
 *
 * Race-freedom (block).  Before searching, the statement takes the
 * extension's key locks (locks.c) of every key of its rows in one sorted
 * batch -- the same locks a conversion takes on the company key, the
 * domain and the e-mail -- so two writers of one key serialise: the second
 * waits for the first to commit, then searches under a fresh snapshot (READ
 * COMMITTED: every SPI statement takes one) and finds its row.  In
 * REPEATABLE READ and SERIALIZABLE the search runs under the transaction
 * snapshot, and when it finds no match while a fresh snapshot would, the
 * statement fails with 40001.  A statement with more than BULK_KEYS keys
 * (a bulk INSERT or COPY) takes the key space of each key kind instead,
 * exclusively: one lock per kind rather than one per key, at the price of
 * waiting for (and blocking) every other writer and conversion of that key
 * kind until it commits.
 */
#include "crm.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "utils/datum.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

/*
 * At most this many similar-name pairs per written row are queued (and
 * warned about), the most similar first: a bulk import of "Branch 001" to
 * "Branch 999" would otherwise queue every pair of them.  Key-rule pairs
 * are all queued.
 */
#define MAX_SIMILAR 10

/* more keys than this in one statement: lock the key spaces instead */
#define BULK_KEYS 64

typedef enum Policy
{
	POLICY_ALLOW,
	POLICY_WARN,
	POLICY_BLOCK
} Policy;

static CrmQuery read_policy = {
	"SELECT s.duplicate_policy_lead, s.duplicate_policy_account, s.duplicate_policy_contact"
	" FROM crm.settings AS s",
	0, {InvalidOid}, NULL
};

/* the queries of a kind (lead, account, contact) and event (insert, update) */
static CrmQuery lock_keys[3][2];
static CrmQuery check_keys[3][2];
static CrmQuery search_pairs[3][2];

static const CrmLockKind lock_kinds[4] = {CRM_LOCK_COMPANY, CRM_LOCK_DOMAIN, CRM_LOCK_EMAIL, CRM_LOCK_PHONE};

/* which key kinds a record kind has (see key_exprs in duplicates.c) */
static const bool has_key[3][4] = {
	{true, true, true, true},
	{true, true, false, true},
	{false, false, true, true},
};

static void
build_queries(CrmRecordKind kind, int event)
{
	const char *from = event == 0 ? "new_rows AS n"
		: "new_rows AS n JOIN old_rows AS o ON o.id OPERATOR(pg_catalog.=) n.id";
	char	   *probes = crm_probe_sql(kind, from, event == 0 ? NULL : "o");
	char	   *match = crm_match_sql(kind, probes);
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	lock_keys[kind][event].sql =
		psprintf("WITH p AS (%s) SELECT k.kind, k.key FROM p,"
				 " LATERAL (VALUES (0, p.ck), (1, p.dom), (2, p.em), (3, p.ph)) AS k(kind, key)"
				 " WHERE k.key IS NOT NULL LIMIT %d", probes, BULK_KEYS + 1);
	check_keys[kind][event].sql =
		psprintf("%s SELECT m.probe, m.kind, m.id, m.owner::pg_catalog.text, m.rule FROM m"
				 " ORDER BY m.probe, m.score DESC, m.kind, m.id LIMIT 1", match);
	check_keys[kind][event].nargs = 3;
	check_keys[kind][event].argtypes[0] = BOOLOID;
	check_keys[kind][event].argtypes[1] = BOOLOID;
	check_keys[kind][event].argtypes[2] = INT8OID;
	/*
	 * Generic plans: a custom plan per statement would plan the whole
	 * search again each time (its gates $1 and $2 are one-time filters in
	 * the generic plan, which costs no more to run).
	 */
	crm_query_prefer_generic(&lock_keys[kind][event]);
	crm_query_prefer_generic(&check_keys[kind][event]);

	/*
	 * The pairs to queue: the key-rule pairs and at most MAX_SIMILAR
	 * similar-name pairs per written row, key rules first (the pair to
	 * refuse under block is the first row).
	 */
	search_pairs[kind][event].sql =
		psprintf("%s,"
				 " mc AS (SELECT r.probe, r.kind, r.id, r.owner, r.rule, r.score"
				 "        FROM (SELECT m.*, pg_catalog.row_number() OVER (PARTITION BY m.probe"
				 "                ORDER BY m.rule OPERATOR(pg_catalog.=) 'similar_name', m.score DESC, m.kind, m.id) AS rn"
				 "                FROM m) AS r"
				 "       WHERE r.rule OPERATOR(pg_catalog.<>) 'similar_name' OR r.rn OPERATOR(pg_catalog.<=) " CppAsString2(MAX_SIMILAR) ")"
				 " SELECT m.probe, m.kind, m.id, m.owner::pg_catalog.text, m.rule, m.score"
				 " FROM mc AS m ORDER BY m.rule OPERATOR(pg_catalog.=) 'similar_name', m.probe, m.score DESC, m.kind, m.id",
				 match);
	search_pairs[kind][event].nargs = 3;
	search_pairs[kind][event].argtypes[0] = BOOLOID;
	search_pairs[kind][event].argtypes[1] = BOOLOID;
	search_pairs[kind][event].argtypes[2] = INT8OID;
	crm_query_prefer_generic(&search_pairs[kind][event]);
	MemoryContextSwitchTo(old);
}

/*
 * queue_pairs[kind]: the pairs found ($1 probes, $2 kinds, $3 ids, $4
 * rules, $5 scores, in the search's order) go into crm.duplicate_candidate;
 * returns for each, in that order, whether it was queued now.  A pair is
 * queued only with its stored record locked FOR KEY SHARE (as a foreign key
 * would): a merge or DELETE of that record running now either waits for
 * this statement (and its forgetting then sees the pair) or has deleted it
 * (READ COMMITTED: the pair is skipped; REPEATABLE READ: 40001), so no open
 * pair names a deleted record.  A statement of its own, run only when the
 * search found pairs: most writes find none.
 */
static CrmQuery queue_pairs[3];

static CrmQuery *
queue_query(CrmRecordKind kind)
{
	CrmQuery   *q = &queue_pairs[kind];

	if (q->sql != NULL)
		return q;
	q->nargs = 5;
	q->argtypes[0] = INT8ARRAYOID;
	q->argtypes[1] = TEXTARRAYOID;
	q->argtypes[2] = INT8ARRAYOID;
	q->argtypes[3] = TEXTARRAYOID;
	q->argtypes[4] = FLOAT4ARRAYOID;
	crm_query_prefer_generic(q);
	q->sql = MemoryContextStrdup(TopMemoryContext, psprintf(
		"WITH mc AS (SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3),"
		"             pg_catalog.unnest($4), pg_catalog.unnest($5)) WITH ORDINALITY AS m(probe, kind, id, rule, score, n)),"
		" kl AS (SELECT x.id FROM crm.lead AS x WHERE x.id OPERATOR(pg_catalog.=) ANY"
		"        (ARRAY(SELECT m.id FROM mc AS m WHERE m.kind OPERATOR(pg_catalog.=) 'lead')) FOR KEY SHARE OF x),"
		" ka AS (SELECT x.id FROM crm.account AS x WHERE x.id OPERATOR(pg_catalog.=) ANY"
		"        (ARRAY(SELECT m.id FROM mc AS m WHERE m.kind OPERATOR(pg_catalog.=) 'account')) FOR KEY SHARE OF x),"
		" kc AS (SELECT x.id FROM crm.contact AS x WHERE x.id OPERATOR(pg_catalog.=) ANY"
		"        (ARRAY(SELECT m.id FROM mc AS m WHERE m.kind OPERATOR(pg_catalog.=) 'contact')) FOR KEY SHARE OF x),"
		" q AS (INSERT INTO crm.duplicate_candidate (kind, id, duplicate_kind, duplicate_of, rule, score)"
		" SELECT '%s', m.probe, m.kind, m.id, m.rule, m.score FROM mc AS m"
		"  WHERE CASE m.kind WHEN 'lead' THEN m.id OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT kl.id FROM kl))"
		"                    WHEN 'account' THEN m.id OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT ka.id FROM ka))"
		"                    ELSE m.id OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT kc.id FROM kc)) END"
		" ON CONFLICT (kind, id, duplicate_kind, duplicate_of) DO NOTHING"
		" RETURNING id, duplicate_kind, duplicate_of)"
		" SELECT EXISTS (SELECT 1 FROM q WHERE q.id OPERATOR(pg_catalog.=) m.probe"
		"                   AND q.duplicate_kind OPERATOR(pg_catalog.=) m.kind"
		"                   AND q.duplicate_of OPERATOR(pg_catalog.=) m.id) AS queued"
		" FROM mc AS m ORDER BY m.n",
		crm_record_kind_name(kind)));
	return q;
}

/*
 * queue_found -- queue the pairs of the search result found (nfound rows:
 * probe, kind, id, owner, rule, score); queued[i] says whether row i was
 */
static void
queue_found(CrmRecordKind kind, SPITupleTable *found, uint64 nfound, bool *queued)
{
	Datum	   *cols[5];
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	static const int from[5] = {1, 2, 3, 5, 6};
	static const Oid types[5] = {INT8OID, TEXTOID, INT8OID, TEXTOID, FLOAT4OID};

	for (int c = 0; c < 5; c++)
	{
		int16		typlen;
		bool		typbyval;
		char		typalign;

		cols[c] = palloc(sizeof(Datum) * nfound);
		for (uint64 r = 0; r < nfound; r++)
		{
			bool		isnull;

			cols[c][r] = SPI_getbinval(found->vals[r], found->tupdesc, from[c], &isnull);
		}
		get_typlenbyvalalign(types[c], &typlen, &typbyval, &typalign);
		values[c] = PointerGetDatum(construct_array(cols[c], (int) nfound, types[c], typlen, typbyval, typalign));
	}
	crm_query_run_as_owner(queue_query(kind), values, nulls, 0);
	for (uint64 r = 0; r < nfound; r++)
	{
		bool		isnull;

		queued[r] = r < SPI_processed && DatumGetBool(crm_result_datum((int) r, 1, &isnull));
	}
}

static Policy
policy_of(CrmRecordKind kind)
{
	char	   *s;

	crm_query_run_as_owner(&read_policy, NULL, NULL, 1);
	if (SPI_processed != 1)
		return POLICY_WARN;
	s = crm_result_text(0, kind + 1);
	if (s == NULL || strcmp(s, "warn") == 0)
		return POLICY_WARN;
	return strcmp(s, "block") == 0 ? POLICY_BLOCK : POLICY_ALLOW;
}

/* lock the keys of the statement's rows (see the file header) */
static void
lock_statement_keys(CrmRecordKind kind, int event)
{
	CrmLock		locks[BULK_KEYS + 1];
	int			nlocks = 0;
	uint64		n;

	crm_query_run_as_owner(&lock_keys[kind][event], NULL, NULL, 0);
	n = SPI_processed;
	if (n > BULK_KEYS)
	{
		for (int k = 0; k < 4; k++)
			if (has_key[kind][k])
				locks[nlocks++] = crm_lock_key_space(lock_kinds[k]);
	}
	else
	{
		for (uint64 i = 0; i < n; i++)
		{
			bool		isnull;
			int			k = DatumGetInt32(crm_result_datum(i, 1, &isnull));

			locks[nlocks++] = crm_lock_key(lock_kinds[k], crm_result_text(i, 2));
		}
	}
	crm_lock_all(locks, nlocks);
}

/* "contact 7", or "a contact of role \"bob\"" when the writer cannot see it */
static char *
match_words(const char *kind, int64 id, const char *owner)
{
	if (crm_record_visible(GetUserId(), kind, id))
		return psprintf("%s %lld", kind, (long long) id);
	return psprintf("a%s %s of role \"%s\" (not visible to you)", kind[0] == 'a' ? "n" : "", kind, owner);
}

/*
 * The columns the keys of a record kind are computed from (key_exprs and
 * name_columns in duplicates.c): an UPDATE that changes none of them in
 * any row cannot make a new pair.
 */
static const char *const key_columns[3][5] = {
	{"name", "company", "email", "phone", "website"},
	{"name", "website", "phone", NULL, NULL},
	{"name", "email", "phone", "account_id", NULL},
};

/*
 * keys_changed -- does some row of an UPDATE change a key column?  The
 * transition tables hold the old and the new version of each row in the
 * same order; values are compared as stored (a BEFORE trigger's change
 * counts too).
 */
static bool
keys_changed(TriggerData *trigdata, CrmRecordKind kind)
{
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	Tuplestorestate *olds = trigdata->tg_oldtable;
	Tuplestorestate *news = trigdata->tg_newtable;
	TupleTableSlot *o;
	TupleTableSlot *n;
	AttrNumber	attnums[5];
	int			natts = 0;
	int			optr;
	int			nptr;
	bool		changed = false;

	for (int i = 0; i < 5 && key_columns[kind][i] != NULL; i++)
	{
		AttrNumber	attnum = get_attnum(RelationGetRelid(rel), key_columns[kind][i]);

		if (attnum == InvalidAttrNumber)
			return true;		/* a changed table: check everything */
		attnums[natts++] = attnum;
	}
	o = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	n = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	optr = tuplestore_alloc_read_pointer(olds, EXEC_FLAG_REWIND);
	nptr = tuplestore_alloc_read_pointer(news, EXEC_FLAG_REWIND);
	tuplestore_select_read_pointer(olds, optr);
	tuplestore_rescan(olds);
	tuplestore_select_read_pointer(news, nptr);
	tuplestore_rescan(news);
	while (!changed)
	{
		bool		more_old,
					more_new;

		tuplestore_select_read_pointer(olds, optr);
		more_old = tuplestore_gettupleslot(olds, true, false, o);
		tuplestore_select_read_pointer(news, nptr);
		more_new = tuplestore_gettupleslot(news, true, false, n);
		if (!more_old || !more_new)
		{
			changed = more_old != more_new;	/* cannot happen: check all */
			break;
		}
		for (int i = 0; i < natts && !changed; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, attnums[i] - 1);
			bool		onull,
						nnull;
			Datum		ov = slot_getattr(o, attnums[i], &onull);
			Datum		nv = slot_getattr(n, attnums[i], &nnull);

			changed = onull != nnull ||
				(!onull && !datumIsEqual(ov, nv, att->attbyval, att->attlen));
		}
	}
	tuplestore_select_read_pointer(olds, 0);
	tuplestore_select_read_pointer(news, 0);
	ExecDropSingleTupleTableSlot(o);
	ExecDropSingleTupleTableSlot(n);
	return changed;
}

/* refuse -- ZC701 for the pair of the first row of the last SPI result */
static void
refuse(Relation rel, const char *kind)
{
	bool		isnull;
	int64		probe = crm_result_int64(0, 1, &isnull);
	char	   *mkind = crm_result_text(0, 2);
	int64		mid = crm_result_int64(0, 3, &isnull);
	char	   *owner = crm_result_text(0, 4);
	char	   *rule = crm_result_text(0, 5);
	char	   *words = match_words(mkind, mid, owner);

	ereport(ERROR,
			(errcode(ERRCODE_CRM_DUPLICATE_BLOCKED),
			 errtable(rel),
			 errmsg("%s %lld duplicates an existing %s: %s", kind, (long long) probe, mkind,
					crm_rule_words(rule)),
			 errdetail("The existing record is %s; crm.settings.duplicate_policy_%s is 'block'.", words, kind),
			 errhint("Work with the existing record, or compare them with crm.find_duplicates('%s', candidate => ...) and merge them.",
					 kind)));
}

/* warn_queued -- one WARNING for the pairs of the last SPI result queued (queued[i]) */
static void
warn_queued(Relation rel, const char *kind, const bool *queued)
{
	StringInfoData detail;
	uint64		n = 0;
	uint64		shown = 0;
	int64		probes[3];
	char	   *mkinds[3];
	int64		mids[3];
	char	   *owners[3];
	char	   *rules[3];

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		if (!queued[i])
			continue;
		if (n++ >= 3)
			continue;
		probes[shown] = crm_result_int64(i, 1, &isnull);
		mkinds[shown] = crm_result_text(i, 2);
		mids[shown] = crm_result_int64(i, 3, &isnull);
		owners[shown] = crm_result_text(i, 4);
		rules[shown] = crm_result_text(i, 5);
		shown++;
	}
	if (n == 0)
		return;
	initStringInfo(&detail);
	for (uint64 i = 0; i < shown; i++)
		appendStringInfo(&detail, "%s%s %lld and %s: %s.", i > 0 ? " " : "", kind, (long long) probes[i],
						 match_words(mkinds[i], mids[i], owners[i]), crm_rule_words(rules[i]));
	if (n > shown)
		appendStringInfo(&detail, " And %llu more.", (unsigned long long) (n - shown));
	ereport(WARNING,
			(errcode(ERRCODE_CRM_POSSIBLE_DUPLICATE),
			 errtable(rel),
			 errmsg("%llu possible duplicate%s queued in crm.duplicate_candidate", (unsigned long long) n,
					n == 1 ? "" : "s"),
			 errdetail("%s", detail.data),
			 errhint("Merge the records, or dismiss the pair with crm.dismiss_duplicate().")));
}

/* crm_duplicate_check -- trigger crm_internal.duplicate_check() */
PG_FUNCTION_INFO_V1(crm_duplicate_check);
Datum
crm_duplicate_check(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "duplicate_check", false, false);
	const char *relname = RelationGetRelationName(trigdata->tg_relation);
	int			event = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? 1 : 0;
	CrmRecordKind kind;
	Policy		policy;
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	int64		converting = 0;
	bool		is_conversion;
	int			jit_level;
	SPITupleTable *found;
	uint64		nfound;

	if (TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) || trigdata->tg_newtable == NULL ||
		(event == 1 && trigdata->tg_oldtable == NULL) ||
		!crm_record_kind_parse(relname, &kind))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errtable(trigdata->tg_relation),
				 errmsg("crm_internal.duplicate_check() must be fired AFTER INSERT or UPDATE FOR EACH STATEMENT with transition tables on crm.lead, crm.account or crm.contact")));
	if (tuplestore_tuple_count(trigdata->tg_newtable) == 0 ||
		(event == 1 && !keys_changed(trigdata, kind)))
		return PointerGetDatum(NULL);

	crm_spi_connect();
	policy = policy_of(kind);
	if (policy == POLICY_ALLOW)
	{
		crm_spi_finish();
		return PointerGetDatum(NULL);
	}
	if (SPI_register_trigger_data(trigdata) != SPI_OK_TD_REGISTER)
		elog(ERROR, "crm: SPI_register_trigger_data failed");
	if (search_pairs[kind][event].sql == NULL)
		build_queries(kind, event);

	/*
	 * One search for every rule; the pairs it finds are then queued (a
	 * second statement, run only when there are any).  Under block, a pair
	 * by a key rule (they sort first) refuses the statement before anything
	 * is queued; the keys are locked first, and in REPEATABLE READ a search
	 * that finds no key pair is repeated under a fresh snapshot.
	 */
	jit_level = crm_duplicates_no_jit();
	if (policy == POLICY_BLOCK)
		lock_statement_keys(kind, event);
	values[0] = BoolGetDatum(true);		/* similar names */
	values[1] = BoolGetDatum(true);		/* key rules */
	/* the account and contact a conversion makes are not its lead's duplicates */
	is_conversion = crm_permit_row(CRM_PERMIT_CONVERTING, &converting);
	crm_param_int64(values, nulls, 2, converting, !is_conversion);
	crm_query_run_as_owner(&search_pairs[kind][event], values, nulls, 0);
	found = SPI_tuptable;
	nfound = SPI_processed;
	if (policy == POLICY_BLOCK)
	{
		char	   *rule = nfound > 0 ? crm_result_text(0, 5) : NULL;

		if (rule != NULL && strcmp(rule, "similar_name") != 0)
			refuse(trigdata->tg_relation, relname);
		if (IsolationUsesXactSnapshot())
		{
			values[0] = BoolGetDatum(false);
			if (crm_query_finds_newer_rows(&check_keys[kind][event], values, nulls))
				crm_serialization_failure(psprintf("crm.%s", relname),
										  "A matching record was written by a transaction that committed after this one started.");
		}
	}
	if (nfound > 0)
	{
		bool	   *queued = palloc(sizeof(bool) * nfound);

		queue_found(kind, found, nfound, queued);
		SPI_tuptable = found;
		SPI_processed = nfound;
		warn_queued(trigdata->tg_relation, relname, queued);
	}
	AtEOXact_GUC(true, jit_level);
	crm_spi_finish();
	return PointerGetDatum(NULL);
}

/* forgetting the open pairs of deleted records */
static CrmQuery forget_deleted[2] = {
	{"DELETE FROM crm.duplicate_candidate AS d WHERE d.kind OPERATOR(pg_catalog.=) $1"
		" AND d.id OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT o.id FROM old_rows AS o))"
	" AND d.status OPERATOR(pg_catalog.=) 'open'", 1, {TEXTOID}, NULL},
	{"DELETE FROM crm.duplicate_candidate AS d WHERE d.duplicate_kind OPERATOR(pg_catalog.=) $1"
		" AND d.duplicate_of OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT o.id FROM old_rows AS o))"
	" AND d.status OPERATOR(pg_catalog.=) 'open'", 1, {TEXTOID}, NULL},
};

static CrmQuery forget_truncated = {
	"DELETE FROM crm.duplicate_candidate AS d"
	" WHERE (d.kind OPERATOR(pg_catalog.=) $1 OR d.duplicate_kind OPERATOR(pg_catalog.=) $1)"
	"   AND d.status OPERATOR(pg_catalog.=) 'open'",
	1, {TEXTOID}, NULL
};

/*
 * crm_duplicate_forget -- trigger crm_internal.duplicate_forget(): AFTER DELETE
 * (with the old rows) or TRUNCATE, FOR EACH STATEMENT: the open pairs that
 * name a deleted record go; merged and dismissed pairs stay as history.
 */
PG_FUNCTION_INFO_V1(crm_duplicate_forget);
Datum
crm_duplicate_forget(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "duplicate_forget", false, false);
	const char *relname = RelationGetRelationName(trigdata->tg_relation);
	bool		truncate = TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event);
	CrmRecordKind kind;
	Datum		values[1];
	char		nulls[1] = {' '};

	if (TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) || !crm_record_kind_parse(relname, &kind) ||
		(!truncate && (!TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) || trigdata->tg_oldtable == NULL)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errtable(trigdata->tg_relation),
				 errmsg("crm_internal.duplicate_forget() must be fired AFTER DELETE (with the old rows) or TRUNCATE FOR EACH STATEMENT on crm.lead, crm.account or crm.contact")));
	if (!truncate && tuplestore_tuple_count(trigdata->tg_oldtable) == 0)
		return PointerGetDatum(NULL);
	values[0] = CStringGetTextDatum(relname);
	crm_spi_connect();
	if (truncate)
		crm_query_run_as_owner(&forget_truncated, values, nulls, 0);
	else
	{
		if (SPI_register_trigger_data(trigdata) != SPI_OK_TD_REGISTER)
			elog(ERROR, "crm: SPI_register_trigger_data failed");
		/*
		 * Under a snapshot taken now: a pair queued by a transaction that
		 * held its record FOR KEY SHARE and committed while this one waited
		 * is forgotten too, in REPEATABLE READ as well.
		 */
		crm_query_run_latest_as_owner(&forget_deleted[0], values, nulls, 0);
		crm_query_run_latest_as_owner(&forget_deleted[1], values, nulls, 0);
	}
	crm_spi_finish();
	return PointerGetDatum(NULL);
}
