/*
 * duplicates.c: the matching rules of the duplicate search,
 * crm.find_duplicates() and crm.dismiss_duplicate(), and the keys the
 * rules compare (crm.match_domain, crm.name_key).  People are grouped by
 * the company key of the first 256 characters of a lead's company, so that
 * its index takes any company a lead may have.
 *
 * The rules (README "Duplicates"), each with the score a pair gets:
 *   email         the same e-mail address, case-insensitively        1.0
 *   company_key   the same crm.company_match_key (accounts)          0.95
 *   domain        the same company domain (crm.match_domain)         0.9
 *   phone         the same crm.phone_key                             0.85
 *   similar_name  trigram similarity of crm.name_key of two names of
 *                 at least NAME_SIMILARITY: people within the same
 *                 account or company key, companies by the name key
 *                 of their company key (the SIMILAR_NEAREST nearest
 *                 accounts at most)                                  the similarity
 * Which kinds meet which: a lead meets leads (email, phone, similar
 * name), contacts (email, phone, similar name) and accounts (company key,
 * domain); an account meets accounts (company key, domain, phone, similar
 * name); a contact meets contacts and leads (email, phone, similar name).
 * The first four are the key rules: the entry check (duplicate_check.c)
 * may block on them and locks their keys; similar names are only queued.
 *
 * One query text per kind of record written (crm_match_sql) serves both
 * the search and the entry check: it reads the records to match, the
 * "probes", from a CTE p (id, ck, dom, em, ph, nk, nck, acc) that the
 * caller supplies, and returns one row per pair, the best rule of the pair,
 * best pairs first.  It runs as the extension owner, across all owners
 * (tables are not forced under row-level security), through the key
 * indexes; pg_trgm's operators are not leakproof, so under row-level
 * security the trigram index could not serve it.  What a caller then gets
 * of a match is decided with the caller's rights: a match it cannot see is
 * only "a record of role X, by rule R", never its id or data.
 */
#include "crm.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/*
 * The similarity two name keys must reach: pg_trgm gives 0.615 for "jon
 * smith" / "john smith" and 0.467 for "john smith" / "jane smith"
 * (test/sql/find_duplicates.sql shows them).
 */
#define NAME_SIMILARITY "0.55"

/* similar company names: at most this many nearest accounts per record */
#define SIMILAR_NEAREST 25

static const char *const kind_names[] = {"lead", "account", "contact"};

const char *
crm_record_kind_name(CrmRecordKind kind)
{
	return kind_names[kind];
}

bool
crm_record_kind_parse(const char *name, CrmRecordKind *kind)
{
	for (int i = 0; i < (int) lengthof(kind_names); i++)
		if (strcmp(name, kind_names[i]) == 0)
		{
			*kind = (CrmRecordKind) i;
			return true;
		}
	return false;
}

/* crm_rule_words -- a rule as the messages name it */
const char *
crm_rule_words(const char *rule)
{
	if (strcmp(rule, "email") == 0)
		return "the same e-mail address";
	if (strcmp(rule, "company_key") == 0)
		return "the same company name (company key)";
	if (strcmp(rule, "domain") == 0)
		return "the same company domain";
	if (strcmp(rule, "phone") == 0)
		return "the same phone number";
	return "a similar name";
}

/*
 * One branch of the match query: the pairs one rule finds between the
 * probes and one table.  %1$s is the schema of pg_trgm.  Key branches are
 * gated by $2, similar-name branches by $1 (false skips them at run time).
 */
#define KEY_BRANCH(kind, join, rule, score) \
	"SELECT p.id AS probe, '" kind "'::pg_catalog.text AS kind, x.id, x.owner," \
	" '" rule "'::pg_catalog.text AS rule, " score "::pg_catalog.float4 AS score" \
	" FROM p JOIN " join " WHERE $2"
#define SAME_KIND " AND (p.id IS NULL OR x.id OPERATOR(pg_catalog.<>) p.id)"
/* a lead and the account and contact it was converted into (or is being) are no pair */
#define NOT_LEADS_CONTACT " AND x.id IS DISTINCT FROM p.cid"
#define NOT_LEADS_ACCOUNT " AND x.id IS DISTINCT FROM p.aid"
#define NOT_CONVERTED_INTO " AND (p.id IS NULL OR x.contact_id IS DISTINCT FROM p.id) AND x.id IS DISTINCT FROM $3"
/*
 * Similar names: the probe's name key is folded once per probe (pn.pk) and
 * each candidate's similarity computed once (s.sim, kept from being
 * inlined by OFFSET 0), for the test and the score alike: folding and
 * trigrams are the costly part of the search.
 */
