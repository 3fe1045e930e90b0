/*
 * assignment.c: who gets a new lead (crm.assignment_rule, queues), and the
 * trigger that scores and routes leads.
 *
 * crm_internal.lead_score_and_route() is the one BEFORE INSERT OR UPDATE row trigger
 * of crm.lead that does both, in this order: the score first (scoring.c),
 * so an assignment rule's min_score sees the new score; then, on INSERT of
 * a lead whose owner was left out (NULL: the column has no default) or is
 * crm_intake, the owner:
 *
 *   - the first active rule by (priority, id) whose conditions the lead
 *     meets and that yields an owner: assign_to, or the member of its queue
 *     who is active, below capacity (max_open_leads open leads: status
 *     other than Converted and Not Qualified) and least recently assigned
 *     (round-robin: last_assigned NULLS FIRST, then the role's OID);
 *   - else crm.settings.default_lead_owner;
 *   - else the inserting role (a lead without owner), or crm_intake (a
 *     captured lead stays in the intake pool that admins see).
 *
 * Row-level security checks the inserted row against the inserter's team.
 * When the inserter may own any lead (the owner chosen is itself, or it is
 * an admin, a superuser, a role with BYPASSRLS or the tables' owner) the
 * trigger writes the chosen owner; otherwise the lead is inserted owned by
 * the inserter and handed over by the AFTER INSERT statement trigger
 * crm_internal.lead_hand_over(), which updates its owner as the extension owner.
 * That trigger also records every routed lead in crm.lead_assignment.
 *
 * Exactness: choosing a queue member and advancing the queue happen under
 * one lock of the extension's own (CRM_LOCK_LEAD_ROUTING, held to the end
 * of the transaction, see locks.c), and the members and their open-lead
 * counts are read after taking it: in READ COMMITTED by a new statement,
 * in REPEATABLE READ and SERIALIZABLE under a fresh snapshot, and the
 * queue is advanced under one too (the lock orders the routings, so an
 * older transaction snapshot does not make them fail).  So concurrent
 * routings see each other's assignments and counts.  Leads of this backend still waiting for their
 * hand-over count towards their assigned member.
 *
 * Without an active assignment rule and a default owner the routing costs a
 * flag test: the flags are cached per backend and invalidated, like the
 * scoring rules, by crm_internal.lead_rules_changed() on the rule and settings
 * tables.
 */
#include "crm.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

/* what the backend knows about the rules, until an invalidation */
static bool routing_valid = false;
static bool routing_has_rules = false;
static Oid	routing_default_owner = InvalidOid;
static Oid	intake_role = InvalidOid;
static Oid	rule_relid = InvalidOid;
static Oid	settings_relid = InvalidOid;
static bool callbacks_registered = false;
static int	owner_hint = 0;

/* a routed lead of this transaction, recorded (and handed over) after its statement */
typedef struct Routed
{
	int64		lead_id;
	Oid			owner;
	Oid			previous;		/* InvalidOid: inserted without an owner */
	int64		rule_id;		/* 0: the default owner */
	char	   *queue;
	bool		hand_over;
	Oid			assigned_by;
	SubTransactionId subxact;
} Routed;

static Routed *routed = NULL;
static int	nrouted = 0;
static int	maxrouted = 0;

static CrmQuery read_routing = {
	"SELECT EXISTS (SELECT 1 FROM crm.assignment_rule AS r WHERE r.active),"
	" (SELECT s.default_lead_owner::pg_catalog.oid FROM crm.settings AS s)",
	0, {InvalidOid}, NULL
};

static CrmQuery matching_rules = {
	"SELECT r.id, r.assign_to::pg_catalog.oid, r.queue FROM crm.assignment_rule AS r"
	" WHERE r.active"
	" AND (r.source IS NULL OR r.source OPERATOR(pg_catalog.=) $1)"
	" AND (r.country IS NULL OR crm.fold_text(r.country) OPERATOR(pg_catalog.=) crm.fold_text($2))"
	" AND (r.industry IS NULL OR crm.fold_text(r.industry) OPERATOR(pg_catalog.=) crm.fold_text($3))"
	" AND (r.campaign_id IS NULL OR r.campaign_id OPERATOR(pg_catalog.=) $4)"
	" AND (r.min_score IS NULL OR r.min_score OPERATOR(pg_catalog.<=) $5)"
	" ORDER BY r.priority, r.id",
	5, {TEXTOID, TEXTOID, TEXTOID, INT8OID, INT4OID}, NULL
};

