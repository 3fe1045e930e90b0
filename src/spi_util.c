/*
 * spi_util.c: prepared SPI statements, kept for the life of the backend, and
 * running them with the rights of a chosen role.
 *
 * Every statement the extension runs is a CrmQuery: fixed SQL text with $n
 * parameters and every name schema-qualified.  Its plan is prepared on first
 * use and kept with SPI_keepplan; the plan cache revalidates it when the
 * tables behind it change (for instance after DROP and CREATE EXTENSION).
 *
 * Two identities matter: the caller, whose rights (privileges and row-level
 * security) decide what crm.convert_lead() may touch, and the owner of schema
 * crm, who writes history and searches for duplicates across all rows.
 */
#include "crm.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

/* the argument types of a statement, the crm domains among them looked up */
static Oid *
query_argtypes(CrmQuery *query)
{
	static const struct
	{
		Oid			marker;
		const char *name;
	}			domains[] = {
		{CRM_TYPE_EMAIL_ADDRESS, "email_address"},
		{CRM_TYPE_WEB_URL, "web_url"},
		{CRM_TYPE_PHONE_NUMBER, "phone_number"},
	};
	Oid		   *types = palloc(sizeof(Oid) * Max(query->nargs, 1));

	for (int i = 0; i < query->nargs; i++)
	{
		types[i] = query->argtypes[i];
		for (int d = 0; d < (int) lengthof(domains); d++)
		{
			if (types[i] != domains[d].marker)
				continue;
			types[i] = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
									   CStringGetDatum(domains[d].name),
									   ObjectIdGetDatum(get_namespace_oid("crm", false)));
			if (!OidIsValid(types[i]))
				elog(ERROR, "crm: type crm.%s does not exist", domains[d].name);
			break;
		}
	}
	return types;
}

/* crm_spi_connect, crm_spi_finish -- SPI_connect and SPI_finish, checked */
void
crm_spi_connect(void)
{
	int			ret = SPI_connect();

	if (ret != SPI_OK_CONNECT)
		elog(ERROR, "crm: SPI_connect failed: %s", SPI_result_code_string(ret));
}

void
crm_spi_finish(void)
{
	int			ret = SPI_finish();

	if (ret != SPI_OK_FINISH)
		elog(ERROR, "crm: SPI_finish failed: %s", SPI_result_code_string(ret));
}

/*
 * crm_param_text, crm_param_int64 -- set parameter i of a statement: SPI
 * takes the values and a null map of 'n' (null) and ' ' (not null)
 */
void
crm_param_text(Datum *values, char *nulls, int i, const char *s)
{
	values[i] = s ? CStringGetTextDatum(s) : (Datum) 0;
	nulls[i] = s ? ' ' : 'n';
}

void
crm_param_int64(Datum *values, char *nulls, int i, int64 v, bool isnull)
{
	values[i] = isnull ? (Datum) 0 : Int64GetDatum(v);
	nulls[i] = isnull ? 'n' : ' ';
}

/*
 * The statements with a planning preference (CURSOR_OPT_GENERIC_PLAN or
 * CURSOR_OPT_CUSTOM_PLAN): see crm_query_prefer_generic and
 * crm_query_prefer_custom.  Each is a static CrmQuery of the C files
 * (the duplicate check alone keeps one per record kind and event: about 30
 * in all), so the table has a fixed size with room to spare.
 */
#define MAX_PREFERENCES 128
static CrmQuery *preferring_queries[MAX_PREFERENCES];
static int	preferred_options[MAX_PREFERENCES];
static int	n_preferences = 0;

/* plan_options -- the cursor options a statement is prepared with */
static int
plan_options(const CrmQuery *query)
{
	for (int i = 0; i < n_preferences; i++)
		if (preferring_queries[i] == query)
			return preferred_options[i];
	return 0;
}

static void
prefer(CrmQuery *query, int options)
{
	for (int i = 0; i < n_preferences; i++)
		if (preferring_queries[i] == query)
		{
			preferred_options[i] = options;
			return;
		}
	if (n_preferences >= MAX_PREFERENCES)
		elog(ERROR, "crm: too many statements with a planning preference");
	preferring_queries[n_preferences] = query;
	preferred_options[n_preferences++] = options;
}

/*
 * crm_query_prefer_generic -- plan query once for every execution.  The
 * plan cache otherwise plans a statement with parameters again for each
 * execution while a custom plan looks cheaper than the generic one, which
 * for a large statement whose parameters only switch parts of it on and
 * off costs more than running it.  Call before its first use.
 */
void
crm_query_prefer_generic(CrmQuery *query)
{
	prefer(query, CURSOR_OPT_GENERIC_PLAN);
}

