/*
 * custom_fields.c: custom fields (crm.custom_field) and the attributes
 * column of the nine tables that have them.
 *
 * crm_internal.custom_fields_check() is a BEFORE INSERT OR UPDATE OF attributes row
 * trigger on crm.lead, account, contact, opportunity, quote, sales_order,
 * activity, product and campaign.  It checks the row's attributes against
 * the registry: every key a field of the object (ZC950), every value of the
 * field's type (ZC951), every required field present (ZC952); it runs no
 * query while the backend's copy of the registry is valid.  An UPDATE
 * that leaves attributes as they were checks nothing: the registry side keeps
 * "every row is valid" true by itself (below), so there is nothing to check.
 *
 * crm_internal.custom_field_guard() fires on the registry itself:
 *   BEFORE ROW (INSERT, UPDATE, DELETE): takes SHARE ROW EXCLUSIVE on the
 *     object's table until the transaction ends.  That lock conflicts with
 *     the ROW EXCLUSIVE lock of every writer of the table: a registry change
 *     waits for the writes in flight and keeps new ones out until it commits.
 *     It also conflicts with itself, so two admins changing the fields of
 *     one object take turns.
 *   AFTER ROW, a constraint trigger DEFERRABLE INITIALLY DEFERRED: at commit
 *     it compares the table with the registry as it then is, under a snapshot
 *     taken at that moment (READ COMMITTED or not): a field gone from the
 *     registry may be held by no row (ZC953), a field's values must all be of
 *     its (new) type and options (ZC951), a required field must be held by
 *     every row (ZC952).  An admin who removes a field clears its values in
 *     the same transaction, before it commits.
 * A writer reads the registry (cached per backend, see registry_of) under a
 * snapshot taken when it reads it (also in REPEATABLE READ), so once it
 * holds its table lock it sees every committed registry change; a registry
 * change that commits later waited for it and sees its rows.  No row of the nine tables can thus hold a value the
 * registry does not allow when either transaction has committed.
 *
 * A restore runs with session_replication_role = replica: neither trigger
 * fires, so the order in which pg_restore loads crm.custom_field and the
 * nine tables does not matter (only a superuser can choose replica mode).
 */
#include "crm.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/inval.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

/* the longest text value, in characters */
#define CUSTOM_TEXT_MAX		2000
/* the most decimal places of a number value */
#define CUSTOM_NUMBER_SCALE	10

/* the objects that have custom fields: the tables with an attributes column */
static const char *const custom_objects[] = {
	"lead", "account", "contact", "opportunity", "quote", "sales_order",
	"activity", "product", "campaign"
};
#define N_CUSTOM_OBJECTS lengthof(custom_objects)

/* one field of the registry */
typedef struct CustomField
{
	char	   *name;
	char	   *type;
	bool		required;
	Datum	   *options;
	int			noptions;
} CustomField;

static CrmQuery registry_of_object = {
	"SELECT f.name, f.type, f.required, f.options FROM crm.custom_field AS f"
	" WHERE f.object OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}, NULL
};

static CrmQuery registry_field = {
	"SELECT f.name, f.type, f.required, f.options FROM crm.custom_field AS f"
	" WHERE f.object OPERATOR(pg_catalog.=) $1 AND f.name OPERATOR(pg_catalog.=) $2",
	2, {TEXTOID, TEXTOID}, NULL
};

/* per object: a row holding the field; the rows holding it; a row lacking it */
static CrmQuery holder_query[N_CUSTOM_OBJECTS];
static CrmQuery values_query[N_CUSTOM_OBJECTS];
static CrmQuery lacking_query[N_CUSTOM_OBJECTS];

/* custom_object_index -- position of an object in custom_objects, or -1 */
static int
custom_object_index(const char *object)
{
	for (int i = 0; i < (int) N_CUSTOM_OBJECTS; i++)
		if (strcmp(custom_objects[i], object) == 0)
			return i;
	return -1;
}

