/*
 * change_log.c: the change log, crm.change_log, kept by the database.
 *
 * crm_internal.record_change()       AFTER INSERT/UPDATE/DELETE (row) and TRUNCATE
 *     (statement): one crm.change_log row with the changed fields; a value
 *     longer than 2,000 bytes is kept as its beginning, length and SHA-256.
 * crm_internal.audit_append_only()   BEFORE UPDATE/DELETE (row) and TRUNCATE
 *     (statement) on crm.change_log and crm.erasure_log: the audit trail only
 *     grows, even for its owner.  The two sanctioned exceptions hold a
 *     permit: crm.erase_person() (erasure.c) rewrites values of change-log
 *     entries, crm.purge_change_log() (retention.c) deletes old ones.
 *
 * "By whom" is the role the statement runs as.  The rows are written as the
 * owner of schema crm, so users need no write privilege on the change log
 * and cannot forge or remove entries.
 */
#include "crm.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/rel.h"

static CrmQuery insert_change_log = {
	"INSERT INTO crm.change_log (table_name, row_id, operation, changes, changed_by) "
	"VALUES ($1, $2, $3, $4::pg_catalog.jsonb, $5)",
	5, {REGCLASSOID, INT8OID, TEXTOID, TEXTOID, REGROLEOID}, NULL
};

/*
 * A value longer than this (in bytes, as text) is kept in the change log as
 * its first characters, at most this many bytes, with its length and
 * SHA-256: {"truncated": "<first characters>", "bytes": n, "sha256": "<hex>"}.
 * Entries are never removed (append-only), so what one write can add to the
 * log is bounded; the hash still tells which value it was.
 */
#define CHANGE_LOG_VALUE_MAX	2000

/* append_json_value -- a column's text as a JSON string, or bounded (above) */
static void
append_json_value(StringInfo buf, const char *value)
{
	size_t		len;
	int			prefix;
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	char		hex[PG_SHA256_DIGEST_LENGTH * 2 + 1];
	pg_cryptohash_ctx *ctx;
	char	   *clipped;

	if (value == NULL)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	len = strlen(value);
	if (len <= CHANGE_LOG_VALUE_MAX)
	{
		escape_json(buf, value);
		return;
	}

	ctx = pg_cryptohash_create(PG_SHA256);
	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) value, len) < 0 ||
		pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
		elog(ERROR, "crm: could not compute SHA-256: %s", pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
	hex_encode((const char *) digest, sizeof(digest), hex);
	hex[sizeof(hex) - 1] = '\0';

	/* whole characters only */
	prefix = pg_mbcliplen(value, (int) Min(len, (size_t) INT_MAX), CHANGE_LOG_VALUE_MAX);
	clipped = pnstrdup(value, prefix);
	appendStringInfoString(buf, "{\"truncated\": ");
	escape_json(buf, clipped);
	appendStringInfo(buf, ", \"bytes\": %zu, \"sha256\": \"%s\"}", len, hex);
	pfree(clipped);
}

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

/*
 * changes_json -- the changes of one row operation as a JSON object:
 * UPDATE: {"col": {"old": ..., "new": ...}} for every changed column except
 * the updated_at stamp; DELETE: {"col": value} of the removed row; INSERT: {}.
 * Returns NULL for an UPDATE that changed nothing.
 */
static char *
changes_json(TriggerData *trigdata)
{
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	bool		is_update = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event);
	bool		is_delete = TRIGGER_FIRED_BY_DELETE(trigdata->tg_event);
	StringInfoData buf;
	int			nchanges = 0;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; (is_update || is_delete) && i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		char	   *oldtext;

		/* generated columns and search_text (search.c) follow from the others */
		if (att->attisdropped || att->attgenerated || strcmp(NameStr(att->attname), "search_text") == 0)
			continue;
		oldtext = crm_attribute_text(trigdata->tg_trigtuple, tupdesc, i + 1);
		if (is_update)
		{
			char	   *newtext;

			if (strcmp(NameStr(att->attname), "updated_at") == 0)
				continue;
			newtext = crm_attribute_text(trigdata->tg_newtuple, tupdesc, i + 1);
			if ((oldtext == NULL && newtext == NULL) ||
				(oldtext != NULL && newtext != NULL && strcmp(oldtext, newtext) == 0))
				continue;
			if (nchanges++ > 0)
				appendStringInfoString(&buf, ", ");
			escape_json(&buf, NameStr(att->attname));
			appendStringInfoString(&buf, ": {\"old\": ");
			append_json_value(&buf, oldtext);
			appendStringInfoString(&buf, ", \"new\": ");
			append_json_value(&buf, newtext);
			appendStringInfoChar(&buf, '}');
		}
		else if (oldtext != NULL)
		{
			if (nchanges++ > 0)
				appendStringInfoString(&buf, ", ");
			escape_json(&buf, NameStr(att->attname));
			appendStringInfoString(&buf, ": ");
			append_json_value(&buf, oldtext);
		}
	}
	appendStringInfoChar(&buf, '}');
	if (is_update && nchanges == 0)
		return NULL;
	return buf.data;
}