#define PROBE_NAME_KEY " CROSS JOIN LATERAL (SELECT crm.name_key(p.nk) AS pk OFFSET 0) AS pn"
#define SIMILAR(x) "%1$s.similarity(crm.name_key(" x "), pn.pk)"
#define NAME_BRANCH(kind, join, x) \
	"SELECT p.id AS probe, '" kind "'::pg_catalog.text AS kind, x.id, x.owner," \
	" 'similar_name'::pg_catalog.text AS rule, s.sim::pg_catalog.float4 AS score" \
	" FROM p" PROBE_NAME_KEY " JOIN " join \
	" CROSS JOIN LATERAL (SELECT " SIMILAR(x) " AS sim OFFSET 0) AS s" \
	" WHERE $1 AND s.sim OPERATOR(pg_catalog.>=) " NAME_SIMILARITY

/*
 * The phone rule looks each probe's key up in the table's phone-key index
 * (a lateral subquery of its own, OFFSET 0): a join may instead read the
 * whole partial index and compute the key of every row when its
 * statistics say it is nearly empty (as after a bulk load of records
 * without phones), and a generic plan keeps that choice.
 */
#define PHONE_BRANCH(kind, table, columns) \
	"SELECT p.id AS probe, '" kind "'::pg_catalog.text AS kind, x.id, x.owner," \
	" 'phone'::pg_catalog.text AS rule, 0.85::pg_catalog.float4 AS score" \
	" FROM p CROSS JOIN LATERAL (SELECT " columns " FROM crm." table " AS x" \
	"  WHERE crm.phone_key(x.phone) OPERATOR(pg_catalog.=) p.ph AND x.phone IS NOT NULL OFFSET 0) AS x WHERE $2"

#define LEAD_EMAIL KEY_BRANCH("lead", "crm.lead AS x ON pg_catalog.lower(x.email) OPERATOR(pg_catalog.=) p.em AND x.email IS NOT NULL", "email", "1")
#define LEAD_PHONE PHONE_BRANCH("lead", "lead", "x.id, x.owner, x.contact_id")
#define LEAD_NAME NAME_BRANCH("lead", "crm.lead AS x ON crm.company_match_key(pg_catalog.\"left\"(x.company, 256)) OPERATOR(pg_catalog.=) p.nck" \
	" AND x.company IS NOT NULL", "x.name")
#define CONTACT_EMAIL KEY_BRANCH("contact", "crm.contact AS x ON pg_catalog.lower(x.email) OPERATOR(pg_catalog.=) p.em AND x.email IS NOT NULL", "email", "1")
#define CONTACT_PHONE PHONE_BRANCH("contact", "contact", "x.id, x.owner")
#define CONTACT_NAME_BY_KEY NAME_BRANCH("contact", "crm.account AS a ON crm.company_match_key(a.name) OPERATOR(pg_catalog.=) p.nck" \
	" JOIN crm.contact AS x ON x.account_id OPERATOR(pg_catalog.=) a.id", "x.name")
#define CONTACT_NAME_BY_ACCOUNT NAME_BRANCH("contact", "crm.contact AS x ON x.account_id OPERATOR(pg_catalog.=) p.acc", "x.name")
#define ACCOUNT_KEY KEY_BRANCH("account", "crm.account AS x ON crm.company_match_key(x.name) OPERATOR(pg_catalog.=) p.ck", "company_key", "0.95")
#define ACCOUNT_DOMAIN KEY_BRANCH("account", "crm.account AS x ON crm.web_domain(x.website) OPERATOR(pg_catalog.=) p.dom AND x.website IS NOT NULL", "domain", "0.9")
#define ACCOUNT_PHONE PHONE_BRANCH("account", "account", "x.id, x.owner")
/*
 * Similar company names: the SIMILAR_NEAREST accounts nearest to the probe
 * by trigram distance (1 - similarity), read in that order from the GiST
 * index account_name_trgm_idx, of which those at least NAME_SIMILARITY.
 * The work per probe is bounded: a company key that many accounts resemble
 * ("newcompany2999" among a thousand "newcompanyNNNN") costs a few index
 * pages, not a recheck of every resembling account.
 */