/* set_query -- a statement whose text is made at run time (in TopMemoryContext) */
static void
set_query(CrmQuery *q, char *sql, int nargs, Oid type1, Oid type2)
{
	q->sql = MemoryContextStrdup(TopMemoryContext, sql);
	q->nargs = nargs;
	q->argtypes[0] = type1;
	q->argtypes[1] = type2;
	pfree(sql);
}

/* object_queries -- the per-object statements, texts made once per backend */
static void
object_queries(int i)
{
	const char *t = custom_objects[i];

	if (holder_query[i].sql != NULL)
		return;
	set_query(&values_query[i], psprintf(
		"SELECT t.id, t.attributes OPERATOR(pg_catalog.->) $2 FROM crm.%s AS t"
		" WHERE t.attributes OPERATOR(pg_catalog.@?) $1 ORDER BY t.id", t), 2, JSONPATHOID, TEXTOID);
	set_query(&lacking_query[i], psprintf(
		"SELECT t.id FROM crm.%s AS t"
		" WHERE NOT (t.attributes OPERATOR(pg_catalog.@?) $1) ORDER BY t.id LIMIT 1", t), 1, JSONPATHOID, InvalidOid);
	set_query(&holder_query[i], psprintf(
		"SELECT t.id FROM crm.%s AS t"
		" WHERE t.attributes OPERATOR(pg_catalog.@?) $1 ORDER BY t.id LIMIT 1", t), 1, JSONPATHOID, InvalidOid);
}

/* read_fields -- the fields of the last SPI result (name, type, required, options) */
static CustomField *
read_fields(int *nfields)
{
	int			n = (int) SPI_processed;
	CustomField *fields = palloc0(sizeof(CustomField) * Max(n, 1));

	for (int r = 0; r < n; r++)
	{
		bool		isnull;
		Datum		d;

		fields[r].name = crm_result_text(r, 1);
		fields[r].type = crm_result_text(r, 2);
		fields[r].required = DatumGetBool(crm_result_datum(r, 3, &isnull));
		d = crm_result_datum(r, 4, &isnull);
		if (!isnull)
			deconstruct_array(DatumGetArrayTypePCopy(d), TEXTOID, -1, false,
							  TYPALIGN_INT, &fields[r].options, NULL,
							  &fields[r].noptions);
	}
	*nfields = n;
	return fields;
}

/* valid_date -- s is a date written YYYY-MM-DD, between 0001-01-01 and 9999-12-31 */
static bool
valid_date(const char *s, int len)
{
	int			y,
				m,
				d;

	if (len != 10 || s[4] != '-' || s[7] != '-')
		return false;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return false;
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
	m = (s[5] - '0') * 10 + (s[6] - '0');
	d = (s[8] - '0') * 10 + (s[9] - '0');
	return y >= 1 && m >= 1 && m <= 12 && d >= 1 && d <= day_tab[isleap(y)][m - 1];
}

/*
 * number_problem -- NULL when n is a number BI tools can take: below 1e20 in
 * absolute value, at most 10 decimal places.  (JSON allows 1e131071: a few
 * bytes stored, 131,072 digits in crm.custom_field_value, no double.)
 */
static const char *
number_problem(Numeric n)
{
	static Numeric limit = NULL;
	Datum		abs;

	if (limit == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		limit = DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum("1e20"),
													ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
		MemoryContextSwitchTo(old);
	}
	if (DatumGetInt32(DirectFunctionCall1(numeric_scale, NumericGetDatum(n))) > CUSTOM_NUMBER_SCALE)
		return psprintf("a number has at most %d decimal places", CUSTOM_NUMBER_SCALE);
	abs = DirectFunctionCall1(numeric_abs, NumericGetDatum(n));
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, abs, NumericGetDatum(limit))) >= 0)
		return "a number must be below 1e20 in absolute value";
	return NULL;
}

/*
 * value_problem -- NULL when v is a valid value of field f, else what is
 * wrong with it (for the error's detail)
 */