/* crm_record_change -- trigger crm_internal.record_change() */
PG_FUNCTION_INFO_V1(crm_record_change);
Datum
crm_record_change(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "record_change", false, false);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	TriggerEvent event = trigdata->tg_event;
	const char *operation;
	char	   *changes = "{}";
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	bool		isnull = true;

	if (TRIGGER_FIRED_BY_TRUNCATE(event))
		operation = "TRUNCATE";
	else if (!TRIGGER_FIRED_FOR_ROW(event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errtable(trigdata->tg_relation),
				 errmsg("crm_internal.record_change() must be fired FOR EACH ROW, or FOR EACH STATEMENT on TRUNCATE")));
	else
	{
		operation = TRIGGER_FIRED_BY_INSERT(event) ? "INSERT" :
			TRIGGER_FIRED_BY_UPDATE(event) ? "UPDATE" : "DELETE";
		changes = changes_json(trigdata);
		if (changes == NULL)
			return PointerGetDatum(NULL);	/* an UPDATE that changed nothing */
		values[1] = row_id_datum(TRIGGER_FIRED_BY_UPDATE(event) ?
								 trigdata->tg_newtuple : trigdata->tg_trigtuple,
								 tupdesc, &isnull);
	}

	values[0] = ObjectIdGetDatum(RelationGetRelid(trigdata->tg_relation));
	nulls[1] = isnull ? 'n' : ' ';
	values[2] = CStringGetTextDatum(operation);
	values[3] = CStringGetTextDatum(changes);
	values[4] = ObjectIdGetDatum(crm_acting_role());

	crm_spi_connect();
	crm_query_run_as_owner(&insert_change_log, values, nulls, 0);
	crm_spi_finish();

	return PointerGetDatum(NULL);
}

/* crm_audit_append_only -- trigger crm_internal.audit_append_only() */
PG_FUNCTION_INFO_V1(crm_audit_append_only);
Datum
crm_audit_append_only(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "audit_append_only", true, false);
	TriggerEvent event = trigdata->tg_event;

	/*
	 * The sanctioned exceptions, for crm.change_log only: crm.erase_person()
	 * rewrites the values of entries, crm.purge_change_log() deletes old
	 * entries, each while it holds its permit (permit.c).
	 */
	if (TRIGGER_FIRED_FOR_ROW(event) &&
		strcmp(RelationGetRelationName(trigdata->tg_relation), "change_log") == 0)
	{
		TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
		bool		isnull;
		int64		id = crm_column_int64(trigdata->tg_trigtuple, tupdesc, "id", &isnull);

		if (TRIGGER_FIRED_BY_UPDATE(event) && crm_permitted(CRM_PERMIT_AUDIT_ERASE, id))
			return PointerGetDatum(trigdata->tg_newtuple);
		if (TRIGGER_FIRED_BY_DELETE(event) && crm_permitted(CRM_PERMIT_AUDIT_PURGE, id))
			return PointerGetDatum(trigdata->tg_trigtuple);
	}

	ereport(ERROR,
			(errcode(ERRCODE_CRM_AUDIT_APPEND_ONLY),
			 errtable(trigdata->tg_relation),
			 errmsg("the audit trail %s is append-only", RelationGetRelationName(trigdata->tg_relation)),
			 errdetail("%s is not allowed on it.",
					   TRIGGER_FIRED_BY_UPDATE(event) ? "UPDATE" :
					   TRIGGER_FIRED_BY_DELETE(event) ? "DELETE" : "TRUNCATE"),
			 errhint("Entries are written by the extension's triggers and never changed.")));
	PG_RETURN_NULL();
}
