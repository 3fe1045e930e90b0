/*
 * module.c: module magic and small helpers shared by the other files.
 *
 * Owns: PG_MODULE_MAGIC, _PG_init (the crm.lock_wait_timeout setting and
 * the LOCK TABLE guard), crm.current_role_id(), and the sanity checks every
 * C trigger of the extension makes on how it was called.
 */
#include "crm.h"

#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	crm_locks_init();
	crm_lock_guard_init();
}

/* crm_current_role_id -- the role the current statement runs as, as regrole */
PG_FUNCTION_INFO_V1(crm_current_role_id);
Datum
crm_current_role_id(PG_FUNCTION_ARGS)
{
	(void) fcinfo;
	PG_RETURN_OID(GetUserId());
}

/*
 * crm_trigger_data -- check that a trigger function was fired the way its
 * CREATE TRIGGER is meant to fire it, and return its TriggerData.
 *
 * The checks fail loudly: a trigger attached in the wrong place must not
 * silently do nothing.
 */
TriggerData *
crm_trigger_data(FunctionCallInfo fcinfo, const char *funcname,
				 bool want_before, bool want_row)
{
	TriggerData *trigdata;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function crm_internal.%s() must be called as a trigger", funcname)));

	trigdata = (TriggerData *) fcinfo->context;

	if (want_before != (bool) TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function crm_internal.%s() must be fired %s the operation",
						funcname, want_before ? "BEFORE" : "AFTER")));

	/* the extension's triggers guard its own tables, nothing else */
	if (RelationGetNamespace(trigdata->tg_relation) != get_namespace_oid("crm", false))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function crm_internal.%s() fires only on tables of schema crm, not on \"%s\"",
						funcname, RelationGetRelationName(trigdata->tg_relation))));

	if (want_row && !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function crm_internal.%s() must be fired FOR EACH ROW", funcname)));

	return trigdata;
}
