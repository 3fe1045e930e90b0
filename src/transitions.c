/*
 * transitions.c: status workflows checked against a transition table.
 *
 * Quotes and orders move between statuses along the rows of
 * crm_internal.quote_transition and crm_internal.order_transition; a row may reserve its
 * change to one of the extension's functions (via_function), which then
 * holds a permit (permit.c) for the row it changes.
 */
#include "crm.h"

#include "utils/builtins.h"

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
