/*
 * permit.c: the extension's own writes that triggers must let through.
 *
 * Some columns and status changes may be written only by the extension's
 * functions: a lead's conversion record (crm.convert_lead), quote approval
 * states (crm.submit_quote, crm.approve_quote, crm.reject_quote), order
 * activation and cancellation, order creation, and the sums kept from line
 * items.  The guarding triggers ask crm_permitted(kind, id); the functions
 * grant a permit for exactly the row they are writing, for exactly as long
 * as the write runs:
 *
 *		crm_permit_push(CRM_PERMIT_CONVERSION, lead_id);
 *		... the guarded statements ...
 *		crm_permit_pop(CRM_PERMIT_CONVERSION, lead_id);
 *
 * A permit is a variable of this shared library -- not a GUC, not a table
 * row -- so no SQL statement can forge one.  When the guarded statements
 * fail, the error skips the pop; the abort of the (sub)transaction that the
 * error ends drops the permits pushed inside it (a PL/pgSQL EXCEPTION block
 * that catches the error has rolled back its subtransaction before its
 * handler runs), so no permit outlives the write it was granted for.
 */
#include "crm.h"

#include "access/xact.h"
#include "executor/spi.h"

#define MAX_PERMITS 8

typedef struct Permit
{
	CrmPermitKind kind;
	int64		id;
	SubTransactionId subxact;	/* the subtransaction that pushed it */
} Permit;

static Permit permits[MAX_PERMITS];
static int	npermits = 0;
static bool callbacks_registered = false;

/* the end of the transaction drops every permit (normally gone already) */
static void
permit_xact_callback(XactEvent event pg_attribute_unused(), void *arg pg_attribute_unused())
{
	npermits = 0;
}

/* the abort of a subtransaction drops the permits pushed inside it */
static void
permit_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid pg_attribute_unused(),
						void *arg pg_attribute_unused())
{
	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	while (npermits > 0 && permits[npermits - 1].subxact >= mySubid)
		npermits--;
}

/* crm_permitted -- is a write of this kind to row id permitted right now? */
bool
crm_permitted(CrmPermitKind kind, int64 id)
{
	for (int i = 0; i < npermits; i++)
		if (permits[i].kind == kind &&
			(permits[i].id == id || permits[i].id == CRM_PERMIT_ANY_ROW))
			return true;
	return false;
}

/* crm_permit_row -- the row of the innermost permit of a kind, if any */
bool
crm_permit_row(CrmPermitKind kind, int64 *id)
{
	for (int i = npermits - 1; i >= 0; i--)
		if (permits[i].kind == kind)
		{
			*id = permits[i].id;
			return true;
		}
	return false;
}

/* crm_permit_push -- permit writes of this kind to row id (or any row) */
void
crm_permit_push(CrmPermitKind kind, int64 id)
{
	if (!callbacks_registered)
	{
		RegisterXactCallback(permit_xact_callback, NULL);
		RegisterSubXactCallback(permit_subxact_callback, NULL);
		callbacks_registered = true;
	}
	if (npermits >= MAX_PERMITS)
		elog(ERROR, "crm: too many nested permits");
	permits[npermits].kind = kind;
	permits[npermits].id = id;
	permits[npermits].subxact = GetCurrentSubTransactionId();
	npermits++;
}

/* crm_permit_pop -- withdraw the permit the matching push granted */
void
crm_permit_pop(CrmPermitKind kind, int64 id)
{
	if (npermits == 0 || permits[npermits - 1].kind != kind ||
		permits[npermits - 1].id != id)
		elog(ERROR, "crm: permit popped out of order");
	npermits--;
}

/*
 * crm_merge_repointed -- does this update move column colname to the
 * survivor of a merge running now (permit kind, id = the survivor)?  Guards
 * that freeze a reference (a converted lead's account and contact, a sent
 * quote's customer, an order's copied customer) let exactly that through:
 * the record they point at is being merged into the survivor.
 */
bool
crm_merge_repointed(HeapTuple oldtup, HeapTuple newtup, TupleDesc tupdesc,
					const char *colname, CrmPermitKind kind)
{
	bool		isnull;
	int64		to;

	if (SPI_fnumber(tupdesc, colname) <= 0 ||
		!crm_column_changed(oldtup, newtup, tupdesc, colname))
		return false;
	to = crm_column_int64(newtup, tupdesc, colname, &isnull);
	return !isnull && crm_permitted(kind, to);
}

/*
 * crm_without_merge_repoints -- newtup with account_id, contact_id and
 * lead_id put back as in oldtup where a merge re-points them (see above):
 * what a guard then compares is the user's part of the change.
 */
HeapTuple
crm_without_merge_repoints(HeapTuple oldtup, HeapTuple newtup, TupleDesc tupdesc)
{
	static const struct
	{
		const char *column;
		CrmPermitKind kind;
	}			refs[] = {
		{"account_id", CRM_PERMIT_MERGE_ACCOUNT},
		{"contact_id", CRM_PERMIT_MERGE_CONTACT},
		{"lead_id", CRM_PERMIT_MERGE_LEAD},
	};

	for (int i = 0; i < (int) lengthof(refs); i++)
		if (crm_merge_repointed(oldtup, newtup, tupdesc, refs[i].column, refs[i].kind))
			newtup = crm_keep_column(oldtup, newtup, tupdesc, refs[i].column);
	return newtup;
}
