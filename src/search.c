/*
 * search.c: crm.search(), finding accounts, contacts, leads, notes and
 * opportunities by a few typed letters, with the caller's rights.
 *
 * Notes are found by their body; a note is returned only when the caller
 * sees it, that is sees the record it is about (its policies,
 * 81_notes_and_tags.sql, apply in step 2 below).  Its "name" for the score
 * is its whole body (1.0: the body is the query, 0.9: it starts with it).
 *
 * The searchable text of a row (its "document", crm.search_document()) is
 * its folded fields (crm_fold: no accents, lower case) joined by spaces,
 * followed by the digits of its phone number, stored in the column
 * search_text of each searched table, a generated column that PostgreSQL
 * computes on every write (sql/install/92_search.sql; an update of other
 * columns computes the same text again, so it stays HOT when nothing else
 * indexed changes).  A GIN trigram index is on it: the index's
 * recheck and the scores read the stored text, nothing is folded again per
 * candidate.  A row matches a query when its document
 *   - contains the folded query (substring: a name, a prefix as you type, an
 *     e-mail fragment), or
 *   - contains the query's digits, when the query looks like a phone number
 *     ("555 0142" finds "+1 (555) 014-2"), or
 *   - contains the first SEARCH_TYPO_ANCHOR letters of the query's first
 *     word that has so many (its "anchor") and has a stretch of words
 *     similar to the query (pg_trgm's word similarity at least
 *     SEARCH_SIMILARITY: typos after the first letters; none for a query
 *     that looks like a phone number, nor one without such a word).
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
 * (step 1 first returns its best SEARCH_FIRST_READ, then, if needed, all).
 *
 * Typos are the costly part (word similarity is computed row by row, and
 * common trigrams make many candidates), and they score below every row
 * that contains the query.  So steps 1 and 2 first run without them, and
 * again with them only when that found fewer than max_results rows scoring
 * above any typo.  Requiring the query's first characters in a typo's row
 * gives the index scan one selective trigram to intersect the others with:
 * the rows whose word similarity is computed are those few, not every row
 * that shares 70% of the query's (often common) trigrams.
 */
#include "crm.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
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
/* the letters of a query's word that a typo's row must contain (see typo_anchor) */
#define SEARCH_TYPO_ANCHOR	3
/*
 * a typo's score is this times its similarity: at most this, below every
 * row that contains the query (0.7 and up) or whose account does (0.63 up)
 */
#define SEARCH_TYPO_SCORE	"0.6"
#define SEARCH_TYPO_MAX		0.6
/* candidates the caller's first round reads: so many per wanted row, at least ... */
#define SEARCH_FIRST_ROUND(n)	Max((n) * 2, 50)
/* candidates step 1 returns at first (more only when they are not enough) */
#define SEARCH_FIRST_READ(n)	Max((n) * 50, 1000)

/* the kinds of rows searched, in their sort order (kind ascending) */
static const char *const search_kinds[] = {"account", "contact", "lead", "note", "opportunity"};

#define SEARCH_NKINDS	lengthof(search_kinds)

/*
 * The documents of the searched rows: their generated column search_text,
 * crm.search_document() of their fields (sql/install/92_search.sql), which
 * the trigram indexes are on.
 */
#define DOC(alias)	alias ".search_text"

/*
 * score_sql -- the score of row alias from its document and its name.
 * Parameters: $1 the folded query, $2 '%query%', $3 '%digits%' or NULL,
 * $4 'query%', $5 '% query%', $6 '%anchor%' or NULL (LIKE patterns,
 * escaped; see typo_anchor).
 *   1.0  the name is the query                ("acme corporation")
 *   0.9  the name starts with the query       ("acm")
 *   0.8  a word of the document starts with it ("corp", "john.smith@")
 *   0.7  the document contains it, or the phone its digits ("@acme.com")
 *   0.6 x word similarity, when at least SEARCH_SIMILARITY and the document
 *        contains the anchor (typos: 0.42 to 0.6)
 *   0    no match
 * The document starts with the folded name, so the name is folded (with
 * unaccent: the costly part) only for rows whose document starts with the
 * query.  A row found by its account's name (contacts, opportunities)
 * scores 0.9 times the account's score, so that the account itself comes
 * first.
 */
