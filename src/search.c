/*
 * search.c: crm.search(), finding accounts, contacts, leads and
 * opportunities by a few typed letters, with the caller's rights.
 *
 * The searchable text of a row (its "document", crm.search_document()) is
 * its folded fields (crm_fold: no accents, lower case) joined by spaces,
 * followed by the digits of its phone number.  Each searched table has a
 * GIN trigram index on that expression (sql/install/92_search.sql).  A row
 * matches a query when its document
 *   - contains the folded query (substring: a name, a prefix as you type, an
 *     e-mail fragment), or
 *   - contains the query's digits, when the query looks like a phone number
 *     ("555 0142" finds "+1 (555) 014-2"), or
 *   - has a stretch of words similar to the query (pg_trgm's word
 *     similarity at least SEARCH_SIMILARITY: typos).
 * Its score is a pure function of the query and the row (see score_sql):
 * nothing about other rows, visible or not, enters it.
 *
 * Row-level security and the index: pg_trgm's operators and LIKE are not
 * leakproof, so under the policies of a caller the planner cannot use the
 * trigram indexes.  So the search runs in two steps:
 *   1. as the extension owner (no policies, index-backed), the best
 *      candidates by an upper bound of their score: the row's own fields, and
 *      for contacts and opportunities also their account's name;
 *   2. with the caller's rights, by primary key (id = ANY: leakproof), the
 *      candidates the caller sees, scored again from what the caller sees
 *      (an account the caller cannot see neither matches nor shows).
 * The caller's score of a row is never above the owner's bound, and both
 * order rows by (score descending, kind, id).  So once the caller's
 * max_results-th row sorts before the last candidate read, no candidate not
 * read yet could take its place; otherwise step 2 reads four times as many
 * (step 1 first returns a top-N, then, if needed, all candidates).
 *
 * Typos are the costly part (word similarity is computed row by row, and
 * common trigrams make many candidates), and they score below every row
 * that contains the query.  So steps 1 and 2 first run without them, and
 * again with them only when that found fewer than max_results rows scoring
 * above any typo.
 */
#include "crm.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

/* limits of the arguments */
#define SEARCH_MAX_RESULTS	1000
#define SEARCH_MIN_CHARS	3
#define SEARCH_MAX_CHARS	200
/* the word similarity from which a row matches (a typo) */
#define SEARCH_SIMILARITY	"0.7"
/*
 * a typo's score is this times its similarity: at most this, below every
 * row that contains the query (0.7 and up) or whose account does (0.63 up)
 */
#define SEARCH_TYPO_SCORE	"0.6"
#define SEARCH_TYPO_MAX		0.6
/* candidates of the first round: so many per wanted row, at least ... */
#define SEARCH_FIRST_ROUND(n)	Max((n) * 2, 50)

/* the kinds of rows searched, in their sort order (kind ascending) */
static const char *const search_kinds[] = {"account", "contact", "lead", "opportunity"};

#define SEARCH_NKINDS	lengthof(search_kinds)

/*
 * The documents of the searched rows: these expressions must be exactly
 * those of the trigram indexes in sql/install/92_search.sql.
 */
#define DOC_ACCOUNT(a)		"crm.search_document(ARRAY[" a ".name, " a ".website], " a ".phone)"
#define DOC_CONTACT(c)		"crm.search_document(ARRAY[" c ".name, " c ".email], " c ".phone)"
#define DOC_LEAD(l)			"crm.search_document(ARRAY[" l ".name, " l ".company, " l ".email], " l ".phone)"
#define DOC_OPPORTUNITY(o)	"crm.search_document(ARRAY[" o ".name], NULL)"

/*
 * score_sql -- the score of a row from its document and its folded name,
 * columns of the row's "folded" subquery (see folded_sql).
 * Parameters: $1 the folded query, $2 '%query%', $3 '%digits%' or NULL,
 * $4 'query%', $5 '% query%' (LIKE patterns, escaped).
 *   1.0  the name is the query                ("acme corporation")
 *   0.9  the name starts with the query       ("acm")
 *   0.8  a word of the document starts with it ("corp", "john.smith@")
 *   0.7  the document contains it, or the phone its digits ("@acme.com")
 *   0.6 x word similarity, when at least SEARCH_SIMILARITY (typos: 0.42 to 0.6)
 *   0    no match
 * A row found by its account's name (contacts, opportunities) scores 0.9
 * times the account's score, so that the account itself comes first.
 */