#define ACCOUNT_NAME \
	"SELECT p.id AS probe, 'account'::pg_catalog.text AS kind, x.id, x.owner," \
	" 'similar_name'::pg_catalog.text AS rule, x.sim::pg_catalog.float4 AS score" \
	" FROM p" PROBE_NAME_KEY " CROSS JOIN LATERAL (SELECT x.id, x.owner," \
	"   " SIMILAR("crm.company_match_key(x.name)") " AS sim FROM crm.account AS x" \
	"  WHERE $1 AND p.nk IS NOT NULL AND x.id IS DISTINCT FROM p.id" \
	"  ORDER BY crm.name_key(crm.company_match_key(x.name)) OPERATOR(%1$s.<->) pn.pk" \
	"  LIMIT " CppAsString2(SIMILAR_NEAREST) ") AS x" \
	" WHERE x.sim OPERATOR(pg_catalog.>=) " NAME_SIMILARITY

static const char *const branches[] = {
	/* a lead */
	LEAD_EMAIL SAME_KIND " UNION ALL " LEAD_PHONE SAME_KIND " UNION ALL " LEAD_NAME SAME_KIND
	" UNION ALL " CONTACT_EMAIL NOT_LEADS_CONTACT " UNION ALL " CONTACT_PHONE NOT_LEADS_CONTACT
	" UNION ALL " CONTACT_NAME_BY_KEY NOT_LEADS_CONTACT
	" UNION ALL " ACCOUNT_KEY NOT_LEADS_ACCOUNT " UNION ALL " ACCOUNT_DOMAIN NOT_LEADS_ACCOUNT,
	/* an account */
	ACCOUNT_KEY SAME_KIND " UNION ALL " ACCOUNT_DOMAIN SAME_KIND " UNION ALL " ACCOUNT_PHONE SAME_KIND
	" UNION ALL " ACCOUNT_NAME SAME_KIND,
	/* a contact */
	CONTACT_EMAIL SAME_KIND " UNION ALL " CONTACT_PHONE SAME_KIND " UNION ALL " CONTACT_NAME_BY_ACCOUNT SAME_KIND
	" UNION ALL " LEAD_EMAIL NOT_CONVERTED_INTO " UNION ALL " LEAD_PHONE NOT_CONVERTED_INTO
	" UNION ALL " LEAD_NAME NOT_CONVERTED_INTO
};

/*
 * crm_match_sql -- "WITH p AS (probes), m AS (pairs)": the pairs between
 * the probes and the stored records, one per pair with its best rule (key
 * rules before similar names, then the higher score); a pair of two probes
 * of the same kind once, as (later id, earlier id).  Parameters: $1 look
 * for similar names, $2 apply the key rules, $3 a lead being converted
 * (NULL: none), whose new account and contact are not its duplicates;
 * probes may use $4 and up.
 * Columns of m: probe, kind, id, owner (regrole), rule, score.
 */
char *
crm_match_sql(CrmRecordKind kind, const char *probes)
{
	const char *trgm = quote_identifier(crm_required_schema("pg_trgm"));

	return psprintf("WITH p AS (%s), m AS ("
					"SELECT DISTINCT ON (b.probe, b.kind, b.id) b.probe, b.kind, b.id, b.owner, b.rule, b.score"
					" FROM (%s) AS b"
					" WHERE (b.kind OPERATOR(pg_catalog.=) '%s' AND b.id OPERATOR(pg_catalog.>) b.probe"
					"        AND EXISTS (SELECT 1 FROM p AS q WHERE q.id OPERATOR(pg_catalog.=) b.id)) IS NOT TRUE"
					" ORDER BY b.probe, b.kind, b.id, b.rule OPERATOR(pg_catalog.=) 'similar_name', b.score DESC)",
					probes, psprintf(branches[kind], trgm), kind_names[kind]);
}

/*
 * crm_duplicates_no_jit -- open a GUC nest level with jit off, for the
 * match queries; close it with AtEOXact_GUC(true, level) (an error
 * closes it).  The planner cannot estimate joins on the key expressions
 * of the probes (their statistics are unknown), so its row counts run
 * into the billions and JIT would compile every plan: measured with
 * 50,000 probes, 2.8 s of compiling for 0.5 s of searching.
 */
