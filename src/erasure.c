/*
 * erasure.c: crm.erase_person(email, reason), a person erased everywhere.
 *
 * In one transaction, as the extension owner (after checking that the
 * caller is a privacy officer):
 *
 *  1. lock: the extension's e-mail key lock (locks.c; conversions searching
 *     for this address take it too), then the person's leads and then their
 *     contacts, FOR UPDATE in id order -- the order a conversion takes them.
 *     A write to those rows that committed first is erased with them; one
 *     that waits sees the erased rows.
 *  2. find what to erase: the person's leads and contacts, the deleted ones
 *     whose change-log entries held the address, and the "needles": the
 *     names, phone numbers and e-mail addresses those rows have or had (in
 *     lower case, 3 characters at least).
 *  3. pseudonymise the leads and contacts: name "Erased person <n>" (n =
 *     the erasure's number in crm.erasure_log), e-mail, phone, title and
 *     free text cleared, every opt-out set.
 *  4. redact related rows: an account named after the person (a private
 *     customer) or with their phone number, opportunity names (a converted
 *     lead's deal is named "<company> - <name>"), activities about the
 *     person (descriptions -- e-mail bodies, call notes -- cleared) or
 *     mentioning them, notes and attachments about the person (a note's
 *     body, an attachment's file name: "[erased]"), logged e-mails (her addresses replaced; subject and
 *     body cleared where hers, her needles removed elsewhere; a message
 *     id or in_reply_to holding a needle becomes a digest of itself).
 *  5. redact the tables that hold copies of values (the list below): in
 *     change-log entries of the person's rows every personal column reads
 *     "[erased]", and elsewhere every value that contains a needle; the
 *     entries steps 3 and 4 just wrote (which hold the old values) included.
 *     The audit trail's append-only trigger lets these updates through only
 *     while the erasure holds its permit (permit.c).
 *  6. append the erasure to crm.erasure_log (salted hash of the address,
 *     counts) and return that row.
 *
 * The lead and opportunity history tables hold no personal values (ids,
 * statuses, stages, amounts, dates), and aggregates, conversion records and
 * amounts are not touched.
 */
#include "crm.h"

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/formatting.h"

/* The personal columns of leads and contacts, cleared by the erasure. */
#define PERSONAL_COLUMNS "{name,title,email,phone,remarks,description,consent_source,attributes}"
/*
 * the person's custom field values: those of text fields become "[erased]"
 * (a required field keeps a value); numbers, dates, booleans and picks stay
 */
#define ERASED_ATTRIBUTES(alias, object) \
	"(SELECT COALESCE(pg_catalog.jsonb_object_agg(e.key, CASE WHEN f.type OPERATOR(pg_catalog.=) 'text'" \
	"          THEN '\"[erased]\"'::pg_catalog.jsonb ELSE e.value END), '{}'::pg_catalog.jsonb)" \
	"   FROM pg_catalog.jsonb_each(" alias ".attributes) AS e" \
	"   LEFT JOIN crm.custom_field AS f ON f.object OPERATOR(pg_catalog.=) '" object "'" \
	"    AND f.name OPERATOR(pg_catalog.=) e.key)"
/* the columns of an account named after the person (a private customer's) that are hers */
#define PRIVATE_ACCOUNT_COLUMNS "{name,phone,street,postal_code,description}"

/*
 * The statements of steps 3 to 5 take one parameter vector:
 * $1 leads, $2 contacts (deleted ones included), $3 accounts, $4
 * opportunities, $5 every needle, $6 e-mail and phone needles, $7 names,
 * $8 the pseudonym.
 */
#define PERSON_PARAMS 8, {INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, \
		TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTOID}

static CrmQuery next_erasure_number = {
	"SELECT pg_catalog.nextval(pg_catalog.pg_get_serial_sequence('crm.erasure_log', 'id'))",
	0, {InvalidOid}, NULL
};

static CrmQuery lock_leads = {
	"SELECT COALESCE(pg_catalog.array_agg(s.id ORDER BY s.id), '{}') FROM ("
	" SELECT l.id FROM crm.lead AS l"
	"  WHERE pg_catalog.lower(l.email::pg_catalog.text) OPERATOR(pg_catalog.=) pg_catalog.lower($1)"
	"  ORDER BY l.id FOR UPDATE OF l) AS s",
	1, {TEXTOID}, NULL
};

static CrmQuery lock_contacts = {
	"SELECT COALESCE(pg_catalog.array_agg(s.id ORDER BY s.id), '{}') FROM ("
	" SELECT c.id FROM crm.contact AS c"
	"  WHERE pg_catalog.lower(c.email::pg_catalog.text) OPERATOR(pg_catalog.=) pg_catalog.lower($1)"
	"  ORDER BY c.id FOR UPDATE OF c) AS s",
	1, {TEXTOID}, NULL
};

