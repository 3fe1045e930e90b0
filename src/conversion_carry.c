/*
 * conversion_carry.c: what hangs off a lead moves with its conversion.
 *
 * A lead collects rows in other tables while it is worked: activities,
 * campaign memberships (and, in later modules, notes, attachments,
 * e-mails).  crm.convert_lead() moves them to the records the lead becomes,
 * in the same transaction, after it has written those records:
 *
 *   crm.activity         the open ones (not Completed or Cancelled) go to
 *                        the opportunity the conversion creates or attaches
 *                        to (open tasks are about the deal), or to the
 *                        contact when there is none; done ones stay on the
 *                        lead as its history
 *   crm.campaign_member  every membership becomes one of the contact; where
 *                        the contact is already a member of that campaign
 *                        the two are folded: the contact's row is kept, with
 *                        the further status of the two (Unsubscribed over
 *                        Responded over Attended ... over Planned) and
 *                        responded when either responded, and the lead's
 *                        row is deleted
 *   crm.note, crm.attachment  every one goes to the contact: a note or a
 *                        file about a lead is about the person (what they
 *                        said, their card, their CV), which the contact
 *                        keeps; a deal can be lost and closed, the person
 *                        stays (notes about the deal are written on it)
 *   crm.record_tag       every tagging becomes one of the contact (a tag
 *                        describes the person: "VIP", "met at the fair");
 *                        where the contact already carries the tag, the
 *                        lead's tagging is deleted (nothing to fold: the
 *                        contact's is kept)

 *   crm.email_link       every e-mail link becomes one of the contact (a
 *                        link the contact has already is kept, the lead's
 *                        deleted); the contact's account is linked too
 *                        (trigger crm_internal.email_link_account())
 *
 * The list below drives it: one entry per table (the lead column, where the
 * rows go, which rows move, and for a table with a unique key on the target
 * column how two rows fold into one).  A later module's table joins by
 * adding one entry; its statements are built from the entry on first use,
 * schema-qualified with OPERATOR(pg_catalog.x), and kept.
 *
 * Rights.  Moving is part of the conversion, as re-pointing is part of a
 * merge (repoint.c): the rows are moved as the extension owner, also those
 * the caller cannot see (another owner's task on the lead), and nothing of
 * them is returned.  Each row keeps its owner.  The caller's rights were
 * checked on the lead (it may update it) and on the records the rows move
 * to (it created or reused them with its own rights).
 *
 * Locks.  The statements lock the rows they move (row locks, after the
 * lead's); a concurrent writer of one of them waits or is waited for, as
 * for any update.  A row added to the lead by a transaction that commits
 * after the conversion's statement stays on the (now converted) lead.
 *
 * Preview.  crm.conversion_preview() lists, with the caller's rights (only
 * rows the caller sees), the rows that would move and where.
 */
#include "crm.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

typedef enum CarryTarget
{
	CARRY_TO_CONTACT,			/* the contact */
	CARRY_TO_DEAL_OR_CONTACT	/* the opportunity, or the contact without one */
} CarryTarget;

/* target columns, indexed by where the rows go */
#define TO_CONTACT		0
#define TO_OPPORTUNITY	1
static const char *const target_columns[2] = {"contact_id", "opportunity_id"};

typedef struct CarryRule
{
	const char *table;			/* crm.<table> */
	const char *lead_column;	/* the column pointing at the lead */
	CarryTarget target;
	const char *moves;			/* condition on m: the rows that move; NULL: all */
	const char *label;			/* the preview's name of row m */
	const char *unique_with;	/* unique (unique_with, target column); NULL: none */
	const char *fold;			/* SET list folding moving row m into kept row k;
								 * NULL: the kept row stays as it is */
	bool		built;
	CrmQuery	fold_rows[2];	/* per target column */
	CrmQuery	drop_rows[2];
	CrmQuery	move_rows[2];
	CrmQuery	list_rows[2];
} CarryRule;

/* a membership's statuses, least advanced first: folding keeps the further */
#define MEMBER_STATUS_ORDER \
	"ARRAY['Planned', 'Bounced', 'Sent', 'Opened', 'Clicked', 'Registered', 'Attended'," \
	" 'Responded', 'Unsubscribed']"