static const char *
value_problem(const CustomField *f, const JsonbValue *v)
{
	if (v->type == jbvNull)
		return "null is not a value: leave the key out instead";
	if (strcmp(f->type, "number") == 0)
	{
		if (v->type != jbvNumeric)
			return "the value must be a JSON number";
		return number_problem(v->val.numeric);
	}
	if (strcmp(f->type, "boolean") == 0)
		return v->type == jbvBool ? NULL : "the value must be JSON true or false";
	if (v->type != jbvString)
		return psprintf("the value must be a JSON string (%s)",
						strcmp(f->type, "date") == 0 ? "a date written YYYY-MM-DD" :
						strcmp(f->type, "pick") == 0 ? "one of the field's options" : "text");
	if (strcmp(f->type, "text") == 0)
	{
		if (pg_mbstrlen_with_len(v->val.string.val, v->val.string.len) > CUSTOM_TEXT_MAX)
			return psprintf("a text value has at most %d characters", CUSTOM_TEXT_MAX);
		return NULL;
	}
	if (strcmp(f->type, "date") == 0)
		return valid_date(v->val.string.val, v->val.string.len) ? NULL :
			"the value must be a valid date written YYYY-MM-DD";
	/* pick */
	for (int i = 0; i < f->noptions; i++)
	{
		text	   *opt = DatumGetTextPP(f->options[i]);

		if (VARSIZE_ANY_EXHDR(opt) == (Size) v->val.string.len &&
			memcmp(VARDATA_ANY(opt), v->val.string.val, v->val.string.len) == 0)
			return NULL;
	}
	return "the value is not one of the field's options";
}

/* field_path -- the jsonpath '$."name"' (names are lower-case identifiers) */
static Datum
field_path(const char *name)
{
	return DirectFunctionCall1(jsonpath_in, CStringGetDatum(psprintf("$.\"%s\"", name)));
}

/*
 * The registry of each object, cached per backend.  Any change of
 * crm.custom_field invalidates every backend's copy (a relation cache
 * invalidation of the table, sent by crm_internal.custom_field_guard() and delivered
 * at commit; to this backend at its next command).  A writer reads it while
 * it holds its ROW EXCLUSIVE lock on the object's table, which a registry
 * change of the object waits for (SHARE ROW EXCLUSIVE), and taking that lock
 * delivers the invalidations of every change committed before: the copy is
 * never older than the registry the writer must obey.
 */
static MemoryContext registry_cxt = NULL;
static CustomField *registry[N_CUSTOM_OBJECTS];
static int	nregistry[N_CUSTOM_OBJECTS];
static bool registry_valid[N_CUSTOM_OBJECTS];
static bool registry_stale = false;
static Oid	registry_relid = InvalidOid;

static void
registry_invalidate(Datum arg, Oid relid)
{
	(void) arg;
	if (!OidIsValid(relid) || relid == registry_relid)
	{
		memset(registry_valid, 0, sizeof(registry_valid));
		registry_stale = true;
	}
}

/* registry_of -- the fields of object i, from the cache or read now */
static CustomField *
registry_of(int i, int *nfields)
{
	CustomField *fields;
	int			n;
	Datum		args[1];
	MemoryContext old;

	if (registry_cxt == NULL)
	{
		registry_cxt = AllocSetContextCreate(TopMemoryContext, "crm custom fields",
											 ALLOCSET_SMALL_SIZES);
		CacheRegisterRelcacheCallback(registry_invalidate, (Datum) 0);
	}
	if (registry_stale)			/* (also when it came while a copy was read) */
	{
		MemoryContextReset(registry_cxt);
		memset(registry_valid, 0, sizeof(registry_valid));
		registry_stale = false;
	}
	if (!registry_valid[i])
	{
		registry_relid = crm_relation_oid("custom_field");
		crm_spi_connect();
		args[0] = CStringGetTextDatum(custom_objects[i]);
		crm_query_run_latest_as_owner(&registry_of_object, args, NULL, 0);
		fields = read_fields(&n);
		old = MemoryContextSwitchTo(registry_cxt);
		registry[i] = palloc0(sizeof(CustomField) * Max(n, 1));
		for (int f = 0; f < n; f++)
		{
			registry[i][f].name = pstrdup(fields[f].name);
			registry[i][f].type = pstrdup(fields[f].type);
			registry[i][f].required = fields[f].required;
			registry[i][f].noptions = fields[f].noptions;
			registry[i][f].options = palloc(sizeof(Datum) * Max(fields[f].noptions, 1));
			for (int o = 0; o < fields[f].noptions; o++)
				registry[i][f].options[o] = datumCopy(fields[f].options[o], false, -1);
		}
		MemoryContextSwitchTo(old);
		crm_spi_finish();
		nregistry[i] = n;
		registry_valid[i] = true;
	}
	*nfields = nregistry[i];
	return registry[i];
}

