/*
 * arguments.c: what the SQL-callable functions share about their calls --
 * the calling role, the group roles an action needs, required and optional
 * arguments, and enum results.
 */
#include "crm.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

/*
 * crm_caller -- the role the caller acts as.  The extension's functions are
 * SECURITY INVOKER, so this is the current user: inside another role's
 * SECURITY DEFINER function, that function's owner.
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
			 errdetail("Role \"%s\" is not a member of %s.", crm_role_name(role), names.data)));
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

/* crm_is_blank -- is a text NULL, empty or only white space? */
bool
crm_is_blank(const char *s)
{
	return s == NULL || strspn(s, " \t\r\n") == strlen(s);
}

/* crm_enum_result -- a label of the function's enum result type */
Datum
crm_enum_result(FunctionCallInfo fcinfo, const char *label)
{
	return DirectFunctionCall2(enum_in, CStringGetDatum(label),
							   ObjectIdGetDatum(get_fn_expr_rettype(fcinfo->flinfo)));
}

/* crm_role_name -- a role's name, or its OID when it has been dropped */
const char *
crm_role_name(Oid role)
{
	const char *name = GetUserNameFromId(role, true);

	return name ? name : psprintf("%u", role);
}

/*
 * crm_not_visible -- the error for a row the caller named that its rights do
 * not let it see: "<what> <id> does not exist", as for a row that does not
 * (the two are not told apart, so ids cannot be probed)
 */
void
crm_not_visible(int sqlerrcode, const char *what, int64 id, Oid caller)
{
	ereport(ERROR,
			(errcode(sqlerrcode),
			 errmsg("%s %lld does not exist", what, (long long) id),
			 errdetail("No %s with this id is visible to role \"%s\".", what, crm_role_name(caller))));
}