static char *
score_sql(const char *trgm, const char *f)
{
	return psprintf("(CASE WHEN %s.name OPERATOR(pg_catalog.=) $1 THEN 1.0::pg_catalog.float8"
					" WHEN %s.name OPERATOR(pg_catalog.~~) $4 THEN 0.9::pg_catalog.float8"
					" WHEN %s.doc OPERATOR(pg_catalog.~~) $4 OR %s.doc OPERATOR(pg_catalog.~~) $5 THEN 0.8::pg_catalog.float8"
					" WHEN %s.doc OPERATOR(pg_catalog.~~) $2 OR %s.doc OPERATOR(pg_catalog.~~) $3 THEN 0.7::pg_catalog.float8"
					" WHEN %s.word_similarity($1, %s.doc) OPERATOR(pg_catalog.>=) " SEARCH_SIMILARITY
					" THEN " SEARCH_TYPO_SCORE "::pg_catalog.float8 OPERATOR(pg_catalog.*) %s.word_similarity($1, %s.doc)"
					" ELSE 0::pg_catalog.float8 END)",
					f, f, f, f, f, f, trgm, f, trgm, f);
}

/*
 * folded_sql -- a lateral subquery f of the document and the folded name of
 * row alias: each computed once per row (OFFSET 0 keeps the planner from
 * copying the expressions into every use)
 */
static char *
folded_sql(const char *doc, const char *alias, const char *f)
{
	return psprintf(" LEFT JOIN LATERAL (SELECT %s AS doc, crm.fold_text(%s.name) AS name OFFSET 0) AS %s ON true",
					doc, alias, f);
}

/*
 * match_sql -- the index condition of a document: with typos, a superset of
 * the rows score_sql matches; without, of those that score above
 * SEARCH_TYPO_MAX (they contain the query or its digits)
 */
static char *
match_sql(const char *trgm, const char *doc, bool typos)
{
	if (!typos)
		return psprintf("(%s OPERATOR(pg_catalog.~~) $2 OR %s OPERATOR(pg_catalog.~~) $3)", doc, doc);
	return psprintf("(%s OPERATOR(pg_catalog.~~) $2 OR %s OPERATOR(%s.%%>) $1 OR %s OPERATOR(pg_catalog.~~) $3)",
					doc, doc, trgm, doc);
}

/*
 * Step 1, as the extension owner: (kind, id, bound) of the best $7
 * candidates (NULL: all) of the kinds in $6, by the bound of their score:
 * first only rows that contain the query (exact_candidates), and when those
 * are not enough, also similar ones (typo_candidates).
 */
static CrmQuery exact_candidates = {
	NULL, 7, {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, INT8OID}, NULL
};
static CrmQuery typo_candidates = {
	NULL, 7, {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, INT8OID}, NULL
};

/*
 * Step 2, with the caller's rights: the candidates the caller sees
 * (accounts $6, contacts $7, leads $8, opportunities $9), scored from what
 * the caller sees, best first, at most $10.
 */
static CrmQuery caller_rows = {
	NULL, 10, {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, INT4OID}, NULL
};

/* own_match_sql -- step 1's rows of one table matched by their own text */
static char *
own_match_sql(const char *trgm, const char *kind, const char *table, const char *alias,
			  const char *doc, bool typos)
{
	return psprintf("SELECT '%s', %s.id, %s FROM crm.%s AS %s%s"
					" WHERE '%s' OPERATOR(pg_catalog.=) ANY ($6) AND %s",
					kind, alias, score_sql(trgm, "f"), table, alias, folded_sql(doc, alias, "f"),
					kind, match_sql(trgm, doc, typos));
}

