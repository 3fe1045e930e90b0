/*
 * permit.c: the extension's own writes that triggers must let through.
 *
 * Some columns and status changes may be written only by the extension's
 * functions: a lead's conversion record (crm.convert_lead), quote approval
 * states (crm.submit_quote, crm.approve_quote, crm.reject_quote), order
 * activation and cancellation, order creation, and the sums kept from line
 * items.  The guarding triggers ask crm_permitted(kind, id); the functions
 * grant a permit for exactly the row they are writing, for exactly as long
 * as the write runs (crm_with_permit).  A permit is a variable of this shared
 * library -- not a GUC, not a table row -- so no SQL statement can forge one,
 * and every permit is dropped at the end of the transaction whatever happens.
 */
#include "crm.h"

#include "access/xact.h"

#define MAX_PERMITS 8

typedef struct Permit
{
	CrmPermitKind kind;
	int64		id;
} Permit;

static Permit permits[MAX_PERMITS];
static int	npermits = 0;
static bool callback_registered = false;

/* drop every permit at transaction end (normally they are gone already) */
static void
permit_xact_callback(XactEvent event pg_attribute_unused(), void *arg pg_attribute_unused())
{
	npermits = 0;
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

/*
 * crm_with_permit -- run fn(arg) with a permit for (kind, id), withdrawn when
 * fn returns or throws.
 */
void
crm_with_permit(CrmPermitKind kind, int64 id, void (*fn) (void *arg), void *arg)
{
	int			depth = npermits;

	if (!callback_registered)
	{
		RegisterXactCallback(permit_xact_callback, NULL);
		callback_registered = true;
	}
	if (npermits >= MAX_PERMITS)
		elog(ERROR, "crm: too many nested permits");
	permits[npermits].kind = kind;
	permits[npermits].id = id;
	npermits++;
	PG_TRY();
	{
		fn(arg);
	}
	PG_FINALLY();
	{
		npermits = depth;
	}
	PG_END_TRY();
}