static CrmQuery queue_members = {
	"SELECT m.member::pg_catalog.oid, m.active, m.max_open_leads, m.last_assigned,"
	" CASE WHEN m.active AND m.max_open_leads IS NOT NULL THEN"
	" (SELECT pg_catalog.count(*) FROM crm.lead AS l"
	"   WHERE l.owner::pg_catalog.oid OPERATOR(pg_catalog.=) m.member::pg_catalog.oid"
	"     AND l.status OPERATOR(pg_catalog.<>) ALL (ARRAY['Converted', 'Not Qualified']::crm.lead_status[])"
	"     AND l.id OPERATOR(pg_catalog.<>) $2) END"
	" FROM crm.assignment_queue_member AS m WHERE m.queue OPERATOR(pg_catalog.=) $1"
	" ORDER BY m.last_assigned NULLS FIRST, m.member::pg_catalog.oid",
	2, {TEXTOID, INT8OID}, NULL
};

static CrmQuery advance_queue = {
	"UPDATE crm.assignment_queue_member AS m SET last_assigned = $3"
	" WHERE m.queue OPERATOR(pg_catalog.=) $1 AND m.member::pg_catalog.oid OPERATOR(pg_catalog.=) $2",
	3, {TEXTOID, OIDOID, INT8OID}, NULL
};

static CrmQuery set_owner = {
	"UPDATE crm.lead AS l SET owner = $2::pg_catalog.regrole WHERE l.id OPERATOR(pg_catalog.=) $1",
	2, {INT8OID, OIDOID}, NULL
};

static CrmQuery record_assignment = {
	"INSERT INTO crm.lead_assignment (lead_id, assigned_by, rule_id, queue, owner, previous_owner)"
	" SELECT $1, $2::pg_catalog.regrole, $3, $4, $5::pg_catalog.regrole, $6::pg_catalog.regrole"
	" WHERE EXISTS (SELECT 1 FROM crm.lead AS l WHERE l.id OPERATOR(pg_catalog.=) $1)",
	6, {INT8OID, OIDOID, INT8OID, TEXTOID, OIDOID, OIDOID}, NULL
};

static CrmQuery lead_for_update = {
	"SELECT l.owner::pg_catalog.oid, l.status OPERATOR(pg_catalog.=) 'Converted'::crm.lead_status,"
	" l.source, l.country, l.industry, l.campaign_id, l.score"
	" FROM crm.lead AS l WHERE l.id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
	1, {INT8OID}, NULL
};

static void
routing_invalidate(Datum arg, Oid relid)
{
	(void) arg;
	if (!OidIsValid(relid) || relid == rule_relid || relid == settings_relid)
		routing_valid = false;
}

static void
roles_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	(void) arg;
	(void) cacheid;
	(void) hashvalue;
	routing_valid = false;
}

/* the routed leads of an aborted (sub)transaction are forgotten */
static void
routed_xact_callback(XactEvent event, void *arg)
{
	(void) arg;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT)
	{
		routed = NULL;			/* allocated in TopTransactionContext */
		nrouted = maxrouted = 0;
	}
}

static void
routed_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	(void) parentSubid;
	(void) arg;
	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	while (nrouted > 0 && routed[nrouted - 1].subxact >= mySubid)
		nrouted--;
}

/* load_routing -- whether rules exist, the default owner, crm_intake */
static void
load_routing(void)
{
	bool		isnull;

	if (routing_valid)
		return;
	if (!callbacks_registered)
	{
		CacheRegisterRelcacheCallback(routing_invalidate, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHOID, roles_invalidate, (Datum) 0);
		RegisterXactCallback(routed_xact_callback, NULL);
		RegisterSubXactCallback(routed_subxact_callback, NULL);
		callbacks_registered = true;
	}
	rule_relid = crm_relation_oid("assignment_rule");
	settings_relid = crm_relation_oid("settings");
	intake_role = get_role_oid("crm_intake", true);
	crm_spi_connect();
	crm_query_run_as_owner(&read_routing, NULL, NULL, 0);
	routing_has_rules = SPI_processed == 1 && DatumGetBool(crm_result_datum(0, 1, &isnull));
	routing_default_owner = InvalidOid;
	if (SPI_processed == 1)
	{
		Datum		d = crm_result_datum(0, 2, &isnull);

		if (!isnull)
			routing_default_owner = DatumGetObjectId(d);
	}
	crm_spi_finish();
	routing_valid = true;
}

static bool
role_exists(Oid role)
{
	return OidIsValid(role) && SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(role));
}