/* candidates_sql -- the text of step 1's statement */
static char *
candidates_sql(const char *trgm, bool typos)
{
	return psprintf(
		"WITH acc AS MATERIALIZED ("
		"  SELECT a.id, %s AS score FROM crm.account AS a%s WHERE %s),"
		" hit (kind, id, score) AS ("
		"  SELECT 'account', acc.id, acc.score FROM acc"
		"   WHERE 'account' OPERATOR(pg_catalog.=) ANY ($6)"
		"  UNION ALL %s"
		"  UNION ALL"
		"  SELECT 'contact', c.id, 0.9::pg_catalog.float8 OPERATOR(pg_catalog.*) acc.score"
		"    FROM acc JOIN crm.contact AS c ON c.account_id OPERATOR(pg_catalog.=) acc.id"
		"   WHERE 'contact' OPERATOR(pg_catalog.=) ANY ($6)"
		"  UNION ALL %s"
		"  UNION ALL %s"
		"  UNION ALL"
		"  SELECT 'opportunity', o.id, 0.9::pg_catalog.float8 OPERATOR(pg_catalog.*) acc.score"
		"    FROM acc JOIN crm.opportunity AS o ON o.account_id OPERATOR(pg_catalog.=) acc.id"
		"   WHERE 'opportunity' OPERATOR(pg_catalog.=) ANY ($6))"
		" SELECT hit.kind, hit.id, pg_catalog.max(hit.score) AS score FROM hit"
		"  WHERE hit.score OPERATOR(pg_catalog.>) 0"
		"  GROUP BY hit.kind, hit.id"
		"  ORDER BY pg_catalog.max(hit.score) DESC, hit.kind COLLATE pg_catalog.\"C\", hit.id LIMIT $7",
		score_sql(trgm, "af"), folded_sql(DOC_ACCOUNT("a"), "a", "af"), match_sql(trgm, DOC_ACCOUNT("a"), typos),
		own_match_sql(trgm, "contact", "contact", "c", DOC_CONTACT("c"), typos),
		own_match_sql(trgm, "lead", "lead", "l", DOC_LEAD("l"), typos),
		own_match_sql(trgm, "opportunity", "opportunity", "o", DOC_OPPORTUNITY("o"), typos));
}

/* build_queries -- the texts of the statements, once per backend */
static void
build_queries(void)
{
	MemoryContext old;
	const char *trgm;
	char	   *acc_score;

	if (caller_rows.sql != NULL)
		return;
	trgm = quote_identifier(crm_required_schema("pg_trgm"));
	old = MemoryContextSwitchTo(TopMemoryContext);
	acc_score = score_sql(trgm, "af");
	exact_candidates.sql = candidates_sql(trgm, false);
	typo_candidates.sql = candidates_sql(trgm, true);
	caller_rows.sql = psprintf(
		"SELECT r.kind, r.id, r.title, r.subtitle, r.score FROM ("
		"  SELECT 'account' AS kind, a.id, a.name AS title,"
		"         NULLIF(pg_catalog.concat_ws(', ', a.website, a.phone), '') AS subtitle,"
		"         %s AS score"
		"    FROM crm.account AS a%s WHERE a.id OPERATOR(pg_catalog.=) ANY ($6)"
		"  UNION ALL"
		"  SELECT 'contact', c.id, c.name,"
		"         NULLIF(pg_catalog.concat_ws(', ', a.name, c.email, c.phone), ''),"
		"         GREATEST(%s, CASE WHEN a.id IS NOT NULL"
		"             THEN 0.9::pg_catalog.float8 OPERATOR(pg_catalog.*) %s END)"
		"    FROM crm.contact AS c"
		"    LEFT JOIN crm.account AS a ON a.id OPERATOR(pg_catalog.=) c.account_id%s%s"
		"   WHERE c.id OPERATOR(pg_catalog.=) ANY ($7)"
		"  UNION ALL"
		"  SELECT 'lead', l.id, l.name,"
		"         NULLIF(pg_catalog.concat_ws(', ', l.company, l.email, l.phone), ''),"
		"         %s"
		"    FROM crm.lead AS l%s WHERE l.id OPERATOR(pg_catalog.=) ANY ($8)"
		"  UNION ALL"
		"  SELECT 'opportunity', o.id, o.name, a.name,"
		"         GREATEST(%s, CASE WHEN a.id IS NOT NULL"
		"             THEN 0.9::pg_catalog.float8 OPERATOR(pg_catalog.*) %s END)"
		"    FROM crm.opportunity AS o"
		"    LEFT JOIN crm.account AS a ON a.id OPERATOR(pg_catalog.=) o.account_id%s%s"
		"   WHERE o.id OPERATOR(pg_catalog.=) ANY ($9)) AS r"
		" WHERE r.score OPERATOR(pg_catalog.>) 0"
		" ORDER BY r.score DESC, r.kind COLLATE pg_catalog.\"C\", r.id LIMIT $10",
		acc_score, folded_sql(DOC_ACCOUNT("a"), "a", "af"),
		score_sql(trgm, "f"), acc_score, folded_sql(DOC_CONTACT("c"), "c", "f"),
		folded_sql(DOC_ACCOUNT("a"), "a", "af"),
		score_sql(trgm, "f"), folded_sql(DOC_LEAD("l"), "l", "f"),
		score_sql(trgm, "f"), acc_score, folded_sql(DOC_OPPORTUNITY("o"), "o", "f"),
		folded_sql(DOC_ACCOUNT("a"), "a", "af"));
	MemoryContextSwitchTo(old);
}