int
crm_duplicates_no_jit(void)
{
	int			level = NewGUCNestLevel();

	(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	return level;
}

/* what a caller may see of a record: one query per kind, with its rights */
static CrmQuery visible_ids[3] = {
	{"SELECT x.id FROM crm.lead AS x WHERE x.id OPERATOR(pg_catalog.=) ANY ($1)", 1, {INT8ARRAYOID}, NULL},
	{"SELECT x.id FROM crm.account AS x WHERE x.id OPERATOR(pg_catalog.=) ANY ($1)", 1, {INT8ARRAYOID}, NULL},
	{"SELECT x.id FROM crm.contact AS x WHERE x.id OPERATOR(pg_catalog.=) ANY ($1)", 1, {INT8ARRAYOID}, NULL},
};

/* visible -- which of ids (of one kind) role sees: a sorted array of them */
static int
visible(Oid role, CrmRecordKind kind, int64 *ids, int nids, int64 **seen)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(nids, 1));
	Datum		values[1];
	char		nulls[1] = {' '};
	int			n;

	/* one plan for every array: a custom plan would be made at each call */
	if (visible_ids[kind].plan == NULL)
		crm_query_prefer_generic(&visible_ids[kind]);

	for (int i = 0; i < nids; i++)
		elems[i] = Int64GetDatum(ids[i]);
	values[0] = PointerGetDatum(construct_array(elems, nids, INT8OID, sizeof(int64), true, TYPALIGN_DOUBLE));
	crm_query_run_as(role, &visible_ids[kind], values, nulls, 0);
	n = (int) SPI_processed;
	*seen = palloc(sizeof(int64) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		bool		isnull;

		(*seen)[i] = crm_result_int64(i, 1, &isnull);
	}
	return n;
}

/* crm_record_visible -- does role see record id of a kind ("lead", ...)? */
bool
crm_record_visible(Oid role, const char *kindname, int64 id)
{
	CrmRecordKind kind;
	int64	   *seen;

	if (!crm_record_kind_parse(kindname, &kind))
		return false;
	return visible(role, kind, &id, 1, &seen) > 0;
}

static CrmRecordKind
required_kind(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	CrmRecordKind kind;
	char	   *name;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", argname),
				 errhint("Pass 'lead', 'account' or 'contact'.")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (!crm_record_kind_parse(name, &kind))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown kind of record \"%s\"", name),
				 errhint("Pass 'lead', 'account' or 'contact'.")));
	return kind;
}

/*
 * The keys of a record of each kind, as expressions over its row (%1$s):
 * ck company key, dom company domain, em e-mail, ph phone key (the key
 * rules); nk the name compared by similarity (its crm.name_key is taken
 * only where a branch compares it: folding costs), nck the company key its
 * people are grouped by, acc the account its people are grouped by; cid,
 * aid the contact and account a lead was converted into (never its pairs).
 */
static const char *const key_exprs[3][9] = {
	{"crm.company_match_key(%1$s.company)", "crm.match_domain(%1$s.website, %1$s.email)",
		"pg_catalog.lower(%1$s.email)", "crm.phone_key(%1$s.phone)",
		"%1$s.name", "crm.company_match_key(pg_catalog.\"left\"(%1$s.company, 256))", "NULL::pg_catalog.int8",
	"%1$s.contact_id", "%1$s.account_id"},
	{"crm.company_match_key(%1$s.name)", "crm.match_domain(%1$s.website, NULL)",
		"NULL::pg_catalog.text", "crm.phone_key(%1$s.phone)",
		"crm.company_match_key(%1$s.name)", "NULL::pg_catalog.text",
	"NULL::pg_catalog.int8", "NULL::pg_catalog.int8", "NULL::pg_catalog.int8"},
	{"NULL::pg_catalog.text", "NULL::pg_catalog.text",
		"pg_catalog.lower(%1$s.email)", "crm.phone_key(%1$s.phone)",
		"%1$s.name",
		"(SELECT crm.company_match_key(a.name) FROM crm.account AS a WHERE a.id OPERATOR(pg_catalog.=) %1$s.account_id)",
	"%1$s.account_id", "NULL::pg_catalog.int8", "NULL::pg_catalog.int8"},
};

/* the columns a record's similar-name keys depend on */
static const char *const name_columns[3] = {
	"(%1$s.name, %1$s.company)", "%1$s.name", "(%1$s.name, %1$s.account_id)"
};

