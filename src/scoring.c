/*
 * scoring.c: lead scores from the scoring rules (crm.scoring_rule).
 *
 * A rule tests one column of crm.lead: "=, <>, <, <=, >, >=" in the order of
 * the column type's default b-tree operator class (the column's collation
 * for text), "contains" as a substring of the folded text (crm_fold: no
 * accents, lower case), "is null", "is not null".  A lead's score is the sum
 * of the points of the active rules it matches.
 *
 * The active rules are compiled once per backend (column number, compare
 * function, value as a Datum of the column's type) into a cache that the
 * AFTER statement trigger crm_internal.lead_rules_changed() on crm.scoring_rule
 * invalidates in every backend (a relation cache invalidation of the rule
 * table, delivered at commit); a change of crm.lead's columns invalidates
 * it too.  Without rules, scoring a lead costs a flag test.
 *
 * crm_internal.scoring_rule_check() compiles a rule as it is written, so a rule on
 * an unknown or reserved column, with an operator the column's type has
 * not, or with a value that is not of the column's type, is refused then
 * (ZC910; a value the type's input rejects keeps the type's SQLSTATE).
 */
#include "crm.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/typcache.h"

typedef enum ScoreOp
{
	OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_CONTAINS, OP_IS_NULL, OP_NOT_NULL
} ScoreOp;

static const char *const op_names[] = {
	"=", "<>", "<", "<=", ">", ">=", "contains", "is null", "is not null"
};

/* lead columns no rule may test: keys, ownership, the score, stamps, conversion */
static const char *const reserved_columns[] = {
	"id", "owner", "score", "created_at", "updated_at", "converted_at",
	"converted_by", "account_id", "contact_id", "opportunity_id"
};

typedef struct ScoreRule
{
	int64		id;
	char	   *name;
	int			points;
	ScoreOp		op;
	AttrNumber	attnum;
	Oid			collation;
	bool		typbyval;
	int16		typlen;
	Datum		value;			/* the rule's value (not for is [not] null) */
	char	   *folded;			/* contains: the folded value */
	FmgrInfo	cmp;			/* the b-tree compare function */
} ScoreRule;

static MemoryContext rules_cxt = NULL;
static bool rules_valid = false;
static Oid	rules_relid = InvalidOid;	/* crm.scoring_rule when built */
static Oid	lead_relid = InvalidOid;	/* crm.lead when built */
static AttrNumber score_attnum = InvalidAttrNumber;
static ScoreRule *rules = NULL;
static int	nrules = 0;
static bool callback_registered = false;

static CrmQuery read_rules = {
	"SELECT r.id, r.name, r.column_name, r.operator, r.value, r.points"
	" FROM crm.scoring_rule AS r WHERE r.active ORDER BY r.id",
	0, {InvalidOid}, NULL
};

static void
rules_invalidate(Datum arg, Oid relid)
{
	(void) arg;
	if (!OidIsValid(relid) || relid == rules_relid || relid == lead_relid)
		rules_valid = false;
}

pg_noreturn static void
bad_rule(const char *message, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_CRM_BAD_SCORING_RULE),
			 errmsg("%s", message),
			 detail ? errdetail("%s", detail) : 0,
			 errhint("A rule names a column of crm.lead other than id, owner, score, created_at, updated_at, converted_*, account_id, contact_id and opportunity_id, one of the operators =, <>, <, <=, >, >=, contains, is null, is not null, and a value of the column's type (none for is null and is not null).")));
}

/*
 * compile_rule -- a rule as the cache keeps it, allocated in the current
 * memory context; errors (ZC910) for a rule that cannot be applied
 */