/* $2, $3: the locked leads and contacts; result: with the deleted ones added */
static CrmQuery with_deleted_rows = {
	"SELECT $2 OPERATOR(pg_catalog.||) COALESCE(pg_catalog.array_agg(g.row_id)"
	"         FILTER (WHERE g.table_name OPERATOR(pg_catalog.=) 'crm.lead'::pg_catalog.regclass), '{}'),"
	"       $3 OPERATOR(pg_catalog.||) COALESCE(pg_catalog.array_agg(g.row_id)"
	"         FILTER (WHERE g.table_name OPERATOR(pg_catalog.=) 'crm.contact'::pg_catalog.regclass), '{}')"
	"  FROM (SELECT DISTINCT c.table_name, c.row_id FROM crm.change_log AS c"
	"         WHERE c.table_name OPERATOR(pg_catalog.=) ANY (ARRAY['crm.lead'::pg_catalog.regclass, 'crm.contact'::pg_catalog.regclass])"
	"           AND c.row_id IS NOT NULL"
	"           AND pg_catalog.lower($1) OPERATOR(pg_catalog.=) ANY (ARRAY["
	"                 pg_catalog.lower(c.changes OPERATOR(pg_catalog.->>) 'email'),"
	"                 pg_catalog.lower(c.changes OPERATOR(pg_catalog.#>>) '{email,old}'),"
	"                 pg_catalog.lower(c.changes OPERATOR(pg_catalog.#>>) '{email,new}')])) AS g"
	" WHERE NOT EXISTS (SELECT 1 FROM crm.lead AS l WHERE g.table_name OPERATOR(pg_catalog.=) 'crm.lead'::pg_catalog.regclass"
	"                      AND l.id OPERATOR(pg_catalog.=) g.row_id)"
	"   AND NOT EXISTS (SELECT 1 FROM crm.contact AS t WHERE g.table_name OPERATOR(pg_catalog.=) 'crm.contact'::pg_catalog.regclass"
	"                      AND t.id OPERATOR(pg_catalog.=) g.row_id)",
	3, {TEXTOID, INT8ARRAYOID, INT8ARRAYOID}, NULL
};

/*
 * The needles: names, and (second) e-mail addresses and phone numbers, that
 * the person's rows ($2 leads, $3 contacts; deleted ones included) have or
 * had, in lower case; $1, the address asked about, among the second.
 */
static CrmQuery find_needles = {
	"WITH v (kind, value) AS ("
	"  SELECT k.kind, k.value FROM crm.lead AS l"
	"   CROSS JOIN LATERAL (VALUES ('name', l.name), ('phone', l.phone::pg_catalog.text)) AS k (kind, value)"
	"   WHERE l.id OPERATOR(pg_catalog.=) ANY ($2)"
	"  UNION ALL"
	"  SELECT k.kind, k.value FROM crm.contact AS c"
	"   CROSS JOIN LATERAL (VALUES ('name', c.name), ('phone', c.phone::pg_catalog.text)) AS k (kind, value)"
	"   WHERE c.id OPERATOR(pg_catalog.=) ANY ($3)"
	"  UNION ALL"
	"  SELECT k.kind, x.value OPERATOR(pg_catalog.#>>) '{}' FROM crm.change_log AS g"
	"   CROSS JOIN LATERAL (VALUES ('name'), ('phone'), ('email')) AS k (kind)"
	"   CROSS JOIN LATERAL (VALUES (g.changes OPERATOR(pg_catalog.->) k.kind),"
	"                              (g.changes OPERATOR(pg_catalog.->) k.kind OPERATOR(pg_catalog.->) 'old'),"
	"                              (g.changes OPERATOR(pg_catalog.->) k.kind OPERATOR(pg_catalog.->) 'new')) AS x (value)"
	"   WHERE ((g.table_name OPERATOR(pg_catalog.=) 'crm.lead'::pg_catalog.regclass AND g.row_id OPERATOR(pg_catalog.=) ANY ($2))"
	"       OR (g.table_name OPERATOR(pg_catalog.=) 'crm.contact'::pg_catalog.regclass AND g.row_id OPERATOR(pg_catalog.=) ANY ($3)))"
	"     AND pg_catalog.jsonb_typeof(x.value) OPERATOR(pg_catalog.=) 'string')"
	" SELECT s.n, s.c, s.n OPERATOR(pg_catalog.||) s.c FROM ("
	" SELECT COALESCE(pg_catalog.array_agg(DISTINCT pg_catalog.lower(v.value)) FILTER (WHERE v.kind OPERATOR(pg_catalog.=) 'name'), '{}') AS n,"
	"        pg_catalog.array_cat(COALESCE(pg_catalog.array_agg(DISTINCT pg_catalog.lower(v.value))"
	"                                        FILTER (WHERE v.kind OPERATOR(pg_catalog.<>) 'name'"
	"                                                  AND pg_catalog.lower(v.value) OPERATOR(pg_catalog.<>) pg_catalog.lower($1)), '{}'),"
	"                             ARRAY[pg_catalog.lower($1)]) AS c"
	"   FROM v"
	"  WHERE v.value IS NOT NULL AND pg_catalog.length(pg_catalog.btrim(v.value)) OPERATOR(pg_catalog.>=) 3"
	"    AND (v.kind OPERATOR(pg_catalog.<>) 'phone' OR crm.phone_key(v.value) IS NOT NULL)"
	"    AND v.value OPERATOR(pg_catalog.<>) '[erased]' AND v.value OPERATOR(pg_catalog.!~) '^Erased person [0-9]+$') AS s",
	3, {TEXTOID, INT8ARRAYOID, INT8ARRAYOID}, NULL
};