/* like_escaped -- s with LIKE's wildcards and escape character escaped */
static char *
like_escaped(const char *s)
{
	StringInfoData out;

	initStringInfo(&out);
	for (const char *p = s; *p; p++)
	{
		if (*p == '%' || *p == '_' || *p == '\\')
			appendStringInfoChar(&out, '\\');
		appendStringInfoChar(&out, *p);
	}
	return out.data;
}

/*
 * phone_digits -- the digits of a query that looks like a phone number
 * (digits, spaces and + ( ) . - / only, at least SEARCH_MIN_CHARS digits),
 * else NULL
 */
static char *
phone_digits(const char *query)
{
	StringInfoData out;

	initStringInfo(&out);
	for (const char *p = query; *p; p++)
	{
		if (*p >= '0' && *p <= '9')
			appendStringInfoChar(&out, *p);
		else if (strchr(" +().-/", *p) == NULL)
			return NULL;
	}
	return out.len >= SEARCH_MIN_CHARS ? out.data : NULL;
}

/* search_chars -- how many letters and digits (any non-ASCII character counts) */
static int
search_chars(const char *s)
{
	int			n = 0;

	for (const unsigned char *p = (const unsigned char *) s; *p; p += pg_mblen((const char *) p))
		if (*p >= 0x80 || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
			(*p >= 'A' && *p <= 'Z'))
			n++;
	return n;
}

/* kinds_argument -- the kinds asked for, checked; NULL: every kind */
static Datum
kinds_argument(FunctionCallInfo fcinfo)
{
	ArrayType  *kinds;
	Datum	   *elems;
	bool	   *elemnulls;
	int			nelems;

	if (PG_ARGISNULL(1))
	{
		Datum		all[SEARCH_NKINDS];

		for (int k = 0; k < (int) SEARCH_NKINDS; k++)
			all[k] = CStringGetTextDatum(search_kinds[k]);
		return PointerGetDatum(construct_array(all, SEARCH_NKINDS, TEXTOID, -1, false, TYPALIGN_INT));
	}
	kinds = PG_GETARG_ARRAYTYPE_P(1);
	deconstruct_array(kinds, TEXTOID, -1, false, TYPALIGN_INT, &elems, &elemnulls, &nelems);
	if (nelems == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kinds must name at least one kind"),
				 errhint("Pass NULL to search every kind: account, contact, lead, opportunity.")));
	for (int i = 0; i < nelems; i++)
	{
		char	   *kind;
		bool		known = false;

		if (elemnulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("kinds must not contain null")));
		kind = TextDatumGetCString(elems[i]);
		for (int k = 0; k < (int) SEARCH_NKINDS; k++)
			known = known || strcmp(kind, search_kinds[k]) == 0;
		if (!known)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown kind \"%s\"", kind),
					 errhint("The kinds are account, contact, lead and opportunity.")));
	}
	return PointerGetDatum(kinds);
}

/* query_argument -- the folded query, checked */
static char *
query_argument(FunctionCallInfo fcinfo)
{
	char	   *query;
	int			nchars;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("query must not be null")));
	query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	nchars = pg_mbstrlen(query);
	if (nchars > SEARCH_MAX_CHARS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("search query is too long"),
				 errdetail("The query has %d characters; at most %d are searched.",
						   nchars, SEARCH_MAX_CHARS),
				 errhint("Search for a name, an e-mail address or a phone number.")));
	query = crm_fold(query);
	if (search_chars(query) < SEARCH_MIN_CHARS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("search query is too short"),
				 errhint("Type at least %d letters or digits.", SEARCH_MIN_CHARS)));
	return query;
}

