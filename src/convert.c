/*
 * convert.c: crm.convert_lead(), lead -> account + contact + opportunity.
 *
 * One call is one atomic step inside the caller's transaction: it locks the
 * lead, finds or creates the account and the contact, creates the
 * opportunity, and marks the lead Converted with links to all three.  Any
 * error undoes all of it.
 *
 * Rights.  Every row the function reads for the caller or writes is read or
 * written with the caller's rights (crm_query_run_as(caller, ...)): table
 * privileges and row-level security apply to the caller.  The caller is the
 * role calling the function (GetUserId()): the function is declared SECURITY
 * INVOKER and raises privileges in C, only around the two statements that
 * need them, to the role that owns the extension's tables: telling "no such
 * lead" from "not yours", and, when the duplicate search (which runs with
 * the caller's rights and so finds only what the caller sees) finds nothing,
 * looking for a match the caller cannot see, so that the WARNING can name
 * its owner (nothing else of it).  A hidden match is never attached to: the
 * caller's new records would become readable by its owner.  (Declared SECURITY
 * DEFINER, the function could only take GetOuterUserId() as the caller, and
 * that is wrong inside another role's SECURITY DEFINER function or a
 * security-restricted operation such as ANALYZE of an index expression.)
 *
 * Concurrency.
 *   - Duplicate detection is serialised per match key with the extension's
 *     key locks (locks.c), taken before the search: the company key and the web
 *     domain (account) and the e-mail (contact), in one sorted batch.  They
 *     are taken before the lead's row lock, from an unlocked read of the
 *     lead, so a conversion never waits for a key while holding a row; then
 *     again from the locked row, in case it changed meanwhile.  The second of
 *     two conversions for one company waits until the first commits and then
 *     finds its account.
 *   - The lead row is locked (SELECT ... FOR UPDATE, as the caller): a second
 *     conversion of the same lead waits, then sees status Converted and fails
 *     with ZC002.  (In REPEATABLE READ it fails with a serialization error
 *     instead, as any update of a concurrently changed row does.)
 *   - In REPEATABLE READ and SERIALIZABLE the transaction snapshot cannot see
 *     an account committed after it was taken; when the search finds nothing
 *     but a fresh snapshot would find a match, the conversion fails with a
 *     serialization error (40001) instead of creating a duplicate.
 *
 * Attaching (opportunity_id =>).  The lead can become the source of an
 * existing opportunity instead of a new one: the opportunity's account is
 * the conversion's (ZC012 when another is named).  Lock order: key locks,
 * the lead's row, then the account held FOR KEY SHARE (as the owner), then
 * the opportunity FOR NO KEY UPDATE as the caller (the row-level security
 * of UPDATE applies), and its account checked again after the lock.  A
 * merge locks the accounts before it re-points their opportunities, and
 * line-item writers lock only the opportunity, so neither waits in the
 * opposite order (convert_attach.spec).
 *
 * Statuses.  crm.settings.convertible_statuses (0.7) says which lead
 * statuses convert; any other is ZC003.
 *
 * Carrying.  After the conversion record is written, conversion_carry.c
 * moves what hangs off the lead (open activities, campaign memberships) to
 * the contact and the opportunity, as the owner.
 *
 * Preview.  crm.conversion_preview() runs convert() with conv->preview set:
 * the same reads, searches and checks with the caller's rights, but no key
 * or row locks (the lead is read without FOR UPDATE) and no writes; each
 * step adds a row saying what it would reuse, create, attach or move.
 *
 * Guards.  The conversion fields of the lead and the opportunity's lead_id
 * are protected by the triggers of conversion_guard.c; the function opens them for
 * exactly this lead while it writes, and closes them again on any exit.
 *
 * Database-set columns.  No role may write those fields (column privileges,
 * 99_privileges.sql): the lead is set to Converted and the new opportunity
 * inserted by the caller's own statements without them, and the guards fill
 * them in (crm_conversion_record()), so privileges, row-level security and
 * the acting role recorded by history and change log stay the caller's.  An
 * attached opportunity gets its lead_id as the owner, right after the
 * caller's own UPDATE of that row (locked) has passed.
 */
#include "crm.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

/* The lead as the conversion reads it. */
typedef struct Lead
{
	int64		id;
	char	   *status;
	char	   *name;
	char	   *company;		/* NULL when empty or blank */
	char	   *title;
	char	   *email;
	char	   *phone;
	char	   *website;
	char	   *industry;
	char	   *city;
	char	   *country;
	Oid			owner;
	char	   *converted_at;
	char	   *converted_by;
	int64		account_id;
	int64		campaign_id;
	bool		campaign_isnull;
} Lead;

/* What the conversion produced. */
typedef struct Conversion
{
	int64		account_id;
	int64		contact_id;
	int64		opportunity_id;
	bool		account_created;
	bool		contact_created;
	bool		opportunity_created;
	bool		has_opportunity;
	ReturnSetInfo *preview;		/* crm.conversion_preview(): rows, no writes */
} Conversion;

#define LEAD_COLUMNS \
	"SELECT l.status::pg_catalog.text, l.name, l.company, l.title," \
	" l.email::pg_catalog.text, l.phone::pg_catalog.text, l.website::pg_catalog.text," \
	" l.industry, l.city, l.country, l.owner," \
	" l.converted_at::pg_catalog.text, l.converted_by::pg_catalog.text, l.account_id, l.campaign_id" \
	" FROM crm.lead AS l WHERE l.id OPERATOR(pg_catalog.=) $1"

static CrmQuery lock_lead = {
	LEAD_COLUMNS " FOR UPDATE OF l",
	1, {INT8OID}, NULL
};

/* the preview reads the lead without locking it */
static CrmQuery look_at_lead = {
	LEAD_COLUMNS,
	1, {INT8OID}, NULL
};

/*
 * Is the status convertible (crm.settings.convertible_statuses)?  NULL
 * without a settings row (as the dump restores it): the built-in rule.
 */
static CrmQuery status_convertible = {
	"SELECT $1::crm.lead_status OPERATOR(pg_catalog.=) ANY (s.convertible_statuses),"
	" pg_catalog.array_to_string(s.convertible_statuses, ', ')"
	" FROM crm.settings AS s",
	1, {TEXTOID}, NULL
};

/* the opportunity to attach to: its account, read as the caller */
static CrmQuery opportunity_account = {
	"SELECT o.account_id FROM crm.opportunity AS o WHERE o.id OPERATOR(pg_catalog.=) $1",
	1, {INT8OID}, NULL
};

/*
 * The account the attached opportunity is on, held against a merge (which
 * locks it FOR UPDATE) before the opportunity's row lock: the order of a
 * merge, which locks the accounts and then re-points their opportunities.
 * As the owner: holding a row is not reading it, and the caller may see an
 * account it may not update.
 */
static CrmQuery hold_account = {
	"SELECT 1 FROM crm.account AS a WHERE a.id OPERATOR(pg_catalog.=) $1 FOR KEY SHARE OF a",
	1, {INT8OID}, NULL
};

/* the opportunity locked as the caller: the row-level security of UPDATE applies */
static CrmQuery lock_opportunity = {
	"SELECT o.account_id FROM crm.opportunity AS o WHERE o.id OPERATOR(pg_catalog.=) $1"
	" FOR NO KEY UPDATE OF o",
	1, {INT8OID}, NULL
};