static CarryRule rules[] = {
	{
		.table = "activity", .lead_column = "lead_id", .target = CARRY_TO_DEAL_OR_CONTACT,
		.moves = "m.status OPERATOR(pg_catalog.<>) ALL (ARRAY['Completed', 'Cancelled']::crm.activity_status[])",
		.label = "m.subject"
	},
	{
		.table = "campaign_member", .lead_column = "lead_id", .target = CARRY_TO_CONTACT,
		.label = "(SELECT c.name FROM crm.campaign AS c WHERE c.id OPERATOR(pg_catalog.=) m.campaign_id)",
		.unique_with = "campaign_id",
		.fold = "status = CASE WHEN pg_catalog.array_position(" MEMBER_STATUS_ORDER ", m.status)"
		"   OPERATOR(pg_catalog.>) pg_catalog.array_position(" MEMBER_STATUS_ORDER ", k.status)"
		"   THEN m.status ELSE k.status END,"
		" responded = k.responded OR m.responded"
	},
	{
		.table = "note", .lead_column = "lead_id", .target = CARRY_TO_CONTACT,
		.label = "pg_catalog.left(pg_catalog.split_part(m.body, E'\\n', 1), 80)"
	},
	{
		.table = "attachment", .lead_column = "lead_id", .target = CARRY_TO_CONTACT,
		.label = "m.file_name"
	},
	{
		.table = "record_tag", .lead_column = "lead_id", .target = CARRY_TO_CONTACT,
		.label = "(SELECT t.name FROM crm.tag AS t WHERE t.id OPERATOR(pg_catalog.=) m.tag_id)",
		.unique_with = "tag_id"
	},
	/* e-mail log (email_log.c): a lead's links become the contact's (its account's follows by trigger) */
	{
		.table = "email_link", .lead_column = "lead_id", .target = CARRY_TO_CONTACT,
		.label = "(SELECT e.subject FROM crm.email AS e WHERE e.id OPERATOR(pg_catalog.=) m.email_id)",
		.unique_with = "email_id",
		.fold = "created_at = LEAST(k.created_at, m.created_at)"
	},
};

static void
set_query(CrmQuery *q, char *sql, int nargs)
{
	q->sql = sql;
	q->nargs = nargs;
	q->argtypes[0] = INT8OID;
	q->argtypes[1] = INT8OID;
	q->plan = NULL;
}

/* build_rule -- the statements of a rule, once per backend */
static void
build_rule(CarryRule *r)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	const char *moves = r->moves ? psprintf(" AND (%s)", r->moves) : "";

	for (int t = 0; t < 2; t++)
	{
		const char *tcol = target_columns[t];
		const char *pair = r->unique_with
			? psprintf(" AND k.%s OPERATOR(pg_catalog.=) m.%s", r->unique_with, r->unique_with) : "";

		if (r->unique_with && r->fold)
			set_query(&r->fold_rows[t],
					  psprintf("UPDATE crm.%s AS k SET %s FROM crm.%s AS m"
							   " WHERE m.%s OPERATOR(pg_catalog.=) $1 AND k.%s OPERATOR(pg_catalog.=) $2%s%s",
							   r->table, r->fold, r->table, r->lead_column, tcol, pair, moves), 2);
		if (r->unique_with)
			set_query(&r->drop_rows[t],
					  psprintf("DELETE FROM crm.%s AS m USING crm.%s AS k"
							   " WHERE m.%s OPERATOR(pg_catalog.=) $1 AND k.%s OPERATOR(pg_catalog.=) $2%s%s",
							   r->table, r->table, r->lead_column, tcol, pair, moves), 2);
		set_query(&r->move_rows[t],
				  psprintf("UPDATE crm.%s AS m SET %s = NULL, %s = $2"
						   " WHERE m.%s OPERATOR(pg_catalog.=) $1%s",
						   r->table, r->lead_column, tcol, r->lead_column, moves), 2);
		set_query(&r->list_rows[t],
				  psprintf("SELECT m.id, %s, %s FROM crm.%s AS m"
						   " WHERE m.%s OPERATOR(pg_catalog.=) $1%s ORDER BY m.id",
						   r->label,
						   r->unique_with
						   ? psprintf("EXISTS (SELECT 1 FROM crm.%s AS k WHERE k.%s OPERATOR(pg_catalog.=) $2%s)",
									  r->table, tcol, pair)
						   : "false",
						   r->table, r->lead_column, moves), 2);
	}
	MemoryContextSwitchTo(old);
	r->built = true;
}