static void
compile_rule(Oid leadrel, const char *column, const char *opname, const char *value,
			 ScoreRule *rule)
{
	AttrNumber	attnum;
	Oid			typid;
	Oid			basetype;
	int32		typmod;
	Oid			collation;
	int			op = -1;

	for (int i = 0; i < (int) lengthof(op_names); i++)
		if (opname && strcmp(opname, op_names[i]) == 0)
			op = i;
	if (op < 0)
		bad_rule(psprintf("scoring rule operator \"%s\" is not supported", opname ? opname : ""), NULL);
	for (int i = 0; i < (int) lengthof(reserved_columns); i++)
		if (strcmp(column, reserved_columns[i]) == 0)
			bad_rule(psprintf("scoring rules cannot test lead column \"%s\"", column),
					 "The column is set by the database or by lead conversion.");
	attnum = get_attnum(leadrel, column);
	if (attnum <= 0)
		bad_rule(psprintf("crm.lead has no column \"%s\"", column), NULL);
	get_atttypetypmodcoll(leadrel, attnum, &typid, &typmod, &collation);
	basetype = getBaseType(typid);

	rule->op = (ScoreOp) op;
	rule->attnum = attnum;
	rule->collation = collation;
	rule->folded = NULL;
	get_typlenbyval(basetype, &rule->typlen, &rule->typbyval);
	if (rule->op == OP_IS_NULL || rule->op == OP_NOT_NULL)
	{
		if (value != NULL)
			bad_rule(psprintf("scoring rule \"%s\" takes no value", opname), NULL);
		return;
	}
	if (value == NULL)
		bad_rule(psprintf("scoring rule \"%s\" needs a value", opname), NULL);
	if (rule->op == OP_CONTAINS)
	{
		if (basetype != TEXTOID && basetype != VARCHAROID && basetype != BPCHAROID)
			bad_rule(psprintf("scoring rule \"contains\" needs a text column, not \"%s\"", column), NULL);
		rule->folded = crm_fold(value);
		return;
	}
	{
		TypeCacheEntry *tce = lookup_type_cache(basetype, TYPECACHE_CMP_PROC_FINFO);
		Oid			input;
		Oid			ioparam;

		if (!OidIsValid(tce->cmp_proc_finfo.fn_oid))
			bad_rule(psprintf("lead column \"%s\" cannot be compared with \"%s\"", column, opname),
					 "Its type has no default ordering.");
		fmgr_info_cxt(tce->cmp_proc_finfo.fn_oid, &rule->cmp, CurrentMemoryContext);
		/* the column's own type: a domain's constraints apply to the value */
		getTypeInputInfo(typid, &input, &ioparam);
		rule->value = datumCopy(OidInputFunctionCall(input, unconstify(char *, value), ioparam, typmod),
								rule->typbyval, rule->typlen);
	}
}

/* load_rules -- the cache of the active rules, built when invalid */
static void
load_rules(void)
{
	MemoryContext old;

	if (rules_valid)
		return;
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(rules_invalidate, (Datum) 0);
		callback_registered = true;
	}
	if (rules_cxt == NULL)
		rules_cxt = AllocSetContextCreate(TopMemoryContext, "crm scoring rules",
										  ALLOCSET_SMALL_SIZES);
	MemoryContextReset(rules_cxt);
	rules = NULL;
	nrules = 0;
	lead_relid = crm_relation_oid("lead");
	rules_relid = crm_relation_oid("scoring_rule");
	score_attnum = get_attnum(lead_relid, "score");
	if (score_attnum <= 0)
		elog(ERROR, "crm: column \"score\" of crm.lead is missing");

	crm_spi_connect();
	crm_query_run_as_owner(&read_rules, NULL, NULL, 0);
	old = MemoryContextSwitchTo(rules_cxt);
	rules = palloc0(sizeof(ScoreRule) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		ScoreRule  *r = &rules[nrules];
		bool		isnull;

		r->id = crm_result_int64(i, 1, &isnull);
		r->name = crm_result_text(i, 2);
		r->points = DatumGetInt32(crm_result_datum(i, 6, &isnull));
		/* a rule written before a column it names was dropped is skipped */
		PG_TRY();
		{
			compile_rule(lead_relid, crm_result_text(i, 3), crm_result_text(i, 4),
						 crm_result_text(i, 5), r);
			nrules++;
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(rules_cxt);
			if (geterrcode() != ERRCODE_CRM_BAD_SCORING_RULE)
				PG_RE_THROW();
			FlushErrorState();
		}
		PG_END_TRY();
	}
	MemoryContextSwitchTo(old);
	crm_spi_finish();
	rules_valid = true;
}

/* rule_matches -- does a lead row match one rule? */
static bool
rule_matches(ScoreRule *r, HeapTuple tuple, TupleDesc tupdesc)
{
	bool		isnull;
	Datum		d = heap_getattr(tuple, r->attnum, tupdesc, &isnull);
	int32		c;

	if (r->op == OP_IS_NULL || r->op == OP_NOT_NULL)
		return isnull == (r->op == OP_IS_NULL);
	if (isnull)
		return false;
	if (r->op == OP_CONTAINS)
	{
		char	   *folded = crm_fold(TextDatumGetCString(d));

		return folded != NULL && strstr(folded, r->folded) != NULL;
	}
	c = DatumGetInt32(FunctionCall2Coll(&r->cmp, r->collation, d, r->value));
	switch (r->op)
	{
		case OP_EQ:
			return c == 0;
		case OP_NE:
			return c != 0;
		case OP_LT:
			return c < 0;
		case OP_LE:
			return c <= 0;
		case OP_GT:
			return c > 0;
		case OP_GE:
			return c >= 0;
		default:
			return false;
	}
}

