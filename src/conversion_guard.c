/*
 * conversion_guard.c: lead conversion is one-way, and only crm.convert_lead() does it.
 *
 * The conversion fields of crm.lead (status 'Converted', account_id,
 * contact_id, opportunity_id, converted_at, converted_by) and the source lead
 * of crm.opportunity (lead_id) may be set only while crm.convert_lead() is
 * converting that very lead in this backend: it holds a permit (permit.c)
 * naming that one lead while it writes.
 *
 * Once converted, a lead keeps its conversion record for good: status and the
 * conversion fields never change again, for any role.  Its other fields
 * (remarks, phone, ...) stay editable.
 *
 * Filling.  No role may write the conversion fields or an opportunity's
 * lead_id (column privileges, 99_privileges.sql): crm.convert_lead() sets the
 * lead's status to Converted and inserts the new opportunity with the
 * caller's own statements (privileges, row-level security and the triggers'
 * view of the acting role all the caller's), and these guards fill in the
 * record it names with crm_conversion_record() -- only while the permit for
 * that lead is held, so a stale record fills nothing.
 */
#include "crm.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

static bool
converting(int64 lead_id)
{
	return crm_permitted(CRM_PERMIT_CONVERSION, lead_id);
}

/* the conversion record crm.convert_lead() is writing (see Filling above) */
static CrmConversionRecord record;

/*
 * crm_conversion_record -- the record the guards fill in while the
 * conversion permit of r->lead_id is held; NULL forgets it
 */
void
crm_conversion_record(const CrmConversionRecord *r)
{
	if (r == NULL)
		memset(&record, 0, sizeof(record));
	else
		record = *r;
}

/*
 * fill_conversion -- newtup, a lead being set to Converted by its
 * conversion, with the conversion fields of the record
 */
static HeapTuple
fill_conversion(HeapTuple newtup, TupleDesc tupdesc)
{
	newtup = crm_set_column(newtup, tupdesc, "account_id", Int64GetDatum(record.account_id), false);
	newtup = crm_set_column(newtup, tupdesc, "contact_id", Int64GetDatum(record.contact_id), false);
	newtup = crm_set_column(newtup, tupdesc, "opportunity_id",
							record.has_opportunity ? Int64GetDatum(record.opportunity_id) : (Datum) 0,
							!record.has_opportunity);
	newtup = crm_set_column(newtup, tupdesc, "converted_at",
							TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()), false);
	return crm_set_column(newtup, tupdesc, "converted_by", ObjectIdGetDatum(record.converted_by), false);
}

/* the columns of crm.lead that make up the conversion record */
static const char *const conversion_columns[] = {
	"status", "account_id", "contact_id", "opportunity_id",
	"converted_at", "converted_by", NULL
};

/* is the lead's status 'Converted'? */
static bool
status_is_converted(HeapTuple tuple, TupleDesc tupdesc)
{
	char	   *status = crm_column_text(tuple, tupdesc, "status");

	return status != NULL && strcmp(status, "Converted") == 0;
}

/* is column colname of the row non-null? */
static bool
column_set(HeapTuple tuple, TupleDesc tupdesc, const char *colname)
{
	bool		isnull;

	(void) heap_getattr(tuple, crm_attnum(tupdesc, colname), tupdesc, &isnull);
	return !isnull;
}

static int64
row_id(HeapTuple tuple, TupleDesc tupdesc)
{
	bool		isnull;

	return crm_column_int64(tuple, tupdesc, "id", &isnull);
}