/*
 * The attached opportunity gets the contact and the lead's campaign where it
 * has none (nothing is overwritten), as the caller: this UPDATE is also the
 * caller's check of the row (privileges, row-level security USING and WITH
 * CHECK), so it always runs, even when it changes nothing.
 */
static CrmQuery attach_opportunity = {
	"UPDATE crm.opportunity AS o SET contact_id = COALESCE(o.contact_id, $2),"
	" campaign_id = COALESCE(o.campaign_id, $3)"
	" WHERE o.id OPERATOR(pg_catalog.=) $1",
	3, {INT8OID, INT8OID, INT8OID}, NULL
};

/*
 * ... and the lead as its source lead where it has none: a column no role
 * may write (99_privileges.sql), so as the owner, right after the caller's
 * UPDATE above has passed on the same row, which it holds locked.
 */
static CrmQuery attach_source_lead = {
	"UPDATE crm.opportunity AS o SET lead_id = $2"
	" WHERE o.id OPERATOR(pg_catalog.=) $1 AND o.lead_id IS NULL",
	2, {INT8OID, INT8OID}, NULL
};

/*
 * The contact joins the attached opportunity's contact roles: as its primary
 * contact when it had none (the UPDATE above set contact_id, and the trigger
 * of contact_roles.c added the row), else beside the primary one, role Other.
 */
static CrmQuery attach_contact_role = {
	"INSERT INTO crm.opportunity_contact_role (opportunity_id, contact_id, role, is_primary)"
	" VALUES ($1, $2, 'Other', false) ON CONFLICT (opportunity_id, contact_id) DO NOTHING",
	2, {INT8OID, INT8OID}, NULL
};

static CrmQuery peek_lead = {
	"SELECT l.company, l.website::pg_catalog.text, l.email::pg_catalog.text"
	" FROM crm.lead AS l WHERE l.id OPERATOR(pg_catalog.=) $1",
	1, {INT8OID}, NULL
};

static CrmQuery lead_exists = {
	"SELECT 1 FROM crm.lead AS l WHERE l.id OPERATOR(pg_catalog.=) $1",
	1, {INT8OID}, NULL
};

static CrmQuery account_visible = {
	"SELECT 1 FROM crm.account AS a WHERE a.id OPERATOR(pg_catalog.=) $1",
	1, {INT8OID}, NULL
};

static CrmQuery contact_visible = {
	"SELECT c.account_id,"
	" EXISTS (SELECT 1 FROM crm.account_contact AS ac"
	"          WHERE ac.contact_id OPERATOR(pg_catalog.=) c.id"
	"            AND ac.account_id OPERATOR(pg_catalog.=) $2)"
	" FROM crm.contact AS c WHERE c.id OPERATOR(pg_catalog.=) $1",
	2, {INT8OID, INT8OID}, NULL
};

/*
 * Matching accounts, searched with the caller's rights (only accounts the
 * caller sees): both keys first, then the company key, then the oldest.
 */
#define ACCOUNT_MATCHES \
	" WHERE crm.company_match_key(a.name) OPERATOR(pg_catalog.=) $1" \
	"    OR crm.web_domain(a.website) OPERATOR(pg_catalog.=) $2"

static CrmQuery find_account = {
	"SELECT a.id FROM crm.account AS a" ACCOUNT_MATCHES
	" ORDER BY ((crm.company_match_key(a.name) OPERATOR(pg_catalog.=) $1) IS TRUE"
	"           AND (crm.web_domain(a.website) OPERATOR(pg_catalog.=) $2) IS TRUE) DESC,"
	"          (crm.company_match_key(a.name) OPERATOR(pg_catalog.=) $1) IS TRUE DESC,"
	"          a.id"
	" LIMIT 1",
	2, {TEXTOID, TEXTOID}, NULL
};

/*
 * The owner of a matching account, searched as the extension owner (the
 * first by name; an aggregate, so that the plan reads the match-key indexes
 * rather than walking the primary key in search of a first match).
 */
static CrmQuery find_account_owner = {
	"SELECT pg_catalog.min(a.owner::pg_catalog.text) FROM crm.account AS a" ACCOUNT_MATCHES,
	2, {TEXTOID, TEXTOID}, NULL
};

/* which of the keys account $1 matches, for the preview's rule */
static CrmQuery account_keys_match = {
	"SELECT crm.company_match_key(a.name) OPERATOR(pg_catalog.=) $2,"
	" crm.web_domain(a.website) OPERATOR(pg_catalog.=) $3"
	" FROM crm.account AS a WHERE a.id OPERATOR(pg_catalog.=) $1",
	3, {INT8OID, TEXTOID, TEXTOID}, NULL
};

static CrmQuery insert_account = {
	"INSERT INTO crm.account (name, industry, phone, website, city, country, owner)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
	7, {TEXTOID, TEXTOID, CRM_TYPE_PHONE_NUMBER, CRM_TYPE_WEB_URL, TEXTOID, TEXTOID, REGROLEOID}, NULL
};

/* Reused account: fill empty fields from the lead, overwrite nothing. */
static CrmQuery fill_account = {
	"UPDATE crm.account AS a SET"
	" industry = COALESCE(a.industry, $2), phone = COALESCE(a.phone, $3),"
	" website = COALESCE(a.website, $4), city = COALESCE(a.city, $5),"
	" country = COALESCE(a.country, $6)"
	" WHERE a.id OPERATOR(pg_catalog.=) $1"
	"   AND ((a.industry IS NULL AND $2 IS NOT NULL) OR (a.phone IS NULL AND $3 IS NOT NULL)"
	"     OR (a.website IS NULL AND $4 IS NOT NULL) OR (a.city IS NULL AND $5 IS NOT NULL)"
	"     OR (a.country IS NULL AND $6 IS NOT NULL))",
	6, {INT8OID, TEXTOID, CRM_TYPE_PHONE_NUMBER, CRM_TYPE_WEB_URL, TEXTOID, TEXTOID}, NULL
};

/*
 * Matching contacts, searched with the caller's rights (only contacts the
 * caller sees): same e-mail; one already on the account first, then the
 * oldest.  Also says whether the contact is on the account, and whether the
 * caller may link it there as a plain INSERT into crm.account_contact could
 * (crm.may_link_account: the caller's team owns the account).
 */
#define CONTACT_MATCHES \
	" WHERE pg_catalog.lower(c.email) OPERATOR(pg_catalog.=) pg_catalog.lower($1)"

static CrmQuery find_contact = {
	"SELECT m.id, m.on_account, m.on_account OR crm.may_link_account($2)"
	" FROM (SELECT c.id, (c.account_id OPERATOR(pg_catalog.=) $2"
	"           OR EXISTS (SELECT 1 FROM crm.account_contact AS ac"
	"                       WHERE ac.contact_id OPERATOR(pg_catalog.=) c.id"
	"                         AND ac.account_id OPERATOR(pg_catalog.=) $2)) IS TRUE AS on_account"
	"        FROM crm.contact AS c" CONTACT_MATCHES
	"       ORDER BY 2 DESC, c.id LIMIT 1) AS m",
	2, {TEXTOID, INT8OID}, NULL
};

/* The owner of a matching contact, searched as the extension owner (as above). */
static CrmQuery find_contact_owner = {
	"SELECT pg_catalog.min(c.owner::pg_catalog.text) FROM crm.contact AS c" CONTACT_MATCHES,
	1, {TEXTOID}, NULL
};