/*
 * crm_query_prefer_custom -- plan query for each execution with its
 * parameters' values: for a large read whose best plan depends on them
 * (how many rows a moment selects, how long an array is), where a generic
 * plan's default estimates would sort what a hash should group.  Call
 * before its first use.
 */
void
crm_query_prefer_custom(CrmQuery *query)
{
	prefer(query, CURSOR_OPT_CUSTOM_PLAN);
}

/*
 * crm_internal_namespace -- the schema of the extension's internal objects:
 * crm_internal, or crm in a database not yet updated to 0.7 (ALTER
 * EXTENSION crm UPDATE moves them), which keeps working with this library.
 */
Oid
crm_internal_namespace(void)
{
	Oid			nspid = get_namespace_oid("crm_internal", true);

	return OidIsValid(nspid) ? nspid : get_namespace_oid("crm", false);
}

/* crm_internal_relation_oid -- OID of table crm_internal.<relname> */
Oid
crm_internal_relation_oid(const char *relname)
{
	Oid			relid = get_relname_relid(relname, crm_internal_namespace());

	if (!OidIsValid(relid))
		elog(ERROR, "crm: relation crm_internal.%s is missing", relname);
	return relid;
}

/*
 * The text a statement is prepared from: its own, or, before the update to
 * 0.7 made schema crm_internal, with crm_internal. read as crm.
 */
static char *
query_text(CrmQuery *query)
{
	static const char internal_prefix[] = "crm_internal.";
	StringInfoData text;
	const char *p = query->sql;
	const char *hit;

	if (strstr(p, internal_prefix) == NULL || OidIsValid(get_namespace_oid("crm_internal", true)))
		return pstrdup(p);
	initStringInfo(&text);
	while ((hit = strstr(p, internal_prefix)) != NULL)
	{
		appendBinaryStringInfo(&text, p, hit - p);
		appendStringInfoString(&text, "crm.");
		p = hit + strlen(internal_prefix);
	}
	appendStringInfoString(&text, p);
	return text.data;
}

/* crm_query_plan -- the kept plan of a statement, prepared on first use */
SPIPlanPtr
crm_query_plan(CrmQuery *query)
{
	if (query->plan == NULL || !SPI_plan_is_valid(query->plan))
	{
		SPIPlanPtr	plan;
		Oid		   *argtypes;
		char	   *sql;

		if (query->plan != NULL)
		{
			SPI_freeplan(query->plan);
			query->plan = NULL;
		}
		sql = query_text(query);
		argtypes = query_argtypes(query);
		plan = SPI_prepare_cursor(sql, query->nargs, argtypes,
								  plan_options(query));
		pfree(argtypes);
		pfree(sql);
		if (plan == NULL)
			elog(ERROR, "crm: SPI_prepare failed for \"%s\": %s",
				 query->sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "crm: SPI_keepplan failed");
		query->plan = plan;
	}
	return query->plan;
}

/*
 * crm_query_run -- execute a statement as the current user.
 *
 * Always in SPI's read-write mode, also for SELECTs: that makes SPI bump the
 * command counter and, in READ COMMITTED, take a fresh snapshot for each
 * statement, so a search sees what earlier calls in the same statement
 * inserted and what other sessions committed while we waited for a lock.
 * (Read-only mode would reuse the calling statement's snapshot.)
 *
 * count limits the rows returned; pass 0 for every INSERT, UPDATE or DELETE,
 * also with RETURNING: a limit stops the executor early, and the statement's
 * AFTER STATEMENT triggers then miss rows of their transition tables.
 */
int
crm_query_run(CrmQuery *query, Datum *values, const char *nulls, long count)
{
	int			ret;

	ret = SPI_execute_plan(crm_query_plan(query), values, nulls, false, count);
	if (ret < 0)
		elog(ERROR, "crm: SPI_execute_plan failed for \"%s\": %s",
			 query->sql, SPI_result_code_string(ret));
	return ret;
}

/*
 * crm_query_run_as -- execute a statement with the rights of another role.
 *
 * Privileges and row-level security are checked for that role, as when it
 * runs the statement itself.  The user id is restored on return; on error,
 * (sub)transaction abort restores it, as for the RI triggers in core.
 * SECURITY_LOCAL_USERID_CHANGE forbids SET ROLE inside the statement.
 */
/*
 * The role on whose behalf the extension is acting: while a statement runs as
 * the extension owner (line sums, stock moves, ...), the triggers it fires
 * record this role, not the owner, as the one who made the change.
 */
static Oid	acting_role = InvalidOid;

/* crm_acting_role -- the role to record as having made a change */
Oid
crm_acting_role(void)
{
	return OidIsValid(acting_role) ? acting_role : GetUserId();
}

/* the search_path of statements run as the extension owner */
#define SAFE_SEARCH_PATH "pg_catalog, pg_temp"