/* crm_lead_conversion_guard -- trigger crm_internal.lead_conversion_guard() */
PG_FUNCTION_INFO_V1(crm_lead_conversion_guard);
Datum
crm_lead_conversion_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "lead_conversion_guard", true, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		HeapTuple	newtup = trigdata->tg_trigtuple;

		if (status_is_converted(newtup, tupdesc))
			ereport(ERROR,
					(errcode(ERRCODE_CRM_CONVERSION_PROTECTED),
					 errtable(trigdata->tg_relation),
					 errmsg("a new lead cannot have status \"Converted\""),
					 errdetail("Only crm.convert_lead() sets a lead to Converted."),
					 errhint("Insert the lead with a working status such as 'New Lead', then call crm.convert_lead().")));
		for (int i = 1; conversion_columns[i] != NULL; i++)
			if (column_set(newtup, tupdesc, conversion_columns[i]))
				ereport(ERROR,
						(errcode(ERRCODE_CRM_CONVERSION_PROTECTED),
						 errtablecol(trigdata->tg_relation, crm_attnum(tupdesc, conversion_columns[i])),
						 errmsg("a new lead cannot have %s set", conversion_columns[i]),
						 errdetail("The conversion fields of a lead are set only by crm.convert_lead()."),
						 errhint("Leave account_id, contact_id, opportunity_id, converted_at and converted_by empty.")));
		return PointerGetDatum(newtup);
	}
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		HeapTuple	oldtup = trigdata->tg_trigtuple;
		HeapTuple	newtup = trigdata->tg_newtuple;
		int64		lead_id = row_id(oldtup, tupdesc);
		bool		was_converted = status_is_converted(oldtup, tupdesc);

		if (was_converted)
		{
			/* a merge moves the record to the survivor (permit.c) */
			HeapTuple	checked = crm_without_merge_repoints(oldtup, newtup, tupdesc);

			for (int i = 0; conversion_columns[i] != NULL; i++)
				if (crm_column_changed(oldtup, checked, tupdesc, conversion_columns[i]))
					ereport(ERROR,
							(errcode(ERRCODE_CRM_CONVERSION_PROTECTED),
							 errtablecol(trigdata->tg_relation, crm_attnum(tupdesc, conversion_columns[i])),
							 errmsg("lead %lld is converted and its %s cannot change",
									(long long) lead_id, conversion_columns[i]),
							 errdetail("A converted lead keeps its status and conversion record for good."),
							 errhint("Edit the account, contact or opportunity it was converted into instead.")));
		}
		else if (converting(lead_id) && row_id(newtup, tupdesc) == lead_id)
		{
			if (record.lead_id == lead_id && status_is_converted(newtup, tupdesc))
				newtup = fill_conversion(newtup, tupdesc);
		}
		else
		{
			/* status may change freely, except to Converted */
			const char *what = status_is_converted(newtup, tupdesc) ? "status \"Converted\"" : NULL;

			for (int i = 1; what == NULL && conversion_columns[i] != NULL; i++)
				if (crm_column_changed(oldtup, newtup, tupdesc, conversion_columns[i]))
					what = conversion_columns[i];
			if (what != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_CRM_CONVERSION_PROTECTED),
						 errtable(trigdata->tg_relation),
						 errmsg("only crm.convert_lead() can set %s of lead %lld",
								what, (long long) lead_id),
						 errdetail("Status Converted and the conversion fields are written by the conversion itself."),
						 errhint("Call SELECT * FROM crm.convert_lead(%lld).", (long long) lead_id)));
		}
		return PointerGetDatum(newtup);
	}

	ereport(ERROR,
			(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
			 errtable(trigdata->tg_relation),
			 errmsg("crm_internal.lead_conversion_guard() must be fired for INSERT or UPDATE")));
	pg_unreachable();
}

/* crm_opportunity_lead_guard -- trigger crm_internal.opportunity_lead_guard() */
PG_FUNCTION_INFO_V1(crm_opportunity_lead_guard);
Datum
crm_opportunity_lead_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "opportunity_lead_guard", true, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	HeapTuple	newtup;
	int			attnum = crm_attnum(tupdesc, "lead_id");
	bool		isnull;
	Datum		lead_id;

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		newtup = trigdata->tg_trigtuple;
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		newtup = trigdata->tg_newtuple;
		if (!crm_column_changed(trigdata->tg_trigtuple, newtup, tupdesc, "lead_id"))
			return PointerGetDatum(newtup);
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errtable(trigdata->tg_relation),
				 errmsg("crm_internal.opportunity_lead_guard() must be fired for INSERT or UPDATE")));

	/* the opportunity a conversion creates gets its lead (see Filling above) */
	lead_id = heap_getattr(newtup, attnum, tupdesc, &isnull);
	if (isnull && TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) && record.new_opportunity &&
		converting(record.lead_id))
	{
		record.new_opportunity = false;
		return PointerGetDatum(crm_set_column(newtup, tupdesc, "lead_id",
											  Int64GetDatum(record.lead_id), false));
	}

	/* clearing the source lead is allowed (and done when the lead is deleted) */
	if (!isnull && !converting(DatumGetInt64(lead_id)) &&
		!crm_merge_repointed(trigdata->tg_trigtuple, newtup, tupdesc, "lead_id", CRM_PERMIT_MERGE_LEAD))
		ereport(ERROR,
				(errcode(ERRCODE_CRM_CONVERSION_PROTECTED),
				 errtable(trigdata->tg_relation),
				 errmsg("only crm.convert_lead() can set the source lead of an opportunity"),
				 errdetail("lead_id %lld was given.", (long long) DatumGetInt64(lead_id)),
				 errhint("Leave lead_id empty; it is set when a lead is converted.")));
	return PointerGetDatum(newtup);
}
