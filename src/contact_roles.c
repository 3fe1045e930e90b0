/*
 * contact_roles.c: an opportunity's contact roles, in step with its primary
 * contact.
 *
 * Invariant: for every opportunity o,
 *   o.contact_id IS NULL  <=>  no row of crm.opportunity_contact_role of o is primary
 *   o.contact_id = c      <=>  the row (o, c) exists and is the only primary one.
 *
 * Both sides may be written by anyone who may write them (INSERT, UPDATE,
 * DELETE, COPY, MERGE, foreign-key actions, merges), so three row triggers
 * keep them together:
 *
 *   crm_internal.contact_role_sync()       BEFORE INSERT OR UPDATE on the roles: a
 *                                 row becoming primary unmarks the others
 *                                 (before the one-primary index sees it) and
 *                                 sets o.contact_id; a primary row unmarked or
 *                                 moved clears it (if still its contact);
 *   crm_internal.contact_role_removed()    AFTER DELETE on the roles: the primary row
 *                                 gone clears o.contact_id;
 *   crm_internal.opportunity_contact_sync() AFTER INSERT OR UPDATE OF contact_id on
 *                                 crm.opportunity: the new contact's row is
 *                                 made primary (added with role Other when
 *                                 missing), the others unmarked.
 *
 * Recursion: the statements one side runs on the other are run under a
 * permit (permit.c, CRM_PERMIT_CONTACT_ROLE_SYNC, id = the opportunity);
 * the other side's trigger sees it and does nothing.  The statements run as
 * the extension owner: the write that fired the trigger has passed the
 * caller's checks (row-level security of the deal; a role row may name only
 * a contact the caller sees, crm.may_reference_contact, as contact_id does).
 *
 * Lock: every role write first locks its opportunity FOR NO KEY UPDATE, as
 * an UPDATE of the opportunity does; so two sessions choosing a primary for
 * the same deal queue, and the second one's statements (fresh snapshots in
 * READ COMMITTED) unmark the first one's choice.  In REPEATABLE READ the
 * second one fails instead (serialization failure or the one-primary index).
 *
 * Merges of contacts (repoint.c) fold two role rows of one deal into one,
 * keeping the earliest: if the dropped row was the primary one, the
 * survivor's row becomes primary (or, when the dropped row is the
 * survivor's, the merged contact's row takes it over as it is re-pointed).
 */
#include "crm.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/rel.h"

static CrmQuery lock_opportunity = {
	"SELECT o.contact_id FROM crm.opportunity AS o WHERE o.id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE",
	1, {INT8OID}, NULL
};

/* unmark every primary row of deal $1 but contact $2's ($2 NULL: all) */
static CrmQuery unmark_others = {
	"UPDATE crm.opportunity_contact_role AS r SET is_primary = false"
	" WHERE r.opportunity_id OPERATOR(pg_catalog.=) $1 AND r.is_primary"
	"   AND ($2::pg_catalog.int8 IS NULL OR r.contact_id OPERATOR(pg_catalog.<>) $2)",
	2, {INT8OID, INT8OID}, NULL
};

static CrmQuery set_contact = {
	"UPDATE crm.opportunity AS o SET contact_id = $2 WHERE o.id OPERATOR(pg_catalog.=) $1"
	"   AND (o.contact_id IS NULL OR o.contact_id OPERATOR(pg_catalog.<>) $2)",
	2, {INT8OID, INT8OID}, NULL
};

static CrmQuery clear_contact = {
	"UPDATE crm.opportunity AS o SET contact_id = NULL WHERE o.id OPERATOR(pg_catalog.=) $1"
	"   AND o.contact_id OPERATOR(pg_catalog.=) $2",
	2, {INT8OID, INT8OID}, NULL
};

static CrmQuery make_primary = {
	"INSERT INTO crm.opportunity_contact_role AS r (opportunity_id, contact_id, role, is_primary)"
	" VALUES ($1, $2, 'Other', true)"
	" ON CONFLICT (opportunity_id, contact_id) DO UPDATE SET is_primary = true WHERE NOT r.is_primary",
	2, {INT8OID, INT8OID}, NULL
};

/* the survivor's row of a folded pair takes over the primary mark */
static CrmQuery promote = {
	"UPDATE crm.opportunity_contact_role AS r SET is_primary = true"
	" WHERE r.opportunity_id OPERATOR(pg_catalog.=) $1 AND r.contact_id OPERATOR(pg_catalog.=) $2",
	2, {INT8OID, INT8OID}, NULL
};

/* run one of the statements above for deal opp under the sync permit */
static int
run_synced(CrmQuery *query, int64 opp, int64 contact, bool contact_isnull)
{
	Datum		values[2];
	char		nulls[2];

	crm_param_int64(values, nulls, 0, opp, false);
	crm_param_int64(values, nulls, 1, contact, contact_isnull);
	crm_permit_push(CRM_PERMIT_CONTACT_ROLE_SYNC, opp);
	crm_query_run_as_owner(query, values, nulls, 0);
	crm_permit_pop(CRM_PERMIT_CONTACT_ROLE_SYNC, opp);
	return (int) SPI_processed;
}

