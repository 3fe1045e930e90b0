/*
 * compat.h: what differs between the PostgreSQL major versions crm is built
 * and tested on (15, 17 and 18; see README.md, "Supported versions").
 *
 * This is the only place that tests PG_VERSION_NUM: the C files use the
 * names below and read the same on every version.
 *
 *   CRM_BACKEND_ID          this backend's id, 1 .. MaxBackends
 *                           (17: MyBackendId became the 0-based MyProcNumber)
 *   CRM_LOCAL_XID           this backend's local transaction id
 *                           (17: MyProc->lxid moved to MyProc->vxid.lxid)
 *   CRM_REL_FILE(rel)       the relation's physical file, for ReadRecentBuffer
 *                           (16: rd_node became rd_locator)
 *   CrmUpdateIndexes        what table_tuple_update says about the indexes
 *                           (16: a bool became TU_UpdateIndexes, which adds
 *                           "only the summarizing indexes" for HOT updates)
 *   crm_update_is_hot(u)    the new version is in the old one's HOT chain
 *   crm_update_needs_indexes(u)  some index needs entries for it
 *   crm_insert_index_tuples(rri, slot, estate, u)
 *                           ExecInsertIndexTuples for an updated row
 *                           (16: a last argument, onlySummarizing)
 *   crm_rel_ownercheck(relid, role)
 *                           role owns the relation (or is a superuser)
 *                           (16: pg_class_ownercheck became object_ownercheck)
 *   pg_noreturn             before a function that never returns
 *                           (18: replaced pg_attribute_noreturn() after it)
 *   crm_primary_key_index(rel)
 *                           the relation's (not deferrable) primary key index
 *                           (18: a second argument, deferrable_ok)
 *   crm_index_beginscan(heap, index, snapshot, nkeys)
 *                           index_beginscan without ORDER BY keys
 *                           (18: an argument for instrumentation)
 *   crm_result_relation(estate, rel)
 *                           the executor state's range table of the one
 *                           relation the extension opened itself (with
 *                           RowExclusiveLock), and its ResultRelInfo, for
 *                           inserting and updating rows below SQL
 *                           (16: its RTEPermissionInfo; 18: the unpruned
 *                           relations)
 *   crm_insert_new_index_tuples(rri, slot, estate)
 *                           ExecInsertIndexTuples for an inserted row
 *                           (16: a last argument, onlySummarizing)
 */
#ifndef CRM_COMPAT_H
#define CRM_COMPAT_H

#include "postgres.h"

#include "access/genam.h"
#include "access/tableam.h"
#include "catalog/pg_class.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/bitmapset.h"
#include "nodes/makefuncs.h"
#include "parser/parse_relation.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/rel.h"
#include "utils/relcache.h"

#if PG_VERSION_NUM < 150000
#error "crm needs PostgreSQL 15 or later"
#endif

#if PG_VERSION_NUM < 180000
#define pg_noreturn pg_attribute_noreturn()
#endif

#if PG_VERSION_NUM >= 170000
#include "storage/procnumber.h"
#define CRM_BACKEND_ID ((int) MyProcNumber + 1)
#define CRM_LOCAL_XID (MyProc->vxid.lxid)
#else
#include "storage/backendid.h"
#define CRM_BACKEND_ID ((int) MyBackendId)
#define CRM_LOCAL_XID (MyProc->lxid)
#endif

#if PG_VERSION_NUM >= 160000
#define CRM_REL_FILE(rel) ((rel)->rd_locator)
typedef TU_UpdateIndexes CrmUpdateIndexes;

static inline bool
crm_update_is_hot(CrmUpdateIndexes u)
{
	return u != TU_All;
}

static inline bool
crm_update_needs_indexes(CrmUpdateIndexes u)
{
	return u != TU_None;
}

static inline List *
crm_insert_index_tuples(ResultRelInfo *rri, TupleTableSlot *slot, EState *estate,
						CrmUpdateIndexes u)
{
	return ExecInsertIndexTuples(rri, slot, estate, true, false, NULL, NIL,
								 u == TU_Summarizing);
}

static inline List *
crm_insert_new_index_tuples(ResultRelInfo *rri, TupleTableSlot *slot, EState *estate)
{
	return ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL, false);
}

static inline bool
crm_rel_ownercheck(Oid relid, Oid roleid)
{
	return object_ownercheck(RelationRelationId, relid, roleid);
}
#else
#define CRM_REL_FILE(rel) ((rel)->rd_node)
typedef bool CrmUpdateIndexes;

static inline bool
crm_update_is_hot(CrmUpdateIndexes u)
{
	return !u;
}

static inline bool
crm_update_needs_indexes(CrmUpdateIndexes u)
{
	return u;
}

static inline List *
crm_insert_index_tuples(ResultRelInfo *rri, TupleTableSlot *slot, EState *estate,
						CrmUpdateIndexes u)
{
	(void) u;
	return ExecInsertIndexTuples(rri, slot, estate, true, false, NULL, NIL);
}

static inline List *
crm_insert_new_index_tuples(ResultRelInfo *rri, TupleTableSlot *slot, EState *estate)
{
	return ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL);
}

static inline bool
crm_rel_ownercheck(Oid relid, Oid roleid)
{
	return pg_class_ownercheck(relid, roleid);
}
#endif

static inline Oid
crm_primary_key_index(Relation rel)
{
#if PG_VERSION_NUM >= 180000
	return RelationGetPrimaryKeyIndex(rel, false);
#else
	return RelationGetPrimaryKeyIndex(rel);
#endif
}

static inline IndexScanDesc
crm_index_beginscan(Relation heap, Relation index, Snapshot snapshot, int nkeys)
{
#if PG_VERSION_NUM >= 180000
	return index_beginscan(heap, index, snapshot, NULL, nkeys, 0);
#else
	return index_beginscan(heap, index, snapshot, nkeys, 0);
#endif
}

static inline ResultRelInfo *
crm_result_relation(EState *estate, Relation rel)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);
	ResultRelInfo *rri;

	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	{
#if PG_VERSION_NUM >= 160000
		List	   *perminfos = NIL;

		/* no permissions required: nothing checks them (no InitPlan) */
		addRTEPermissionInfo(&perminfos, rte);
#if PG_VERSION_NUM >= 180000
		ExecInitRangeTable(estate, list_make1(rte), perminfos, bms_make_singleton(1));
#else
		ExecInitRangeTable(estate, list_make1(rte), perminfos);
#endif
#else
		ExecInitRangeTable(estate, list_make1(rte));
#endif
	}
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	return rri;
}

#endif							/* CRM_COMPAT_H */
