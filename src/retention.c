/*
 * retention.c: crm.purge_change_log(older_than), the change log's retention.
 *
 * crm.settings.change_log_retention says how long change-log entries are
 * kept (NULL: forever).  crm.purge_change_log() (admins) deletes the entries
 * recorded before the cut-off -- older_than, or now() minus the retention
 * when older_than is NULL; with neither it does nothing and returns 0 -- and
 * appends one summary entry (operation PURGE on table crm.change_log: who,
 * when, the cut-off, the rows removed).  Summary entries are never purged.
 * The audit trail's append-only trigger lets the deletes through only while
 * the purge holds its permit (permit.c).  The lead status and opportunity
 * history tables, which reports read, are not purged.
 */
#include "crm.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

static const char *const admins[] = {"crm_admin", NULL};

static CrmQuery retention_cut_off = {
	"SELECT pg_catalog.now() OPERATOR(pg_catalog.-) s.change_log_retention FROM crm.settings AS s"
	" WHERE s.change_log_retention IS NOT NULL",
	0, {InvalidOid}, NULL
};

static CrmQuery purge_entries = {
	"DELETE FROM crm.change_log AS g"
	" WHERE g.changed_at OPERATOR(pg_catalog.<) $1 AND g.operation OPERATOR(pg_catalog.<>) 'PURGE'",
	1, {TIMESTAMPTZOID}, NULL
};

static CrmQuery purge_summary = {
	"INSERT INTO crm.change_log (table_name, row_id, operation, changes, changed_by)"
	" VALUES ('crm.change_log'::pg_catalog.regclass, NULL, 'PURGE',"
	"         pg_catalog.jsonb_build_object('cut_off', $1, 'rows_removed', $2), $3)",
	3, {TIMESTAMPTZOID, INT8OID, REGROLEOID}, NULL
};

/* crm_purge_change_log -- SQL crm.purge_change_log(older_than) */
PG_FUNCTION_INFO_V1(crm_purge_change_log);
Datum
crm_purge_change_log(PG_FUNCTION_ARGS)
{
	Oid			caller = crm_caller();
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	TimestampTz cut_off;
	int64		removed;

	crm_require_role(caller, admins, "purge the change log");
	crm_spi_connect();
	if (PG_ARGISNULL(0))
	{
		bool		isnull;

		crm_query_run_as_owner(&retention_cut_off, values, nulls, 1);
		if (SPI_processed == 0)
		{
			/* no retention period: the log is kept forever */
			crm_spi_finish();
			PG_RETURN_INT64(0);
		}
		cut_off = DatumGetTimestampTz(crm_result_datum(0, 1, &isnull));
	}
	else
		cut_off = PG_GETARG_TIMESTAMPTZ(0);

	if (cut_off > GetCurrentTransactionStartTimestamp())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("older_than must be a time in the past"),
				 errdetail("The cut-off given is %s.", timestamptz_to_str(cut_off)),
				 errhint("Pass a cut-off such as now() - interval '2 years', or NULL for the retention in crm.settings.")));

	values[0] = TimestampTzGetDatum(cut_off);
	crm_permit_push(CRM_PERMIT_AUDIT_PURGE, CRM_PERMIT_ANY_ROW);
	crm_query_run_as_owner(&purge_entries, values, nulls, 0);
	crm_permit_pop(CRM_PERMIT_AUDIT_PURGE, CRM_PERMIT_ANY_ROW);
	removed = (int64) SPI_processed;

	values[1] = Int64GetDatum(removed);
	values[2] = ObjectIdGetDatum(caller);
	crm_query_run_as_owner(&purge_summary, values, nulls, 0);
	crm_spi_finish();
	PG_RETURN_INT64(removed);
}