static char *
named_score_sql(const char *trgm, const char *alias, const char *name)
{
	char	   *doc = psprintf("%s.search_text", alias);

	return psprintf("(CASE WHEN %s OPERATOR(pg_catalog.~~) $4 THEN"
					"   CASE WHEN crm.fold_text(%s.%s) OPERATOR(pg_catalog.=) $1 THEN 1.0::pg_catalog.float8"
					"   WHEN crm.fold_text(%s.%s) OPERATOR(pg_catalog.~~) $4 THEN 0.9::pg_catalog.float8"
					"   ELSE 0.8::pg_catalog.float8 END"
					" WHEN %s OPERATOR(pg_catalog.~~) $5 THEN 0.8::pg_catalog.float8"
					" WHEN %s OPERATOR(pg_catalog.~~) $2 OR %s OPERATOR(pg_catalog.~~) $3 THEN 0.7::pg_catalog.float8"
					" WHEN %s OPERATOR(pg_catalog.~~) $6 THEN (SELECT CASE WHEN s.sim OPERATOR(pg_catalog.>=) " SEARCH_SIMILARITY
					"   THEN " SEARCH_TYPO_SCORE "::pg_catalog.float8 OPERATOR(pg_catalog.*) s.sim"
					"   ELSE 0::pg_catalog.float8 END"
					"   FROM (SELECT %s.word_similarity($1, %s) AS sim OFFSET 0) AS s)"
					" ELSE 0::pg_catalog.float8 END)",
					doc, alias, name, alias, name, doc, doc, doc, doc, trgm, doc);
}

/* score_sql -- named_score_sql of a row whose name is its column name */
static char *
score_sql(const char *trgm, const char *alias)
{
	return named_score_sql(trgm, alias, "name");
}

/* which rows a statement of step 1 reads (see match_sql) */
typedef enum SearchMatch
{
	MATCH_CONTAINS,				/* the rows that contain the query or its digits */
	MATCH_SIMILAR,				/* the rows similar to the query */
	MATCH_ANY					/* both */
} SearchMatch;

/*
 * match_sql -- the index condition of a document: MATCH_ANY, a superset of
 * the rows score_sql matches; MATCH_CONTAINS, of those that score above
 * SEARCH_TYPO_MAX (they contain the query or its digits); MATCH_SIMILAR, of
 * the others (typos)
 */
static char *
match_sql(const char *trgm, const char *doc, SearchMatch match)
{
	if (match == MATCH_CONTAINS)
		return psprintf("(%s OPERATOR(pg_catalog.~~) $2 OR %s OPERATOR(pg_catalog.~~) $3)", doc, doc);
	if (match == MATCH_SIMILAR)
		return psprintf("(%s OPERATOR(%s.%%>) $1 AND %s OPERATOR(pg_catalog.~~) $6)", doc, trgm, doc);
	return psprintf("(%s OPERATOR(pg_catalog.~~) $2 OR %s OPERATOR(pg_catalog.~~) $3"
					" OR (%s OPERATOR(%s.%%>) $1 AND %s OPERATOR(pg_catalog.~~) $6))",
					doc, doc, doc, trgm, doc);
}

/*
 * Step 1, as the extension owner: (kind, id, bound) of the best $8
 * candidates (NULL: all) of the kinds in $7, by the bound of their score:
 * first only rows that contain the query (exact_candidates), and when those
 * are not enough, also similar ones: when all of the first were read, only
 * the similar ones (similar_candidates), merged with them; otherwise both
 * (typo_candidates).
 */
static CrmQuery exact_candidates = {
	NULL, 8, {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, INT8OID}, NULL
};
static CrmQuery typo_candidates = {
	NULL, 8, {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, INT8OID}, NULL
};
static CrmQuery similar_candidates = {
	NULL, 8, {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, INT8OID}, NULL
};

/*
 * Step 2, with the caller's rights: the candidates the caller sees
 * (accounts $7, contacts $8, leads $9, notes $10, opportunities $11),
 * scored from what the caller sees, best first, at most $12.
 */
#define SEARCH_MAX_RESULTS_PARAM	(6 + (int) SEARCH_NKINDS)
static CrmQuery caller_rows = {
	NULL, 12, {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, INT4OID}, NULL
};