/* read_latest -- a read-only statement as the extension owner, seeing the latest commits */
static void
read_latest(CrmQuery *query, Datum *values, const char *nulls)
{
	if (!crm_query_run_fresh(query, values, nulls, 0))
		crm_query_run_as_owner(query, values, nulls, 0);
}

/* pending_for -- leads of this transaction assigned to role and not handed over yet */
static int64
pending_for(Oid role)
{
	int64		n = 0;

	for (int i = 0; i < nrouted; i++)
		if (routed[i].owner == role && routed[i].hand_over)
			n++;
	return n;
}

/*
 * queue_member -- the next member of a queue (round-robin, skipping inactive
 * members and those at capacity), advanced; InvalidOid when none is
 * available.  Runs under the routing lock.
 */
static Oid
queue_member(const char *queue, int64 lead_id)
{
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	int64		last = 0;
	Oid			chosen = InvalidOid;
	CrmLock		lock = crm_lock_global(CRM_LOCK_LEAD_ROUTING);

	crm_lock_all(&lock, 1);
	values[0] = CStringGetTextDatum(queue);
	values[1] = Int64GetDatum(lead_id);
	read_latest(&queue_members, values, nulls);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			member = DatumGetObjectId(crm_result_datum(i, 1, &isnull));
		bool		active = DatumGetBool(crm_result_datum(i, 2, &isnull));
		Datum		cap = crm_result_datum(i, 3, &isnull);
		bool		unlimited = isnull;
		int64		assigned = crm_result_int64(i, 4, &isnull);
		int64		open = crm_result_int64(i, 5, &isnull);

		last = Max(last, assigned);
		if (OidIsValid(chosen) || !active || !role_exists(member))
			continue;
		if (!unlimited && open + pending_for(member) >= DatumGetInt32(cap))
			continue;
		chosen = member;
	}
	if (!OidIsValid(chosen))
		return InvalidOid;
	values[1] = ObjectIdGetDatum(chosen);
	values[2] = Int64GetDatum(last + 1);
	/* under the latest snapshot too: the rows as the lock's last holder left them */
	crm_query_run_latest_as_owner(&advance_queue, values, nulls, 0);
	return chosen;
}

/*
 * choose_owner -- the owner the first matching rule gives a lead with these
 * values; false when none does.  lead_id is left out of open-lead counts.
 */
static bool
choose_owner(const char *source, const char *country, const char *industry,
			 int64 campaign_id, bool no_campaign, int score, int64 lead_id,
			 Oid *owner, int64 *rule_id, char **queue)
{
	Datum		values[5];
	char		nulls[5];
	int			n;
	int64	   *ids;
	Oid		   *targets;
	char	  **queues;

	crm_param_text(values, nulls, 0, source);
	crm_param_text(values, nulls, 1, country);
	crm_param_text(values, nulls, 2, industry);
	crm_param_int64(values, nulls, 3, campaign_id, no_campaign);
	values[4] = Int32GetDatum(score);
	nulls[4] = ' ';
	crm_spi_connect();
	crm_query_run_as_owner(&matching_rules, values, nulls, 0);
	n = (int) SPI_processed;
	ids = palloc(sizeof(int64) * Max(n, 1));
	targets = palloc(sizeof(Oid) * Max(n, 1));
	queues = palloc(sizeof(char *) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		bool		isnull;
		Datum		d;

		ids[i] = crm_result_int64(i, 1, &isnull);
		d = crm_result_datum(i, 2, &isnull);
		targets[i] = isnull ? InvalidOid : DatumGetObjectId(d);
		queues[i] = crm_result_text(i, 3);
	}
	for (int i = 0; i < n; i++)
	{
		Oid			chosen = queues[i] ? queue_member(queues[i], lead_id) : targets[i];

		if (!role_exists(chosen))
			continue;
		*owner = chosen;
		*rule_id = ids[i];
		*queue = queues[i] ? MemoryContextStrdup(TopTransactionContext, queues[i]) : NULL;
		crm_spi_finish();
		return true;
	}
	crm_spi_finish();
	return false;
}

/* may_own_any -- may the current role insert a lead owned by anyone? */
static bool
may_own_any(void)
{
	Oid			me = GetUserId();
	Oid			admin = get_role_oid("crm_admin", true);

	return superuser() || has_bypassrls_privilege(me) || me == crm_schema_owner() ||
		(OidIsValid(admin) && has_privs_of_role(me, admin));
}