/* crm_custom_fields_check -- trigger crm_internal.custom_fields_check() */
PG_FUNCTION_INFO_V1(crm_custom_fields_check);
Datum
crm_custom_fields_check(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "custom_fields_check", true, true);
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	const char *object = RelationGetRelationName(rel);
	bool		is_update = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event);
	HeapTuple	tuple = is_update ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	int			attnum = crm_attnum(desc, "attributes");
	bool		isnull;
	Datum		d;
	Jsonb	   *attributes;
	CustomField *fields;
	int			nfields;
	bool	   *present;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int64		converting;

	if (!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) && !is_update)
		elog(ERROR, "crm_internal.custom_fields_check() must be fired for INSERT or UPDATE");
	if (custom_object_index(object) < 0)
		elog(ERROR, "crm_internal.custom_fields_check() fires only on the tables with custom fields");

	/* nothing changed: the row was valid and the registry keeps it so */
	if (is_update && !crm_attribute_changed(trigdata->tg_trigtuple, tuple, desc, attnum))
		return PointerGetDatum(tuple);

	d = heap_getattr(tuple, attnum, desc, &isnull);
	if (isnull)
		return PointerGetDatum(tuple);	/* the NOT NULL constraint refuses it */
	attributes = DatumGetJsonbP(d);
	if (!JB_ROOT_IS_OBJECT(attributes) || JB_ROOT_IS_SCALAR(attributes))
		ereport(ERROR,
				(errcode(ERRCODE_CRM_CUSTOM_FIELD_VALUE),
				 errmsg("attributes of %s must be a JSON object", object),
				 errdetail("Custom field values are stored as {\"field\": value, ...}."),
				 errtable(rel)));

	fields = registry_of(custom_object_index(object), &nfields);
	present = palloc0(sizeof(bool) * Max(nfields, 1));

	it = JsonbIteratorInit(&attributes->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *key;
		int			f;
		const char *problem;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(v.val.string.val, v.val.string.len);
		if (JsonbIteratorNext(&it, &v, true) != WJB_VALUE)
			elog(ERROR, "custom field \"%s\": no value after the key", key);
		for (f = 0; f < nfields; f++)
			if (strcmp(fields[f].name, key) == 0)
				break;
		if (f == nfields)
			ereport(ERROR,
					(errcode(ERRCODE_CRM_UNKNOWN_CUSTOM_FIELD),
					 errmsg("unknown custom field \"%s\" for %s", key, object),
					 errdetail("crm.custom_field has no field \"%s\" for object %s.", key, object),
					 errhint("An admin defines custom fields in crm.custom_field."),
					 errtable(rel)));
		if ((problem = value_problem(&fields[f], &v)) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_CRM_CUSTOM_FIELD_VALUE),
					 errmsg("invalid value for custom field \"%s\" of %s", key, object),
					 errdetail("Field \"%s\" is of type %s: %s.", key, fields[f].type, problem),
					 errtable(rel)));
		present[f] = true;
	}
	/*
	 * The records a conversion makes get the lead's values after they are
	 * made (crm_carry_lead_attributes checks their required fields then).
	 */
	if (!is_update && (crm_permit_row(CRM_PERMIT_CONVERTING, &converting) ||
					   crm_permit_row(CRM_PERMIT_CONVERSION, &converting)))
		nfields = 0;
	for (int f = 0; f < nfields; f++)
		if (fields[f].required && !present[f])
			ereport(ERROR,
					(errcode(ERRCODE_CRM_CUSTOM_FIELD_REQUIRED),
					 errmsg("custom field \"%s\" of %s is required", fields[f].name, object),
					 errdetail("Every %s must have a value for \"%s\" in attributes.", object, fields[f].name),
					 errtable(rel)));
	return PointerGetDatum(tuple);
}