/* own_match_sql -- step 1's rows of one table matched by their own text */
static char *
own_match_sql(const char *trgm, const char *kind, const char *table, const char *alias,
			  const char *name, SearchMatch match)
{
	return psprintf("SELECT '%s', %s.id, %s FROM crm.%s AS %s"
					" WHERE '%s' OPERATOR(pg_catalog.=) ANY ($7) AND %s",
					kind, alias, named_score_sql(trgm, alias, name), table, alias,
					kind, match_sql(trgm, psprintf("%s.search_text", alias), match));
}

/* candidates_sql -- the text of step 1's statement */
static char *
candidates_sql(const char *trgm, SearchMatch match)
{
	return psprintf(
		"WITH acc AS MATERIALIZED ("
		"  SELECT a.id, %s AS score FROM crm.account AS a WHERE %s),"
		" hit (kind, id, score) AS ("
		"  SELECT 'account', acc.id, acc.score FROM acc"
		"   WHERE 'account' OPERATOR(pg_catalog.=) ANY ($7)"
		"  UNION ALL %s"
		"  UNION ALL"
		"  SELECT 'contact', c.id, 0.9::pg_catalog.float8 OPERATOR(pg_catalog.*) acc.score"
		"    FROM acc JOIN crm.contact AS c ON c.account_id OPERATOR(pg_catalog.=) acc.id"
		"   WHERE 'contact' OPERATOR(pg_catalog.=) ANY ($7)"
		"  UNION ALL %s"
		"  UNION ALL %s"
		"  UNION ALL %s"
		"  UNION ALL"
		"  SELECT 'opportunity', o.id, 0.9::pg_catalog.float8 OPERATOR(pg_catalog.*) acc.score"
		"    FROM acc JOIN crm.opportunity AS o ON o.account_id OPERATOR(pg_catalog.=) acc.id"
		"   WHERE 'opportunity' OPERATOR(pg_catalog.=) ANY ($7))"
		" SELECT hit.kind, hit.id, pg_catalog.max(hit.score) AS score FROM hit"
		"  WHERE hit.score OPERATOR(pg_catalog.>) 0"
		"  GROUP BY hit.kind, hit.id"
		"  ORDER BY pg_catalog.max(hit.score) DESC, hit.kind COLLATE pg_catalog.\"C\", hit.id LIMIT $8",
		score_sql(trgm, "a"), match_sql(trgm, DOC("a"), match),
		own_match_sql(trgm, "contact", "contact", "c", "name", match),
		own_match_sql(trgm, "lead", "lead", "l", "name", match),
		own_match_sql(trgm, "note", "note", "n", "body", match),
		own_match_sql(trgm, "opportunity", "opportunity", "o", "name", match));
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
	acc_score = score_sql(trgm, "a");
	exact_candidates.sql = candidates_sql(trgm, MATCH_CONTAINS);
	typo_candidates.sql = candidates_sql(trgm, MATCH_ANY);
	similar_candidates.sql = candidates_sql(trgm, MATCH_SIMILAR);
	caller_rows.sql = psprintf(
		"SELECT r.kind, r.id, r.title, r.subtitle, r.score FROM ("
		"  SELECT 'account' AS kind, a.id, a.name AS title,"
		"         NULLIF(pg_catalog.concat_ws(', ', a.website, a.phone), '') AS subtitle,"
		"         %s AS score"
		"    FROM crm.account AS a WHERE a.id OPERATOR(pg_catalog.=) ANY ($7)"
		"  UNION ALL"
		"  SELECT 'contact', c.id, c.name,"
		"         NULLIF(pg_catalog.concat_ws(', ', a.name, c.email, c.phone), ''),"
		"         GREATEST(%s, CASE WHEN a.id IS NOT NULL"
		"             THEN 0.9::pg_catalog.float8 OPERATOR(pg_catalog.*) %s END)"
		"    FROM crm.contact AS c"
		"    LEFT JOIN crm.account AS a ON a.id OPERATOR(pg_catalog.=) c.account_id"
		"   WHERE c.id OPERATOR(pg_catalog.=) ANY ($8)"
		"  UNION ALL"
		"  SELECT 'lead', l.id, l.name,"
		"         NULLIF(pg_catalog.concat_ws(', ', l.company, l.email, l.phone), ''),"
		"         %s"
		"    FROM crm.lead AS l WHERE l.id OPERATOR(pg_catalog.=) ANY ($9)"
		"  UNION ALL"
		"  SELECT 'note', n.id, pg_catalog.left(pg_catalog.split_part(n.body, E'\\n', 1), 80),"
		"         CASE WHEN n.lead_id IS NOT NULL THEN 'lead ' OPERATOR(pg_catalog.||) n.lead_id"
		"              WHEN n.account_id IS NOT NULL THEN 'account ' OPERATOR(pg_catalog.||) n.account_id"
		"              WHEN n.contact_id IS NOT NULL THEN 'contact ' OPERATOR(pg_catalog.||) n.contact_id"
		"              WHEN n.opportunity_id IS NOT NULL THEN 'opportunity ' OPERATOR(pg_catalog.||) n.opportunity_id"
		"              WHEN n.quote_id IS NOT NULL THEN 'quote ' OPERATOR(pg_catalog.||) n.quote_id"
		"              ELSE 'sales_order ' OPERATOR(pg_catalog.||) n.sales_order_id END,"
		"         %s"
		"    FROM crm.note AS n WHERE n.id OPERATOR(pg_catalog.=) ANY ($10)"
		"  UNION ALL"
		"  SELECT 'opportunity', o.id, o.name, a.name,"
		"         GREATEST(%s, CASE WHEN a.id IS NOT NULL"
		"             THEN 0.9::pg_catalog.float8 OPERATOR(pg_catalog.*) %s END)"
		"    FROM crm.opportunity AS o"
		"    LEFT JOIN crm.account AS a ON a.id OPERATOR(pg_catalog.=) o.account_id"
		"   WHERE o.id OPERATOR(pg_catalog.=) ANY ($11)) AS r"
		" WHERE r.score OPERATOR(pg_catalog.>) 0"
		" ORDER BY r.score DESC, r.kind COLLATE pg_catalog.\"C\", r.id LIMIT $12",
		acc_score, score_sql(trgm, "c"), acc_score, score_sql(trgm, "l"),
		named_score_sql(trgm, "n", "body"), score_sql(trgm, "o"), acc_score);
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

/* is_word_char -- is the character at p a letter or digit (any non-ASCII character is)? */
static bool
is_word_char(const unsigned char *p)
{
	return *p >= 0x80 || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		(*p >= 'A' && *p <= 'Z');
}

/* search_chars -- how many letters and digits */
static int
search_chars(const char *s)
{
	int			n = 0;

	for (const unsigned char *p = (const unsigned char *) s; *p; p += pg_mblen((const char *) p))
		if (is_word_char(p))
			n++;
	return n;
}

/*
 * typo_anchor -- the first SEARCH_TYPO_ANCHOR letters of the first word of
 * the (folded) query that has so many letters or digits, which a row must
 * contain to match as a typo: "acm" for "acme corporaton", "smi" for
 * "al smithe"; NULL when no word is so long.  (One trigram the index scan
 * intersects the similar rows with: few rows have it.)
 */
static char *
typo_anchor(const char *query)
{
	const char *word = NULL;
	int			nchars = 0;

	for (const char *p = query; *p; p += pg_mblen(p))
	{
		if (!is_word_char((const unsigned char *) p))
		{
			nchars = 0;
			continue;
		}
		if (nchars++ == 0)
			word = p;
		if (nchars == SEARCH_TYPO_ANCHOR)
			return pnstrdup(word, p + pg_mblen(p) - word);
	}
	return NULL;
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
				 errhint("Pass NULL to search every kind: account, contact, lead, note, opportunity.")));
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
					 errhint("The kinds are account, contact, lead, note and opportunity.")));
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

