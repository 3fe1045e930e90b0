/*
 * workflow.c: helpers shared by the C triggers and functions: status
 * workflows checked against a transition table, column access by name on
 * trigger tuples, and the caller's role checks.
 */
#include "crm.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "fmgr.h"
#include "utils/lsyscache.h"

/*
 * crm_check_transition -- refuse a status change that the transition table
 * does not list, and one reserved to a function that is not making it.
 *
 * lookup is "SELECT via_function FROM <table> WHERE from = $1 AND to = $2"
 * with two text parameters; it runs as the extension owner (users may lack
 * SELECT on the table).  The caller must be connected to SPI.
 */
void
crm_check_transition(CrmQuery *lookup, const char *what, int64 id,
					 const char *from, const char *to, CrmPermitKind kind)
{
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	char	   *via;

	if (strcmp(from, to) == 0)
		return;
	values[0] = CStringGetTextDatum(from);
	values[1] = CStringGetTextDatum(to);
	crm_query_run_as_owner(lookup, values, nulls, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_ILLEGAL_TRANSITION),
				 errmsg("%s %lld cannot go from \"%s\" to \"%s\"", what, (long long) id, from, to),
				 errhint("The legal status changes are listed in crm.%s_transition.", what)));
	via = crm_result_text(0, 1);
	if (via != NULL && !crm_permitted(kind, id))
		ereport(ERROR,
				(errcode(ERRCODE_CRM_TRANSITION_RESERVED),
				 errmsg("%s %lld can go from \"%s\" to \"%s\" only through %s",
						what, (long long) id, from, to, via),
				 errhint("Call the function instead of updating the status.")));
}

/* crm_attnum -- attribute number of a column, or a loud error */
int
crm_attnum(TupleDesc tupdesc, const char *colname)
{
	int			attnum = SPI_fnumber(tupdesc, colname);

	if (attnum <= 0)
		elog(ERROR, "crm: column \"%s\" is missing", colname);
	return attnum;
}

/*
 * crm_attnum_hint -- crm_attnum for a caller that looks the same column up
 * again and again: *hint remembers the last answer and is checked (the
 * column there must still have that name) before it is used.
 */
int
crm_attnum_hint(TupleDesc tupdesc, const char *colname, int *hint)
{
	int			attnum = *hint;

	if (attnum > 0 && attnum <= tupdesc->natts)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, attnum - 1);

		if (!att->attisdropped && strcmp(NameStr(att->attname), colname) == 0)
			return attnum;
	}
	*hint = crm_attnum(tupdesc, colname);
	return *hint;
}

/* crm_column_text -- text form of a column, NULL when null */
char *
crm_column_text(HeapTuple tuple, TupleDesc tupdesc, const char *colname)
{
	return crm_attribute_text(tuple, tupdesc, crm_attnum(tupdesc, colname));
}

/* crm_attribute_text -- text form of attribute attnum, NULL when null */
char *
crm_attribute_text(HeapTuple tuple, TupleDesc tupdesc, int attnum)
{
	bool		isnull;
	Datum		value = heap_getattr(tuple, attnum, tupdesc, &isnull);
	Oid			typoutput;
	bool		typisvarlena;

	if (isnull)
		return NULL;
	getTypeOutputInfo(TupleDescAttr(tupdesc, attnum - 1)->atttypid, &typoutput, &typisvarlena);
	return OidOutputFunctionCall(typoutput, value);
}

/* crm_column_is -- does a column's text form equal s?  (NULL never does) */
bool
crm_column_is(HeapTuple tuple, TupleDesc tupdesc, const char *colname, const char *s)
{
	char	   *value = crm_column_text(tuple, tupdesc, colname);

	return value != NULL && strcmp(value, s) == 0;
}

/* crm_column_int64 -- a bigint column */
int64
crm_column_int64(HeapTuple tuple, TupleDesc tupdesc, const char *colname, bool *isnull)
{
	Datum		value = heap_getattr(tuple, crm_attnum(tupdesc, colname), tupdesc, isnull);

	return *isnull ? 0 : DatumGetInt64(value);
}

/* crm_column_changed -- does a column differ between two versions of a row? */
bool
crm_column_changed(HeapTuple oldtup, HeapTuple newtup, TupleDesc tupdesc,
				   const char *colname)
{
	return crm_attribute_changed(oldtup, newtup, tupdesc, crm_attnum(tupdesc, colname));
}

/* crm_attribute_changed -- does attribute attnum differ between two versions? */
bool
crm_attribute_changed(HeapTuple oldtup, HeapTuple newtup, TupleDesc tupdesc, int attnum)
{
	Form_pg_attribute att = TupleDescAttr(tupdesc, attnum - 1);
	bool		oldnull;
	bool		newnull;
	Datum		oldval = heap_getattr(oldtup, attnum, tupdesc, &oldnull);
	Datum		newval = heap_getattr(newtup, attnum, tupdesc, &newnull);

	if (oldnull || newnull)
		return oldnull != newnull;
	return !datumIsEqual(oldval, newval, att->attbyval, att->attlen);
}

/* crm_set_column -- a copy of the tuple with one column replaced */
HeapTuple
crm_set_column(HeapTuple tuple, TupleDesc tupdesc, const char *colname,
			   Datum value, bool isnull)
{
	int			attnum = crm_attnum(tupdesc, colname);

	return heap_modify_tuple_by_cols(tuple, tupdesc, 1, &attnum, &value, &isnull);
}

/*
 * crm_caller -- the role the caller acts as.  The extension's functions other
 * than crm.convert_lead() are SECURITY INVOKER, so this is the current user.
 */
Oid
crm_caller(void)
{
	return GetUserId();
}

/*
 * crm_require_role -- the role must have the privileges of one of the named
 * group roles (a NULL-terminated list), or the action is refused with 42501.
 */
void
crm_require_role(Oid role, const char *const *groups, const char *action)
{
	StringInfoData names;

	initStringInfo(&names);
	for (int i = 0; groups[i] != NULL; i++)
	{
		Oid			group = get_role_oid(groups[i], true);

		if (OidIsValid(group) && has_privs_of_role(role, group))
			return;
		appendStringInfo(&names, "%s%s", i > 0 ? " or " : "", groups[i]);
	}
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to %s", action),
			 errdetail("Role \"%s\" is not a member of %s.", GetUserNameFromId(role, false), names.data)));
}

/* crm_required_id -- a bigint argument that must not be NULL (22004) */
int64
crm_required_id(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", argname)));
	return PG_GETARG_INT64(argno);
}

/* crm_optional_text -- a text argument, NULL when NULL */
char *
crm_optional_text(FunctionCallInfo fcinfo, int argno)
{
	return PG_ARGISNULL(argno) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/* crm_enum_result -- a label of the function's enum result type */
Datum
crm_enum_result(FunctionCallInfo fcinfo, const char *label)
{
	return DirectFunctionCall2(enum_in, CStringGetDatum(label),
							   ObjectIdGetDatum(get_fn_expr_rettype(fcinfo->flinfo)));
}