static CrmQuery insert_contact = {
	"INSERT INTO crm.contact (name, title, email, phone, account_id, owner)"
	" VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
	6, {TEXTOID, TEXTOID, CRM_TYPE_EMAIL_ADDRESS, CRM_TYPE_PHONE_NUMBER, INT8OID, REGROLEOID}, NULL
};

/* Reused contact: fill empty fields (primary account included), overwrite nothing. */
static CrmQuery fill_contact = {
	"UPDATE crm.contact AS c SET"
	" title = COALESCE(c.title, $2), email = COALESCE(c.email, $3),"
	" phone = COALESCE(c.phone, $4), account_id = COALESCE(c.account_id, $5)"
	" WHERE c.id OPERATOR(pg_catalog.=) $1"
	"   AND ((c.title IS NULL AND $2 IS NOT NULL) OR (c.email IS NULL AND $3 IS NOT NULL)"
	"     OR (c.phone IS NULL AND $4 IS NOT NULL) OR c.account_id IS NULL)",
	5, {INT8OID, TEXTOID, CRM_TYPE_EMAIL_ADDRESS, CRM_TYPE_PHONE_NUMBER, INT8OID}, NULL
};

/*
 * Consent goes with the person from the lead to the contact ($1 lead, $2
 * contact).  The opt-outs are OR-ed (an opt-out wins), as the owner: a
 * reused contact the caller may not change still gets the restriction.
 * The basis, when the contact has none, is the lead's (with the caller's
 * rights, like any other field filled in).
 */
static CrmQuery carry_opt_outs = {
	"UPDATE crm.contact AS c SET email_opt_out = c.email_opt_out OR l.email_opt_out,"
	" phone_opt_out = c.phone_opt_out OR l.phone_opt_out, do_not_contact = c.do_not_contact OR l.do_not_contact"
	" FROM crm.lead AS l WHERE l.id OPERATOR(pg_catalog.=) $1 AND c.id OPERATOR(pg_catalog.=) $2"
	"   AND ((l.email_opt_out AND NOT c.email_opt_out) OR (l.phone_opt_out AND NOT c.phone_opt_out)"
	"        OR (l.do_not_contact AND NOT c.do_not_contact))",
	2, {INT8OID, INT8OID}, NULL
};

static CrmQuery carry_consent_basis = {
	"UPDATE crm.contact AS c SET consent_basis = l.consent_basis, consent_at = l.consent_at,"
	" consent_source = l.consent_source"
	" FROM crm.lead AS l WHERE l.id OPERATOR(pg_catalog.=) $1 AND c.id OPERATOR(pg_catalog.=) $2"
	"   AND c.consent_basis IS NULL AND l.consent_basis IS NOT NULL",
	2, {INT8OID, INT8OID}, NULL
};

/* A reused contact whose primary account is another one is linked to this one. */
static CrmQuery contact_on_account = {
	"SELECT 1 FROM crm.contact AS c WHERE c.id OPERATOR(pg_catalog.=) $1"
	"   AND (c.account_id OPERATOR(pg_catalog.=) $2"
	"        OR EXISTS (SELECT 1 FROM crm.account_contact AS ac"
	"                    WHERE ac.account_id OPERATOR(pg_catalog.=) $2"
	"                      AND ac.contact_id OPERATOR(pg_catalog.=) c.id))",
	2, {INT8OID, INT8OID}, NULL
};

/*
 * No ON CONFLICT: that would make row-level security check the new link
 * against the SELECT policy too, before the deal shares the account.  The
 * key locks of the conversion serialise conversions linking the same pair.
 */
static CrmQuery link_contact = {
	"INSERT INTO crm.account_contact (account_id, contact_id, owner) VALUES ($1, $2, $3)",
	3, {INT8OID, INT8OID, REGROLEOID}, NULL
};

/*
 * The lead's open duplicate pairs with the account and contact it was
 * converted into are settled by the conversion: they become 'merged' (the
 * lead is now part of those records).  Written as the owner.
 */
static CrmQuery close_pairs = {
	"UPDATE crm.duplicate_candidate AS d"
	"   SET status = 'merged', resolved_by = $4, resolved_at = pg_catalog.now()"
	" WHERE d.status OPERATOR(pg_catalog.=) 'open'"
	"   AND ((d.kind OPERATOR(pg_catalog.=) 'lead' AND d.id OPERATOR(pg_catalog.=) $1"
	"         AND ((d.duplicate_kind OPERATOR(pg_catalog.=) 'account' AND d.duplicate_of OPERATOR(pg_catalog.=) $2)"
	"           OR (d.duplicate_kind OPERATOR(pg_catalog.=) 'contact' AND d.duplicate_of OPERATOR(pg_catalog.=) $3)))"
	"     OR (d.duplicate_kind OPERATOR(pg_catalog.=) 'lead' AND d.duplicate_of OPERATOR(pg_catalog.=) $1"
	"         AND ((d.kind OPERATOR(pg_catalog.=) 'account' AND d.id OPERATOR(pg_catalog.=) $2)"
	"           OR (d.kind OPERATOR(pg_catalog.=) 'contact' AND d.id OPERATOR(pg_catalog.=) $3))))",
	4, {INT8OID, INT8OID, INT8OID, REGROLEOID}, NULL
};

static CrmQuery first_open_stage = {
	"SELECT s.name, s.probability FROM crm.opportunity_stage AS s"
	" WHERE NOT s.is_closed AND s.active ORDER BY s.sort_order LIMIT 1",
	0, {InvalidOid}, NULL
};

/*
 * The new opportunity and the lead's conversion record are written by the
 * caller's own statements, without the columns no role may write (lead_id;
 * account_id, contact_id, opportunity_id, converted_at, converted_by): the
 * guards of conversion_guard.c fill those in from crm_conversion_record().
 */
static CrmQuery insert_opportunity = {
	"INSERT INTO crm.opportunity (name, account_id, contact_id, stage, probability, owner, campaign_id)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
	7, {TEXTOID, INT8OID, INT8OID, TEXTOID, NUMERICOID, REGROLEOID, INT8OID}, NULL
};

static CrmQuery mark_lead_converted = {
	"UPDATE crm.lead AS l SET status = 'Converted'::crm.lead_status"
	" WHERE l.id OPERATOR(pg_catalog.=) $1",
	1, {INT8OID}, NULL
};

/* The keys under which a lead's account and contact are searched. */
typedef struct MatchKeys
{
	char	   *company;		/* company match key; NULL without a company */
	char	   *domain;			/* company domain of the web site or e-mail */
	char	   *email;			/* e-mail in lower case */
} MatchKeys;

/*
 * match_keys -- the keys of a lead.  A lead without a company (a private
 * customer) is never matched by name: two people called Maria Garcia are
 * not one account.
 */
static void
match_keys(const char *company, const char *website, const char *email, MatchKeys *k)
{
	k->company = company ? crm_company_key(company) : NULL;
	k->domain = website ? crm_company_domain(crm_domain_of(website)) : NULL;
	if (k->domain == NULL && email != NULL)
		k->domain = crm_email_company_domain(email);
	k->email = email ? str_tolower(email, strlen(email), DEFAULT_COLLATION_OID) : NULL;
}

/*
 * lock_match_keys -- take the locks of the keys to be searched, in one
 * sorted batch, held to the end of the transaction (locks.c).  Locks already
 * held are not waited for again.
 */
