/*
 * email_log.c: crm.log_email(), the e-mail log, its links and its threads.
 *
 * crm.log_email(message_id, direction, from_address, to_addresses,
 * cc_addresses, subject, body_text, sent_at, in_reply_to) records one
 * e-mail in crm.email and returns its id.  In one transaction:
 *
 *  1. check the arguments (SQLSTATEs in the README): the message id is
 *     the key of the log, trimmed of white space and of one pair of
 *     enclosing angle brackets ("<a@b>" and "a@b" are one message), the
 *     same for in_reply_to; every address has the shape of
 *     crm.email_address (ZC801); at most MAX_RECIPIENTS recipients.
 *  2. lock: the extension's key locks (locks.c, out of reach of SQL) of the
 *     message id and of the message it replies to, in one sorted batch.
 *     Two logs of one message, and a message and a reply to it, are so
 *     serialised: the second waits for the first to commit, then sees it
 *     (READ COMMITTED: every statement reads the latest commits).  Under
 *     REPEATABLE READ or SERIALIZABLE a concurrent commit the snapshot does
 *     not show ends the transaction with 40001.
 *  3. a message already logged: its id is the answer, and the row is not
 *     changed (first writer wins); its links are completed (step 6).
 *  4. insert the e-mail: in the thread of the message it replies to when
 *     that one is logged, else as the root of a thread of its own
 *     (thread_id = its own id).
 *  5. replies logged before this message (out of order) join its thread,
 *     with the whole threads they are in.
 *  6. link: every contact and every open (not converted) lead whose
 *     address, in lower case, is one of the participants (from, to, cc),
 *     whoever owns it; the trigger crm_internal.email_link_account() adds the
 *     contacts' primary accounts.
 *
 * Rights.  The statements run as the extension owner: finding the records
 * of every owner by address is the point of the log (a mail drop box logs
 * for everyone), and only this function writes crm.email and
 * crm.email_link.  Nothing of the rows found is returned: the caller gets
 * the e-mail's id, and reads the e-mail and its links with its own rights
 * (row-level security: a linked record it sees, or it logged it).
 *
 * crm_internal.email_link_account() is an AFTER INSERT OR UPDATE OF contact_id
 * trigger on crm.email_link: a contact's link brings its primary account's
 * (as the owner, skipping one that exists), also when a conversion moves a
 * lead's links to its contact and when a merge re-points them.
 */
#include "crm.h"

#include "access/htup_details.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#define MAX_RECIPIENTS		500		/* to and cc together */
#define MAX_MESSAGE_ID		998		/* a header line (RFC 5322) */

/* how many of the message id, its parent and the replies to it exist */
static CrmQuery count_related = {
	"SELECT pg_catalog.count(*) FROM crm.email AS e"
	" WHERE e.message_id OPERATOR(pg_catalog.=) ANY ($1) OR e.in_reply_to OPERATOR(pg_catalog.=) $2",
	2, {TEXTARRAYOID, TEXTOID}, NULL
};

static CrmQuery find_email = {
	"SELECT e.id, e.participants FROM crm.email AS e WHERE e.message_id OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}, NULL
};

static CrmQuery insert_email = {
	"WITH n AS (SELECT pg_catalog.nextval(pg_catalog.pg_get_serial_sequence('crm.email', 'id')) AS id)"
	" INSERT INTO crm.email AS e (id, message_id, direction, from_address, to_addresses, cc_addresses,"
	"                        subject, body_text, sent_at, in_reply_to, thread_id, participants, logged_by)"
	" OVERRIDING SYSTEM VALUE"
	" SELECT n.id, $1, $2, $3, $4, $5, $6, $7, $8, $9,"
	"        COALESCE((SELECT p.thread_id FROM crm.email AS p WHERE p.message_id OPERATOR(pg_catalog.=) $9), n.id),"
	"        $10, $11"
	"   FROM n"
	" ON CONFLICT (message_id) DO NOTHING"
	" RETURNING e.id, e.thread_id",
	11, {TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, TEXTARRAYOID, TEXTOID, TEXTOID,
	TIMESTAMPTZOID, TEXTOID, TEXTARRAYOID, REGROLEOID}, NULL
};