/* the sort key of a result or candidate: score descending, kind, id */
typedef struct SearchKey
{
	double		score;
	int			kind;
	int64		id;
} SearchKey;

static int
kind_rank(const char *kind)
{
	for (int k = 0; k < (int) SEARCH_NKINDS; k++)
		if (strcmp(kind, search_kinds[k]) == 0)
			return k;
	elog(ERROR, "crm: unknown kind \"%s\" in a search result", kind);
}

/* row i of the last SPI result as a key: kind in column 1, id 2, score col */
static SearchKey
result_key(int row, int score_col)
{
	SearchKey	key;
	bool		isnull;

	key.kind = kind_rank(crm_result_text(row, 1));
	key.id = crm_result_int64(row, 2, &isnull);
	key.score = DatumGetFloat8(crm_result_datum(row, score_col, &isnull));
	return key;
}

/* does key a sort before key b, or is it b? */
static bool
key_not_after(SearchKey a, SearchKey b)
{
	if (a.score != b.score)
		return a.score > b.score;
	if (a.kind != b.kind)
		return a.kind < b.kind;
	return a.id <= b.id;
}

/* candidate_keys -- the keys of the last SPI result (step 1), in its order */
static SearchKey *
candidate_keys(void)
{
	SearchKey  *keys = palloc(sizeof(SearchKey) * Max(SPI_processed, 1));

	for (uint64 i = 0; i < SPI_processed; i++)
		keys[i] = result_key(i, 3);
	return keys;
}

/*
 * caller_batch -- step 2 over the first n candidates: the caller's best
 * max_results of them are then the last SPI result.  Returns whether more
 * candidates could change them: not when these are all the candidates
 * (last), nor when the caller's max_results-th row sorts before the n-th
 * candidate (a row after it sorts after it for the owner, and so for the
 * caller, whose score is never above the owner's).
 */
static bool
caller_batch(SearchKey *candidates, uint64 n, Datum *values, char *nulls,
			 int32 max_results, bool last)
{
	ArrayBuildState *found[SEARCH_NKINDS];

	for (int k = 0; k < (int) SEARCH_NKINDS; k++)
		found[k] = initArrayResult(INT8OID, CurrentMemoryContext, false);
	for (uint64 i = 0; i < n; i++)
		accumArrayResult(found[candidates[i].kind], Int64GetDatum(candidates[i].id), false,
						 INT8OID, CurrentMemoryContext);
	for (int k = 0; k < (int) SEARCH_NKINDS; k++)
	{
		values[5 + k] = makeArrayResult(found[k], CurrentMemoryContext);
		nulls[5 + k] = ' ';
	}
	crm_query_run(&caller_rows, values, nulls, 0);
	if (last || n == 0)
		return false;
	return !(SPI_processed == (uint64) max_results &&
			 key_not_after(result_key(max_results - 1, 5), candidates[n - 1]));
}

/*
 * search_candidates -- steps 1 and 2 with one statement of step 1: the
 * caller's best max_results rows among its candidates are then the last SPI
 * result.  Returns whether they are max_results rows.
 *
 * Step 1 first asks for a few candidates more than wanted (a top-N sort),
 * and when the caller sees too few of them, for all of them; step 2 then
 * reads them in batches four times larger each time.
 */
static bool
search_candidates(CrmQuery *step1, Datum kinds, Datum *values, char *nulls, int32 max_results)
{
	SearchKey  *candidates;
	uint64		ncandidates;
	bool		complete;

	values[5] = kinds;
	nulls[5] = ' ';
	crm_param_int64(values, nulls, 6, SEARCH_FIRST_ROUND(max_results), false);
	crm_query_run_as_owner(step1, values, nulls, 0);
	ncandidates = SPI_processed;
	complete = ncandidates < (uint64) SEARCH_FIRST_ROUND(max_results);
	candidates = candidate_keys();
	for (uint64 batch = ncandidates;; batch *= 4)
	{
		if (!caller_batch(candidates, Min(batch, ncandidates), values, nulls, max_results,
						  complete && batch >= ncandidates))
			break;
		if (!complete)
		{
			values[5] = kinds;
			nulls[5] = ' ';
			crm_param_int64(values, nulls, 6, 0, true);
			crm_query_run_as_owner(step1, values, nulls, 0);
			ncandidates = SPI_processed;
			complete = true;
			candidates = candidate_keys();
		}
	}
	return SPI_processed == (uint64) max_results;
}

