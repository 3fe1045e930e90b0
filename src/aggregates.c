/*
 * aggregates.c: pipeline aggregates without hot rows.
 *
 * crm.aggregates_pipeline() is an AFTER statement trigger on crm.opportunity.
 * From the transition tables it computes, per (stage, owner, close month),
 * the change in count, amount and weighted amount, and adds it to the rows of
 * crm.pipeline_aggregate whose stripe is this backend's id (MyBackendId).
 * Concurrent backends have different ids, so they never update the same row
 * and never wait for one another; a backend's transactions run one after the
 * other, so its own rows are never contended either.  The deltas are written
 * in the writer's transaction (as the extension owner: users cannot write
 * aggregates), so they commit and roll back with the change they describe.
 * TRUNCATE of the opportunities empties the aggregate.
 *
 * (A prepared transaction keeps its stripe rows locked after its backend is
 * gone; a new backend with the same id waits for COMMIT/ROLLBACK PREPARED.)
 */
#include "crm.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "storage/backendid.h"
#include "miscadmin.h"

#define DELTA(sign, rows) \
	"SELECT x.stage, x.owner," \
	"       COALESCE(pg_catalog.date_trunc('month', x.close_date)::pg_catalog.date, 'infinity'::pg_catalog.date) AS close_month," \
	"       " sign "1 AS n, " sign "x.amount AS amount," \
	"       " sign "pg_catalog.round(x.amount OPERATOR(pg_catalog.*) COALESCE(x.probability, 0) OPERATOR(pg_catalog./) 100, 2) AS w" \
	"  FROM " rows " AS x"

#define ADD_DELTAS(source) \
	"INSERT INTO crm.pipeline_aggregate AS a (stage, owner, close_month, stripe, opportunities, amount, weighted_amount)" \
	" SELECT d.stage, d.owner, d.close_month, $1, pg_catalog.sum(d.n), pg_catalog.sum(d.amount), pg_catalog.sum(d.w)" \
	"   FROM (" source ") AS d" \
	"  GROUP BY d.stage, d.owner, d.close_month" \
	" HAVING pg_catalog.sum(d.n) OPERATOR(pg_catalog.<>) 0 OR pg_catalog.sum(d.amount) OPERATOR(pg_catalog.<>) 0" \
	"     OR pg_catalog.sum(d.w) OPERATOR(pg_catalog.<>) 0" \
	" ON CONFLICT (stage, owner, close_month, stripe) DO UPDATE SET" \
	"   opportunities = a.opportunities OPERATOR(pg_catalog.+) EXCLUDED.opportunities," \
	"   amount = a.amount OPERATOR(pg_catalog.+) EXCLUDED.amount," \
	"   weighted_amount = a.weighted_amount OPERATOR(pg_catalog.+) EXCLUDED.weighted_amount"

static CrmQuery add_inserted = {
	ADD_DELTAS(DELTA("", "new_rows")), 1, {INT4OID}, NULL
};
static CrmQuery add_updated = {
	ADD_DELTAS(DELTA("", "new_rows") " UNION ALL " DELTA("-", "old_rows")), 1, {INT4OID}, NULL
};
static CrmQuery add_deleted = {
	ADD_DELTAS(DELTA("-", "old_rows")), 1, {INT4OID}, NULL
};
static CrmQuery empty_aggregate = {
	"DELETE FROM crm.pipeline_aggregate", 0, {InvalidOid}, NULL
};

/* crm_aggregates_pipeline -- trigger crm.aggregates_pipeline() */
PG_FUNCTION_INFO_V1(crm_aggregates_pipeline);
Datum
crm_aggregates_pipeline(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "aggregates_pipeline", false, false);
	TriggerEvent event = trigdata->tg_event;
	Datum		values[1] = {Int32GetDatum(MyBackendId)};
	char		nulls[1] = {' '};

	if (TRIGGER_FIRED_FOR_ROW(event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("crm.aggregates_pipeline() must be fired FOR EACH STATEMENT")));

	SPI_connect();
	if (TRIGGER_FIRED_BY_TRUNCATE(event))
		crm_query_run_as_owner(&empty_aggregate, NULL, NULL, 0);
	else
	{
		if (SPI_register_trigger_data(trigdata) != SPI_OK_TD_REGISTER)
			elog(ERROR, "crm: SPI_register_trigger_data failed");
		crm_query_run_as_owner(TRIGGER_FIRED_BY_INSERT(event) ? &add_inserted :
							   TRIGGER_FIRED_BY_UPDATE(event) ? &add_updated : &add_deleted,
							   values, nulls, 0);
	}
	SPI_finish();
	return PointerGetDatum(NULL);
}