/* the threads of replies logged before their parent join the parent's */
static CrmQuery join_replies = {
	"UPDATE crm.email AS e SET thread_id = $2"
	" WHERE e.thread_id IN (SELECT r.thread_id FROM crm.email AS r WHERE r.in_reply_to OPERATOR(pg_catalog.=) $1)"
	"   AND e.thread_id OPERATOR(pg_catalog.<>) $2",
	2, {TEXTOID, INT8OID}, NULL
};

static CrmQuery link_contacts = {
	"INSERT INTO crm.email_link (email_id, contact_id)"
	" SELECT $1, c.id FROM crm.contact AS c"
	"  WHERE c.email IS NOT NULL AND pg_catalog.lower(c.email) OPERATOR(pg_catalog.=) ANY ($2)"
	"  ORDER BY c.id"
	" ON CONFLICT (contact_id, email_id) DO NOTHING",
	2, {INT8OID, TEXTARRAYOID}, NULL
};

static CrmQuery link_leads = {
	"INSERT INTO crm.email_link (email_id, lead_id)"
	" SELECT $1, l.id FROM crm.lead AS l"
	"  WHERE l.email IS NOT NULL AND pg_catalog.lower(l.email) OPERATOR(pg_catalog.=) ANY ($2)"
	"    AND l.status OPERATOR(pg_catalog.<>) 'Converted'::crm.lead_status"
	"  ORDER BY l.id"
	" ON CONFLICT (lead_id, email_id) DO NOTHING",
	2, {INT8OID, TEXTARRAYOID}, NULL
};

static CrmQuery link_account = {
	"INSERT INTO crm.email_link (email_id, account_id)"
	" SELECT $1, c.account_id FROM crm.contact AS c"
	"  WHERE c.id OPERATOR(pg_catalog.=) $2 AND c.account_id IS NOT NULL"
	" ON CONFLICT (account_id, email_id) DO NOTHING",
	2, {INT8OID, INT8OID}, NULL
};

/* a required argument: NULL is 22004 */
static void
require_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
}

/*
 * message_key -- a message id as the log's key: white space and one pair
 * of enclosing angle brackets removed; NULL when nothing is left
 */
static char *
message_key(const char *s, const char *name)
{
	size_t		len;
	char	   *key;

	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	len = strlen(s);
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' || s[len - 1] == '\n'))
		len--;
	if (len >= 2 && s[0] == '<' && s[len - 1] == '>')
	{
		s++;
		len -= 2;
	}
	if (len > MAX_MESSAGE_ID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is longer than %d characters", name, MAX_MESSAGE_ID),
				 errhint("Pass the Message-ID header of the e-mail.")));
	if (len == 0)
		return NULL;
	key = pnstrdup(s, len);
	return key;
}

/* address -- one address, trimmed, checked (ZC801); *folded gets it in lower case */
static char *
address(const char *s, const char *name, char **folded)
{
	size_t		len;
	char	   *a;

	while (*s == ' ' || *s == '\t')
		s++;
	len = strlen(s);
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	a = pnstrdup(s, len);
	if (!crm_is_email_address(a))
		ereport(ERROR,
				(errcode(ERRCODE_CRM_INVALID_EMAIL),
				 errmsg("%s holds a value that is not one e-mail address", name),
				 errhint("Pass bare addresses (local part, @, dotted domain, no spaces, at most 254 characters), without display names.")));
	*folded = str_tolower(a, len, DEFAULT_COLLATION_OID);
	return a;
}

typedef struct Participants
{
	char	  **folded;
	int			n;
} Participants;