/* crm_search -- SQL crm.search(query, kinds, max_results) */
PG_FUNCTION_INFO_V1(crm_search);
Datum
crm_search(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *query = query_argument(fcinfo);
	Datum		kinds = kinds_argument(fcinfo);
	int32		max_results;
	char	   *escaped;
	char	   *digits;
	Datum		values[10];
	char		nulls[10];
	bool		isnull;

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("max_results must not be null")));
	max_results = PG_GETARG_INT32(2);
	if (max_results < 1 || max_results > SEARCH_MAX_RESULTS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_results must be between 1 and %d, not %d",
						SEARCH_MAX_RESULTS, max_results)));

	escaped = like_escaped(query);
	digits = phone_digits(query);
	memset(nulls, ' ', sizeof(nulls));
	crm_param_text(values, nulls, 0, query);
	crm_param_text(values, nulls, 1, psprintf("%%%s%%", escaped));
	crm_param_text(values, nulls, 2, digits ? psprintf("%%%s%%", digits) : NULL);
	crm_param_text(values, nulls, 3, psprintf("%s%%", escaped));
	crm_param_text(values, nulls, 4, psprintf("%% %s%%", escaped));
	values[9] = Int32GetDatum(max_results);

	InitMaterializedSRF(fcinfo, 0);
	crm_spi_connect();
	build_queries();

	/*
	 * Rows that contain the query score above every typo: when max_results
	 * of them (scoring above SEARCH_TYPO_MAX) are found, typos need no search.
	 */
	if (!search_candidates(&exact_candidates, kinds, values, nulls, max_results) ||
		DatumGetFloat8(crm_result_datum(max_results - 1, 5, &isnull)) <= SEARCH_TYPO_MAX)
		search_candidates(&typo_candidates, kinds, values, nulls, max_results);

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		Datum		row[5];
		bool		rownulls[5];

		for (int c = 0; c < 4; c++)
			row[c] = crm_result_datum(i, c + 1, &rownulls[c]);
		row[4] = Float4GetDatum((float4) DatumGetFloat8(crm_result_datum(i, 5, &rownulls[4])));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row, rownulls);
	}
	crm_spi_finish();
	return (Datum) 0;
}

/*
 * crm_search_document -- SQL crm.search_document(fields, phone): the folded
 * fields that are not NULL, joined by spaces, then the digits of the phone
 * number (all of them, so that any fragment of the number is found)
 */
PG_FUNCTION_INFO_V1(crm_search_document);
Datum
crm_search_document(PG_FUNCTION_ARGS)
{
	StringInfoData plain;
	char	   *doc;
	StringInfoData out;

	initStringInfo(&plain);
	if (!PG_ARGISNULL(0))
	{
		Datum	   *elems;
		bool	   *elemnulls;
		int			nelems;

		deconstruct_array(PG_GETARG_ARRAYTYPE_P(0), TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &elemnulls, &nelems);
		for (int i = 0; i < nelems; i++)
			if (!elemnulls[i])
				appendStringInfo(&plain, "%s%s", plain.len > 0 ? " " : "",
								 TextDatumGetCString(elems[i]));
	}
	doc = crm_fold(plain.data);
	initStringInfo(&out);
	appendStringInfoString(&out, doc);
	if (!PG_ARGISNULL(1))
	{
		char	   *phone = text_to_cstring(PG_GETARG_TEXT_PP(1));
		bool		first = true;

		for (const char *p = phone; *p; p++)
		{
			if (*p < '0' || *p > '9')
				continue;
			if (first && out.len > 0)
				appendStringInfoChar(&out, ' ');
			first = false;
			appendStringInfoChar(&out, *p);
		}
	}
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}