static void
remember(int64 lead_id, Oid owner, Oid previous, int64 rule_id, char *queue, bool hand_over)
{
	if (nrouted == maxrouted)
	{
		maxrouted = Max(16, maxrouted * 2);
		routed = routed == NULL ?
			MemoryContextAlloc(TopTransactionContext, sizeof(Routed) * maxrouted) :
			repalloc(routed, sizeof(Routed) * maxrouted);
	}
	routed[nrouted].lead_id = lead_id;
	routed[nrouted].owner = owner;
	routed[nrouted].previous = previous;
	routed[nrouted].rule_id = rule_id;
	routed[nrouted].queue = queue;
	routed[nrouted].hand_over = hand_over;
	routed[nrouted].assigned_by = crm_acting_role();
	routed[nrouted].subxact = GetCurrentSubTransactionId();
	nrouted++;
}

/* route -- the new lead row with its owner chosen (see the header) */
static HeapTuple
route(HeapTuple tuple, TupleDesc tupdesc, int score)
{
	int			attnum = crm_attnum_hint(tupdesc, "owner", &owner_hint);
	bool		isnull;
	Datum		d = heap_getattr(tuple, attnum, tupdesc, &isnull);
	Oid			previous = isnull ? InvalidOid : DatumGetObjectId(d);
	Oid			owner = InvalidOid;
	int64		rule_id = 0;
	char	   *queue = NULL;
	bool		no_campaign;
	int64		campaign_id;
	bool		hand_over;
	Datum		value;

	if (OidIsValid(previous))
	{
		load_routing();
		if (previous != intake_role)
			return tuple;		/* an owner given explicitly is kept */
	}
	else
		load_routing();
	if (routing_has_rules)
	{
		campaign_id = crm_column_int64(tuple, tupdesc, "campaign_id", &no_campaign);
		if (!choose_owner(crm_column_text(tuple, tupdesc, "source"),
						  crm_column_text(tuple, tupdesc, "country"),
						  crm_column_text(tuple, tupdesc, "industry"),
						  campaign_id, no_campaign, score, 0,
						  &owner, &rule_id, &queue))
			owner = InvalidOid;
	}
	if (!OidIsValid(owner) && role_exists(routing_default_owner))
		owner = routing_default_owner;
	if (!OidIsValid(owner))
	{
		/* nobody routes it: the inserter keeps it, a capture stays in the intake pool */
		if (OidIsValid(previous))
			return tuple;
		value = ObjectIdGetDatum(GetUserId());
		isnull = false;
		return heap_modify_tuple_by_cols(tuple, tupdesc, 1, &attnum, &value, &isnull);
	}
	hand_over = owner != GetUserId() && !may_own_any();
	remember(crm_column_int64(tuple, tupdesc, "id", &isnull), owner, previous,
			 rule_id, queue, hand_over);
	value = ObjectIdGetDatum(hand_over ? GetUserId() : owner);
	isnull = false;
	return heap_modify_tuple_by_cols(tuple, tupdesc, 1, &attnum, &value, &isnull);
}

/* crm_lead_score_and_route -- trigger crm_internal.lead_score_and_route() */
PG_FUNCTION_INFO_V1(crm_lead_score_and_route);
Datum
crm_lead_score_and_route(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "lead_score_and_route", true, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	bool		insert = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event);
	HeapTuple	tuple = insert ? trigdata->tg_trigtuple : trigdata->tg_newtuple;
	int			current;
	int			score = crm_lead_score(tuple, tupdesc, &current);

	if (!insert)
	{
		bool		isnull;
		Datum		d = heap_getattr(trigdata->tg_trigtuple, crm_lead_score_attnum(),
									 tupdesc, &isnull);
		int			old = isnull ? 0 : DatumGetInt32(d);

		/* a converted lead's score is frozen */
		if ((score != current || current != old) &&
			crm_column_is(trigdata->tg_trigtuple, tupdesc, "status", "Converted"))
			score = old;
	}
	if (score != current)
		tuple = crm_set_column(tuple, tupdesc, "score", Int32GetDatum(score), false);
	if (insert)
		tuple = route(tuple, tupdesc, score);
	return PointerGetDatum(tuple);
}

/*
 * log_assignment -- one row of crm.lead_assignment, as the extension owner;
 * none for a lead that was not inserted after all (a later BEFORE trigger
 * skipped the row, or INSERT ... ON CONFLICT updated another)
 */