static void
lock_match_keys(const MatchKeys *k, bool accounts, bool contacts)
{
	CrmLock		locks[3];
	int			nlocks = 0;

	if (accounts && k->company != NULL)
		locks[nlocks++] = crm_lock_key(CRM_LOCK_COMPANY, k->company);
	if (accounts && k->domain != NULL)
		locks[nlocks++] = crm_lock_key(CRM_LOCK_DOMAIN, k->domain);
	if (contacts && k->email != NULL)
		locks[nlocks++] = crm_lock_key(CRM_LOCK_EMAIL, k->email);
	crm_lock_all(locks, nlocks);
}

static char *
blank_to_null(char *s)
{
	return crm_is_blank(s) ? NULL : s;
}

/*
 * peek_match_keys -- the lead's keys read without locking it, so that the
 * key locks can be taken before the lead's row lock (see the file header).
 * Returns false when the lead is not there for the caller.
 */
static bool
peek_match_keys(Oid caller, int64 lead_id, MatchKeys *k)
{
	Datum		values[1] = {Int64GetDatum(lead_id)};
	char		nulls[1] = {' '};

	crm_query_run_as(caller, &peek_lead, values, nulls, 1);
	if (SPI_processed == 0)
		return false;
	match_keys(blank_to_null(crm_result_text(0, 1)), crm_result_text(0, 2), crm_result_text(0, 3), k);
	return true;
}

/*
 * check_convertible -- is the lead in a status crm.settings allows
 * converting?  Before 0.7 (the library serves every version), and without a
 * settings row, every status but Not Qualified is.
 */
static void
check_convertible(const Lead *lead)
{
	Datum		values[1];
	char		nulls[1];
	bool		isnull = true;
	bool		convertible = strcmp(lead->status, "Not Qualified") != 0;

	if (get_attnum(crm_relation_oid("settings"), "convertible_statuses") != InvalidAttrNumber)
	{
		crm_param_text(values, nulls, 0, lead->status);
		crm_query_run_as_owner(&status_convertible, values, nulls, 1);
		if (SPI_processed > 0)
		{
			Datum		d = crm_result_datum(0, 1, &isnull);

			if (!isnull)
				convertible = DatumGetBool(d);
		}
	}
	if (convertible)
		return;
	if (isnull || strcmp(lead->status, "Not Qualified") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_LEAD_NOT_CONVERTIBLE),
				 errmsg("lead %lld is not qualified and cannot be converted", (long long) lead->id),
				 errhint("Set its status to a working status such as 'In Transaction' first.")));
	ereport(ERROR,
			(errcode(ERRCODE_CRM_LEAD_NOT_CONVERTIBLE),
			 errmsg("lead %lld has status %s, which is not convertible", (long long) lead->id,
					lead->status),
			 errdetail("crm.settings.convertible_statuses allows %s.", crm_result_text(0, 2)),
			 errhint("Move the lead on to a convertible status first (the verification step), or ask an admin to change crm.settings.convertible_statuses.")));
}

/*
 * read_lead -- lock the lead as the caller and read it; errors for a lead
 * that does not exist, is not the caller's to convert, or cannot be
 * converted.
 */
static void
read_lead(Oid caller, int64 lead_id, bool preview, Lead *lead)
{
	Datum		values[1];
	char		nulls[1] = {' '};
	bool		isnull;
	Oid			lead_rel = crm_relation_oid("lead");

	/* UPDATE on the table, or (as granted since 0.5) on its columns */
	if ((pg_class_aclcheck(lead_rel, caller, ACL_UPDATE) != ACLCHECK_OK &&
		 pg_attribute_aclcheck(lead_rel, get_attnum(lead_rel, "status"), caller, ACL_UPDATE) != ACLCHECK_OK) ||
		pg_class_aclcheck(lead_rel, caller, ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to convert lead %lld", (long long) lead_id),
				 errdetail("Role \"%s\" lacks SELECT or UPDATE privilege on table crm.lead.",
						   crm_role_name(caller)),
				 errhint("Grant the role crm_sales, crm_manager or crm_admin.")));

	values[0] = Int64GetDatum(lead_id);
	crm_query_run_as(caller, preview ? &look_at_lead : &lock_lead, values, nulls, 1);
	if (SPI_processed == 0)
	{
		crm_query_run_as_owner(&lead_exists, values, nulls, 1);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_CRM_LEAD_NOT_FOUND),
					 errmsg("lead %lld does not exist", (long long) lead_id)));
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to convert lead %lld", (long long) lead_id),
				 errdetail("Row-level security does not let role \"%s\" update this lead.",
						   crm_role_name(caller)),
				 errhint("Ask its owner or a manager to convert it, or to reassign it to you.")));
	}

	lead->id = lead_id;
	lead->status = crm_result_text(0, 1);
	lead->name = crm_result_text(0, 2);
	lead->company = blank_to_null(crm_result_text(0, 3));
	lead->title = crm_result_text(0, 4);
	lead->email = crm_result_text(0, 5);
	lead->phone = crm_result_text(0, 6);
	lead->website = crm_result_text(0, 7);
	lead->industry = crm_result_text(0, 8);
	lead->city = crm_result_text(0, 9);
	lead->country = crm_result_text(0, 10);
	lead->owner = DatumGetObjectId(crm_result_datum(0, 11, &isnull));
	lead->converted_at = crm_result_text(0, 12);
	lead->converted_by = crm_result_text(0, 13);
	lead->account_id = crm_result_int64(0, 14, &isnull);
	lead->campaign_id = crm_result_int64(0, 15, &lead->campaign_isnull);

	if (strcmp(lead->status, "Converted") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_LEAD_ALREADY_CONVERTED),
				 errmsg("lead %lld is already converted", (long long) lead_id),
				 errdetail("It was converted at %s by %s into account %lld.",
						   lead->converted_at, lead->converted_by,
						   (long long) lead->account_id),
				 errhint("Work with the account, contact and opportunity it points to.")));
	check_convertible(lead);
}

static bool
account_is_visible(Oid caller, int64 account_id)
{
	Datum		values[1] = {Int64GetDatum(account_id)};
	char		nulls[1] = {' '};

	crm_query_run_as(caller, &account_visible, values, nulls, 1);
	return SPI_processed > 0;
}

/* check_account -- an account named by the caller must be visible to the caller */
static void
check_account(Oid caller, int64 account_id)
{
	if (!account_is_visible(caller, account_id))
		crm_not_visible(ERRCODE_CRM_ACCOUNT_NOT_FOUND, "account", account_id, caller);
}

/*
 * check_contact -- a contact named by the caller must be visible to the
 * caller and, when an account is named too, belong to it (as primary account
 * or through crm.account_contact).  Returns the contact's primary account.
 */
static int64
check_contact(Oid caller, int64 contact_id, int64 account_id, bool account_given,
			  bool *primary_isnull)
{
	Datum		values[2];
	char		nulls[2];
	bool		isnull;
	int64		primary;
	bool		linked;

	crm_param_int64(values, nulls, 0, contact_id, false);
	crm_param_int64(values, nulls, 1, account_id, !account_given);
	crm_query_run_as(caller, &contact_visible, values, nulls, 1);
	if (SPI_processed == 0)
		crm_not_visible(ERRCODE_CRM_CONTACT_NOT_FOUND, "contact", contact_id, caller);
	primary = crm_result_int64(0, 1, primary_isnull);
	linked = DatumGetBool(crm_result_datum(0, 2, &isnull));
	if (account_given && !linked && (*primary_isnull || primary != account_id))
		ereport(ERROR,
				(errcode(ERRCODE_CRM_CONTACT_NOT_ON_ACCOUNT),
				 errmsg("contact %lld is not on account %lld",
						(long long) contact_id, (long long) account_id),
				 errdetail("Its primary account is %s and crm.account_contact does not link it to account %lld.",
						   *primary_isnull ? "empty" : psprintf("%lld", (long long) primary),
						   (long long) account_id),
				 errhint("Link the contact to the account in crm.account_contact, or leave account_id out to use the contact's primary account.")));
	return primary;
}