/* The accounts and opportunities of the person's leads ($1) and contacts ($2). */
static CrmQuery related_rows = {
	"WITH a (id) AS ("
	"  SELECT l.account_id FROM crm.lead AS l WHERE l.id OPERATOR(pg_catalog.=) ANY ($1) AND l.account_id IS NOT NULL"
	"  UNION SELECT c.account_id FROM crm.contact AS c WHERE c.id OPERATOR(pg_catalog.=) ANY ($2) AND c.account_id IS NOT NULL"
	"  UNION SELECT ac.account_id FROM crm.account_contact AS ac WHERE ac.contact_id OPERATOR(pg_catalog.=) ANY ($2))"
	" SELECT (SELECT COALESCE(pg_catalog.array_agg(a.id ORDER BY a.id), '{}') FROM a),"
	"        (SELECT COALESCE(pg_catalog.array_agg(o.id ORDER BY o.id), '{}') FROM crm.opportunity AS o"
	"          WHERE o.lead_id OPERATOR(pg_catalog.=) ANY ($1) OR o.contact_id OPERATOR(pg_catalog.=) ANY ($2)"
	"             OR o.account_id IN (SELECT a.id FROM a)"
	"             OR o.id IN (SELECT l.opportunity_id FROM crm.lead AS l WHERE l.id OPERATOR(pg_catalog.=) ANY ($1)))",
	2, {INT8ARRAYOID, INT8ARRAYOID}, NULL
};

static CrmQuery pseudonymise_leads = {
	"UPDATE crm.lead AS l SET name = $8, title = NULL, email = NULL, phone = NULL, remarks = NULL,"
	" attributes = " ERASED_ATTRIBUTES("l", "lead") ","
	" company = CASE WHEN pg_catalog.lower(l.company) OPERATOR(pg_catalog.=) ANY ($7) THEN $8 ELSE l.company END,"
	" consent_source = NULL, email_opt_out = true, phone_opt_out = true, do_not_contact = true"
	" WHERE l.id OPERATOR(pg_catalog.=) ANY ($1)",
	PERSON_PARAMS, NULL
};

static CrmQuery pseudonymise_contacts = {
	"UPDATE crm.contact AS c SET name = $8, title = NULL, email = NULL, phone = NULL, description = NULL,"
	" attributes = " ERASED_ATTRIBUTES("c", "contact") ","
	" consent_source = NULL, email_opt_out = true, phone_opt_out = true, do_not_contact = true"
	" WHERE c.id OPERATOR(pg_catalog.=) ANY ($2)",
	PERSON_PARAMS, NULL
};

/*
 * accounts named after the person (a private customer's: its street and
 * postal code are hers too) that no one else is linked to (a former name
 * of hers that names a company account does not make it hers), or with
 * their phone number; the needles in the descriptions of her accounts
 */
static CrmQuery redact_accounts = {
	"UPDATE crm.account AS a SET"
	" name = CASE WHEN x.hers THEN $8 ELSE a.name END,"
	" street = CASE WHEN x.hers THEN NULL ELSE a.street END,"
	" postal_code = CASE WHEN x.hers THEN NULL ELSE a.postal_code END,"
	" phone = CASE WHEN pg_catalog.lower(a.phone::pg_catalog.text) OPERATOR(pg_catalog.=) ANY ($6) THEN NULL ELSE a.phone END,"
	" description = crm_internal.erased_text(a.description, $5, $8)"
	" FROM (SELECT b.id, pg_catalog.lower(b.name) OPERATOR(pg_catalog.=) ANY ($7)"
	"               AND NOT EXISTS (SELECT 1 FROM crm.contact AS c WHERE c.account_id OPERATOR(pg_catalog.=) b.id"
	"                                  AND c.id OPERATOR(pg_catalog.<>) ALL ($2))"
	"               AND NOT EXISTS (SELECT 1 FROM crm.account_contact AS ac WHERE ac.account_id OPERATOR(pg_catalog.=) b.id"
	"                                  AND ac.contact_id OPERATOR(pg_catalog.<>) ALL ($2))"
	"               AND NOT EXISTS (SELECT 1 FROM crm.lead AS l WHERE l.account_id OPERATOR(pg_catalog.=) b.id"
	"                                  AND l.id OPERATOR(pg_catalog.<>) ALL ($1)) AS hers"
	"         FROM crm.account AS b WHERE b.id OPERATOR(pg_catalog.=) ANY ($3)) AS x"
	" WHERE a.id OPERATOR(pg_catalog.=) x.id"
	"   AND (x.hers OR pg_catalog.lower(a.phone::pg_catalog.text) OPERATOR(pg_catalog.=) ANY ($6)"
	"        OR crm_internal.erased_text(a.description, $5, $8) OPERATOR(pg_catalog.<>) a.description)",
	PERSON_PARAMS, NULL
};

/* deal names and descriptions that name the person */
static CrmQuery redact_opportunities = {
	"UPDATE crm.opportunity AS o SET name = crm_internal.erased_text(o.name, $5, $8),"
	" description = crm_internal.erased_text(o.description, $5, $8)"
	" WHERE o.id OPERATOR(pg_catalog.=) ANY ($4)"
	"   AND (crm_internal.erased_text(o.name, $5, $8) OPERATOR(pg_catalog.<>) o.name"
	"        OR crm_internal.erased_text(o.description, $5, $8) OPERATOR(pg_catalog.<>) o.description)",
	PERSON_PARAMS, NULL
};

/*
 * Activities about the person lose their description, the others the
 * needles in it; subjects lose the needles.
 */
