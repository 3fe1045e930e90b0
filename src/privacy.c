/*
 * privacy.c: a person's data, found by e-mail address, and the access
 * request crm.export_person(email).
 *
 * Privacy officers (crm_privacy_officer, of which crm_admin is a member)
 * act on every row, whoever owns it, but hold no privilege on the tables
 * themselves: the functions read (and erasure.c writes) as the extension
 * owner, after checking the caller's membership.
 *
 * A person is an e-mail address, compared in lower case: the leads and
 * contacts that have it now, and the leads and contacts that had it and
 * were deleted since (found through their change-log entries).
 *
 * The export is one JSON object with a section per kind of row; a section
 * with no rows is left out, so a person crm knows nothing about gives {}.
 * The sections are the list below: a table added later (e-mails) is one
 * more entry.
 */
#include "crm.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

/*
 * The rows of the person with e-mail $1, as CTEs the sections read:
 * person_lead (id), person_contact (id) -- rows that exist now -- and
 * person_gone (table_name, row_id) -- leads and contacts deleted since, whose
 * change-log entries held the e-mail.
 */
#define PERSON_ROWS \
	"WITH person_lead AS (" \
	"  SELECT l.id FROM crm.lead AS l" \
	"   WHERE pg_catalog.lower(l.email::pg_catalog.text) OPERATOR(pg_catalog.=) pg_catalog.lower($1)" \
	"), person_contact AS (" \
	"  SELECT c.id FROM crm.contact AS c" \
	"   WHERE pg_catalog.lower(c.email::pg_catalog.text) OPERATOR(pg_catalog.=) pg_catalog.lower($1)" \
	"), person_logged AS (" \
	"  SELECT DISTINCT g.table_name, g.row_id FROM crm.change_log AS g" \
	"   WHERE g.table_name OPERATOR(pg_catalog.=) ANY (ARRAY['crm.lead'::pg_catalog.regclass, 'crm.contact'::pg_catalog.regclass])" \
	"     AND g.row_id IS NOT NULL" \
	"     AND pg_catalog.lower($1) OPERATOR(pg_catalog.=) ANY (ARRAY[" \
	"           pg_catalog.lower(g.changes OPERATOR(pg_catalog.->>) 'email')," \
	"           pg_catalog.lower(g.changes OPERATOR(pg_catalog.#>>) '{email,old}')," \
	"           pg_catalog.lower(g.changes OPERATOR(pg_catalog.#>>) '{email,new}')])" \
	"), person_gone AS (" \
	"  SELECT p.table_name, p.row_id FROM person_logged AS p" \
	"   WHERE NOT EXISTS (SELECT 1 FROM crm.lead AS l WHERE p.table_name OPERATOR(pg_catalog.=) 'crm.lead'::pg_catalog.regclass" \
	"                        AND l.id OPERATOR(pg_catalog.=) p.row_id)" \
	"     AND NOT EXISTS (SELECT 1 FROM crm.contact AS c WHERE p.table_name OPERATOR(pg_catalog.=) 'crm.contact'::pg_catalog.regclass" \
	"                        AND c.id OPERATOR(pg_catalog.=) p.row_id)" \
	")"

/* one section of the export: its key and the query of its JSON array */
typedef struct ExportSection
{
	const char *key;
	const char *rows;			/* SELECT of one jsonb array, or NULL for none */
} ExportSection;

#define ROWS_OF(alias, from_where) \
	"(SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(" alias ") OPERATOR(pg_catalog.-) 'search_text'::pg_catalog.text ORDER BY " alias ".id) FROM " from_where ")"

/* a free text that contains the address asked about, in any case */
#define NAMES_ADDRESS(col) \
	"pg_catalog.strpos(pg_catalog.lower(" col "), pg_catalog.lower($1)) OPERATOR(pg_catalog.>) 0"