/*
 * search -- run a duplicate search with the caller's rights; in REPEATABLE
 * READ and SERIALIZABLE, fail with a serialization error when only a fresh
 * snapshot would show the caller a match.  Returns whether one was found,
 * and its id (the search's first column; the others stay in SPI_tuptable).
 */
static bool
search(Oid caller, CrmQuery *query, Datum *values, const char *nulls, const char *what,
	   int64 lead_id, int64 *id)
{
	bool		isnull;

	crm_query_run_as(caller, query, values, nulls, 1);
	if (SPI_processed > 0)
	{
		*id = crm_result_int64(0, 1, &isnull);
		return true;
	}
	if (crm_query_finds_newer_rows_as(caller, query, values, nulls))
		crm_serialization_failure(psprintf("lead %lld", (long long) lead_id),
								  psprintf("A matching %s was created by a transaction that committed after this one started; a retry reuses it.", what));
	return false;
}

/*
 * warn_hidden_match -- a record the caller cannot see matches the lead: the
 * conversion creates a new one instead of attaching the caller's records to
 * it (README "Lead conversion"), and says so, naming only the other record's
 * owner.
 */
static char *
warn_hidden_match(CrmQuery *owner_query, Datum *values, const char *nulls, const char *what,
				  const char *rule, int64 lead_id, const Conversion *conv)
{
	crm_query_run_as_owner(owner_query, values, nulls, 1);
	if (crm_result_text(0, 1) == NULL)
		return NULL;
	/* the preview says it in the row of the new record instead */
	if (conv->preview)
		return psprintf("new: a%s %s of role \"%s\" with the same %s is not visible to you",
						what[0] == 'a' ? "n" : "", what, crm_result_text(0, 1), rule);
	ereport(WARNING,
			(errcode(ERRCODE_CRM_HIDDEN_DUPLICATE),
			 errmsg("lead %lld matches a%s %s that is not visible to you; a new %s was created",
					(long long) lead_id, what[0] == 'a' ? "n" : "", what, what),
			 errdetail("It belongs to role \"%s\" and has the same %s.", crm_result_text(0, 1), rule),
			 errhint("Ask its owner or a manager to share it, or to convert the lead into it.")));
	return NULL;
}

/* the names of records the preview reuses, read as the caller (it sees them) */
static CrmQuery account_name = {
	"SELECT a.name FROM crm.account AS a WHERE a.id OPERATOR(pg_catalog.=) $1", 1, {INT8OID}, NULL
};
static CrmQuery contact_name = {
	"SELECT c.name FROM crm.contact AS c WHERE c.id OPERATOR(pg_catalog.=) $1", 1, {INT8OID}, NULL
};
static CrmQuery opportunity_name_of = {
	"SELECT o.name FROM crm.opportunity AS o WHERE o.id OPERATOR(pg_catalog.=) $1", 1, {INT8OID}, NULL
};

/* preview_existing -- the preview's row for an existing record the conversion uses */
static void
preview_existing(const Conversion *conv, Oid caller, const char *action, const char *kind,
				 int64 id, const char *rule)
{
	Datum		values[1] = {Int64GetDatum(id)};
	char		nulls[1] = {' '};
	CrmQuery   *q = kind[0] == 'a' ? &account_name : kind[0] == 'c' ? &contact_name : &opportunity_name_of;

	crm_query_run_as(caller, q, values, nulls, 1);
	crm_conversion_preview_row(conv->preview, action, kind, id, false, rule,
							   SPI_processed > 0 ? crm_result_text(0, 1) : NULL);
}

/*
 * account_rule -- the preview's words for why account id matched: the same
 * order as find_account's (both keys, then the company key)
 */
static char *
account_rule(const MatchKeys *k, int64 account_id)
{
	Datum		values[3];
	char		nulls[3];
	bool		isnull;
	bool		company;
	bool		domain;

	crm_param_int64(values, nulls, 0, account_id, false);
	crm_param_text(values, nulls, 1, k->company);
	crm_param_text(values, nulls, 2, k->domain);
	crm_query_run_as_owner(&account_keys_match, values, nulls, 1);
	company = DatumGetBool(crm_result_datum(0, 1, &isnull)) && !isnull;
	domain = DatumGetBool(crm_result_datum(0, 2, &isnull)) && !isnull;
	return company && domain ? "same company name and domain"
		: company ? "same company name" : "same domain";
}

/* resolve_account -- a matching or a new account for the lead */
static void
resolve_account(Oid caller, Oid owner, const Lead *lead, const MatchKeys *k, bool dedupe,
				Conversion *conv)
{
	Datum		values[7];
	char		nulls[7];
	bool		isnull;
	bool		found = false;
	const char *rule = "new";

	if (dedupe && (k->company != NULL || k->domain != NULL))
	{
		crm_param_text(values, nulls, 0, k->company);
		crm_param_text(values, nulls, 1, k->domain);
		found = search(caller, &find_account, values, nulls, "account", lead->id, &conv->account_id);
		if (found && conv->preview)
			preview_existing(conv, caller, "reuse", "account", conv->account_id,
							 account_rule(k, conv->account_id));
		if (!found)
			rule = warn_hidden_match(&find_account_owner, values, nulls, "account",
									 "company name or domain", lead->id, conv);
	}
	if (!found && conv->preview)
	{
		crm_conversion_preview_row(conv->preview, "create", "account", 0, true,
								   rule ? rule : "new",
								   lead->company ? lead->company : lead->name);
		conv->account_created = true;
	}
	else if (!found)
	{
		crm_param_text(values, nulls, 0, lead->company ? lead->company : lead->name);
		crm_param_text(values, nulls, 1, lead->industry);
		crm_param_text(values, nulls, 2, lead->phone);
		crm_param_text(values, nulls, 3, lead->website);
		crm_param_text(values, nulls, 4, lead->city);
		crm_param_text(values, nulls, 5, lead->country);
		values[6] = ObjectIdGetDatum(owner);
		nulls[6] = ' ';
		crm_query_run_as(caller, &insert_account, values, nulls, 0);
		conv->account_id = crm_result_int64(0, 1, &isnull);
		conv->account_created = true;
	}
}

/* fill_reused_account -- copy the lead's data into empty fields of a reused account */
static void
fill_reused_account(Oid caller, const Lead *lead, int64 account_id)
{
	Datum		values[6];
	char		nulls[6];

	crm_param_int64(values, nulls, 0, account_id, false);
	crm_param_text(values, nulls, 1, lead->industry);
	crm_param_text(values, nulls, 2, lead->phone);
	crm_param_text(values, nulls, 3, lead->website);
	crm_param_text(values, nulls, 4, lead->city);
	crm_param_text(values, nulls, 5, lead->country);
	crm_query_run_as(caller, &fill_account, values, nulls, 0);
}