static CrmQuery redact_activities = {
	"UPDATE crm.activity AS a SET"
	" subject = crm_internal.erased_text(a.subject, $5, $8),"
	" description = CASE WHEN a.lead_id OPERATOR(pg_catalog.=) ANY ($1) OR a.contact_id OPERATOR(pg_catalog.=) ANY ($2)"
	"                    THEN NULL ELSE crm_internal.erased_text(a.description, $5, $8) END"
	" WHERE (a.lead_id OPERATOR(pg_catalog.=) ANY ($1) OR a.contact_id OPERATOR(pg_catalog.=) ANY ($2)"
	"        OR a.account_id OPERATOR(pg_catalog.=) ANY ($3) OR a.opportunity_id OPERATOR(pg_catalog.=) ANY ($4)"
	"        OR a.id IN (SELECT p.activity_id FROM crm.activity_participant AS p"
	"                     WHERE p.contact_id OPERATOR(pg_catalog.=) ANY ($2)))"
	"   AND (crm_internal.erased_text(a.subject, $5, $8) OPERATOR(pg_catalog.<>) a.subject"
	"        OR (a.description IS NOT NULL AND (a.lead_id OPERATOR(pg_catalog.=) ANY ($1) OR a.contact_id OPERATOR(pg_catalog.=) ANY ($2)))"
	"        OR crm_internal.erased_text(a.description, $5, $8) OPERATOR(pg_catalog.<>) a.description)",
	PERSON_PARAMS, NULL
};

/*
 * Notes and attachments about the person (her leads and contacts, deleted
 * ones' are gone with them): the note's body and the file's name are hers
 * wholly.  (The file itself is in the object store: its storage_uri stays
 * so that whoever runs the erasure can delete it there.)
 */
static CrmQuery redact_notes = {
	"UPDATE crm.note AS n SET body = '[erased]'"
	" WHERE (n.lead_id OPERATOR(pg_catalog.=) ANY ($1) OR n.contact_id OPERATOR(pg_catalog.=) ANY ($2))"
	"   AND n.body OPERATOR(pg_catalog.<>) '[erased]'",
	PERSON_PARAMS, NULL
};
static CrmQuery redact_attachments = {
	"UPDATE crm.attachment AS f SET file_name = '[erased]'"
	" WHERE (f.lead_id OPERATOR(pg_catalog.=) ANY ($1) OR f.contact_id OPERATOR(pg_catalog.=) ANY ($2))"
	"   AND f.file_name OPERATOR(pg_catalog.<>) '[erased]'",
	PERSON_PARAMS, NULL
};

/*
 * Logged e-mails (crm.email, email_log.c).  Her addresses ($6) in from, to,
 * cc and the participants become the pseudonym's address
 * ("erased-person-<n>@erased.invalid"); e-mails linked to her leads or
 * contacts, or that she sent or received, lose subject and body; every
 * other e-mail loses the needles in them.
 */
#define MENTIONS(col) \
	"EXISTS (SELECT 1 FROM pg_catalog.unnest($5) AS n" \
	" WHERE pg_catalog.strpos(pg_catalog.lower(" col "), pg_catalog.lower(n)) OPERATOR(pg_catalog.>) 0)"
#define PSEUDONYM_ADDRESS \
	"pg_catalog.replace(pg_catalog.lower($8), ' ', '-') OPERATOR(pg_catalog.||) '@erased.invalid'"
#define ERASED_ADDRESSES(col) \
	"ARRAY(SELECT CASE WHEN pg_catalog.lower(a.x) OPERATOR(pg_catalog.=) ANY ($6) THEN " PSEUDONYM_ADDRESS \
	" ELSE a.x END FROM pg_catalog.unnest(" col ") WITH ORDINALITY AS a (x, n) ORDER BY a.n)"
/*
 * A Message-ID (or In-Reply-To) that holds one of her needles (some mail
 * systems build it from the sender's address): a digest of it, the same
 * for the message and for the replies naming it, so threads and the
 * uniqueness of message ids hold.
 */
#define ERASED_MESSAGE_ID(col) \
	"'erased-' OPERATOR(pg_catalog.||) pg_catalog.md5(" col ") OPERATOR(pg_catalog.||) '@erased.invalid'"
static CrmQuery redact_emails = {
	"UPDATE crm.email AS e SET"
	" from_address = CASE WHEN pg_catalog.lower(e.from_address) OPERATOR(pg_catalog.=) ANY ($6)"
	"                     THEN " PSEUDONYM_ADDRESS " ELSE e.from_address END,"
	" to_addresses = " ERASED_ADDRESSES("e.to_addresses") ","
	" cc_addresses = " ERASED_ADDRESSES("e.cc_addresses") ","
	" participants = " ERASED_ADDRESSES("e.participants") ","
	" subject = CASE WHEN h.hers THEN '[erased]' ELSE crm_internal.erased_text(e.subject, $5, '[erased]') END,"
	" body_text = CASE WHEN h.hers THEN NULL ELSE crm_internal.erased_text(e.body_text, $5, '[erased]') END,"
	" message_id = CASE WHEN " MENTIONS("e.message_id") " THEN " ERASED_MESSAGE_ID("e.message_id") " ELSE e.message_id END,"
	" in_reply_to = CASE WHEN " MENTIONS("e.in_reply_to") " THEN " ERASED_MESSAGE_ID("e.in_reply_to") " ELSE e.in_reply_to END"
	" FROM (SELECT m.id, m.participants OPERATOR(pg_catalog.&&) $6"
	"              OR EXISTS (SELECT 1 FROM crm.email_link AS k WHERE k.email_id OPERATOR(pg_catalog.=) m.id"
	"                           AND (k.lead_id OPERATOR(pg_catalog.=) ANY ($1) OR k.contact_id OPERATOR(pg_catalog.=) ANY ($2))) AS hers"
	"         FROM crm.email AS m) AS h"
	" WHERE e.id OPERATOR(pg_catalog.=) h.id"
	"   AND (h.hers OR " MENTIONS("e.subject") " OR " MENTIONS("e.body_text") ""
	"        OR " MENTIONS("e.message_id") " OR " MENTIONS("e.in_reply_to") ")",
	PERSON_PARAMS, NULL
};