static const char *const key_names[9] = {"ck", "dom", "em", "ph", "nk", "nck", "acc", "cid", "aid"};

/*
 * crm_probe_sql -- the probes (p) of crm_match_sql for the rows of from
 * (alias n).  With old (the alias of the rows before an UPDATE), a key is
 * given only where it changed, the name keys only where a column they
 * depend on changed: an update is checked for what it changes.
 */
char *
crm_probe_sql(CrmRecordKind kind, const char *from, const char *old)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT n.id");
	for (int k = 0; k < 9; k++)
	{
		char	   *now = psprintf(key_exprs[kind][k], "n");

		if (old == NULL || k >= 7)
			appendStringInfo(&sql, ", %s AS %s", now, key_names[k]);
		else if (k < 4)
			appendStringInfo(&sql, ", CASE WHEN %s IS DISTINCT FROM %s THEN %s END AS %s",
							 now, psprintf(key_exprs[kind][k], old), now, key_names[k]);
		else
			appendStringInfo(&sql, ", CASE WHEN %s IS DISTINCT FROM %s THEN %s END AS %s",
							 psprintf(name_columns[kind], "n"), psprintf(name_columns[kind], old),
							 now, key_names[k]);
	}
	appendStringInfo(&sql, " FROM %s", from);
	return sql.data;
}

static CrmQuery find_query[3];

static CrmQuery *
find_query_of(CrmRecordKind kind)
{
	CrmQuery   *q = &find_query[kind];

	if (q->sql == NULL)
	{
		static const Oid types[11] = {BOOLOID, BOOLOID, INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID,
		TEXTOID, TEXTOID, INT8OID, INT8OID};
		char	   *probes = crm_probe_sql(kind,
										   "(SELECT $4::pg_catalog.int8 AS id, $5::pg_catalog.text AS name,"
										   " $6::pg_catalog.text AS company, $7::pg_catalog.text AS email,"
										   " $8::pg_catalog.text AS phone, $9::pg_catalog.text AS website,"
										   " $10::pg_catalog.int8 AS account_id, $11::pg_catalog.int8 AS contact_id) AS n", NULL);

		q->nargs = 11;
		crm_query_prefer_generic(q);
		memcpy(q->argtypes, types, sizeof(types));
		q->sql = MemoryContextStrdup(TopMemoryContext,
									 psprintf("%s SELECT m.kind, m.id, m.owner::pg_catalog.text, m.rule, m.score FROM m"
											  " ORDER BY m.rule OPERATOR(pg_catalog.=) 'similar_name', m.score DESC, m.kind, m.id",
											  crm_match_sql(kind, probes)));
	}
	return q;
}

/* the fields of a stored record, read with the caller's rights */
static CrmQuery read_record[3] = {
	{"SELECT x.name, x.company, x.email::pg_catalog.text, x.phone::pg_catalog.text, x.website::pg_catalog.text,"
		" x.account_id, x.contact_id"
	" FROM crm.lead AS x WHERE x.id OPERATOR(pg_catalog.=) $1", 1, {INT8OID}, NULL},
	{"SELECT x.name, NULL, NULL, x.phone::pg_catalog.text, x.website::pg_catalog.text,"
		" NULL::pg_catalog.int8, NULL::pg_catalog.int8"
	" FROM crm.account AS x WHERE x.id OPERATOR(pg_catalog.=) $1", 1, {INT8OID}, NULL},
	{"SELECT x.name, NULL, x.email::pg_catalog.text, x.phone::pg_catalog.text, NULL,"
		" x.account_id, NULL::pg_catalog.int8"
	" FROM crm.contact AS x WHERE x.id OPERATOR(pg_catalog.=) $1", 1, {INT8OID}, NULL},
};

/* the fields of a record given as jsonb; unknown column names refused */
static CrmQuery unknown_column = {
	"SELECT k FROM pg_catalog.jsonb_object_keys($1) AS k"
	" WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute AS a"
	"                    WHERE a.attrelid OPERATOR(pg_catalog.=) $2 AND a.attname OPERATOR(pg_catalog.=) k"
	"                      AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped)"
	" ORDER BY k LIMIT 1",
	2, {JSONBOID, OIDOID}, NULL
};