/* resolve_contact -- a matching or a new contact for the lead */
static void
resolve_contact(Oid caller, Oid owner, const Lead *lead, const MatchKeys *k, bool dedupe,
				Conversion *conv)
{
	Datum		values[6];
	char		nulls[6];
	bool		isnull;
	bool		found = false;
	const char *rule = "new";

	if (dedupe && k->email != NULL)
	{
		crm_param_text(values, nulls, 0, lead->email);
		/* the preview of a new account: no contact is on it yet */
		crm_param_int64(values, nulls, 1, conv->account_id, conv->preview && conv->account_created);
		found = search(caller, &find_contact, values, nulls, "contact", lead->id, &conv->contact_id);
		if (found && !DatumGetBool(crm_result_datum(0, 3, &isnull)) && conv->preview)
		{
			rule = psprintf("new: contact %lld has the e-mail address but cannot be linked to the account",
							(long long) conv->contact_id);
			found = false;
		}
		else if (found && conv->preview)
			preview_existing(conv, caller, "reuse", "contact", conv->contact_id,
							 DatumGetBool(crm_result_datum(0, 2, &isnull))
							 ? "same e-mail address, on the account"
							 : "same e-mail address, linked to the account");
		else if (found && !DatumGetBool(crm_result_datum(0, 3, &isnull)))
		{
			/*
			 * Seen, but on another account, and the caller may not link it
			 * to this one (not its team's account): a plain write could not
			 * link it either, so the contact is not reused.
			 */
			ereport(WARNING,
					(errcode(ERRCODE_CRM_HIDDEN_DUPLICATE),
					 errmsg("contact %lld has the e-mail address of lead %lld but cannot be linked to account %lld; a new contact was created",
							(long long) conv->contact_id, (long long) lead->id,
							(long long) conv->account_id),
					 errdetail("Only the account owner's team may link contacts to account %lld.",
							   (long long) conv->account_id),
					 errhint("Ask the account's owner to link contact %lld, or convert with contact_id => %lld onto its own account.",
							 (long long) conv->contact_id, (long long) conv->contact_id)));
			found = false;
		}
		else if (!found)
			rule = warn_hidden_match(&find_contact_owner, values, nulls, "contact", "e-mail address",
									 lead->id, conv);
	}
	if (!found && conv->preview)
	{
		crm_conversion_preview_row(conv->preview, "create", "contact", 0, true,
								   rule ? rule : "new", lead->name);
		conv->contact_created = true;
	}
	else if (!found)
	{
		crm_param_text(values, nulls, 0, lead->name);
		crm_param_text(values, nulls, 1, lead->title);
		crm_param_text(values, nulls, 2, lead->email);
		crm_param_text(values, nulls, 3, lead->phone);
		crm_param_int64(values, nulls, 4, conv->account_id, false);
		values[5] = ObjectIdGetDatum(owner);
		nulls[5] = ' ';
		crm_query_run_as(caller, &insert_contact, values, nulls, 0);
		conv->contact_id = crm_result_int64(0, 1, &isnull);
		conv->contact_created = true;
	}
}

/* fill_reused_contact -- fill empty fields of a reused contact, link it to the account */
static void
fill_reused_contact(Oid caller, Oid owner, const Lead *lead, const Conversion *conv)
{
	Datum		values[5];
	char		nulls[5];

	crm_param_int64(values, nulls, 0, conv->contact_id, false);
	crm_param_text(values, nulls, 1, lead->title);
	crm_param_text(values, nulls, 2, lead->email);
	crm_param_text(values, nulls, 3, lead->phone);
	crm_param_int64(values, nulls, 4, conv->account_id, false);
	crm_query_run_as(caller, &fill_contact, values, nulls, 0);

	/*
	 * Link it unless it is on the account already, as its primary account or
	 * linked (read as the owner: a link the caller cannot see counts too).
	 * The link is an ordinary INSERT with the caller's rights: the policies
	 * of crm.account_contact decide, as for a link made by hand.
	 */
	{
		crm_param_int64(values, nulls, 0, conv->contact_id, false);
		crm_param_int64(values, nulls, 1, conv->account_id, false);
		crm_query_run_as_owner(&contact_on_account, values, nulls, 1);
		if (SPI_processed > 0)
			return;
		/* REPEATABLE READ: a conversion that committed since linked them */
		if (crm_query_finds_newer_rows(&contact_on_account, values, nulls))
			crm_serialization_failure(psprintf("lead %lld", (long long) lead->id),
									  psprintf("Contact %lld was linked to account %lld by a transaction that committed after this one started.",
											   (long long) conv->contact_id, (long long) conv->account_id));
		crm_param_int64(values, nulls, 0, conv->account_id, false);
		crm_param_int64(values, nulls, 1, conv->contact_id, false);
		values[2] = ObjectIdGetDatum(owner);
		nulls[2] = ' ';
		crm_query_run_as(caller, &link_contact, values, nulls, 0);
	}
}

/* carry_consent -- the lead's consent onto the contact (see carry_opt_outs) */
static void
carry_consent(Oid caller, int64 lead_id, int64 contact_id)
{
	Datum		values[2] = {Int64GetDatum(lead_id), Int64GetDatum(contact_id)};
	char		nulls[2] = {' ', ' '};

	/* before 0.7 (the library serves every version) there is no consent */
	if (get_attnum(crm_relation_oid("lead"), "email_opt_out") == InvalidAttrNumber)
		return;
	crm_query_run_as_owner(&carry_opt_outs, values, nulls, 0);
	crm_query_run_as(caller, &carry_consent_basis, values, nulls, 0);
}

/* create_opportunity -- the new opportunity in the first open stage */
static void
create_opportunity(Oid caller, Oid owner, const Lead *lead, const char *given_name,
				   Conversion *conv)
{
	Datum		values[7];
	char		nulls[7];
	bool		isnull;
	char	   *stage;
	CrmConversionRecord record = {0};
	Datum		probability;
	bool		probability_isnull;
	const char *name = given_name;

	crm_query_run_as_owner(&first_open_stage, NULL, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_NO_OPEN_STAGE),
				 errmsg("no open opportunity stage to start lead %lld in", (long long) lead->id),
				 errdetail("Every stage in crm.opportunity_stage is closed or inactive."),
				 errhint("Activate an open stage, or convert with create_opportunity => false.")));
	stage = crm_result_text(0, 1);
	probability = crm_result_datum(0, 2, &probability_isnull);

	if (name == NULL)
		name = lead->company ? psprintf("%s - %s", lead->company, lead->name) : lead->name;

	crm_param_text(values, nulls, 0, name);
	crm_param_int64(values, nulls, 1, conv->account_id, false);
	crm_param_int64(values, nulls, 2, conv->contact_id, false);
	crm_param_text(values, nulls, 3, stage);
	values[4] = probability;
	nulls[4] = probability_isnull ? 'n' : ' ';
	values[5] = ObjectIdGetDatum(owner);
	nulls[5] = ' ';
	crm_param_int64(values, nulls, 6, lead->campaign_id, lead->campaign_isnull);
	/* the guard gives the new opportunity its source lead */
	record.lead_id = lead->id;
	record.new_opportunity = true;
	crm_conversion_record(&record);
	crm_query_run_as(caller, &insert_opportunity, values, nulls, 0);
	crm_conversion_record(NULL);
	conv->opportunity_id = crm_result_int64(0, 1, &isnull);
	conv->opportunity_created = true;
	conv->has_opportunity = true;
}