/*
 * Other people's records that mention her: a name (a whole name value she
 * had, "María García", not a lone first name), e-mail address or phone
 * number of hers ($5) in the free text of any lead, contact, account, deal
 * activity, note or attachment's file name is replaced by "[erased]" (a note on a colleague's lead, "ask
 * María García, maria@garcia.example").  Every table is read whole.
 */
static CrmQuery redact_mentions[] = {
	{"UPDATE crm.lead AS t SET remarks = crm_internal.erased_text(t.remarks, $5, '[erased]')"
	 " WHERE " MENTIONS("t.remarks"), PERSON_PARAMS, NULL},
	{"UPDATE crm.contact AS t SET description = crm_internal.erased_text(t.description, $5, '[erased]')"
	 " WHERE " MENTIONS("t.description"), PERSON_PARAMS, NULL},
	{"UPDATE crm.account AS t SET description = crm_internal.erased_text(t.description, $5, '[erased]')"
	 " WHERE " MENTIONS("t.description"), PERSON_PARAMS, NULL},
	{"UPDATE crm.opportunity AS t SET description = crm_internal.erased_text(t.description, $5, '[erased]')"
	 " WHERE " MENTIONS("t.description"), PERSON_PARAMS, NULL},
	{"UPDATE crm.activity AS t SET subject = crm_internal.erased_text(t.subject, $5, '[erased]'),"
	 " description = crm_internal.erased_text(t.description, $5, '[erased]')"
	 " WHERE " MENTIONS("t.subject") " OR " MENTIONS("t.description"), PERSON_PARAMS, NULL},
	{"UPDATE crm.note AS t SET body = crm_internal.erased_text(t.body, $5, '[erased]')"
	 " WHERE " MENTIONS("t.body"), PERSON_PARAMS, NULL},
	{"UPDATE crm.attachment AS t SET file_name = crm_internal.erased_text(t.file_name, $5, '[erased]')"
	 " WHERE " MENTIONS("t.file_name"), PERSON_PARAMS, NULL},
};

/*
 * The change log.  Entries of the person's rows (deleted ones included): the personal
 * columns wholly, the other columns' values that contain a needle; entries
 * of the related rows: values that contain a needle; every other entry:
 * values that contain the person's e-mail address or phone number (found
 * by reading the whole log).
 */
static CrmQuery redact_change_log = {
	"UPDATE crm.change_log AS g SET changes = x.changes"
	"  FROM (SELECT e.id,"
	"          CASE WHEN e.own THEN"
	"                 (SELECT COALESCE(pg_catalog.jsonb_object_agg(k.key, crm_internal.erased_value(k.value,"
	"                           CASE WHEN k.key OPERATOR(pg_catalog.=) ANY ('" PERSONAL_COLUMNS "'::pg_catalog.text[]) THEN ARRAY['']::pg_catalog.text[] ELSE $5 END)),"
	"                                  '{}'::pg_catalog.jsonb)"
	"                    FROM pg_catalog.jsonb_each(e.changes) AS k)"
	"               WHEN e.hers THEN"
	"                 (SELECT COALESCE(pg_catalog.jsonb_object_agg(k.key, crm_internal.erased_value(k.value,"
	"                           CASE WHEN k.key OPERATOR(pg_catalog.=) ANY ('" PRIVATE_ACCOUNT_COLUMNS "'::pg_catalog.text[]) THEN ARRAY['']::pg_catalog.text[] ELSE $5 END)),"
	"                                  '{}'::pg_catalog.jsonb)"
	"                    FROM pg_catalog.jsonb_each(e.changes) AS k)"
	"               WHEN e.related THEN crm_internal.erased_value(e.changes, $5)"
	"               ELSE crm_internal.erased_value(e.changes, $6) END AS changes"
	"          FROM (SELECT c.id, c.changes,"
	"                  (c.table_name OPERATOR(pg_catalog.=) 'crm.lead'::pg_catalog.regclass AND c.row_id OPERATOR(pg_catalog.=) ANY ($1))"
	"                  OR (c.table_name OPERATOR(pg_catalog.=) 'crm.contact'::pg_catalog.regclass AND c.row_id OPERATOR(pg_catalog.=) ANY ($2)) AS own,"
	"                  (c.table_name OPERATOR(pg_catalog.=) 'crm.account'::pg_catalog.regclass AND c.row_id OPERATOR(pg_catalog.=) ANY ($3))"
	"                  OR (c.table_name OPERATOR(pg_catalog.=) 'crm.opportunity'::pg_catalog.regclass AND c.row_id OPERATOR(pg_catalog.=) ANY ($4)) AS related,"
	"                  c.table_name OPERATOR(pg_catalog.=) 'crm.account'::pg_catalog.regclass AND c.row_id OPERATOR(pg_catalog.=) ANY ($3)"
	"                  AND EXISTS (SELECT 1 FROM crm.account AS b WHERE b.id OPERATOR(pg_catalog.=) c.row_id"
	"                                 AND b.name OPERATOR(pg_catalog.=) $8) AS hers"
	"                  FROM crm.change_log AS c"
	"                 WHERE (c.table_name OPERATOR(pg_catalog.=) 'crm.lead'::pg_catalog.regclass AND c.row_id OPERATOR(pg_catalog.=) ANY ($1))"
	"                    OR (c.table_name OPERATOR(pg_catalog.=) 'crm.contact'::pg_catalog.regclass AND c.row_id OPERATOR(pg_catalog.=) ANY ($2))"
	"                    OR (c.table_name OPERATOR(pg_catalog.=) 'crm.account'::pg_catalog.regclass AND c.row_id OPERATOR(pg_catalog.=) ANY ($3))"
	"                    OR (c.table_name OPERATOR(pg_catalog.=) 'crm.opportunity'::pg_catalog.regclass AND c.row_id OPERATOR(pg_catalog.=) ANY ($4))"
	"                    OR EXISTS (SELECT 1 FROM pg_catalog.unnest($6) AS n"
	"                                WHERE pg_catalog.strpos(pg_catalog.lower(c.changes::pg_catalog.text),"
	"                                        pg_catalog.substr(pg_catalog.to_jsonb(n)::pg_catalog.text, 2,"
	"                                          pg_catalog.length(pg_catalog.to_jsonb(n)::pg_catalog.text) OPERATOR(pg_catalog.-) 2))"
	"                                      OPERATOR(pg_catalog.>) 0)) AS e) AS x"
	" WHERE g.id OPERATOR(pg_catalog.=) x.id AND g.changes OPERATOR(pg_catalog.<>) x.changes",
	PERSON_PARAMS, NULL
};