static CrmQuery jsonb_fields = {
	"SELECT $1 OPERATOR(pg_catalog.->>) 'name', $1 OPERATOR(pg_catalog.->>) 'company',"
	" $1 OPERATOR(pg_catalog.->>) 'email', $1 OPERATOR(pg_catalog.->>) 'phone',"
	" $1 OPERATOR(pg_catalog.->>) 'website', ($1 OPERATOR(pg_catalog.->>) 'account_id')::pg_catalog.int8,"
	" ($1 OPERATOR(pg_catalog.->>) 'contact_id')::pg_catalog.int8",
	1, {JSONBOID}, NULL
};

/*
 * find -- the matches of one probe (its fields: the current SPI result's
 * row 0), as rows of the SRF's tuplestore
 */
static void
find(FunctionCallInfo fcinfo, CrmRecordKind kind, Oid caller, int64 id, bool has_id)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[11];
	char		nulls[11];
	bool		isnull;
	int			nmatch;
	int64	   *ids[3];
	int			nids[3] = {0, 0, 0};
	int64	   *seen[3];
	int			nseen[3];
	char	  **owners;
	char	  **rules;
	char	  **kinds;
	int64	   *mids;
	float4	   *scores;
	List	   *hidden = NIL;
	int			jit_level;

	values[0] = BoolGetDatum(true);
	values[1] = BoolGetDatum(true);
	nulls[0] = nulls[1] = ' ';
	crm_param_int64(values, nulls, 2, 0, true);
	crm_param_int64(values, nulls, 3, id, !has_id);
	for (int c = 0; c < 5; c++)
		crm_param_text(values, nulls, 4 + c, crm_result_text(0, c + 1));
	for (int c = 0; c < 2; c++)
	{
		values[9 + c] = crm_result_datum(0, 6 + c, &isnull);
		nulls[9 + c] = isnull ? 'n' : ' ';
	}
	/* a contact's account counts only when the caller sees it */
	if (kind == CRM_RECORD_CONTACT && nulls[9] == ' ' &&
		!crm_record_visible(caller, "account", DatumGetInt64(values[9])))
		nulls[9] = 'n';

	jit_level = crm_duplicates_no_jit();
	crm_query_run_as_owner(find_query_of(kind), values, nulls, 0);
	AtEOXact_GUC(true, jit_level);
	nmatch = (int) SPI_processed;
	kinds = palloc(sizeof(char *) * Max(nmatch, 1));
	mids = palloc(sizeof(int64) * Max(nmatch, 1));
	owners = palloc(sizeof(char *) * Max(nmatch, 1));
	rules = palloc(sizeof(char *) * Max(nmatch, 1));
	scores = palloc(sizeof(float4) * Max(nmatch, 1));
	for (int k = 0; k < 3; k++)
		ids[k] = palloc(sizeof(int64) * Max(nmatch, 1));
	for (int i = 0; i < nmatch; i++)
	{
		CrmRecordKind mk;

		kinds[i] = crm_result_text(i, 1);
		mids[i] = crm_result_int64(i, 2, &isnull);
		owners[i] = crm_result_text(i, 3);
		rules[i] = crm_result_text(i, 4);
		scores[i] = DatumGetFloat4(crm_result_datum(i, 5, &isnull));
		if (!crm_record_kind_parse(kinds[i], &mk))
			elog(ERROR, "crm: unknown record kind \"%s\" in a match", kinds[i]);
		ids[mk][nids[mk]++] = mids[i];
	}
	for (int k = 0; k < 3; k++)
		nseen[k] = nids[k] > 0 ? visible(caller, (CrmRecordKind) k, ids[k], nids[k], &seen[k]) : 0;

	for (int i = 0; i < nmatch; i++)
	{
		CrmRecordKind mk;
		bool		shown = false;
		Datum		out[5];
		bool		outnull[5] = {false, false, false, false, false};

		if (!crm_record_kind_parse(kinds[i], &mk))
			elog(ERROR, "crm: unknown record kind \"%s\" in a match", kinds[i]);
		for (int j = 0; j < nseen[mk] && !shown; j++)
			shown = seen[mk][j] == mids[i];
		if (!shown)
		{
			/* "exists, owned by X": once per owner and rule */
			char	   *tag = psprintf("%s/%s", owners[i], rules[i]);
			ListCell   *lc;
			bool		again = false;

			foreach(lc, hidden)
				again = again || strcmp((char *) lfirst(lc), tag) == 0;
			if (again)
				continue;
			hidden = lappend(hidden, tag);
		}
		out[0] = CStringGetTextDatum(kinds[i]);
		out[1] = Int64GetDatum(mids[i]);
		out[2] = CStringGetTextDatum(owners[i]);
		out[3] = CStringGetTextDatum(rules[i]);
		out[4] = Float4GetDatum(scores[i]);
		outnull[0] = outnull[1] = outnull[4] = !shown;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, outnull);
	}
}