/* qsort orders: by row, its best key first; by key */
static int
key_row_cmp(const void *a, const void *b)
{
	const SearchKey *x = a;
	const SearchKey *y = b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->score > y->score ? -1 : (x->score < y->score ? 1 : 0);
}

static int
key_order_cmp(const void *a, const void *b)
{
	const SearchKey *x = a;
	const SearchKey *y = b;

	if (x->kind == y->kind && x->id == y->id)
		return 0;
	return key_not_after(*x, *y) ? -1 : 1;
}

/*
 * merge_keys -- the candidates of a and b, each row once with its best
 * bound (as step 1's GROUP BY takes the greatest), in key order
 */
static SearchKey *
merge_keys(const SearchKey *a, uint64 na, const SearchKey *b, uint64 nb, uint64 *n)
{
	SearchKey  *all = palloc(sizeof(SearchKey) * Max(na + nb, 1));
	uint64		kept = 0;

	memcpy(all, a, sizeof(SearchKey) * na);
	memcpy(all + na, b, sizeof(SearchKey) * nb);
	qsort(all, na + nb, sizeof(SearchKey), key_row_cmp);
	for (uint64 i = 0; i < na + nb; i++)
		if (kept == 0 || all[kept - 1].kind != all[i].kind || all[kept - 1].id != all[i].id)
			all[kept++] = all[i];
	qsort(all, kept, sizeof(SearchKey), key_order_cmp);
	*n = kept;
	return all;
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
		values[6 + k] = makeArrayResult(found[k], CurrentMemoryContext);
		nulls[6 + k] = ' ';
	}
	crm_query_run(&caller_rows, values, nulls, 0);
	if (last || n == 0)
		return false;
	return !(SPI_processed == (uint64) max_results &&
			 key_not_after(result_key(max_results - 1, 5), candidates[n - 1]));
}