/*
 * The change log of notes and attachments: entries of those about the
 * person (rows that exist now, whose lead or contact is hers, and deleted
 * ones whose logged lead_id or contact_id was) hold her text: body and
 * file_name wholly; every other entry of these tables: the values that
 * contain a needle.
 */
static CrmQuery redact_note_log = {
	"UPDATE crm.change_log AS g SET changes = x.changes"
	"  FROM (SELECT e.id,"
	"          CASE WHEN e.own THEN"
	"                 (SELECT COALESCE(pg_catalog.jsonb_object_agg(k.key, crm_internal.erased_value(k.value,"
	"                           CASE WHEN k.key OPERATOR(pg_catalog.=) ANY ('{body,file_name}'::pg_catalog.text[]) THEN ARRAY['']::pg_catalog.text[] ELSE $5 END)),"
	"                                  '{}'::pg_catalog.jsonb)"
	"                    FROM pg_catalog.jsonb_each(e.changes) AS k)"
	"               ELSE crm_internal.erased_value(e.changes, $5) END AS changes"
	"          FROM (SELECT c.id, c.changes,"
	"                  c.row_id IN (SELECT n.id FROM crm.note AS n WHERE c.table_name OPERATOR(pg_catalog.=) 'crm.note'::pg_catalog.regclass"
	"                                  AND (n.lead_id OPERATOR(pg_catalog.=) ANY ($1) OR n.contact_id OPERATOR(pg_catalog.=) ANY ($2))"
	"                               UNION ALL"
	"                               SELECT f.id FROM crm.attachment AS f WHERE c.table_name OPERATOR(pg_catalog.=) 'crm.attachment'::pg_catalog.regclass"
	"                                  AND (f.lead_id OPERATOR(pg_catalog.=) ANY ($1) OR f.contact_id OPERATOR(pg_catalog.=) ANY ($2)))"
	"                  OR EXISTS (SELECT 1 FROM crm.change_log AS o"
	"                              WHERE o.table_name OPERATOR(pg_catalog.=) c.table_name AND o.row_id OPERATOR(pg_catalog.=) c.row_id"
	"                                AND (ARRAY[o.changes OPERATOR(pg_catalog.->>) 'lead_id', o.changes OPERATOR(pg_catalog.#>>) '{lead_id,old}',"
	"                                           o.changes OPERATOR(pg_catalog.#>>) '{lead_id,new}'] OPERATOR(pg_catalog.&&) $1::pg_catalog.text[]"
	"                                  OR ARRAY[o.changes OPERATOR(pg_catalog.->>) 'contact_id', o.changes OPERATOR(pg_catalog.#>>) '{contact_id,old}',"
	"                                           o.changes OPERATOR(pg_catalog.#>>) '{contact_id,new}'] OPERATOR(pg_catalog.&&) $2::pg_catalog.text[])) AS own"
	"                  FROM crm.change_log AS c"
	"                 WHERE c.table_name OPERATOR(pg_catalog.=) ANY (ARRAY['crm.note'::pg_catalog.regclass, 'crm.attachment'::pg_catalog.regclass])) AS e) AS x"
	" WHERE g.id OPERATOR(pg_catalog.=) x.id AND g.changes OPERATOR(pg_catalog.<>) x.changes",
	PERSON_PARAMS, NULL
};

/*
 * Merge records (crm.merge_record) keep the full values of a merged lead,
 * contact or account.  A merged lead or contact that was merged into one of
 * the person's, or whose values hold the person's e-mail address or phone
 * number, was the same person: its personal columns wholly; every other
 * merged record: the values that contain a needle.
 */
static CrmQuery redact_merge_records = {
	"UPDATE crm.merge_record AS m SET merged_values = x.merged_values"
	"  FROM (SELECT e.id,"
	"          CASE WHEN e.own THEN"
	"                 (SELECT COALESCE(pg_catalog.jsonb_object_agg(k.key, crm_internal.erased_value(k.value,"
	"                           CASE WHEN k.key OPERATOR(pg_catalog.=) ANY ('" PERSONAL_COLUMNS "'::pg_catalog.text[]) THEN ARRAY['']::pg_catalog.text[] ELSE $5 END)),"
	"                                  '{}'::pg_catalog.jsonb)"
	"                    FROM pg_catalog.jsonb_each(e.merged_values) AS k)"
	"               ELSE crm_internal.erased_value(e.merged_values, $5) END AS merged_values"
	"          FROM (SELECT r.id, r.merged_values,"
	"                  r.kind OPERATOR(pg_catalog.<>) 'account'"
	"                  AND ((r.kind OPERATOR(pg_catalog.=) 'lead' AND r.survivor_id OPERATOR(pg_catalog.=) ANY ($1))"
	"                    OR (r.kind OPERATOR(pg_catalog.=) 'contact' AND r.survivor_id OPERATOR(pg_catalog.=) ANY ($2))"
	"                    OR EXISTS (SELECT 1 FROM pg_catalog.unnest($6) AS n"
	"                                WHERE pg_catalog.strpos(pg_catalog.lower(r.merged_values::pg_catalog.text),"
	"                                        pg_catalog.substr(pg_catalog.to_jsonb(n)::pg_catalog.text, 2,"
	"                                          pg_catalog.length(pg_catalog.to_jsonb(n)::pg_catalog.text) OPERATOR(pg_catalog.-) 2))"
	"                                      OPERATOR(pg_catalog.>) 0)) AS own"
	"                  FROM crm.merge_record AS r) AS e) AS x"
	" WHERE m.id OPERATOR(pg_catalog.=) x.id AND m.merged_values OPERATOR(pg_catalog.<>) x.merged_values",
	PERSON_PARAMS, NULL
};