/* crm_find_duplicates_of -- SQL crm.find_duplicates(kind text, id bigint) */
PG_FUNCTION_INFO_V1(crm_find_duplicates_of);
Datum
crm_find_duplicates_of(PG_FUNCTION_ARGS)
{
	Oid			caller = crm_caller();
	CrmRecordKind kind = required_kind(fcinfo, 0, "kind");
	int64		id = crm_required_id(fcinfo, 1, "id");
	Datum		values[1] = {Int64GetDatum(id)};
	char		nulls[1] = {' '};

	InitMaterializedSRF(fcinfo, 0);
	crm_spi_connect();
	crm_query_run_as(caller, &read_record[kind], values, nulls, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_RECORD_NOT_FOUND),
				 errmsg("%s %lld does not exist or is not visible to role \"%s\"",
						kind_names[kind], (long long) id, crm_role_name(caller)),
				 errhint("Pass the id of a %s you can see, or the record's fields as jsonb.", kind_names[kind])));
	find(fcinfo, kind, caller, id, true);
	crm_spi_finish();
	return (Datum) 0;
}

/* crm_find_duplicates_like -- SQL crm.find_duplicates(kind text, candidate jsonb) */
PG_FUNCTION_INFO_V1(crm_find_duplicates_like);
Datum
crm_find_duplicates_like(PG_FUNCTION_ARGS)
{
	Oid			caller = crm_caller();
	CrmRecordKind kind = required_kind(fcinfo, 0, "kind");
	Datum		values[2];
	char		nulls[2] = {' ', ' '};

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("candidate must not be null"),
				 errhint("Pass the record as a jsonb object of column names and values, e.g. '{\"name\": \"Jon Smith\", \"email\": \"jon@acme.example\"}'.")));
	values[0] = PG_GETARG_DATUM(1);
	values[1] = ObjectIdGetDatum(crm_relation_oid(kind_names[kind]));
	if (!JB_ROOT_IS_OBJECT(PG_GETARG_JSONB_P(1)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("candidate must be a jsonb object"),
				 errhint("Pass the record as column names and values, e.g. '{\"name\": \"Jon Smith\", \"email\": \"jon@acme.example\"}'.")));

	InitMaterializedSRF(fcinfo, 0);
	crm_spi_connect();
	crm_query_run(&unknown_column, values, nulls, 1);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("crm.%s has no column \"%s\"", kind_names[kind], crm_result_text(0, 1)),
				 errhint("Name the candidate's fields as the columns of crm.%s (name, email, phone, ...).", kind_names[kind])));
	crm_query_run(&jsonb_fields, values, nulls, 1);
	find(fcinfo, kind, caller, 0, false);
	crm_spi_finish();
	return (Datum) 0;
}

/* dismissing a pair: seen with the caller's rights, changed as the owner */
static CrmQuery read_pair = {
	"SELECT d.status FROM crm.duplicate_candidate AS d"
	" WHERE d.kind OPERATOR(pg_catalog.=) $1 AND d.id OPERATOR(pg_catalog.=) $2"
	"   AND d.duplicate_kind OPERATOR(pg_catalog.=) $3 AND d.duplicate_of OPERATOR(pg_catalog.=) $4",
	4, {TEXTOID, INT8OID, TEXTOID, INT8OID}, NULL
};

static CrmQuery dismiss_pair = {
	"UPDATE crm.duplicate_candidate AS d"
	" SET status = 'dismissed', resolved_by = $5, resolved_at = pg_catalog.now()"
	" WHERE d.kind OPERATOR(pg_catalog.=) $1 AND d.id OPERATOR(pg_catalog.=) $2"
	"   AND d.duplicate_kind OPERATOR(pg_catalog.=) $3 AND d.duplicate_of OPERATOR(pg_catalog.=) $4"
	"   AND d.status OPERATOR(pg_catalog.=) 'open'",
	5, {TEXTOID, INT8OID, TEXTOID, INT8OID, REGROLEOID}, NULL
};

