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
#include "fmgr.h"
#include "lib/stringinfo.h"
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
	plain = DatumGetTextPP(FunctionCall2Coll(&unaccent_flinfo, InvalidOid,
											 ObjectIdGetDatum(unaccent_dict),
											 PointerGetDatum(cstring_to_text(s))));
	lower = str_tolower(VARDATA_ANY(plain), VARSIZE_ANY_EXHDR(plain), DEFAULT_COLLATION_OID);
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
