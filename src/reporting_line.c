/*
 * reporting_line.c: the reporting hierarchy behind the managers' row-level
 * security (crm.reporting_line).
 *
 * crm_internal.reporting_line_guard() is a BEFORE row trigger on crm.reporting_line
 * (INSERT, UPDATE): a manager who reports, directly or through others, to
 * the member would make a cycle, and is refused.  Changes to the hierarchy
 * take the extension's reporting hierarchy lock (locks.c), so two concurrent changes cannot each pass the check and together make a
 * cycle; the check runs after the lock with a fresh snapshot in READ
 * COMMITTED, and fails with 40001 in REPEATABLE READ when only a fresh
 * snapshot would see the cycle.  Only crm_admin may write the table.
 */
#include "crm.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/rel.h"


/* does role $1 report, directly or indirectly, to role $2 (or is it $2)? */
static CrmQuery reports_to = {
	"WITH RECURSIVE up (role, depth) AS ("
	"   SELECT $1::pg_catalog.oid, 0"
	"   UNION ALL"
	"   SELECT l.manager::pg_catalog.oid, up.depth OPERATOR(pg_catalog.+) 1"
	"     FROM crm.reporting_line AS l, up"
	"    WHERE l.member::pg_catalog.oid OPERATOR(pg_catalog.=) up.role"
	"      AND up.depth OPERATOR(pg_catalog.<) 10000)"
	" SELECT 1 FROM up WHERE up.role OPERATOR(pg_catalog.=) $2 LIMIT 1",
	2, {OIDOID, OIDOID}, NULL
};

/* crm_reporting_line_guard -- trigger crm_internal.reporting_line_guard() */
PG_FUNCTION_INFO_V1(crm_reporting_line_guard);
Datum
crm_reporting_line_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "reporting_line_guard", true, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	HeapTuple	newtup = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event)
		? trigdata->tg_trigtuple : trigdata->tg_newtuple;
	bool		member_null;
	bool		manager_null;
	Datum		member = SPI_getbinval(newtup, tupdesc, crm_attnum(tupdesc, "member"), &member_null);
	Datum		manager = SPI_getbinval(newtup, tupdesc, crm_attnum(tupdesc, "manager"), &manager_null);
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	bool		cycle;

	if (member_null || manager_null)
		return PointerGetDatum(newtup);	/* NOT NULL constraints report it */

	{
		CrmLock		lock = crm_lock_global(CRM_LOCK_REPORTING_HIERARCHY);

		crm_lock_all(&lock, 1);
	}

	values[0] = manager;
	values[1] = member;
	crm_spi_connect();
	crm_query_run_as_owner(&reports_to, values, nulls, 1);
	cycle = SPI_processed > 0;
	if (!cycle && crm_query_finds_newer_rows(&reports_to, values, nulls))
		crm_serialization_failure("the reporting hierarchy", NULL);
	crm_spi_finish();
	if (cycle)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_REPORTING_CYCLE),
				 errtable(trigdata->tg_relation),
				 errmsg("role \"%s\" cannot report to role \"%s\"",
						crm_role_name(DatumGetObjectId(member)), crm_role_name(DatumGetObjectId(manager))),
				 errdetail("Role \"%s\" is role \"%s\" or already reports to it, directly or indirectly.",
						   crm_role_name(DatumGetObjectId(manager)), crm_role_name(DatumGetObjectId(member))),
				 errhint("Change the manager's own reporting line first.")));
	return PointerGetDatum(newtup);
}