/* crm_dismiss_duplicate -- SQL crm.dismiss_duplicate(kind, id, duplicate_kind, duplicate_of) */
PG_FUNCTION_INFO_V1(crm_dismiss_duplicate);
Datum
crm_dismiss_duplicate(PG_FUNCTION_ARGS)
{
	Oid			caller = crm_caller();
	CrmRecordKind kind = required_kind(fcinfo, 0, "kind");
	int64		id = crm_required_id(fcinfo, 1, "id");
	CrmRecordKind dkind = required_kind(fcinfo, 2, "duplicate_kind");
	int64		dup = crm_required_id(fcinfo, 3, "duplicate_of");
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	char	   *status;

	values[0] = CStringGetTextDatum(kind_names[kind]);
	values[1] = Int64GetDatum(id);
	values[2] = CStringGetTextDatum(kind_names[dkind]);
	values[3] = Int64GetDatum(dup);
	values[4] = ObjectIdGetDatum(caller);
	crm_spi_connect();
	crm_query_run_as(caller, &read_pair, values, nulls, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_CANDIDATE_NOT_FOUND),
				 errmsg("no duplicate pair %s %lld / %s %lld is visible to role \"%s\"",
						kind_names[kind], (long long) id, kind_names[dkind], (long long) dup,
						crm_role_name(caller)),
				 errhint("See the pairs you may decide on in crm.duplicate_candidate.")));
	status = crm_result_text(0, 1);
	crm_query_run_as_owner(&dismiss_pair, values, nulls, 0);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_CANDIDATE_RESOLVED),
				 errmsg("duplicate pair %s %lld / %s %lld is not open",
						kind_names[kind], (long long) id, kind_names[dkind], (long long) dup),
				 errdetail("Its status is %s.", strcmp(status, "open") == 0 ? "no longer open (resolved meanwhile)" : status),
				 errhint("Only open pairs are dismissed; merged and dismissed pairs stay as history.")));
	crm_spi_finish();
	PG_RETURN_TEXT_P(cstring_to_text("dismissed"));
}

/*
 * crm_name_fold -- the name key of a name: the German umlauts and sharp s
 * written out (ä -> ae, ö -> oe, ü -> ue, ß -> ss; in a UTF-8 database),
 * then folded (crm_fold): "Müller" and "Mueller" both become "mueller",
 * where plain unaccent would make the first "muller".
 */
static char *
crm_name_fold(const char *s)
{
	static const struct
	{
		char		second;		/* the byte after 0xC3 */
		const char *to;
	}			umlauts[] = {
		{'\xA4', "ae"}, {'\xB6', "oe"}, {'\xBC', "ue"},
		{'\x84', "Ae"}, {'\x96', "Oe"}, {'\x9C', "Ue"}, {'\x9F', "ss"},
	};
	StringInfoData out;

	if (GetDatabaseEncoding() != PG_UTF8 || strchr(s, '\xC3') == NULL)
		return crm_fold(s);
	initStringInfo(&out);
	for (const char *p = s; *p; p++)
	{
		bool		done = false;

		if (*p == '\xC3')
			for (int i = 0; i < (int) lengthof(umlauts) && !done; i++)
				if (p[1] == umlauts[i].second)
				{
					appendStringInfoString(&out, umlauts[i].to);
					p++;
					done = true;
				}
		if (!done)
			appendStringInfoChar(&out, *p);
	}
	return crm_fold(out.data);
}

/* crm_name_key -- SQL crm.name_key(name) */
PG_FUNCTION_INFO_V1(crm_name_key);
Datum
crm_name_key(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(crm_name_fold(text_to_cstring(PG_GETARG_TEXT_PP(0)))));
}

/*
 * crm_match_domain -- SQL crm.match_domain(website, email): the company
 * domain a record is matched under, as the conversion matches accounts:
 * the web site's host unless many companies share it, else the e-mail's
 */
PG_FUNCTION_INFO_V1(crm_match_domain);
Datum
crm_match_domain(PG_FUNCTION_ARGS)
{
	char	   *domain = NULL;

	if (!PG_ARGISNULL(0))
		domain = crm_company_domain(crm_domain_of(text_to_cstring(PG_GETARG_TEXT_PP(0))));
	if (domain == NULL && !PG_ARGISNULL(1))
		domain = crm_email_company_domain(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	if (domain == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(domain));
}