/*
 * check_field -- at commit: the rows of object agree with what the registry
 * now says of field name
 */
static void
check_field(const char *object, const char *name)
{
	int			i = custom_object_index(object);
	Datum		args[2];
	CustomField *fields;
	int			nfields;

	if (i < 0)
		return;
	object_queries(i);
	args[0] = CStringGetTextDatum(object);
	args[1] = CStringGetTextDatum(name);
	crm_query_run_latest_as_owner(&registry_field, args, NULL, 1);
	fields = read_fields(&nfields);
	args[0] = field_path(name);

	if (nfields == 0)
	{
		crm_query_run_latest_as_owner(&holder_query[i], args, NULL, 1);
		if (SPI_processed > 0)
		{
			bool		isnull;

			ereport(ERROR,
					(errcode(ERRCODE_CRM_CUSTOM_FIELD_IN_USE),
					 errmsg("custom field \"%s\" of %s is still in use", name, object),
					 errdetail("crm.%s row %lld holds a value for it.", object,
							   (long long) crm_result_int64(0, 1, &isnull)),
					 errhint("Clear the values in the same transaction: UPDATE crm.%s SET attributes = attributes - '%s' WHERE attributes ? '%s'.",
							 object, name, name)));
		}
		return;
	}

	crm_query_run_latest_as_owner(&values_query[i], args, NULL, 0);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		Jsonb	   *value = DatumGetJsonbP(crm_result_datum((int) r, 2, &isnull));
		JsonbValue	v;
		const char *problem;

		if (!JsonbExtractScalar(&value->root, &v))
			v.type = jbvBinary;
		if ((problem = value_problem(&fields[0], &v)) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_CRM_CUSTOM_FIELD_VALUE),
					 errmsg("crm.%s row %lld holds an invalid value for custom field \"%s\"",
							object, (long long) crm_result_int64((int) r, 1, &isnull), name),
					 errdetail("Field \"%s\" is of type %s: %s.", name, fields[0].type, problem),
					 errhint("Change or clear those values in the same transaction, or keep the field as it was.")));
	}
	if (fields[0].required)
	{
		crm_query_run_latest_as_owner(&lacking_query[i], args, NULL, 1);
		if (SPI_processed > 0)
		{
			bool		isnull;

			ereport(ERROR,
					(errcode(ERRCODE_CRM_CUSTOM_FIELD_REQUIRED),
					 errmsg("custom field \"%s\" of %s is required", name, object),
					 errdetail("crm.%s row %lld has no value for it.", object,
							   (long long) crm_result_int64(0, 1, &isnull)),
					 errhint("Give every row a value in the same transaction, or make the field required only after that.")));
		}
	}
}

/* lock_object -- SHARE ROW EXCLUSIVE on the table of object, if it has custom fields */
static void
lock_object(HeapTuple tuple, TupleDesc desc)
{
	char	   *object = crm_column_text(tuple, desc, "object");

	if (object != NULL && custom_object_index(object) >= 0)
		LockRelationOid(crm_relation_oid(object), ShareRowExclusiveLock);
}

