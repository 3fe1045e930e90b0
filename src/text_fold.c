/*
 * text_fold.c: text folded for matching and search, and the contrib
 * extensions it relies on.
 *
 * crm.fold_text(text): the text without accents (the unaccent dictionary of
 * the unaccent extension), in lower case, runs of white space made one space
 * and the ends trimmed.  "  Müller   GmbH" and "muller gmbh" fold alike.
 * Duplicate search compares folded names and search compares a folded query
 * with folded columns; both are backed by trigram indexes on the folded
 * text.  The function is declared IMMUTABLE so that it can back those
 * indexes and the generated column search_text (92_search.sql): it depends
 * on no setting (no search_path: unaccent is found in its extension's
 * schema) and on no right of the caller (no schema or function privilege is
 * checked: it runs alike for any role, in COPY, pg_restore or logical
 * replication's apply).  After an edit of unaccent's rules file, REINDEX
 * those indexes and rewrite the searched columns (README "Search").
 *
 * Text of ASCII characters only (most names, e-mail addresses, web sites)
 * is lower-cased without calling unaccent or the collation's lower-casing
 * when neither changes ASCII characters otherwise, as checked once per
 * backend (plain_lower): no rule of the dictionary starts with an ASCII
 * character, and the collation lower-cases A-Z to a-z and nothing else.
 * The result is the same; the calls cost more than the rest of a write of
 * a lead's searched text.
 *
 * crm requires pg_trgm and unaccent (crm.control), which may live in any
 * schema.  crm_required_schema() finds the schema of one of them from the
 * catalog, so that the extension's code can name their functions and
 * operators with a schema rather than rely on search_path.
 */
#include "crm.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_ts_dict.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "common/string.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "tsearch/ts_cache.h"
#include "tsearch/ts_public.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/formatting.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

/*
 * required_namespace -- the schema an installed extension lives in, or an
 * error naming the extension when it is not installed.
 */
static Oid
required_namespace(const char *extname)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			nspid = InvalidOid;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum(extname));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
		nspid = ((Form_pg_extension) GETSTRUCT(tuple))->extnamespace;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (!OidIsValid(nspid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"%s\" is not installed", extname),
				 errdetail("The crm extension needs the contrib extensions pg_trgm and unaccent."),
				 errhint("Run CREATE EXTENSION %s (in any schema).", extname)));
	return nspid;
}

/* crm_required_schema -- the name of required_namespace(extname) */
char *
crm_required_schema(const char *extname)
{
	return get_namespace_name(required_namespace(extname));
}

/* unaccent(regdictionary, text) and its dictionary, looked up once per backend */
static Oid	unaccent_proc = InvalidOid;
static Oid	unaccent_dict = InvalidOid;
static FmgrInfo unaccent_flinfo;

/* may text of ASCII characters only be folded by plain_fold? 0: not known yet */
static int	ascii_plain = 0;

static void
find_unaccent(void)
{
	Oid			argtypes[2] = {REGDICTIONARYOID, TEXTOID};
	Oid			nspid;

	/* still there? (unaccent was not dropped and made again) */
	if (OidIsValid(unaccent_proc) &&
		SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(unaccent_proc)) &&
		SearchSysCacheExists1(TSDICTOID, ObjectIdGetDatum(unaccent_dict)))
		return;

	/*
	 * By the catalog, not by name lookup: LookupFuncName() and
	 * get_ts_dict_oid() would check the caller's USAGE on unaccent's schema,
	 * and the fold must not depend on who writes the row.
	 */
	nspid = required_namespace("unaccent");
	unaccent_proc = GetSysCacheOid3(PROCNAMEARGSNSP, Anum_pg_proc_oid,
									CStringGetDatum("unaccent"),
									PointerGetDatum(buildoidvector(argtypes, 2)),
									ObjectIdGetDatum(nspid));
	unaccent_dict = GetSysCacheOid2(TSDICTNAMENSP, Anum_pg_ts_dict_oid,
									CStringGetDatum("unaccent"), ObjectIdGetDatum(nspid));
	if (!OidIsValid(unaccent_proc) || !OidIsValid(unaccent_dict))
	{
		unaccent_proc = InvalidOid;
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the unaccent extension has no function unaccent(regdictionary, text) or no dictionary unaccent in schema \"%s\"",
						get_namespace_name(nspid)),
				 errhint("Run ALTER EXTENSION unaccent UPDATE, or drop and create it again.")));
	}
	fmgr_info_cxt(unaccent_proc, &unaccent_flinfo, TopMemoryContext);
	ascii_plain = 0;
}

/*
 * blank_length -- the length in bytes of the blank that p (UTF-8) starts
 * with: an ASCII space character or one of Unicode's space characters; 0
 * when it starts with anything else.
 */
static int
blank_length(const char *p)
{
	const unsigned char *u = (const unsigned char *) p;
	pg_wchar	c;
	int			len;

	if (!IS_HIGHBIT_SET(*p))
		return *p != '\0' && strchr(" \t\n\r\f\v", *p) != NULL ? 1 : 0;
	len = pg_utf_mblen(u);
	if (strnlen(p, len) < (size_t) len || !pg_utf8_islegal(u, len))
		return 0;
	c = utf8_to_unicode(u);
	if (c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
		c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000 ||
		c == 0xFEFF)
		return len;
	return 0;
}

