/*
 * quotas.c: the periods of one owner's quotas never overlap
 * (sql/install/97_quotas.sql, README "Quotas").
 *
 * crm_internal.quota_guard()  BEFORE INSERT OR UPDATE OF owner, period_start,
 *     period_end, currency on crm.quota.  Takes the extension's quota lock of the
 *     row's owner (src/locks.c: a lock no SQL function can take or squat,
 *     waited for at most crm.lock_wait_timeout), then looks for another
 *     quota of the owner whose period meets the row's, as the extension
 *     owner (it must see every quota of the owner) and under a fresh
 *     snapshot (READ COMMITTED: the latest commits).  Two writers of one
 *     owner's quotas therefore queue, and the second sees the first one's
 *     period (23P01); writers of other owners' quotas and every reader go
 *     on.  In REPEATABLE READ and SERIALIZABLE, a quota the transaction
 *     snapshot does not show but a fresh one does ends the transaction with
 *     40001.
 *
 * A quota in a currency without a rate valid on its period_start is
 * refused (ZC120): crm.quota_attainment would fail for everybody who sees
 * it.
 *
 * An overlapping quota that the writer cannot see is not described: the
 * writer may not write that owner's quotas (row-level security would refuse
 * the row after this trigger), so the error is the one row-level security
 * gives (42501), without the other quota's id and dates.
 */
#include "crm.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/rel.h"

/* another quota of owner $1 meeting the period $2 .. $3 (not row $4) */
static CrmQuery overlapping = {
	"SELECT q.id, q.period_start::pg_catalog.text, q.period_end::pg_catalog.text FROM crm.quota AS q"
	" WHERE q.owner OPERATOR(pg_catalog.=) $1"
	"   AND q.id OPERATOR(pg_catalog.<>) $4"
	"   AND q.period_start OPERATOR(pg_catalog.<=) $3"
	"   AND q.period_end OPERATOR(pg_catalog.>=) $2"
	" ORDER BY q.period_start LIMIT 1",
	4, {REGROLEOID, DATEOID, DATEOID, INT8OID}, NULL
};

/* is quota $1 visible to the writer (row-level security)? */
static CrmQuery visible_quota = {
	"SELECT 1 FROM crm.quota AS q WHERE q.id OPERATOR(pg_catalog.=) $1",
	1, {INT8OID}, NULL
};

/* crm_quota_guard -- trigger crm_internal.quota_guard() */
PG_FUNCTION_INFO_V1(crm_quota_guard);
Datum
crm_quota_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "quota_guard", true, true);
	Relation	rel = trigdata->tg_relation;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	HeapTuple	newtup = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)
		? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	bool		owner_null;
	bool		start_null;
	bool		end_null;
	bool		id_null;
	Oid			owner;
	CrmLock		lock;
	bool		is_update;
	HeapTuple	oldtup;
	int64		other;
	char	   *other_start;
	char	   *other_end;

	values[0] = heap_getattr(newtup, crm_attnum(tupdesc, "owner"), tupdesc, &owner_null);
	values[1] = heap_getattr(newtup, crm_attnum(tupdesc, "period_start"), tupdesc, &start_null);
	values[2] = heap_getattr(newtup, crm_attnum(tupdesc, "period_end"), tupdesc, &end_null);
	values[3] = Int64GetDatum(crm_column_int64(newtup, tupdesc, "id", &id_null));
	/* a missing owner or day: the NOT NULL constraints report it */
	if (owner_null || start_null || end_null || id_null)
		return PointerGetDatum(newtup);
	owner = DatumGetObjectId(values[0]);
	is_update = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event);
	oldtup = is_update ? trigdata->tg_trigtuple : NULL;

	/* a quota the attainment report cannot convert is refused (ZC120) */
	if (!is_update || crm_column_changed(oldtup, newtup, tupdesc, "currency") ||
		crm_column_changed(oldtup, newtup, tupdesc, "period_start"))
	{
		bool		currency_null;
		Datum		currency = heap_getattr(newtup, crm_attnum(tupdesc, "currency"), tupdesc,
											&currency_null);

		if (!currency_null)		/* else the NOT NULL constraint reports it */
		{
			crm_spi_connect();
			crm_require_exchange_rate(currency, values[1], false);
			crm_spi_finish();
		}
	}
	if (is_update && !crm_column_changed(oldtup, newtup, tupdesc, "owner") &&
		!crm_column_changed(oldtup, newtup, tupdesc, "period_start") &&
		!crm_column_changed(oldtup, newtup, tupdesc, "period_end"))
		return PointerGetDatum(newtup);	/* the period stays as it was */

	lock = crm_lock_key(CRM_LOCK_QUOTA_OWNER, psprintf("%u", owner));
	crm_lock_all(&lock, 1);

	crm_spi_connect();
	crm_query_run_as_owner(&overlapping, values, nulls, 1);
	if (SPI_processed == 0)
	{
		if (crm_query_finds_newer_rows(&overlapping, values, nulls))
			crm_serialization_failure(psprintf("the quotas of %s",
											   DatumGetCString(DirectFunctionCall1(regroleout, values[0]))),
									  "A quota of the owner was written by a transaction that committed after this one started.");
		crm_spi_finish();
		return PointerGetDatum(newtup);
	}
	other = crm_result_int64(0, 1, &id_null);
	other_start = crm_result_text(0, 2);
	other_end = crm_result_text(0, 3);

	values[0] = Int64GetDatum(other);
	crm_query_run(&visible_quota, values, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("new row violates row-level security policy for table \"%s\"",
						RelationGetRelationName(rel))));
	ereport(ERROR,
			(errcode(ERRCODE_EXCLUSION_VIOLATION),
			 errtable(rel),
			 errmsg("the quota periods of %s overlap",
					DatumGetCString(DirectFunctionCall1(regroleout, ObjectIdGetDatum(owner)))),
			 errdetail("Quota %lld runs from %s to %s.", (long long) other, other_start, other_end)));
	pg_unreachable();
}