static const ExportSection export_sections[] = {
	{"leads", ROWS_OF("l", "crm.lead AS l WHERE l.id IN (SELECT id FROM person_lead)")},
	{"contacts", ROWS_OF("c", "crm.contact AS c WHERE c.id IN (SELECT id FROM person_contact)")},
	{"account_links",
		"(SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(ac) ORDER BY ac.contact_id, ac.account_id)"
		" FROM crm.account_contact AS ac WHERE ac.contact_id IN (SELECT id FROM person_contact))"},
	{"activities", ROWS_OF("a", "crm.activity AS a WHERE a.lead_id IN (SELECT id FROM person_lead)"
						   " OR a.contact_id IN (SELECT id FROM person_contact)")},
	{"activity_participation", ROWS_OF("p", "crm.activity_participant AS p"
									   " WHERE p.contact_id IN (SELECT id FROM person_contact)")},
	/* the deals the person plays a part in (issue 20: contact roles) */
	{"deal_roles",
		"(SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r) ORDER BY r.contact_id, r.opportunity_id)"
		" FROM crm.opportunity_contact_role AS r WHERE r.contact_id IN (SELECT id FROM person_contact))"},
	{"campaign_memberships",
		"(SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(m) OPERATOR(pg_catalog.||)"
		"   pg_catalog.jsonb_build_object('campaign_name', k.name) ORDER BY m.id)"
		" FROM crm.campaign_member AS m JOIN crm.campaign AS k ON k.id OPERATOR(pg_catalog.=) m.campaign_id"
		" WHERE m.lead_id IN (SELECT id FROM person_lead) OR m.contact_id IN (SELECT id FROM person_contact))"},
	{"lead_status_history", ROWS_OF("h", "crm.lead_status_history AS h"
									" WHERE h.lead_id IN (SELECT id FROM person_lead)")},
	{"change_log", ROWS_OF("g", "crm.change_log AS g"
						   " WHERE (g.table_name OPERATOR(pg_catalog.=) 'crm.lead'::pg_catalog.regclass"
						   "        AND g.row_id IN (SELECT id FROM person_lead))"
						   "    OR (g.table_name OPERATOR(pg_catalog.=) 'crm.contact'::pg_catalog.regclass"
						   "        AND g.row_id IN (SELECT id FROM person_contact))"
						   "    OR (g.table_name, g.row_id) IN (SELECT table_name, row_id FROM person_gone)")},
	/* what web forms and integrations sent about the person, refused captures too */
	{"captures", ROWS_OF("k", "crm.lead_capture AS k WHERE k.lead_id IN (SELECT id FROM person_lead)"
						 " OR pg_catalog.lower(k.payload OPERATOR(pg_catalog.->>) 'email') OPERATOR(pg_catalog.=) pg_catalog.lower($1)")},
	/*
	 * notes and attachments about her leads and contacts, and those on other
	 * records that name her address (what the erasure redacts there)
	 */
	{"notes", ROWS_OF("n", "crm.note AS n WHERE n.lead_id IN (SELECT id FROM person_lead)"
					  " OR n.contact_id IN (SELECT id FROM person_contact)"
					  " OR " NAMES_ADDRESS("n.body"))},
	{"attachments", ROWS_OF("f", "crm.attachment AS f WHERE f.lead_id IN (SELECT id FROM person_lead)"
							" OR f.contact_id IN (SELECT id FROM person_contact)"
							" OR " NAMES_ADDRESS("f.file_name"))},
	/*
	 * logged e-mails linked to her leads or contacts, with her address among
	 * the participants, or naming it in the subject or body
	 */
	{"emails", ROWS_OF("e", "crm.email AS e"
					   " WHERE e.id IN (SELECT k.email_id FROM crm.email_link AS k"
					   "                 WHERE k.lead_id IN (SELECT id FROM person_lead)"
					   "                    OR k.contact_id IN (SELECT id FROM person_contact))"
					   "    OR e.participants OPERATOR(pg_catalog.@>) ARRAY[pg_catalog.lower($1)]"
					   "    OR " NAMES_ADDRESS("e.subject") " OR " NAMES_ADDRESS("e.body_text"))},
	{NULL, NULL}
};

