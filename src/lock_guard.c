/*
 * lock_guard.c: LOCK TABLE on the extension's relations, for its owner only.
 *
 * PostgreSQL lets any role with UPDATE, DELETE or TRUNCATE on a table lock
 * it in every mode, ACCESS EXCLUSIVE included; a CRM user (who may delete its
 * own rows) could thus stop every read and write of the CRM, the superuser's
 * too, for as long as its transaction stays open.  This ProcessUtility hook
 * refuses a LOCK TABLE stronger than ROW EXCLUSIVE (the mode every INSERT,
 * UPDATE and DELETE takes anyway) on a relation of schema crm -- named
 * directly, or reached through a view, which LOCK TABLE locks recursively --
 * unless the current role owns that relation (the extension's owner, or a
 * superuser).  It also refuses CREATE RULE on those relations by anyone but
 * their owner before PostgreSQL takes its ACCESS EXCLUSIVE lock (it checks
 * ownership only after the lock, so a refused statement could still queue
 * for it and hold up every later one).
 *
 * A hook works only in a backend that has loaded the library.  The library
 * is loaded by the first call of any crm function; so that the guard is in
 * place from a session's first statement, the extension's installation
 * guide adds crm to session_preload_libraries (README "Role model").
 */
#include "crm.h"

#include "access/relation.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "rewrite/rewriteHandler.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

static ProcessUtility_hook_type prev_process_utility = NULL;

typedef struct LockCheck
{
	Oid			crm_schema;
	LOCKMODE	mode;
	List	   *seen;			/* relations checked already (views refer to
								 * themselves as OLD and NEW, and may share
								 * relations) */
} LockCheck;

static void check_relation(Oid relid, LockCheck *check);

/* a lock mode as LOCK TABLE spells it */
static const char *
lock_mode_name(LOCKMODE mode)
{
	static const char *const names[] = {
		"", "ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE",
		"SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"
	};

	return (mode > 0 && mode < (LOCKMODE) lengthof(names)) ? names[mode] : "unknown";
}

/* walks a view's query as LOCK TABLE does: its relations and sub-queries */
static bool
view_query_walker(Node *node, LockCheck *check)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		Query	   *query = (Query *) node;
		ListCell   *lc;

		foreach(lc, query->rtable)
		{
			RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

			if (rte->rtekind == RTE_RELATION)
				check_relation(rte->relid, check);
		}
		return query_tree_walker(query, view_query_walker, check, 0);
	}
	return expression_tree_walker(node, view_query_walker, check);
}

/*
 * check_relation -- refuse the lock when the relation is one of the
 * extension's and not the current role's own; look into views
 */
static void
check_relation(Oid relid, LockCheck *check)
{
	char		relkind;

	if (list_member_oid(check->seen, relid))
		return;
	check->seen = lappend_oid(check->seen, relid);
	relkind = get_rel_relkind(relid);

	if (get_rel_namespace(relid) == check->crm_schema &&
		!crm_rel_ownercheck(relid, GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to lock crm.%s in %s mode",
						get_rel_name(relid), lock_mode_name(check->mode)),
				 errdetail("Roles other than the owner of the crm extension may lock its relations in ROW EXCLUSIVE mode at most: a stronger lock would stop every other CRM user."),
				 errhint("Write or lock the rows you need instead; maintenance that needs the lock runs as the extension's owner.")));

	if (relkind == RELKIND_VIEW)
	{
		Relation	view = relation_open(relid, AccessShareLock);
		Query	   *query = copyObject(get_view_query(view));

		relation_close(view, AccessShareLock);
		(void) view_query_walker((Node *) query, check);
	}
}

static void
check_lock_statement(LockStmt *stmt)
{
	LockCheck	check;
	ListCell   *lc;

	if (stmt->mode <= RowExclusiveLock)
		return;
	check.crm_schema = get_namespace_oid("crm", true);
	if (!OidIsValid(check.crm_schema))
		return;
	check.mode = stmt->mode;
	check.seen = NIL;
	foreach(lc, stmt->relations)
	{
		Oid			relid = RangeVarGetRelid(lfirst_node(RangeVar, lc), NoLock, true);

		if (OidIsValid(relid))
			check_relation(relid, &check);
	}
}

/*
 * check_rule_statement -- CREATE RULE locks the table in ACCESS EXCLUSIVE
 * mode before PostgreSQL checks that the caller owns it; a non-owner's
 * statement then queues for that lock behind any reader and every later
 * statement on the table queues behind it.  Refuse it before the lock.
 */
static void
check_rule_statement(RuleStmt *stmt)
{
	Oid			crm_schema = get_namespace_oid("crm", true);
	Oid			relid;

	if (!OidIsValid(crm_schema))
		return;
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (OidIsValid(relid) && get_rel_namespace(relid) == crm_schema &&
		!crm_rel_ownercheck(relid, GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of relation crm.%s", get_rel_name(relid)),
				 errdetail("Only the owner of the crm extension may create rules on its relations."),
				 errhint("Nothing is locked: the statement is refused before PostgreSQL locks the table.")));
}

static void
crm_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					ProcessUtilityContext context, ParamListInfo params,
					QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	if (IsA(pstmt->utilityStmt, LockStmt))
		check_lock_statement((LockStmt *) pstmt->utilityStmt);
	else if (IsA(pstmt->utilityStmt, RuleStmt))
		check_rule_statement((RuleStmt *) pstmt->utilityStmt);

	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params,
							 queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
}

void
crm_lock_guard_init(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = crm_process_utility;
}