/*
 * Lead captures (crm.lead_capture) keep what a form sent.  A capture of one
 * of the person's leads, or whose payload holds the person's e-mail address
 * or phone number (refused ones too), was the person's: its name, e-mail and
 * phone wholly, details.title and details.remarks wholly, every other value
 * that contains a needle; every other capture: the values that contain a
 * needle (a refused capture with a mistyped address still names her); the
 * messages of those captures: every needle.
 */
#define CAPTURE_MENTIONS(needles) \
	"EXISTS (SELECT 1 FROM pg_catalog.unnest(" needles ") AS n" \
	"        WHERE pg_catalog.strpos(pg_catalog.lower(c.payload::pg_catalog.text)," \
	"                pg_catalog.substr(pg_catalog.to_jsonb(n)::pg_catalog.text, 2," \
	"                  pg_catalog.length(pg_catalog.to_jsonb(n)::pg_catalog.text) OPERATOR(pg_catalog.-) 2))" \
	"              OPERATOR(pg_catalog.>) 0)"

static CrmQuery redact_captures = {
	"UPDATE crm.lead_capture AS k SET payload = x.payload, message = crm_internal.erased_text(k.message, $5, '[erased]')"
	"  FROM (SELECT e.id,"
	"          CASE WHEN e.own THEN"
	"            (SELECT COALESCE(pg_catalog.jsonb_object_agg(f.key,"
	"                    CASE WHEN f.key OPERATOR(pg_catalog.=) ANY ('{name,email,phone}'::pg_catalog.text[])"
	"                              AND pg_catalog.jsonb_typeof(f.value) OPERATOR(pg_catalog.<>) 'null'"
	"                         THEN '\"[erased]\"'::pg_catalog.jsonb"
	"                         WHEN f.key OPERATOR(pg_catalog.=) 'details' AND pg_catalog.jsonb_typeof(f.value) OPERATOR(pg_catalog.=) 'object'"
	"                         THEN (SELECT COALESCE(pg_catalog.jsonb_object_agg(d.key,"
	"                                        CASE WHEN d.key OPERATOR(pg_catalog.=) ANY ('{title,remarks}'::pg_catalog.text[])"
	"                                             THEN '\"[erased]\"'::pg_catalog.jsonb ELSE crm_internal.erased_value(d.value, $5) END),"
	"                                      '{}'::pg_catalog.jsonb)"
	"                                 FROM pg_catalog.jsonb_each(f.value) AS d)"
	"                         ELSE crm_internal.erased_value(f.value, $5) END), '{}'::pg_catalog.jsonb)"
	"               FROM pg_catalog.jsonb_each(e.payload) AS f)"
	"          ELSE crm_internal.erased_value(e.payload, $5) END AS payload"
	"          FROM (SELECT c.id, c.payload,"
	"                  c.lead_id OPERATOR(pg_catalog.=) ANY ($1) OR " CAPTURE_MENTIONS("$6") " AS own"
	"                  FROM crm.lead_capture AS c"
	"                 WHERE c.lead_id OPERATOR(pg_catalog.=) ANY ($1) OR " CAPTURE_MENTIONS("$5") ") AS e) AS x"
	" WHERE k.id OPERATOR(pg_catalog.=) x.id"
	"   AND (k.payload OPERATOR(pg_catalog.<>) x.payload OR k.message IS DISTINCT FROM crm_internal.erased_text(k.message, $5, '[erased]'))",
	PERSON_PARAMS, NULL
};

/*
 * The tables that hold copies of a person's values, each with the statement
 * that redacts them (the parameters of redact_change_log).  A table added
 * later is one more entry.
 */
static CrmQuery *const copies_of_values[] = {
	&redact_change_log,
	&redact_note_log,
	&redact_merge_records,
	&redact_captures,
	NULL
};

#define ERASURE_LOG_COLUMNS 9

static CrmQuery log_erasure = {
	"INSERT INTO crm.erasure_log (id, erased_by, reason, email_hash, leads, contacts, related_rows, change_log_entries)"
	" OVERRIDING SYSTEM VALUE"
	" SELECT $1, $2, $3, pg_catalog.encode(pg_catalog.sha256(s.salt OPERATOR(pg_catalog.||)"
	"          pg_catalog.convert_to(pg_catalog.lower($4), 'UTF8')), 'hex'), $5, $6, $7, $8"
	"   FROM crm_internal.erasure_salt AS s"
	" RETURNING *",
	8, {INT8OID, REGROLEOID, TEXTOID, TEXTOID, INT4OID, INT4OID, INT4OID, INT4OID}, NULL
};