/* crm_custom_field_guard -- trigger crm_internal.custom_field_guard() on crm.custom_field */
PG_FUNCTION_INFO_V1(crm_custom_field_guard);
Datum
crm_custom_field_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata;
	TupleDesc	desc;
	HeapTuple	oldtup = NULL;
	HeapTuple	newtup = NULL;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "crm_internal.custom_field_guard() must be called as a trigger");
	trigdata = crm_trigger_data(fcinfo, "custom_field_guard",
								TRIGGER_FIRED_BEFORE(((TriggerData *) fcinfo->context)->tg_event),
								true);
	desc = RelationGetDescr(trigdata->tg_relation);
	if (strcmp(RelationGetRelationName(trigdata->tg_relation), "custom_field") != 0)
		elog(ERROR, "crm_internal.custom_field_guard() fires only on crm.custom_field");
	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		newtup = trigdata->tg_trigtuple;
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		oldtup = trigdata->tg_trigtuple;
		newtup = trigdata->tg_newtuple;
	}
	else
		oldtup = trigdata->tg_trigtuple;

	if (TRIGGER_FIRED_BEFORE(trigdata->tg_event))
	{
		/* every backend (this one at its next command) reads the registry again */
		CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
		if (oldtup != NULL)
			lock_object(oldtup, desc);
		if (newtup != NULL)
			lock_object(newtup, desc);
		return PointerGetDatum(newtup != NULL ? newtup : oldtup);
	}

	crm_spi_connect();
	if (oldtup != NULL)
		check_field(crm_column_text(oldtup, desc, "object"), crm_column_text(oldtup, desc, "name"));
	if (newtup != NULL)
		check_field(crm_column_text(newtup, desc, "object"), crm_column_text(newtup, desc, "name"));
	crm_spi_finish();
	return PointerGetDatum(NULL);
}

/*
 * Conversion: the lead's values go to the account, contact and opportunity
 * fields of the same name and type (a pick value only if it is one of the
 * target field's options); a value the target already has is kept.
 */
static const char *const carry_targets[] = {"account", "contact", "opportunity"};
static CrmQuery carry_query[3];
static CrmQuery required_missing_query[3];

static void
carry_queries(int i)
{
	const char *t = carry_targets[i];

	if (carry_query[i].sql != NULL)
		return;
	set_query(&carry_query[i], psprintf(
		"UPDATE crm.%s AS t SET attributes = c.copied OPERATOR(pg_catalog.||) t.attributes"
		"  FROM (SELECT pg_catalog.jsonb_object_agg(e.key, e.value) AS copied"
		"          FROM crm.lead AS l CROSS JOIN LATERAL pg_catalog.jsonb_each(l.attributes) AS e"
		"          JOIN crm.custom_field AS lf ON lf.object OPERATOR(pg_catalog.=) 'lead'"
		"               AND lf.name OPERATOR(pg_catalog.=) e.key"
		"          JOIN crm.custom_field AS f ON f.object OPERATOR(pg_catalog.=) '%s'"
		"               AND f.name OPERATOR(pg_catalog.=) e.key AND f.type OPERATOR(pg_catalog.=) lf.type"
		"         WHERE l.id OPERATOR(pg_catalog.=) $1"
		"           AND (f.type OPERATOR(pg_catalog.<>) 'pick'"
		"                OR (e.value OPERATOR(pg_catalog.#>>) '{}'::pg_catalog.text[]) OPERATOR(pg_catalog.=) ANY (f.options))) AS c"
		" WHERE t.id OPERATOR(pg_catalog.=) $2 AND c.copied IS NOT NULL"
		"   AND (c.copied OPERATOR(pg_catalog.||) t.attributes) OPERATOR(pg_catalog.<>) t.attributes",
		t, t), 2, INT8OID, INT8OID);
	set_query(&required_missing_query[i], psprintf(
		"SELECT f.name FROM crm.custom_field AS f, crm.%s AS t"
		" WHERE t.id OPERATOR(pg_catalog.=) $1 AND f.object OPERATOR(pg_catalog.=) '%s' AND f.required"
		"   AND NOT (t.attributes OPERATOR(pg_catalog.?) f.name) ORDER BY f.name LIMIT 1",
		t, t), 1, INT8OID, InvalidOid);
}

/*
 * What the registry says the carry of target i can do, or false when it
 * cannot tell: *copies, a field of the lead and one of the target share a
 * name and a type (else carry_query[i] finds nothing to copy); *requires,
 * the target has a required field (else required_missing_query[i] finds
 * none).  From the backend's copies of the registry (registry_of), which
 * are those of the registry the statements read: the conversion holds ROW
 * EXCLUSIVE on crm.lead and on the target's table (its own writes took it;
 * taken here again, which is then a no-op), so no change of their fields
 * commits before it does, and each change committed before was delivered
 * when the lock was taken.  In READ COMMITTED only: each statement there
 * takes a snapshot after the lock, while a REPEATABLE READ transaction's
 * snapshot may predate a change of the registry its copy has.
 */