/* mark_converted -- write the conversion record onto the lead */
static void
mark_converted(Oid caller, const Lead *lead, const Conversion *conv)
{
	Datum		values[1] = {Int64GetDatum(lead->id)};
	char		nulls[1] = {' '};
	CrmConversionRecord record = {0};

	/* the guard fills in the record: the caller converted it */
	record.lead_id = lead->id;
	record.account_id = conv->account_id;
	record.contact_id = conv->contact_id;
	record.opportunity_id = conv->opportunity_id;
	record.has_opportunity = conv->has_opportunity;
	record.converted_by = caller;
	crm_conversion_record(&record);
	crm_query_run_as(caller, &mark_lead_converted, values, nulls, 0);
	crm_conversion_record(NULL);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to convert lead %lld", (long long) lead->id),
				 errdetail("Row-level security does not let role \"%s\" update this lead.",
						   crm_role_name(caller))));
}

/* close_converted_pairs -- settle the lead's pairs with its account and contact */
static void
close_converted_pairs(Oid caller, const Lead *lead, const Conversion *conv)
{
	Datum		values[4];
	char		nulls[4];

	/* before 0.7 (the library serves every version) there is no queue */
	if (!OidIsValid(get_relname_relid("duplicate_candidate", get_namespace_oid("crm", false))))
		return;
	crm_param_int64(values, nulls, 0, lead->id, false);
	crm_param_int64(values, nulls, 1, conv->account_id, false);
	crm_param_int64(values, nulls, 2, conv->contact_id, false);
	values[3] = ObjectIdGetDatum(caller);
	nulls[3] = ' ';
	crm_query_run_as_owner(&close_pairs, values, nulls, 0);
}

static bool
required_bool(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", argname),
				 errhint("Pass true or false, or leave the argument out for its default.")));
	return PG_GETARG_BOOL(argno);
}

/*
 * opportunity_to_attach -- the account of the opportunity the caller names
 * (opportunity_id =>), read as the caller; ZC011 when it does not see it.
 */
static int64
opportunity_to_attach(Oid caller, int64 opportunity_id)
{
	Datum		values[1] = {Int64GetDatum(opportunity_id)};
	char		nulls[1] = {' '};
	bool		isnull;

	crm_query_run_as(caller, &opportunity_account, values, nulls, 1);
	if (SPI_processed == 0)
		crm_not_visible(ERRCODE_CRM_OPPORTUNITY_NOT_FOUND, "opportunity", opportunity_id, caller);
	return crm_result_int64(0, 1, &isnull);
}

static void
opportunity_not_on_account(int64 opportunity_id, int64 account_id, int64 its_account,
						   const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_CRM_OPPORTUNITY_NOT_ON_ACCOUNT),
			 errmsg("opportunity %lld is not on account %lld",
					(long long) opportunity_id, (long long) account_id),
			 errdetail("%s", detail ? detail : psprintf("It is on account %lld.", (long long) its_account)),
			 errhint("Leave account_id out to convert onto the opportunity's account, or name a contact on that account.")));
}

/*
 * lock_attached_opportunity -- hold the account, then lock the opportunity
 * as the caller (it must be able to update it) and check that it is still
 * on the account: a concurrent change of its account or its deletion that
 * committed first is seen here (README "Concurrency").
 */
static void
lock_attached_opportunity(Oid caller, int64 opportunity_id, int64 account_id)
{
	Datum		values[1] = {Int64GetDatum(account_id)};
	char		nulls[1] = {' '};
	bool		isnull;
	int64		now_on;

	crm_query_run_as_owner(&hold_account, values, nulls, 1);
	if (SPI_processed == 0)
		crm_not_visible(ERRCODE_CRM_ACCOUNT_NOT_FOUND, "account", account_id, caller);
	values[0] = Int64GetDatum(opportunity_id);
	crm_query_run_as(caller, &lock_opportunity, values, nulls, 1);
	if (SPI_processed == 0)
	{
		crm_query_run_as(caller, &opportunity_account, values, nulls, 1);
		if (SPI_processed == 0)
			crm_not_visible(ERRCODE_CRM_OPPORTUNITY_NOT_FOUND, "opportunity", opportunity_id, caller);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to attach a lead to opportunity %lld", (long long) opportunity_id),
				 errdetail("Row-level security does not let role \"%s\" update this opportunity.",
						   crm_role_name(caller)),
				 errhint("Ask its owner or a manager to convert the lead onto it.")));
	}
	now_on = crm_result_int64(0, 1, &isnull);
	if (isnull || now_on != account_id)
		opportunity_not_on_account(opportunity_id, account_id, now_on,
								   psprintf("It was moved to account %lld by a transaction that committed meanwhile.",
											(long long) now_on));
}

/* attach -- the lead becomes the source of an existing opportunity */
static void
attach(Oid caller, const Lead *lead, int64 opportunity_id, Conversion *conv)
{
	Datum		values[3];
	char		nulls[3];

	crm_param_int64(values, nulls, 0, opportunity_id, false);
	crm_param_int64(values, nulls, 1, conv->contact_id, false);
	crm_param_int64(values, nulls, 2, lead->campaign_id, lead->campaign_isnull);
	crm_query_run_as(caller, &attach_opportunity, values, nulls, 0);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to attach a lead to opportunity %lld", (long long) opportunity_id),
				 errdetail("Row-level security does not let role \"%s\" update this opportunity.",
						   crm_role_name(caller))));
	crm_query_run_as(caller, &attach_contact_role, values, nulls, 0);
	/* the caller may update the row (checked just above): its source lead, as the owner */
	crm_param_int64(values, nulls, 1, lead->id, false);
	crm_query_run_as_owner(&attach_source_lead, values, nulls, 0);
	conv->opportunity_id = opportunity_id;
	conv->has_opportunity = true;
}

/*
 * convert -- crm.convert_lead(), or with conv->preview set
 * crm.conversion_preview(): the same steps, searches and checks, with the
 * caller's rights; the preview takes no key or row locks, writes nothing,
 * and adds a row for each record it would reuse, create, attach or move.
 *
 * Arguments: lead_id, account_id, contact_id, create_opportunity,
 * opportunity_name, owner, dedupe, opportunity_id.
 */