static CrmQuery export_query = {NULL, 1, {TEXTOID}, NULL};

/* the export's query text, built from the sections once per backend */
static const char *
export_sql(void)
{
	StringInfoData buf;
	MemoryContext old;

	if (export_query.sql != NULL)
		return export_query.sql;
	old = MemoryContextSwitchTo(TopMemoryContext);
	initStringInfo(&buf);
	appendStringInfoString(&buf, PERSON_ROWS
						   " SELECT COALESCE(pg_catalog.jsonb_object_agg(s.key, s.rows ORDER BY s.n), '{}'::pg_catalog.jsonb)"
						   " FROM (VALUES ");
	for (int i = 0; export_sections[i].key != NULL; i++)
		appendStringInfo(&buf, "%s(%d, '%s', %s)", i > 0 ? ", " : "", i,
						 export_sections[i].key, export_sections[i].rows);
	appendStringInfoString(&buf, ") AS s (n, key, rows) WHERE s.rows IS NOT NULL");
	MemoryContextSwitchTo(old);
	export_query.sql = buf.data;
	return export_query.sql;
}

/*
 * crm_require_privacy_officer -- the caller must be a privacy officer (or an
 * admin, who is one), or the action is refused with 42501
 */
void
crm_require_privacy_officer(Oid caller, const char *action)
{
	static const char *const officers[] = {"crm_privacy_officer", NULL};

	crm_require_role(caller, officers, action);
}

/*
 * crm_is_email_address -- the shape crm.email_address accepts: one @ with a non-empty
 * local part before it and a dotted domain after it (no empty label), no
 * white space, at most 254 characters
 */
bool
crm_is_email_address(const char *s)
{
	const char *at = strchr(s, '@');
	const char *p;
	bool		dotted = false;

	if (strlen(s) > 254 || at == NULL || at == s || strchr(at + 1, '@') != NULL)
		return false;
	for (p = s; *p; p++)
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v')
			return false;
	/* domain: labels separated by single dots, at least two labels */
	p = at + 1;
	if (*p == '\0' || *p == '.')
		return false;
	for (; *p; p++)
		if (*p == '.')
		{
			if (p[1] == '\0' || p[1] == '.')
				return false;
			dotted = true;
		}
	return dotted;
}

/*
 * crm_person_email -- the e-mail argument of a privacy function: not NULL
 * (22004) and an e-mail address (ZC801).  The message does not repeat the
 * argument: server logs should not collect the addresses asked about.
 */
char *
crm_person_email(FunctionCallInfo fcinfo, int argno)
{
	char	   *email;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("email must not be null"),
				 errhint("Pass the e-mail address of the person.")));
	email = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (!crm_is_email_address(email))
		ereport(ERROR,
				(errcode(ERRCODE_CRM_INVALID_EMAIL),
				 errmsg("the email argument is not an e-mail address"),
				 errdetail("A person is found by one e-mail address: local part, @, dotted domain, no spaces, at most 254 characters."),
				 errhint("Pass exactly one address, such as maria@example.com.")));
	return email;
}

/* crm_export_person -- SQL crm.export_person(email) */
PG_FUNCTION_INFO_V1(crm_export_person);
Datum
crm_export_person(PG_FUNCTION_ARGS)
{
	char	   *email;
	Datum		values[1];
	char		nulls[1] = {' '};
	bool		isnull;
	Datum		result;

	crm_require_privacy_officer(crm_caller(), "export a person's data");
	email = crm_person_email(fcinfo, 0);

	export_sql();
	values[0] = CStringGetTextDatum(email);
	crm_spi_connect();
	crm_query_run_as_owner(&export_query, values, nulls, 1);
	result = SPI_datumTransfer(crm_result_datum(0, 1, &isnull), false, -1);
	crm_spi_finish();
	PG_RETURN_DATUM(result);
}