/*
 * step1 -- run a statement of step 1 for at most limit candidates (0: all),
 * merged with the known candidates (all those of another statement of step
 * 1, or none).  Sets *complete when these are all the candidates; when not,
 * returns only those up to the last one the statement returned (a known
 * one after it could sort after one not read yet).
 */
static SearchKey *
step1(CrmQuery *statement, Datum kinds, Datum *values, char *nulls, int64 limit,
	  const SearchKey *known, uint64 nknown, uint64 *n, bool *complete)
{
	SearchKey  *read;
	uint64		nread;
	SearchKey  *all;

	values[6] = kinds;
	nulls[6] = ' ';
	crm_param_int64(values, nulls, 7, limit, limit == 0);
	crm_query_run_as_owner(statement, values, nulls, 0);
	nread = SPI_processed;
	read = candidate_keys();
	*complete = limit == 0 || nread < (uint64) limit;
	if (nknown == 0)
	{
		*n = nread;
		return read;
	}
	all = merge_keys(known, nknown, read, nread, n);
	if (!*complete)
		while (*n > 0 && !key_not_after(all[*n - 1], read[nread - 1]))
			(*n)--;
	return all;
}

/*
 * search_candidates -- steps 1 and 2 with one statement of step 1 (and the
 * known candidates, see step1): the caller's best max_results rows among
 * the candidates are then the last SPI result.  Returns whether they are
 * max_results rows; *all and *nall are the candidates when they were all
 * read, else NULL.
 *
 * Step 1 reads its candidates once, up to SEARCH_FIRST_READ of them (its
 * cost is the index scan and the recheck of every matching row, whatever
 * the limit; returning a few hundred rows more costs next to nothing), and
 * only when that is not enough, all of them.  Step 2 reads them in batches:
 * SEARCH_FIRST_ROUND first, then four times as many, or more when the
 * caller saw few of them (as many as would hold max_results at the rate
 * seen, twice over): a caller who sees most rows reads few of them by id,
 * one who sees few reads more, without step 1 being run again.  (Hidden
 * rows change the sizes of the batches, never the answer.)
 */