static void
convert(FunctionCallInfo fcinfo, Conversion *conv)
{
	Oid			caller = crm_caller();
	int64		lead_id;
	bool		account_given = !PG_ARGISNULL(1);
	bool		contact_given = !PG_ARGISNULL(2);
	int64		account_id = account_given ? PG_GETARG_INT64(1) : 0;
	int64		contact_id = contact_given ? PG_GETARG_INT64(2) : 0;
	bool		want_opportunity = required_bool(fcinfo, 3, "create_opportunity");
	char	   *opportunity_name = PG_ARGISNULL(4) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(4));
	bool		owner_given = !PG_ARGISNULL(5);
	bool		dedupe = required_bool(fcinfo, 6, "dedupe");
	bool		attaching = PG_NARGS() > 7 && !PG_ARGISNULL(7);
	int64		attach_to = attaching ? PG_GETARG_INT64(7) : 0;
	bool		preview = conv->preview != NULL;
	bool		carry;
	Oid			owner = InvalidOid;	/* set below: given, or the lead's */
	Lead		lead;
	MatchKeys	keys;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("lead_id must not be null"),
				 errhint("Pass the id of the lead to convert.")));
	lead_id = PG_GETARG_INT64(0);

	if (attaching && (!want_opportunity || opportunity_name != NULL))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("opportunity_id cannot be combined with %s",
						!want_opportunity ? "create_opportunity => false" : "opportunity_name"),
				 errdetail("opportunity_id attaches the lead to an existing opportunity instead of creating one."),
				 errhint("Pass either opportunity_id, or create_opportunity and opportunity_name.")));

	if (owner_given)
	{
		owner = PG_GETARG_OID(5);
		if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(owner)))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("role with OID %u does not exist", owner),
					 errhint("Pass the owner as a role name, e.g. owner => 'alice'.")));
	}

	crm_spi_connect();

	/*
	 * Key locks first, then the lead's row lock: a conversion never holds
	 * the row lock while it waits for a key (see the file header).  The keys
	 * are taken again from the locked row, in case it changed meanwhile.
	 * An attached opportunity brings its account: no account keys.
	 */
	if (dedupe && !preview && peek_match_keys(caller, lead_id, &keys))
		lock_match_keys(&keys, !account_given && !attaching, !contact_given);
	read_lead(caller, lead_id, preview, &lead);
	match_keys(lead.company, lead.website, lead.email, &keys);
	if (dedupe && !preview)
		lock_match_keys(&keys, !account_given && !attaching, !contact_given);
	if (!owner_given)
		owner = lead.owner;
	/* before 0.7 (the library serves every version) nothing moves */
	carry = get_attnum(crm_relation_oid("settings"), "convertible_statuses") != InvalidAttrNumber;

	/* the account: named, the opportunity's, the contact's primary one, matched, or new */
	if (account_given)
		check_account(caller, account_id);
	if (attaching)
	{
		int64		its_account = opportunity_to_attach(caller, attach_to);

		if (!account_given)
		{
			check_account(caller, its_account);
			account_id = its_account;
			account_given = true;
		}
		else if (its_account != account_id)
			opportunity_not_on_account(attach_to, account_id, its_account, NULL);
		if (!preview)
			lock_attached_opportunity(caller, attach_to, account_id);
	}
	if (contact_given)
	{
		bool		primary_isnull;
		int64		primary = check_contact(caller, contact_id, account_id,
											account_given, &primary_isnull);

		if (!account_given && !primary_isnull)
		{
			/*
			 * The deal goes on the contact's primary account, which the
			 * caller must see: a contact can be visible through an account
			 * it is linked to while its primary account is not.
			 */
			if (!account_is_visible(caller, primary))
				ereport(ERROR,
						(errcode(ERRCODE_CRM_ACCOUNT_NOT_FOUND),
						 errmsg("the primary account of contact %lld is not visible to role \"%s\"",
								(long long) contact_id, crm_role_name(caller)),
						 errdetail("The opportunity would go on the contact's primary account."),
						 errhint("Pass account_id => an account you can see that the contact is linked to.")));
			account_id = primary;
			account_given = true;
		}
	}
	/*
	 * The account and contact made from the lead are not its duplicates:
	 * the duplicate check on entry leaves this lead out (duplicate_check.c).
	 */
	crm_permit_push(CRM_PERMIT_CONVERTING, lead.id);
	conv->account_id = account_id;
	if (!account_given)
		resolve_account(caller, owner, &lead, &keys, dedupe, conv);
	else if (preview)
		preview_existing(conv, caller, "reuse", "account", account_id,
						 attaching && PG_ARGISNULL(1) ? "the opportunity's account"
						 : PG_ARGISNULL(1) ? "the contact's primary account" : "given");
	if (!conv->account_created && !preview)
		fill_reused_account(caller, &lead, conv->account_id);

	/* the contact: named, matched by e-mail, or new */
	conv->contact_id = contact_id;
	if (!contact_given)
		resolve_contact(caller, owner, &lead, &keys, dedupe, conv);
	else if (preview)
		preview_existing(conv, caller, "reuse", "contact", contact_id, "given");
	if (!preview)
	{
		if (!conv->contact_created)
			fill_reused_contact(caller, owner, &lead, conv);
		carry_consent(caller, lead.id, conv->contact_id);
	}
	crm_permit_pop(CRM_PERMIT_CONVERTING, lead.id);

	if (preview)
	{
		if (attaching)
			preview_existing(conv, caller, "attach", "opportunity", attach_to, "given");
		else if (want_opportunity)
			crm_conversion_preview_row(conv->preview, "create", "opportunity", 0, true, "new",
									   opportunity_name ? opportunity_name
									   : lead.company ? psprintf("%s - %s", lead.company, lead.name)
									   : lead.name);
		if (carry)
			crm_preview_lead_rows(conv->preview, caller, lead.id, conv->contact_id,
								  conv->contact_created, attaching || want_opportunity);
		crm_spi_finish();
		return;
	}

	/*
	 * The writes only a conversion may make: the opportunity with its source
	 * lead, and the lead's conversion record (conversion_guard.c).
	 */
	crm_permit_push(CRM_PERMIT_CONVERSION, lead.id);
	if (attaching)
		attach(caller, &lead, attach_to, conv);
	else if (want_opportunity)
		create_opportunity(caller, owner, &lead, opportunity_name, conv);
	mark_converted(caller, &lead, conv);
	crm_permit_pop(CRM_PERMIT_CONVERSION, lead.id);
	close_converted_pairs(caller, &lead, conv);
	if (carry)
		crm_carry_lead_rows(lead.id, conv->contact_id, conv->contact_created,
							conv->opportunity_id, conv->has_opportunity);
	{
		/* which records the conversion made (the others are the caller's to write or not) */
		bool		made[3] = {conv->account_created, conv->contact_created, !attaching};

		crm_carry_lead_attributes(lead.id, conv->account_id, conv->contact_id,
								  conv->opportunity_id, conv->has_opportunity, made);
	}

	crm_spi_finish();
}

/* crm_convert_lead -- SQL crm.convert_lead(lead_id, account_id, contact_id,
 * create_opportunity, opportunity_name, owner, dedupe, opportunity_id) */
PG_FUNCTION_INFO_V1(crm_convert_lead);
Datum
crm_convert_lead(PG_FUNCTION_ARGS)
{
	Conversion	conv = {0};
	TupleDesc	tupdesc;
	Datum		result[7];
	bool		result_nulls[7] = {false, false, false, false, false, false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "crm: crm.convert_lead() must return crm.conversion_result");

	convert(fcinfo, &conv);

	result[0] = PG_GETARG_DATUM(0);
	result[1] = Int64GetDatum(conv.account_id);
	result[2] = Int64GetDatum(conv.contact_id);
	result[3] = Int64GetDatum(conv.opportunity_id);
	result_nulls[3] = !conv.has_opportunity;
	result[4] = BoolGetDatum(conv.account_created);
	result[5] = BoolGetDatum(conv.contact_created);
	result[6] = BoolGetDatum(conv.opportunity_created);
	tupdesc = BlessTupleDesc(tupdesc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, result, result_nulls)));
}

/* crm_conversion_preview -- SQL crm.conversion_preview(): the same arguments */
PG_FUNCTION_INFO_V1(crm_conversion_preview);
Datum
crm_conversion_preview(PG_FUNCTION_ARGS)
{
	Conversion	conv = {0};

	InitMaterializedSRF(fcinfo, 0);
	conv.preview = (ReturnSetInfo *) fcinfo->resultinfo;
	convert(fcinfo, &conv);
	return (Datum) 0;
}
