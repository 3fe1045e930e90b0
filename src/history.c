/*
 * history.c: what happened to a row, kept by the database.
 *
 * crm_internal.record_lead_status()  AFTER INSERT OR UPDATE OF status on crm.lead:
 *     one crm.lead_status_history row when a lead is captured and one for
 *     every change of its status (from, to, when, by whom).
 * The change log (crm.change_log) and its append-only guard are change_log.c;
 * crm.opportunity_history is opportunity_history.c.
 *
 * "By whom" is the role the statement runs as.  The rows are written as the
 * owner of schema crm, so users need no write privilege on the history tables
 * and cannot forge or remove entries.
 */
#include "crm.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

static CrmQuery insert_status_history = {
	"INSERT INTO crm.lead_status_history (lead_id, from_status, to_status, changed_by) "
	"VALUES ($1, $2::pg_catalog.text::crm.lead_status, $3::pg_catalog.text::crm.lead_status, $4)",
	4, {INT8OID, TEXTOID, TEXTOID, REGROLEOID}, NULL
};

/* the id column of a crm table row */
static Datum
row_id_datum(HeapTuple tuple, TupleDesc tupdesc, bool *isnull)
{
	int			attnum = SPI_fnumber(tupdesc, "id");

	if (attnum <= 0)
	{
		*isnull = true;
		return (Datum) 0;
	}
	return heap_getattr(tuple, attnum, tupdesc, isnull);
}

/* crm_record_lead_status -- trigger crm_internal.record_lead_status() */
PG_FUNCTION_INFO_V1(crm_record_lead_status);
Datum
crm_record_lead_status(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "record_lead_status", false, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	int			attnum = SPI_fnumber(tupdesc, "status");
	HeapTuple	newtup;
	char	   *from_status = NULL;
	char	   *to_status;
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	bool		isnull;

	if (attnum <= 0)
		elog(ERROR, "crm: crm_internal.record_lead_status() needs a status column");

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		newtup = trigdata->tg_trigtuple;
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		newtup = trigdata->tg_newtuple;
		from_status = crm_attribute_text(trigdata->tg_trigtuple, tupdesc, attnum);
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errtable(trigdata->tg_relation),
				 errmsg("crm_internal.record_lead_status() must be fired for INSERT or UPDATE")));

	to_status = crm_attribute_text(newtup, tupdesc, attnum);
	if (from_status != NULL && to_status != NULL && strcmp(from_status, to_status) == 0)
		return PointerGetDatum(NULL);	/* status unchanged */

	values[0] = row_id_datum(newtup, tupdesc, &isnull);
	values[1] = from_status ? CStringGetTextDatum(from_status) : (Datum) 0;
	nulls[1] = from_status ? ' ' : 'n';
	values[2] = CStringGetTextDatum(to_status);
	values[3] = ObjectIdGetDatum(crm_acting_role());

	crm_spi_connect();
	crm_query_run_as_owner(&insert_status_history, values, nulls, 0);
	crm_spi_finish();

	return PointerGetDatum(NULL);
}