static void
log_assignment(int64 lead_id, Oid assigned_by, int64 rule_id, const char *queue,
			   Oid owner, Oid previous)
{
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};

	values[0] = Int64GetDatum(lead_id);
	values[1] = ObjectIdGetDatum(assigned_by);
	crm_param_int64(values, nulls, 2, rule_id, rule_id == 0);
	crm_param_text(values, nulls, 3, queue);
	values[4] = ObjectIdGetDatum(owner);
	values[5] = ObjectIdGetDatum(previous);
	nulls[5] = OidIsValid(previous) ? ' ' : 'n';
	crm_query_run_as_owner(&record_assignment, values, nulls, 0);
}

/* give -- a lead's new owner, written as the extension owner */
static void
give(int64 lead_id, Oid owner)
{
	Datum		values[2];

	values[0] = Int64GetDatum(lead_id);
	values[1] = ObjectIdGetDatum(owner);
	crm_query_run_as_owner(&set_owner, values, NULL, 0);
}

/* crm_lead_hand_over -- trigger crm_internal.lead_hand_over() */
PG_FUNCTION_INFO_V1(crm_lead_hand_over);
Datum
crm_lead_hand_over(PG_FUNCTION_ARGS)
{
	Routed	   *todo;
	int			ntodo = nrouted;

	(void) crm_trigger_data(fcinfo, "lead_hand_over", false, false);
	if (ntodo == 0)
		return PointerGetDatum(NULL);
	/* taken off the list first: the statements below fire triggers too */
	todo = palloc(sizeof(Routed) * ntodo);
	memcpy(todo, routed, sizeof(Routed) * ntodo);
	nrouted = 0;
	crm_spi_connect();
	for (int i = 0; i < ntodo; i++)
	{
		if (todo[i].hand_over)
			give(todo[i].lead_id, todo[i].owner);
		log_assignment(todo[i].lead_id, todo[i].assigned_by, todo[i].rule_id,
					   todo[i].queue, todo[i].owner, todo[i].previous);
	}
	crm_spi_finish();
	return PointerGetDatum(NULL);
}

/* crm_lead_rules_changed -- trigger crm_internal.lead_rules_changed() */
PG_FUNCTION_INFO_V1(crm_lead_rules_changed);
Datum
crm_lead_rules_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "lead_rules_changed", false, false);

	/* every backend (this one at its next command) reads the rules again */
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	return PointerGetDatum(NULL);
}

/* crm_assign_lead -- crm.assign_lead(lead_id bigint) */
PG_FUNCTION_INFO_V1(crm_assign_lead);
Datum
crm_assign_lead(PG_FUNCTION_ARGS)
{
	static const char *const assigners[] = {"crm_admin", "crm_manager", NULL};
	Oid			caller = crm_caller();
	int64		lead_id;
	Datum		values[1];
	bool		isnull;
	Oid			current;
	Oid			owner = InvalidOid;
	int64		rule_id = 0;
	char	   *queue = NULL;
	char	   *source;
	char	   *country;
	char	   *industry;
	int64		campaign_id;
	bool		no_campaign;
	int			score;

	crm_require_role(caller, assigners, "assign leads");
	lead_id = crm_required_id(fcinfo, 0, "lead_id");
	load_routing();
	crm_spi_connect();
	/* locked with the caller's rights: only a lead the caller may change */
	values[0] = Int64GetDatum(lead_id);
	crm_query_run(&lead_for_update, values, NULL, 0);
	if (SPI_processed == 0)
		crm_not_visible(ERRCODE_CRM_LEAD_NOT_FOUND, "lead", lead_id, caller);
	current = DatumGetObjectId(crm_result_datum(0, 1, &isnull));
	if (DatumGetBool(crm_result_datum(0, 2, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_CRM_LEAD_ALREADY_CONVERTED),
				 errmsg("lead %lld is already converted", (long long) lead_id),
				 errdetail("A converted lead keeps the owner it had when it was converted.")));
	source = crm_result_text(0, 3);
	country = crm_result_text(0, 4);
	industry = crm_result_text(0, 5);
	campaign_id = crm_result_int64(0, 6, &no_campaign);
	score = DatumGetInt32(crm_result_datum(0, 7, &isnull));
	if (!routing_has_rules ||
		!choose_owner(source, country, industry, campaign_id, no_campaign, score, lead_id,
					  &owner, &rule_id, &queue))
		owner = role_exists(routing_default_owner) ? routing_default_owner : InvalidOid;
	if (!OidIsValid(owner))
	{
		crm_spi_finish();
		PG_RETURN_OID(current);
	}
	if (owner != current)
		give(lead_id, owner);
	log_assignment(lead_id, caller, rule_id, queue, owner, current);
	crm_spi_finish();
	PG_RETURN_OID(owner);
}