static void
add_participant(Participants *p, char *folded)
{
	for (int i = 0; i < p->n; i++)
		if (strcmp(p->folded[i], folded) == 0)
			return;
	p->folded[p->n++] = folded;
}

/* text[] of n C strings */
static Datum
text_array(char **items, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = CStringGetTextDatum(items[i]);
	return PointerGetDatum(construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * addresses -- the addresses of an array argument, checked, as a text[]
 * (NULL: none); their folded forms join the participants
 */
static Datum
addresses(FunctionCallInfo fcinfo, int argno, const char *name, Participants *p, int *count)
{
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	char	  **items;

	*count = 0;
	if (PG_ARGISNULL(argno))
		return text_array(NULL, 0);
	arr = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a one-dimensional array", name)));
	n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	if (n > MAX_RECIPIENTS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an e-mail has at most %d recipients", MAX_RECIPIENTS),
				 errdetail("%s has %d.", name, n)));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	items = palloc(sizeof(char *) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		char	   *folded;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain null", name)));
		items[i] = address(TextDatumGetCString(elems[i]), name, &folded);
		add_participant(p, folded);
	}
	*count = n;
	return text_array(items, n);
}

/* link_records -- step 6: the contacts and open leads with one of the addresses */
static void
link_records(int64 email_id, Datum participants)
{
	Datum		v[2] = {Int64GetDatum(email_id), participants};

	crm_query_run_as_owner(&link_contacts, v, NULL, 0);
	crm_query_run_as_owner(&link_leads, v, NULL, 0);
}

/* no_newer_commits -- REPEATABLE READ: rows the snapshot does not show end the transaction */
static void
no_newer_commits(Datum *v, const char *message_id)
{
	bool		isnull;
	int64		seen;

	crm_query_run_as_owner(&count_related, v, NULL, 1);
	seen = crm_result_int64(0, 1, &isnull);
	if (crm_query_run_fresh(&count_related, v, NULL, 1) &&
		crm_result_int64(0, 1, &isnull) != seen)
		crm_serialization_failure(psprintf("e-mail %s", message_id),
								  "This message, the one it replies to or a reply to it was logged by a transaction that committed after this one started.");
}

/* crm_log_email -- SQL crm.log_email(...) */
PG_FUNCTION_INFO_V1(crm_log_email);
Datum
crm_log_email(PG_FUNCTION_ARGS)
{
	Oid			caller = crm_caller();
	char	   *message_id;
	char	   *reply_to = NULL;
	char	   *direction;
	char	   *from;
	char	   *from_folded;
	Participants p;
	int			nto,
				ncc;
	Datum		to,
				cc,
				participants;
	TimestampTz sent_at;
	CrmLock		locks[2];
	int			nlocks = 0;
	Datum		v[11];
	char		n[11];
	char	   *keys[2];
	bool		isnull;
	int64		id;
	int64		thread;

	/* 1. the arguments */
	require_arg(fcinfo, 0, "message_id");
	message_id = message_key(text_to_cstring(PG_GETARG_TEXT_PP(0)), "message_id");
	if (message_id == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("message_id must not be empty"),
				 errhint("Pass the Message-ID header of the e-mail.")));
	require_arg(fcinfo, 1, "direction");
	direction = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (strcmp(direction, "inbound") != 0 && strcmp(direction, "outbound") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("direction must be inbound or outbound")));
	require_arg(fcinfo, 2, "from_address");
	p.folded = palloc(sizeof(char *) * (2 * MAX_RECIPIENTS + 1));
	p.n = 0;
	from = address(text_to_cstring(PG_GETARG_TEXT_PP(2)), "from_address", &from_folded);
	add_participant(&p, from_folded);
	to = addresses(fcinfo, 3, "to_addresses", &p, &nto);
	cc = addresses(fcinfo, 4, "cc_addresses", &p, &ncc);
	if (nto + ncc > MAX_RECIPIENTS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an e-mail has at most %d recipients", MAX_RECIPIENTS),
				 errdetail("to_addresses and cc_addresses have %d together.", nto + ncc)));
	require_arg(fcinfo, 7, "sent_at");
	sent_at = PG_GETARG_TIMESTAMPTZ(7);
	if (TIMESTAMP_NOT_FINITE(sent_at))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sent_at must be a finite time")));
	if (!PG_ARGISNULL(8))
		reply_to = message_key(text_to_cstring(PG_GETARG_TEXT_PP(8)), "in_reply_to");
	if (reply_to != NULL && strcmp(reply_to, message_id) == 0)
		reply_to = NULL;		/* a message is not its own parent */
	participants = text_array(p.folded, p.n);

	/* 2. the message's and its parent's keys */
	locks[nlocks++] = crm_lock_key(CRM_LOCK_EMAIL_MESSAGE, message_id);
	if (reply_to != NULL)
		locks[nlocks++] = crm_lock_key(CRM_LOCK_EMAIL_MESSAGE, reply_to);
	crm_lock_all(locks, nlocks);

	crm_spi_connect();
	keys[0] = message_id;
	keys[1] = reply_to ? reply_to : message_id;
	v[0] = text_array(keys, 2);
	v[1] = CStringGetTextDatum(message_id);
	no_newer_commits(v, message_id);

	/* 3. logged already: first writer wins, the links are completed */
	v[0] = CStringGetTextDatum(message_id);
	crm_query_run_as_owner(&find_email, v, NULL, 1);
	if (SPI_processed == 1)
	{
		id = crm_result_int64(0, 1, &isnull);
		link_records(id, crm_result_datum(0, 2, &isnull));
		crm_spi_finish();
		PG_RETURN_INT64(id);
	}

	/* 4. the e-mail, in its parent's thread or a thread of its own */
	memset(n, ' ', sizeof(n));
	v[1] = CStringGetTextDatum(direction);
	v[2] = CStringGetTextDatum(from);
	v[3] = to;
	v[4] = cc;
	crm_param_text(v, n, 5, crm_optional_text(fcinfo, 5));
	crm_param_text(v, n, 6, crm_optional_text(fcinfo, 6));
	v[7] = TimestampTzGetDatum(sent_at);
	crm_param_text(v, n, 8, reply_to);
	v[9] = participants;
	v[10] = ObjectIdGetDatum(caller);
	crm_query_run_as_owner(&insert_email, v, n, 1);
	if (SPI_processed != 1)
		crm_serialization_failure(psprintf("e-mail %s", message_id),
								  "The message was logged by a transaction that committed after this one started.");
	id = crm_result_int64(0, 1, &isnull);
	thread = crm_result_int64(0, 2, &isnull);

	/* 5. replies that came first join the thread */
	v[0] = CStringGetTextDatum(message_id);
	v[1] = Int64GetDatum(thread);
	crm_query_run_as_owner(&join_replies, v, NULL, 0);

	/* 6. the records of the participants */
	link_records(id, participants);
	crm_spi_finish();
	PG_RETURN_INT64(id);
}

/* crm_email_link_account -- trigger crm_internal.email_link_account() */
PG_FUNCTION_INFO_V1(crm_email_link_account);
Datum
crm_email_link_account(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "email_link_account", false, true);
	HeapTuple	row = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)
		? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	bool		contact_null;
	bool		email_null;
	int64		contact = crm_column_int64(row, tupdesc, "contact_id", &contact_null);
	int64		email = crm_column_int64(row, tupdesc, "email_id", &email_null);

	if (!contact_null && !email_null)
	{
		Datum		v[2] = {Int64GetDatum(email), Int64GetDatum(contact)};

		crm_spi_connect();
		crm_query_run_as_owner(&link_account, v, NULL, 0);
		crm_spi_finish();
	}
	return PointerGetDatum(NULL);
}