static bool
search_candidates(CrmQuery *statement, Datum kinds, Datum *values, char *nulls, int32 max_results,
				  const SearchKey *known, uint64 nknown, SearchKey **all, uint64 *nall)
{
	SearchKey  *candidates;
	uint64		ncandidates;
	bool		complete;

	candidates = step1(statement, kinds, values, nulls, SEARCH_FIRST_READ(max_results),
					   known, nknown, &ncandidates, &complete);
	for (uint64 batch = SEARCH_FIRST_ROUND(max_results);;)
	{
		uint64		n = Min(batch, ncandidates);

		if (!caller_batch(candidates, n, values, nulls, max_results,
						  complete && n >= ncandidates))
			break;
		if (n >= ncandidates && !complete)
			candidates = step1(statement, kinds, values, nulls, 0,
							   known, nknown, &ncandidates, &complete);
		batch = Max(batch * 4, batch * 2 * (uint64) max_results / Max(SPI_processed, 1));
	}
	*all = complete ? candidates : NULL;
	*nall = complete ? ncandidates : 0;
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
	char	   *anchor;
	Datum		values[SEARCH_MAX_RESULTS_PARAM + 1];
	char		nulls[SEARCH_MAX_RESULTS_PARAM + 1];
	bool		isnull;
	SearchKey  *exact;
	uint64		nexact;

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
	/* a phone number has no typos: its digits are searched as typed */
	anchor = digits ? NULL : typo_anchor(query);
	memset(nulls, ' ', sizeof(nulls));
	crm_param_text(values, nulls, 0, query);
	crm_param_text(values, nulls, 1, psprintf("%%%s%%", escaped));
	crm_param_text(values, nulls, 2, digits ? psprintf("%%%s%%", digits) : NULL);
	crm_param_text(values, nulls, 3, psprintf("%s%%", escaped));
	crm_param_text(values, nulls, 4, psprintf("%% %s%%", escaped));
	crm_param_text(values, nulls, 5, anchor ? psprintf("%%%s%%", like_escaped(anchor)) : NULL);
	values[SEARCH_MAX_RESULTS_PARAM] = Int32GetDatum(max_results);

	InitMaterializedSRF(fcinfo, 0);
	crm_spi_connect();
	build_queries();

	/*
	 * Rows that contain the query score above every typo: when max_results
	 * of them (scoring above SEARCH_TYPO_MAX) are found, typos need no
	 * search, nor when the query has no anchor (no row can match as a typo).
	 */
	if ((!search_candidates(&exact_candidates, kinds, values, nulls, max_results, NULL, 0,
							&exact, &nexact) ||
		 DatumGetFloat8(crm_result_datum(max_results - 1, 5, &isnull)) <= SEARCH_TYPO_MAX) &&
		anchor != NULL)
	{
		/*
		 * When all rows that contain the query were read (the usual case),
		 * only the similar ones are searched and merged with them; else
		 * both at once.
		 */
		if (exact != NULL)
			search_candidates(&similar_candidates, kinds, values, nulls, max_results,
							  exact, nexact, &exact, &nexact);
		else
			search_candidates(&typo_candidates, kinds, values, nulls, max_results, NULL, 0,
							  &exact, &nexact);
	}

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
 * search_document -- the folded fields that are not NULL, joined by spaces,
 * then the digits of the phone number (all of them, so that any fragment of
 * the number is found)
 */
static text *
search_document(char *const *fields, int nfields, const char *phone)
{
	StringInfoData plain;
	StringInfoData out;
	bool		first = true;

	initStringInfo(&plain);
	for (int i = 0; i < nfields; i++)
		if (fields[i] != NULL)
			appendStringInfo(&plain, "%s%s", plain.len > 0 ? " " : "", fields[i]);
	initStringInfo(&out);
	appendStringInfoString(&out, crm_fold(plain.data));
	for (const char *p = phone; p != NULL && *p; p++)
	{
		if (*p < '0' || *p > '9')
			continue;
		if (first && out.len > 0)
			appendStringInfoChar(&out, ' ');
		first = false;
		appendStringInfoChar(&out, *p);
	}
	return cstring_to_text_with_len(out.data, out.len);
}

/* crm_search_document -- SQL crm.search_document(fields, phone) */
PG_FUNCTION_INFO_V1(crm_search_document);
Datum
crm_search_document(PG_FUNCTION_ARGS)
{
	char	  **fields = NULL;
	int			nfields = 0;

	if (!PG_ARGISNULL(0))
	{
		Datum	   *elems;
		bool	   *elemnulls;

		deconstruct_array(PG_GETARG_ARRAYTYPE_P(0), TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &elemnulls, &nfields);
		fields = palloc(sizeof(char *) * Max(nfields, 1));
		for (int i = 0; i < nfields; i++)
			fields[i] = elemnulls[i] ? NULL : TextDatumGetCString(elems[i]);
	}
	PG_RETURN_TEXT_P(search_document(fields, nfields,
									 PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1))));
}

/*
 * crm_search_text_fill -- the trigger function crm_internal.search_text_fill()
 * that kept search_text before it became a generated column.  The update
 * script crm--0.6--0.7.sql creates it in an earlier step and drops it (and
 * makes search_text a generated column, computed for every row) in a later
 * one; in between it lets rows through unchanged, since their text is
 * computed anew then.  No installed version fires it.
 */
PG_FUNCTION_INFO_V1(crm_search_text_fill);
Datum
crm_search_text_fill(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "search_text_fill", true, true);

	return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple
						   : trigdata->tg_trigtuple);
}