/* how many statements run as the extension owner are on the stack */
static int	owner_depth = 0;

/*
 * run_as_snapshot -- run query as role (with sec_flags added); under
 * snapshot unless it is InvalidSnapshot, read-only or not.
 *
 * A statement run as the extension owner (sec_flags with
 * SECURITY_NOFORCE_RLS) is run the way core runs maintenance commands as a
 * table's owner: as a security-restricted operation, in a new GUC nest level
 * with search_path "pg_catalog, pg_temp".  A trigger, CHECK constraint or
 * index expression that a DBA put on a table the owner writes runs inside
 * it: it cannot SET ROLE, create temporary objects or leave settings
 * changed behind, and finds no object through a search_path a user set.
 * The nest level is undone when the statement returns, and by the
 * (sub)transaction abort when it fails.  Statements nested inside one keep
 * its settings, and where search_path already is that (inside the
 * extension's functions, which pin it) it is not set again: setting and
 * restoring it costs about 44,000 instructions, 6% of a single-row update
 * of an opportunity, whose history row is such a statement.
 */
static int
run_as_snapshot(Oid role, int sec_flags, Snapshot snapshot, bool read_only,
				CrmQuery *query, Datum *values, const char *nulls, long count)
{
	Oid			save_userid;
	int			save_sec_context;
	Oid			save_acting = acting_role;
	int			save_owner_depth = owner_depth;
	bool		restrict_guc = (sec_flags & SECURITY_NOFORCE_RLS) != 0 && owner_depth == 0 &&
		strcmp(GetConfigOption("search_path", false, false), SAFE_SEARCH_PATH) != 0;
	volatile int save_nestlevel = 0;
	volatile int ret = 0;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	if (restrict_guc)
	{
		save_nestlevel = NewGUCNestLevel();
		(void) set_config_option("search_path", SAFE_SEARCH_PATH,
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
								 true, 0, false);
	}
	/* from here on, PG_FINALLY restores what changes */
	if (!OidIsValid(acting_role))
		acting_role = save_userid;
	if ((sec_flags & SECURITY_NOFORCE_RLS) != 0)
	{
		sec_flags |= SECURITY_RESTRICTED_OPERATION;
		owner_depth++;
	}
	SetUserIdAndSecContext(role, save_sec_context | sec_flags);
	PG_TRY();
	{
		if (snapshot == InvalidSnapshot)
			ret = crm_query_run(query, values, nulls, count);
		else
		{
			ret = SPI_execute_snapshot(crm_query_plan(query), values, nulls,
									   snapshot, InvalidSnapshot, read_only, !read_only, count);
			if (ret < 0)
				elog(ERROR, "crm: SPI_execute_snapshot failed for \"%s\": %s",
					 query->sql, SPI_result_code_string(ret));
		}
	}
	PG_FINALLY();
	{
		acting_role = save_acting;
		owner_depth = save_owner_depth;
	}
	PG_END_TRY();
	SetUserIdAndSecContext(save_userid, save_sec_context);
	if (restrict_guc)
		AtEOXact_GUC(false, save_nestlevel);
	return ret;
}

static int
run_as(Oid role, int sec_flags, Snapshot snapshot, CrmQuery *query,
	   Datum *values, const char *nulls, long count)
{
	return run_as_snapshot(role, sec_flags, snapshot, true, query, values, nulls, count);
}

int
crm_query_run_as(Oid role, CrmQuery *query, Datum *values, const char *nulls,
				 long count)
{
	return run_as(role, SECURITY_LOCAL_USERID_CHANGE, InvalidSnapshot,
				  query, values, nulls, count);
}

/*
 * crm_query_run_as_owner -- execute a statement as the owner of schema crm,
 * seeing every row: SECURITY_NOFORCE_RLS keeps FORCE ROW LEVEL SECURITY from
 * applying to the owner here, as core does for foreign-key checks.
 */
int
crm_query_run_as_owner(CrmQuery *query, Datum *values, const char *nulls,
					   long count)
{
	return run_as(crm_schema_owner(),
				  SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS,
				  InvalidSnapshot, query, values, nulls, count);
}

/*
 * crm_query_run_as_table_owner -- like crm_query_run_as_owner, but as role,
 * the owner of the table the statement writes: what core does for the
 * cascaded actions of a foreign key.  A merge re-points the rows of a DBA's
 * own table this way, so the triggers, CHECK constraints and index
 * expressions the table's owner put on it run with that owner's rights,
 * never with the extension owner's (for the extension's own tables the two
 * are the same role).
 */
int
crm_query_run_as_table_owner(Oid role, CrmQuery *query, Datum *values,
							 const char *nulls, long count)
{
	return run_as(role, SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS,
				  InvalidSnapshot, query, values, nulls, count);
}