/*
 * crm_lead_score -- the score of a lead row of crm.lead by the active rules;
 * *current is the score the row carries
 */
int
crm_lead_score(HeapTuple tuple, TupleDesc tupdesc, int *current)
{
	int64		sum = 0;
	bool		isnull;
	Datum		d;

	load_rules();
	d = heap_getattr(tuple, score_attnum, tupdesc, &isnull);
	*current = isnull ? 0 : DatumGetInt32(d);
	for (int i = 0; i < nrules; i++)
		if (rule_matches(&rules[i], tuple, tupdesc))
			sum += rules[i].points;
	return (int) Max(Min(sum, PG_INT32_MAX), PG_INT32_MIN);
}

/* crm_lead_score_attnum -- the column number of crm.lead.score */
AttrNumber
crm_lead_score_attnum(void)
{
	load_rules();
	return score_attnum;
}

/* crm_scoring_rule_check -- trigger crm_internal.scoring_rule_check() */
PG_FUNCTION_INFO_V1(crm_scoring_rule_check);
Datum
crm_scoring_rule_check(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "scoring_rule_check", true, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	HeapTuple	tuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;
	ScoreRule	rule;
	char	   *column = crm_column_text(tuple, tupdesc, "column_name");

	compile_rule(crm_relation_oid("lead"), column ? column : "",
				 crm_column_text(tuple, tupdesc, "operator"),
				 crm_column_text(tuple, tupdesc, "value"), &rule);
	return PointerGetDatum(tuple);
}

/* crm_lead_score_rules -- crm.lead_score_rules(lead crm.lead) */
PG_FUNCTION_INFO_V1(crm_lead_score_rules);
Datum
crm_lead_score_rules(PG_FUNCTION_ARGS)
{
	HeapTupleHeader th = PG_GETARG_HEAPTUPLEHEADER(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TupleDesc	tupdesc;
	HeapTupleData tuple;

	InitMaterializedSRF(fcinfo, 0);
	load_rules();
	tupdesc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(th), HeapTupleHeaderGetTypMod(th));
	if (tupdesc->tdtypeid != get_rel_type_id(lead_relid))
		elog(ERROR, "crm: crm.lead_score_rules() takes a row of crm.lead");
	tuple.t_len = HeapTupleHeaderGetDatumLength(th);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = th;
	for (int i = 0; i < nrules; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		if (!rule_matches(&rules[i], &tuple, tupdesc))
			continue;
		values[0] = Int64GetDatum(rules[i].id);
		values[1] = CStringGetTextDatum(rules[i].name);
		values[2] = Int32GetDatum(rules[i].points);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	ReleaseTupleDesc(tupdesc);
	return (Datum) 0;
}

/*
 * crm_rescore_leads -- crm.rescore_leads(): admins; every lead not converted
 * whose stored score differs from the rules' gets the new one (the BEFORE
 * trigger computes it); returns how many
 */
static CrmQuery rescore = {
	"UPDATE crm.lead AS l SET score = l.score"
	" WHERE l.status OPERATOR(pg_catalog.<>) 'Converted'::crm.lead_status"
	" AND l.score OPERATOR(pg_catalog.<>) COALESCE((SELECT pg_catalog.sum(r.points)"
	" FROM crm.lead_score_rules(l) AS r), 0)",
	0, {InvalidOid}, NULL
};

PG_FUNCTION_INFO_V1(crm_rescore_leads);
Datum
crm_rescore_leads(PG_FUNCTION_ARGS)
{
	static const char *const admins[] = {"crm_admin", NULL};
	uint64		n;

	(void) fcinfo;
	crm_require_role(crm_caller(), admins, "rescore leads");
	crm_spi_connect();

	/*
	 * score is a column no role may write (99_privileges.sql): as the owner,
	 * who sees every lead as an admin does (crm_admin_all); the change log
	 * still names the admin (crm_acting_role).
	 */
	crm_query_run_as_owner(&rescore, NULL, NULL, 0);
	n = SPI_processed;
	crm_spi_finish();
	PG_RETURN_INT64((int64) n);
}