static bool
carry_registry(int i, bool *copies, bool *requires)
{
	int			lead = custom_object_index("lead");
	int			target = custom_object_index(carry_targets[i]);
	CustomField *lf;
	CustomField *tf;
	int			nl;
	int			nt;

	if (IsolationUsesXactSnapshot())
		return false;
	LockRelationOid(crm_relation_oid("lead"), RowExclusiveLock);
	LockRelationOid(crm_relation_oid(carry_targets[i]), RowExclusiveLock);
	/* both copies current (an invalidation that came while one was read: again) */
	do
	{
		lf = registry_of(lead, &nl);
		tf = registry_of(target, &nt);
	} while (registry_stale || !registry_valid[lead]);
	*copies = *requires = false;
	for (int t = 0; t < nt; t++)
	{
		*requires = *requires || tf[t].required;
		for (int l = 0; l < nl && !*copies; l++)
			*copies = strcmp(lf[l].name, tf[t].name) == 0 && strcmp(lf[l].type, tf[t].type) == 0;
	}
	return true;
}

/*
 * may_use_column -- may the caller use column col of table rel with every
 * privilege of mode, each from the table's grants or the column's?
 * (pg_attribute_aclcheck() reads only the column's grants, and is satisfied
 * by any one privilege of its mode.)
 */
static bool
may_use_column(Oid rel, const char *col, Oid caller, AclMode mode)
{
	AttrNumber	attnum = get_attnum(rel, col);

	for (AclMode m = ACL_INSERT; m <= ACL_UPDATE; m <<= 1)
		if ((mode & m) && pg_class_aclcheck(rel, caller, m) != ACLCHECK_OK &&
			pg_attribute_aclcheck(rel, attnum, caller, m) != ACLCHECK_OK)
			return false;
	return true;
}

/*
 * may_skip_caller_carry -- could the caller run carry_query[i] without a
 * permission error?  (Run for a record the conversion did not make, with
 * the caller's rights; a statement that copies nothing still checks the
 * caller's privileges on what it reads and writes.)
 */
static bool
may_skip_caller_carry(int i)
{
	Oid			caller = GetUserId();
	Oid			lead = crm_relation_oid("lead");
	Oid			target = crm_relation_oid(carry_targets[i]);
	Oid			registry = crm_relation_oid("custom_field");
	static const char *const registry_columns[] = {"object", "name", "type", "options"};

	if (!may_use_column(target, "attributes", caller, ACL_SELECT | ACL_UPDATE) ||
		!may_use_column(target, "id", caller, ACL_SELECT) ||
		!may_use_column(lead, "attributes", caller, ACL_SELECT) ||
		!may_use_column(lead, "id", caller, ACL_SELECT))
		return false;
	for (int c = 0; c < (int) lengthof(registry_columns); c++)
		if (!may_use_column(registry, registry_columns[c], caller, ACL_SELECT))
			return false;
	return true;
}

/*
 * crm_carry_lead_attributes -- at the end of a conversion: copy the lead's
 * values, then check the records' required fields (those the conversion made
 * were inserted without that check).  The records the conversion made
 * (made[i]) are written as the extension owner; an existing record the
 * caller named or the duplicate search found only with the caller's rights:
 * seeing an account or a contact (sharing rule) is not the right to change
 * it, so one the caller may not update keeps its values.
 */
