/*
 * stamp.c: created_at and updated_at belong to the database.
 *
 * crm_internal.stamp_row() is a BEFORE INSERT OR UPDATE row trigger.  On INSERT it sets
 * created_at and updated_at to the transaction time, whatever the client sent;
 * on UPDATE it keeps the old created_at and sets updated_at.  It runs no query:
 * it only rewrites the new tuple.
 */
#include "crm.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/timestamp.h"

/* attribute number of a column the trigger needs, or a loud error */
static int
required_attnum(Relation rel, const char *colname)
{
	int			attnum = SPI_fnumber(RelationGetDescr(rel), colname);

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("crm_internal.stamp_row() needs a column \"%s\" on table \"%s\"",
						colname, RelationGetRelationName(rel))));
	return attnum;
}

/* crm_stamp_row -- trigger crm_internal.stamp_row() */
PG_FUNCTION_INFO_V1(crm_stamp_row);
Datum
crm_stamp_row(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "stamp_row", true, true);
	Relation	rel = trigdata->tg_relation;
	int			cols[2];
	Datum		values[2];
	bool		nulls[2] = {false, false};
	HeapTuple	tuple;
	Datum		now = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());

	cols[0] = required_attnum(rel, "created_at");
	cols[1] = required_attnum(rel, "updated_at");
	values[1] = now;

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		tuple = trigdata->tg_trigtuple;
		values[0] = now;
	}
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		tuple = trigdata->tg_newtuple;
		values[0] = heap_getattr(trigdata->tg_trigtuple, cols[0],
								 RelationGetDescr(rel), &nulls[0]);
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errtable(trigdata->tg_relation),
				 errmsg("crm_internal.stamp_row() must be fired for INSERT or UPDATE")));

	tuple = heap_modify_tuple_by_cols(tuple, RelationGetDescr(rel),
									  2, cols, values, nulls);
	return PointerGetDatum(tuple);
}