/*
 * crm_query_run_latest_as_owner -- like crm_query_run_as_owner, but under a
 * snapshot taken now, also in REPEATABLE READ or SERIALIZABLE: a statement
 * that must reach every committed row (emptying the aggregates on TRUNCATE,
 * which removes every row whatever the snapshot).  AFTER triggers fire.
 */
int
crm_query_run_latest_as_owner(CrmQuery *query, Datum *values, const char *nulls,
							  long count)
{
	return run_as_snapshot(crm_schema_owner(),
						   SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS,
						   GetLatestSnapshot(), false, query, values, nulls, count);
}

/*
 * crm_query_read_as_owner -- like crm_query_run_as_owner, but read-only and
 * under the calling statement's snapshot (a STABLE function's reader: it
 * sees what the statement that called it sees).
 */
int
crm_query_read_as_owner(CrmQuery *query, Datum *values, const char *nulls, long count)
{
	return run_as_snapshot(crm_schema_owner(),
						   SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS,
						   GetActiveSnapshot(), true, query, values, nulls, count);
}

/*
 * crm_query_run_fresh -- in REPEATABLE READ or SERIALIZABLE, run a read-only
 * statement again, as the owner of schema crm, under a fresh snapshot, and
 * return true; in READ COMMITTED, where every statement already sees the
 * latest commits, do nothing and return false.  A check that passed under
 * the transaction snapshot uses it to learn whether rows committed since
 * then would make it fail: the transaction then ends with a serialization
 * failure rather than commit what the rule forbids (a lock the other writer
 * took on a shared parent row does not raise one by itself).
 */
bool
crm_query_run_fresh(CrmQuery *query, Datum *values, const char *nulls, long count)
{
	if (!IsolationUsesXactSnapshot())
		return false;
	run_as(crm_schema_owner(),
		   SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS,
		   GetLatestSnapshot(), query, values, nulls, count);
	return true;
}

/*
 * crm_query_finds_newer_rows_as -- crm_query_finds_newer_rows with the
 * rights of a role: for a search that sees only what that role may see
 */
bool
crm_query_finds_newer_rows_as(Oid role, CrmQuery *query, Datum *values, const char *nulls)
{
	if (!IsolationUsesXactSnapshot())
		return false;
	run_as(role, SECURITY_LOCAL_USERID_CHANGE, GetLatestSnapshot(), query, values, nulls, 1);
	return SPI_processed > 0;
}

/*
 * crm_query_finds_newer_rows -- does a read-only statement that returned no
 * rows under the transaction snapshot return some under a fresh one?  Tells
 * "none exists" from "one was committed since we started" (see above).
 */
bool
crm_query_finds_newer_rows(CrmQuery *query, Datum *values, const char *nulls)
{
	return crm_query_run_fresh(query, values, nulls, 1) && SPI_processed > 0;
}

/*
 * crm_serialization_failure -- end a REPEATABLE READ or SERIALIZABLE
 * transaction whose check a concurrent commit has overtaken (40001).  object
 * names what was being checked ("quote 7"); detail, when not NULL, says what
 * the concurrent commit did.
 */
void
crm_serialization_failure(const char *object, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("could not serialize access to %s due to concurrent update", object),
			 errdetail("%s", detail ? detail :
					   "A transaction that committed after this one started changed what the check depends on."),
			 errhint("Retry the transaction.")));
}

/*
 * crm_schema_owner -- the role that owns the extension's tables: the role
 * that ran CREATE EXTENSION.  (Taken from a table the install script creates,
 * not from schema crm, which could have been created by someone else first;
 * the install script refuses that case too.)  History rows are written and
 * duplicates searched as this role.
 */
Oid
crm_schema_owner(void)
{
	Oid			relid = crm_relation_oid("change_log");
	HeapTuple	tup;
	Oid			owner;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "crm: cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/* crm_relation_oid -- OID of table crm.<relname> */
Oid
crm_relation_oid(const char *relname)
{
	Oid			relid = get_relname_relid(relname, get_namespace_oid("crm", false));

	if (!OidIsValid(relid))
		elog(ERROR, "crm: relation crm.%s is missing", relname);
	return relid;
}

/* crm_result_datum -- column col (1-based) of row of the last SPI result */
Datum
crm_result_datum(int row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

/* crm_result_int64 -- a bigint column of the last SPI result */
int64
crm_result_int64(int row, int col, bool *isnull)
{
	Datum		d = crm_result_datum(row, col, isnull);

	return *isnull ? 0 : DatumGetInt64(d);
}

/* crm_result_text -- a text column of the last SPI result, NULL when null */
char *
crm_result_text(int row, int col)
{
	bool		isnull;
	Datum		d = crm_result_datum(row, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}