/* the target column of a rule for this conversion */
static int
target_of(const CarryRule *r, bool has_opportunity)
{
	return (r->target == CARRY_TO_DEAL_OR_CONTACT && has_opportunity) ? TO_OPPORTUNITY : TO_CONTACT;
}

/*
 * crm_carry_lead_rows -- move what hangs off the lead to its contact and
 * opportunity (see the file header), as the extension owner.  A contact the
 * conversion created has no rows yet: nothing to fold into.
 */
void
crm_carry_lead_rows(int64 lead_id, int64 contact_id, bool contact_created,
					int64 opportunity_id, bool has_opportunity)
{
	for (int i = 0; i < (int) lengthof(rules); i++)
	{
		CarryRule  *r = &rules[i];
		int			t = target_of(r, has_opportunity);
		Datum		values[2] = {Int64GetDatum(lead_id),
		Int64GetDatum(t == TO_OPPORTUNITY ? opportunity_id : contact_id)};
		char		nulls[2] = {' ', ' '};

		if (!r->built)
			build_rule(r);
		if (r->unique_with && !(t == TO_CONTACT && contact_created))
		{
			if (r->fold)
				crm_query_run_as_owner(&r->fold_rows[t], values, nulls, 0);
			crm_query_run_as_owner(&r->drop_rows[t], values, nulls, 0);
		}
		crm_query_run_as_owner(&r->move_rows[t], values, nulls, 0);
	}
}

/* crm_conversion_preview_row -- one row of crm.conversion_preview() */
void
crm_conversion_preview_row(ReturnSetInfo *rsinfo, const char *action, const char *kind,
						   int64 id, bool id_isnull, const char *rule, const char *name)
{
	Datum		values[5];
	bool		nulls[5] = {false, false, id_isnull, rule == NULL, name == NULL};

	values[0] = CStringGetTextDatum(action);
	values[1] = CStringGetTextDatum(kind);
	values[2] = Int64GetDatum(id);
	values[3] = rule ? CStringGetTextDatum(rule) : (Datum) 0;
	values[4] = name ? CStringGetTextDatum(name) : (Datum) 0;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * crm_preview_lead_rows -- the preview's rows for what would move: the
 * rows the caller sees, each 'move' (or 'fold' into the contact's row)
 */
void
crm_preview_lead_rows(ReturnSetInfo *rsinfo, Oid caller, int64 lead_id, int64 contact_id,
					  bool contact_isnull, bool has_opportunity)
{
	for (int i = 0; i < (int) lengthof(rules); i++)
	{
		CarryRule  *r = &rules[i];
		int			t = target_of(r, has_opportunity);
		const char *where = t == TO_OPPORTUNITY ? "opportunity" : "contact";
		Datum		values[2] = {Int64GetDatum(lead_id), Int64GetDatum(contact_id)};
		char		nulls[2] = {' ', t == TO_CONTACT && contact_isnull ? 'n' : ' '};

		if (!r->built)
			build_rule(r);
		crm_query_run_as(caller, &r->list_rows[t], values, nulls, 0);
		for (uint64 row = 0; row < SPI_processed; row++)
		{
			bool		isnull;
			int64		id = crm_result_int64((int) row, 1, &isnull);
			bool		folds = DatumGetBool(crm_result_datum((int) row, 3, &isnull));

			crm_conversion_preview_row(rsinfo, folds ? "fold" : "move", r->table, id, false,
									   psprintf(folds ? "folded into the %s's row" : "to the %s",
												where),
									   crm_result_text((int) row, 2));
		}
	}
}