/* crm_contact_role_sync -- trigger crm_internal.contact_role_sync() */
PG_FUNCTION_INFO_V1(crm_contact_role_sync);
Datum
crm_contact_role_sync(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "contact_role_sync", true, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	bool		is_update = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event);
	HeapTuple	oldtup = is_update ? trigdata->tg_trigtuple : NULL;
	HeapTuple	newtup = is_update ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	bool		isnull;
	int64		opp = crm_column_int64(newtup, tupdesc, "opportunity_id", &isnull);
	int64		contact = crm_column_int64(newtup, tupdesc, "contact_id", &isnull);
	bool		primary = crm_column_is(newtup, tupdesc, "is_primary", "t");
	int64		old_opp = 0;
	int64		old_contact = 0;
	bool		old_primary = false;
	bool		moved = false;
	int64		survivor;
	Datum		values[1];
	char		nulls[1] = {' '};

	if (isnull)
		return PointerGetDatum(newtup);	/* NOT NULL reports it */
	if (is_update)
	{
		old_opp = crm_column_int64(oldtup, tupdesc, "opportunity_id", &isnull);
		old_contact = crm_column_int64(oldtup, tupdesc, "contact_id", &isnull);
		old_primary = crm_column_is(oldtup, tupdesc, "is_primary", "t");
		moved = old_opp != opp || old_contact != contact;
	}
	if (crm_permitted(CRM_PERMIT_CONTACT_ROLE_SYNC, opp) ||
		(is_update && crm_permitted(CRM_PERMIT_CONTACT_ROLE_SYNC, old_opp)))
		return PointerGetDatum(newtup);

	crm_spi_connect();
	values[0] = Int64GetDatum(opp);
	crm_query_run_as_owner(&lock_opportunity, values, nulls, 1);
	if (SPI_processed == 0)
	{
		crm_spi_finish();
		return PointerGetDatum(newtup);	/* the foreign key reports it */
	}

	/*
	 * A contact merge re-points the merged contact's row onto the survivor,
	 * who is already the deal's contact: its row had been the primary one
	 * and was dropped by the fold (contact_role_removed left contact_id).
	 */
	if (is_update && moved && !primary &&
		crm_permit_row(CRM_PERMIT_MERGE_CONTACT, &survivor) && contact == survivor)
	{
		int64		current = crm_result_int64(0, 1, &isnull);

		if (!isnull && current == survivor)
		{
			newtup = crm_set_column(newtup, tupdesc, "is_primary", BoolGetDatum(true), false);
			primary = true;
		}
	}

	if (is_update && old_primary && (moved || !primary))
		run_synced(&clear_contact, old_opp, old_contact, false);
	if (primary && (!is_update || !old_primary || moved))
	{
		run_synced(&unmark_others, opp, contact, false);
		run_synced(&set_contact, opp, contact, false);
	}
	/* the tuple returned must outlive SPI's memory */
	newtup = SPI_copytuple(newtup);
	crm_spi_finish();
	return PointerGetDatum(newtup);
}

/* crm_contact_role_removed -- trigger crm_internal.contact_role_removed() */
PG_FUNCTION_INFO_V1(crm_contact_role_removed);
Datum
crm_contact_role_removed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "contact_role_removed", false, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	HeapTuple	oldtup = trigdata->tg_trigtuple;
	bool		isnull;
	int64		opp = crm_column_int64(oldtup, tupdesc, "opportunity_id", &isnull);
	int64		contact = crm_column_int64(oldtup, tupdesc, "contact_id", &isnull);
	int64		survivor;

	if (!TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function crm_internal.contact_role_removed() must be fired by DELETE")));
	if (!crm_column_is(oldtup, tupdesc, "is_primary", "t") ||
		crm_permitted(CRM_PERMIT_CONTACT_ROLE_SYNC, opp))
		return PointerGetDatum(NULL);

	crm_spi_connect();
	if (crm_permit_row(CRM_PERMIT_MERGE_CONTACT, &survivor))
	{
		/* a fold dropped the merged contact's primary row: the survivor's takes over */
		if (contact != survivor)
		{
			Datum		values[2] = {Int64GetDatum(opp), Int64GetDatum(survivor)};
			char		nulls[2] = {' ', ' '};

			crm_query_run_as_owner(&promote, values, nulls, 0);
			if (SPI_processed > 0)
			{
				crm_spi_finish();
				return PointerGetDatum(NULL);
			}
		}
		else
		{
			/* the survivor's row was dropped: the merged contact's row takes over */
			crm_spi_finish();
			return PointerGetDatum(NULL);
		}
	}
	run_synced(&clear_contact, opp, contact, false);
	crm_spi_finish();
	return PointerGetDatum(NULL);
}

/* crm_opportunity_contact_sync -- trigger crm_internal.opportunity_contact_sync() */
PG_FUNCTION_INFO_V1(crm_opportunity_contact_sync);
Datum
crm_opportunity_contact_sync(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "opportunity_contact_sync", false, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	bool		is_update = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event);
	HeapTuple	newtup = is_update ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	bool		isnull;
	bool		contact_isnull;
	int64		opp = crm_column_int64(newtup, tupdesc, "id", &isnull);
	int64		contact = crm_column_int64(newtup, tupdesc, "contact_id", &contact_isnull);

	if (is_update ? !crm_column_changed(trigdata->tg_trigtuple, newtup, tupdesc, "contact_id")
		: contact_isnull)
		return PointerGetDatum(NULL);
	if (crm_permitted(CRM_PERMIT_CONTACT_ROLE_SYNC, opp))
		return PointerGetDatum(NULL);

	crm_spi_connect();
	run_synced(&unmark_others, opp, contact, contact_isnull);
	if (!contact_isnull)
		run_synced(&make_primary, opp, contact, false);
	crm_spi_finish();
	return PointerGetDatum(NULL);
}