/* column col of row 0 of the last result, copied to the current context */
static Datum
result_copy(int col)
{
	bool		isnull;
	Datum		d = crm_result_datum(0, col, &isnull);
	Form_pg_attribute att = TupleDescAttr(SPI_tuptable->tupdesc, col - 1);

	if (isnull)
		elog(ERROR, "crm: unexpected NULL in the erasure's working set");
	return datumCopy(d, att->attbyval, att->attlen);
}

/* run a statement as the owner with all-not-null parameters; rows processed */
static int
run_owner(CrmQuery *query, Datum *values)
{
	char		nulls[12];

	memset(nulls, ' ', sizeof(nulls));
	crm_query_run_as_owner(query, values, nulls, 0);
	return (int) SPI_processed;
}

/* crm_erase_person -- SQL crm.erase_person(email, reason) */
PG_FUNCTION_INFO_V1(crm_erase_person);
Datum
crm_erase_person(PG_FUNCTION_ARGS)
{
	Oid			caller = crm_caller();
	char	   *email;
	char	   *reason;
	CrmLock		lock;
	int64		number;
	Datum		email_datum;
	Datum		leads,
				contacts;
	Datum		p[8];			/* the parameters of steps 3 to 5 (PERSON_PARAMS) */
	int			nleads,
				ncontacts,
				nrelated = 0,
				ncopies = 0;
	Datum		v[8];
	TupleDesc	rettupdesc;
	HeapTuple	logged;
	Datum		result[ERASURE_LOG_COLUMNS];
	bool		result_nulls[ERASURE_LOG_COLUMNS];

	crm_require_privacy_officer(caller, "erase a person");
	if (get_call_result_type(fcinfo, NULL, &rettupdesc) != TYPEFUNC_COMPOSITE ||
		rettupdesc->natts != ERASURE_LOG_COLUMNS)
		elog(ERROR, "crm: crm.erase_person() must return crm.erasure_log");
	email = crm_person_email(fcinfo, 0);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("reason must not be null"),
				 errhint("Give the request the erasure answers, or its reference.")));
	reason = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (crm_is_blank(reason))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("reason must not be empty"),
				 errhint("Give the request the erasure answers, or its reference.")));

	/* 1. the e-mail key (as conversions take it), then the rows */
	lock = crm_lock_key(CRM_LOCK_EMAIL, str_tolower(email, strlen(email), DEFAULT_COLLATION_OID));
	crm_lock_all(&lock, 1);

	crm_spi_connect();
	email_datum = CStringGetTextDatum(email);
	run_owner(&next_erasure_number, v);
	number = DatumGetInt64(result_copy(1));

	v[0] = email_datum;
	run_owner(&lock_leads, v);
	leads = result_copy(1);
	run_owner(&lock_contacts, v);
	contacts = result_copy(1);

	/* 2. deleted rows, needles, related rows */
	v[1] = leads;
	v[2] = contacts;
	run_owner(&with_deleted_rows, v);
	p[0] = result_copy(1);
	p[1] = result_copy(2);
	v[1] = p[0];
	v[2] = p[1];
	run_owner(&find_needles, v);
	p[6] = result_copy(1);		/* names */
	p[5] = result_copy(2);		/* e-mail addresses and phone numbers */
	p[4] = result_copy(3);		/* both */
	v[0] = leads;
	v[1] = contacts;
	run_owner(&related_rows, v);
	p[2] = result_copy(1);
	p[3] = result_copy(2);
	p[7] = CStringGetTextDatum(psprintf("Erased person " INT64_FORMAT, number));

	/* 3. the leads and contacts */
	nleads = run_owner(&pseudonymise_leads, p);
	ncontacts = run_owner(&pseudonymise_contacts, p);

	/* 4. related rows */
	nrelated += run_owner(&redact_accounts, p);
	nrelated += run_owner(&redact_opportunities, p);
	nrelated += run_owner(&redact_activities, p);
	nrelated += run_owner(&redact_notes, p);
	nrelated += run_owner(&redact_attachments, p);

	nrelated += run_owner(&redact_emails, p);
	for (int i = 0; i < (int) lengthof(redact_mentions); i++)
		nrelated += run_owner(&redact_mentions[i], p);

	/* 5. the copies of values: the one sanctioned rewrite of the audit trail */
	crm_permit_push(CRM_PERMIT_AUDIT_ERASE, CRM_PERMIT_ANY_ROW);
	for (int i = 0; copies_of_values[i] != NULL; i++)
		ncopies += run_owner(copies_of_values[i], p);
	crm_permit_pop(CRM_PERMIT_AUDIT_ERASE, CRM_PERMIT_ANY_ROW);

	/* 6. the record */
	v[0] = Int64GetDatum(number);
	v[1] = ObjectIdGetDatum(caller);
	v[2] = CStringGetTextDatum(reason);
	v[3] = email_datum;
	v[4] = Int32GetDatum(nleads);
	v[5] = Int32GetDatum(ncontacts);
	v[6] = Int32GetDatum(nrelated);
	v[7] = Int32GetDatum(ncopies);
	if (run_owner(&log_erasure, v) != 1)
		elog(ERROR, "crm: the salt of crm.erasure_log is missing");
	logged = SPI_copytuple(SPI_tuptable->vals[0]);	/* outlives SPI's memory */
	crm_spi_finish();

	/* the row as the function's result type, crm.erasure_log */
	heap_deform_tuple(logged, rettupdesc, result, result_nulls);
	rettupdesc = BlessTupleDesc(rettupdesc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(rettupdesc, result, result_nulls)));
}