/*
 * rules_leave_ascii -- does no rule of the unaccent dictionary start with an
 * ASCII character?  Then unaccent() returns text of ASCII characters as it
 * is: it replaces the longest rule source found at each position, and no
 * source starts there.  The rules are read as the dictionary reads them
 * (the file named by its RULES option, lines of a source and a target,
 * blanks first skipped), just after the dictionary has been loaded into
 * this backend, so from the same file.  The file is UTF-8 (the dictionary
 * converts it to the database's encoding, which keeps ASCII as it is).
 * Every character Unicode calls a space is skipped as a blank, whatever the
 * locale says: a line whose source starts with one then reads as starting
 * with what follows, which can only turn the shortcut off.  (Without
 * tsearch/ts_locale.h, whose pg_locale.h needs the ICU headers.)
 */
static bool
rules_leave_ascii(void)
{
	HeapTuple	tuple;
	bool		isnull;
	Datum		options;
	char	   *rules = NULL;
	ListCell   *lc;
	FILE	   *file;
	StringInfoData line;
	bool		leave = true;

	(void) lookup_ts_dictionary_cache(unaccent_dict);
	tuple = SearchSysCache1(TSDICTOID, ObjectIdGetDatum(unaccent_dict));
	if (!HeapTupleIsValid(tuple))
		return false;
	options = SysCacheGetAttr(TSDICTOID, tuple, Anum_pg_ts_dict_dictinitoption, &isnull);
	if (!isnull)
		foreach(lc, deserialize_deflist(options))
		{
			DefElem    *opt = (DefElem *) lfirst(lc);

			if (strcmp(opt->defname, "rules") == 0)
				rules = defGetString(opt);
		}
	ReleaseSysCache(tuple);
	if (rules == NULL ||
		(file = AllocateFile(get_tsearch_config_filename(rules, "rules"), "r")) == NULL)
		return false;
	initStringInfo(&line);
	while (leave && pg_get_line_buf(file, &line))
	{
		const char *p = line.data;
		int			blank;

		while ((blank = blank_length(p)) > 0)
			p += blank;
		leave = *p == '\0' || IS_HIGHBIT_SET(*p);
	}
	FreeFile(file);
	pfree(line.data);
	return leave;
}

/*
 * lower_leaves_ascii -- does the database's default collation lower-case
 * each ASCII character as pg_ascii_tolower() does?  (Not in a Turkish
 * locale, where I becomes dotless i.)  Lower-casing maps characters one by
 * one, so text of ASCII characters then folds to the same.
 */
static bool
lower_leaves_ascii(void)
{
	char		all[128];
	char	   *lower;

	for (int c = 1; c < 128; c++)
		all[c - 1] = (char) c;
	all[127] = '\0';
	lower = str_tolower(all, 127, DEFAULT_COLLATION_OID);
	if (strlen(lower) != 127)
		return false;
	for (int c = 1; c < 128; c++)
		if (lower[c - 1] != pg_ascii_tolower((unsigned char) c))
			return false;
	return true;
}

/*
 * plain_lower -- text of ASCII characters only in lower case by
 * pg_ascii_tolower(), when unaccent and the collation leave ASCII as it is
 * (checked once per backend, again after unaccent was looked up anew): the
 * same as unaccent() and str_tolower(), without calling either.  NULL
 * otherwise.
 */
static char *
plain_lower(const char *s)
{
	char	   *lower;

	for (const char *p = s; *p; p++)
		if (IS_HIGHBIT_SET(*p))
			return NULL;
	if (ascii_plain == 0)
		ascii_plain = rules_leave_ascii() && lower_leaves_ascii() ? 1 : -1;
	if (ascii_plain < 0)
		return NULL;
	lower = pstrdup(s);
	for (char *p = lower; *p; p++)
		*p = pg_ascii_tolower((unsigned char) *p);
	return lower;
}

/* crm_fold -- folded copy of a string (see the file header) */
char *
crm_fold(const char *s)
{
	text	   *plain;
	char	   *lower;
	StringInfoData out;
	bool		space = false;

	find_unaccent();
	if ((lower = plain_lower(s)) == NULL)
	{
		plain = DatumGetTextPP(FunctionCall2Coll(&unaccent_flinfo, InvalidOid,
												 ObjectIdGetDatum(unaccent_dict),
												 PointerGetDatum(cstring_to_text(s))));
		lower = str_tolower(VARDATA_ANY(plain), VARSIZE_ANY_EXHDR(plain), DEFAULT_COLLATION_OID);
	}
	initStringInfo(&out);
	for (const char *p = lower; *p; p++)
	{
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v')
		{
			space = out.len > 0;
			continue;
		}
		if (space)
			appendStringInfoChar(&out, ' ');
		space = false;
		appendStringInfoChar(&out, *p);
	}
	return out.data;
}

/* crm_fold_text -- SQL crm.fold_text(text) */
PG_FUNCTION_INFO_V1(crm_fold_text);
Datum
crm_fold_text(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(crm_fold(text_to_cstring(PG_GETARG_TEXT_PP(0)))));
}