void
crm_carry_lead_attributes(int64 lead_id, int64 account_id, int64 contact_id,
						  int64 opportunity_id, bool has_opportunity,
						  const bool made[3])
{
	int64		ids[3] = {account_id, contact_id, has_opportunity ? opportunity_id : 0};

	/* the SQL of a version before 0.7 (the same library serves it) has none */
	if (!OidIsValid(get_relname_relid("custom_field", get_namespace_oid("crm", false))))
		return;
	for (int i = 0; i < 3; i++)
	{
		Datum		values[2] = {Int64GetDatum(lead_id), Int64GetDatum(ids[i])};
		char		nulls[2] = {' ', ' '};
		bool		copies = true;
		bool		requires = true;

		if (ids[i] <= 0)
			continue;
		carry_queries(i);
		/* statements the registry says find nothing are not run */
		if (!carry_registry(i, &copies, &requires))
			copies = requires = true;
		if (made[i] && copies)
			crm_query_run_as_owner(&carry_query[i], values, nulls, 0);
		else if (!made[i] && (copies || !may_skip_caller_carry(i)))
			crm_query_run(&carry_query[i], values, nulls, 0);
		if (!requires)
			continue;
		values[0] = Int64GetDatum(ids[i]);
		crm_query_run_as_owner(&required_missing_query[i], values, nulls, 1);
		if (SPI_processed > 0)
			ereport(ERROR,
					(errcode(ERRCODE_CRM_CUSTOM_FIELD_REQUIRED),
					 errmsg("custom field \"%s\" of %s is required", crm_result_text(0, 1),
							carry_targets[i]),
					 errdetail("Lead %lld has no value for a field of that name and type to carry to the %s.",
							   (long long) lead_id, carry_targets[i]),
					 errhint("Give the lead a value for \"%s\" first, or convert it into an existing %s.",
							 crm_result_text(0, 1), carry_targets[i])));
	}
}

/*
 * crm.find_by_attributes(object, filter) -- the ids of the object's records
 * the caller sees whose attributes contain filter (attributes @> filter),
 * in id order.  Under row-level security the planner does not use the GIN
 * index for a role's own "attributes @> ..." (jsonb containment is not
 * LEAKPROOF, so it may not run before the policies): the candidates are
 * found through the index as the extension owner, and only those the caller
 * sees are returned, with the caller's rights (WHERE id = ANY: int8eq is
 * leakproof, the primary key serves it).
 */
static CrmQuery candidates_query[N_CUSTOM_OBJECTS];
static CrmQuery visible_query[N_CUSTOM_OBJECTS];

PG_FUNCTION_INFO_V1(crm_find_by_attributes);
Datum
crm_find_by_attributes(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *object;
	Jsonb	   *filter;
	int			i;
	Datum		values[2];
	bool		isnull;
	Datum		ids;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", PG_ARGISNULL(0) ? "object" : "filter")));
	object = text_to_cstring(PG_GETARG_TEXT_PP(0));
	filter = PG_GETARG_JSONB_P(1);
	if ((i = custom_object_index(object)) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%.64s\" is not an object with custom fields", object),
				 errhint("Use lead, account, contact, opportunity, quote, sales_order, activity, product or campaign.")));
	if (!JB_ROOT_IS_OBJECT(filter) || JB_ROOT_IS_SCALAR(filter))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("filter must be a JSON object"),
				 errhint("For example '{\"region\": \"EMEA\"}'.")));

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	crm_spi_connect();
	if (candidates_query[i].sql == NULL)
	{
		set_query(&candidates_query[i], psprintf(
			"SELECT pg_catalog.array_agg(t.id) FROM crm.%s AS t"
			" WHERE t.attributes OPERATOR(pg_catalog.@>) $1", custom_objects[i]), 1, JSONBOID, InvalidOid);
		set_query(&visible_query[i], psprintf(
			"SELECT t.id FROM crm.%s AS t WHERE t.id OPERATOR(pg_catalog.=) ANY ($1)"
			"   AND t.attributes OPERATOR(pg_catalog.@>) $2 ORDER BY t.id", custom_objects[i]),
			2, INT8ARRAYOID, JSONBOID);
	}
	values[0] = JsonbPGetDatum(filter);
	crm_query_run_as_owner(&candidates_query[i], values, NULL, 1);
	ids = crm_result_datum(0, 1, &isnull);
	if (!isnull)
	{
		values[0] = ids;
		values[1] = JsonbPGetDatum(filter);
		crm_query_run(&visible_query[i], values, NULL, 0);
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			Datum		id = crm_result_datum((int) r, 1, &isnull);
			bool		nulls[1] = {false};

			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &id, nulls);
		}
	}
	crm_spi_finish();
	return (Datum) 0;
}
