/*
 * capture.c: crm.capture_lead(), lead capture for web forms, e-mail-to-lead
 * and integrations (role crm_intake).
 *
 * A capture is validated completely before anything is written: a name; an
 * e-mail address or a phone number; the shapes of crm.email_address,
 * crm.phone_number and (details.website) crm.web_url; a known, active lead
 * source; an existing campaign; the length limits; details a JSON object
 * whose mapped keys are strings; details.consent (below).
 *
 * Then, as the extension owner (crm_intake reads no table):
 *  1. the extension's key locks (locks.c) of the folded e-mail, the phone
 *     key, the company key and the company domain, in one sorted batch: the
 *     locks a conversion and the duplicate check on entry take, so a capture
 *     serialises with those of the same person, and with conversions and
 *     entries of the same keys;
 *  2. the open (not converted) lead with this e-mail (case-insensitive), or
 *     else this phone key, oldest first, locked FOR NO KEY UPDATE; found
 *     under a fresh snapshot in READ COMMITTED, so the lead a concurrent
 *     identical capture committed while we waited for the lock is found; in
 *     REPEATABLE READ a lead committed since the snapshot gives 40001;
 *  3. found: its empty fields are filled from the capture, nothing is
 *     overwritten, an opt-out is added (never cleared), a lawful basis is
 *     recorded when it has none; not found: a new lead owned by crm_intake;
 *  4. the lead joins the campaign once (the membership trigger marks an
 *     opted-out person and warns, ZC802);
 *  5. the capture is kept in crm.lead_capture (created or merged).
 *
 * All of this runs in a subtransaction.  Any error (validation, the
 * duplicate check's ZC701, a constraint) rolls it back -- no partial rows --
 * and the capture is recorded as refused by a background worker in a
 * transaction of its own (capture_log.c) before the error is raised again
 * with the capture's id in its detail.  An error about the moment rather
 * than the capture (a serialization failure, a deadlock, a cancel: see
 * is_refusal) is raised again without recording: the client retries.
 *
 * details maps these keys to lead columns: title, website, industry, city,
 * country, remarks; every other key is only kept in the payload.
 * details.consent is an object of basis ('consent', 'contract', 'legitimate
 * interest', 'legal obligation'), email_opt_out, phone_opt_out,
 * do_not_contact (booleans) and source (text); any other key is refused.
 */
#include "crm.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/syscache.h"

/* length limits, in characters (details: in bytes of its stored form) */
#define MAX_NAME		200
#define MAX_EMAIL		254
#define MAX_PHONE		50
#define MAX_SOURCE		40
#define MAX_DETAILS		65536
/* how much of an over-long value the payload keeps */
#define KEPT_OF_LONG	2000

/* positions in the text[] parameter of the lead statements */
enum
{
	F_NAME, F_COMPANY, F_EMAIL, F_PHONE, F_TITLE, F_WEBSITE, F_INDUSTRY,
	F_CITY, F_COUNTRY, F_REMARKS, F_SOURCE, F_BASIS, F_CONSENT_SOURCE, F_COUNT
};

/* the details keys stored in lead columns */
static const struct
{
	const char *key;
	int			field;
	int			max;
}			detail_columns[] = {
	{"title", F_TITLE, 200},
	{"website", F_WEBSITE, 2048},
	{"industry", F_INDUSTRY, 200},
	{"city", F_CITY, 200},
	{"country", F_COUNTRY, 200},
	{"remarks", F_REMARKS, 4000},
};

static const char *const consent_bases[] = {
	"consent", "contract", "legitimate interest", "legal obligation", NULL
};

/* the consent flags, in the order of the bool[] parameter */
static const char *const consent_flags[] = {"email_opt_out", "phone_opt_out", "do_not_contact"};

typedef struct Capture
{
	char	   *field[F_COUNT];
	bool		flag[3];
	bool		has_campaign;
	int64		campaign_id;
	Jsonb	   *details;
} Capture;

static CrmQuery check_references = {
	"SELECT EXISTS (SELECT 1 FROM crm.lead_source AS s WHERE s.code OPERATOR(pg_catalog.=) $1 AND s.active),"
	" $2 IS NULL OR EXISTS (SELECT 1 FROM crm.campaign AS c WHERE c.id OPERATOR(pg_catalog.=) $2)",
	2, {TEXTOID, INT8OID}, NULL
};

#define OPEN_LEAD_WHERE \
	" WHERE l.status OPERATOR(pg_catalog.<>) 'Converted'::crm.lead_status" \
	"   AND ((l.email IS NOT NULL AND pg_catalog.lower(l.email) OPERATOR(pg_catalog.=) $1)" \
	"     OR (l.phone IS NOT NULL AND crm.phone_key(l.phone) OPERATOR(pg_catalog.=) $2))"

static CrmQuery find_open_lead = {
	"SELECT l.id FROM crm.lead AS l" OPEN_LEAD_WHERE
	" ORDER BY COALESCE(l.email IS NOT NULL AND pg_catalog.lower(l.email) OPERATOR(pg_catalog.=) $1, false) DESC, l.id"
	" LIMIT 1 FOR NO KEY UPDATE OF l",
	2, {TEXTOID, TEXTOID}, NULL
};

static CrmQuery probe_open_lead = {
	"SELECT l.id FROM crm.lead AS l" OPEN_LEAD_WHERE " LIMIT 1",
	2, {TEXTOID, TEXTOID}, NULL
};

static CrmQuery insert_lead = {
	"INSERT INTO crm.lead (name, company, email, phone, title, website, industry, city, country, remarks,"
	"                      source, campaign_id, owner, email_opt_out, phone_opt_out, do_not_contact,"
	"                      consent_basis, consent_at, consent_source)"
	" VALUES ($1[1], $1[2], $1[3], $1[4], $1[5], $1[6], $1[7], $1[8], $1[9], $1[10], $1[11], $3,"
	"         'crm_intake'::pg_catalog.regrole, $2[1], $2[2], $2[3], $1[12],"
	"         CASE WHEN $1[12] IS NOT NULL THEN pg_catalog.now() END, $1[13])"
	" RETURNING id",
	3, {TEXTARRAYOID, BOOLARRAYOID, INT8OID}, NULL
};

/* the lead's empty fields filled; opt-outs added; a basis only where none */
#define FILLED_COLUMNS "company, email, phone, title, website, industry, city, country, remarks," \
	" campaign_id, email_opt_out, phone_opt_out, do_not_contact, consent_basis, consent_at, consent_source"

static CrmQuery merge_lead = {
	"UPDATE crm.lead AS l SET (" FILLED_COLUMNS ") = (SELECT n.* FROM (SELECT"
	"   COALESCE(o.company, $2[2]), COALESCE(o.email::pg_catalog.text, $2[3]), COALESCE(o.phone::pg_catalog.text, $2[4]),"
	"   COALESCE(o.title, $2[5]), COALESCE(o.website::pg_catalog.text, $2[6]), COALESCE(o.industry, $2[7]),"
	"   COALESCE(o.city, $2[8]), COALESCE(o.country, $2[9]), COALESCE(o.remarks, $2[10]),"
	"   COALESCE(o.campaign_id, $4),"
	"   o.email_opt_out OR COALESCE($3[1], false), o.phone_opt_out OR COALESCE($3[2], false),"
	"   o.do_not_contact OR COALESCE($3[3], false),"
	"   COALESCE(o.consent_basis, $2[12]),"
	"   CASE WHEN o.consent_basis IS NULL AND $2[12] IS NOT NULL THEN pg_catalog.now() ELSE o.consent_at END,"
	"   CASE WHEN o.consent_basis IS NULL AND $2[12] IS NOT NULL THEN $2[13] ELSE COALESCE(o.consent_source, $2[13]) END"
	"   FROM crm.lead AS o WHERE o.id OPERATOR(pg_catalog.=) l.id) AS n)"
	" WHERE l.id OPERATOR(pg_catalog.=) $1"
	"   AND (($2[2] IS NOT NULL AND l.company IS NULL) OR ($2[3] IS NOT NULL AND l.email IS NULL)"
	"     OR ($2[4] IS NOT NULL AND l.phone IS NULL) OR ($2[5] IS NOT NULL AND l.title IS NULL)"
	"     OR ($2[6] IS NOT NULL AND l.website IS NULL) OR ($2[7] IS NOT NULL AND l.industry IS NULL)"
	"     OR ($2[8] IS NOT NULL AND l.city IS NULL) OR ($2[9] IS NOT NULL AND l.country IS NULL)"
	"     OR ($2[10] IS NOT NULL AND l.remarks IS NULL) OR ($4 IS NOT NULL AND l.campaign_id IS NULL)"
	"     OR ($3[1] AND NOT l.email_opt_out) OR ($3[2] AND NOT l.phone_opt_out)"
	"     OR ($3[3] AND NOT l.do_not_contact) OR ($2[12] IS NOT NULL AND l.consent_basis IS NULL)"
	"     OR ($2[13] IS NOT NULL AND l.consent_source IS NULL))",
	4, {INT8OID, TEXTARRAYOID, BOOLARRAYOID, INT8OID}, NULL
};

static CrmQuery join_campaign = {
	"INSERT INTO crm.campaign_member (campaign_id, lead_id, owner)"
	" SELECT $1, l.id, l.owner FROM crm.lead AS l WHERE l.id OPERATOR(pg_catalog.=) $2"
	" ON CONFLICT (campaign_id, lead_id) DO NOTHING",
	2, {INT8OID, INT8OID}, NULL
};

static CrmQuery log_capture = {
	"INSERT INTO crm.lead_capture (captured_by, source, campaign_id, payload, outcome, lead_id)"
	" VALUES ($1, $2, $3, $4, $5, $6)",
	6, {REGROLEOID, TEXTOID, INT8OID, JSONBOID, TEXTOID, INT8OID}, NULL
};

/* ------------------------------------------------------------ the payload */

/* a text value for the payload: as sent, or its start and length when over max */
static void
append_value(StringInfo buf, const char *key, const char *s, int max)
{
	escape_json(buf, key);
	appendStringInfoChar(buf, ':');
	if (s == NULL)
		appendStringInfoString(buf, "null");
	else if (pg_mbstrlen(s) <= max)
		escape_json(buf, s);
	else
	{
		int			keep = pg_mbcliplen(s, strlen(s), KEPT_OF_LONG);

		appendStringInfoString(buf, "{\"truncated\":");
		escape_json(buf, pnstrdup(s, keep));
		appendStringInfo(buf, ",\"bytes\":%zu}", strlen(s));
	}
	appendStringInfoChar(buf, ',');
}

/* everything the form sent, as the text of a JSON object */
static char *
payload_text(FunctionCallInfo fcinfo)
{
	StringInfoData buf;
	static const char *const keys[5] = {"name", "company", "email", "phone", "source"};
	static const int max[5] = {MAX_NAME, MAX_NAME, MAX_EMAIL, MAX_PHONE, MAX_SOURCE};

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < 5; i++)
		append_value(&buf, keys[i], crm_optional_text(fcinfo, i), max[i]);
	if (PG_ARGISNULL(5))
		appendStringInfoString(&buf, "\"campaign_id\":null,");
	else
		appendStringInfo(&buf, "\"campaign_id\":" INT64_FORMAT ",", PG_GETARG_INT64(5));
	appendStringInfoString(&buf, "\"details\":");
	if (PG_ARGISNULL(6))
		appendStringInfoString(&buf, "null");
	else
	{
		Jsonb	   *details = PG_GETARG_JSONB_P(6);
		char	   *text = JsonbToCString(NULL, &details->root, VARSIZE(details));

		if (VARSIZE(details) <= MAX_DETAILS)
			appendStringInfoString(&buf, text);
		else
		{
			int			keep = pg_mbcliplen(text, strlen(text), KEPT_OF_LONG);

			appendStringInfoString(&buf, "{\"truncated\":");
			escape_json(&buf, pnstrdup(text, keep));
			appendStringInfo(&buf, ",\"bytes\":%zu}", (size_t) VARSIZE(details));
		}
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* ------------------------------------------------------------ subtransactions */

typedef void (*SubtransactionStep) (void *arg);

/*
 * in_subtransaction -- run step in a subtransaction, as PL/pgSQL runs a
 * block with an exception handler: NULL when it succeeded (the
 * subtransaction committed into the caller's), else its error, with
 * everything it did rolled back and the caller's memory context and
 * resource owner restored
 */
static ErrorData *
in_subtransaction(SubtransactionStep step, void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		step(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_END_TRY();
	return edata;
}

/* ------------------------------------------------------------ validation */

pg_noreturn static void
too_long(const char *what, int max)
{
	ereport(ERROR,
			(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
			 errmsg("%s is too long", what),
			 errdetail("A capture's %s may have at most %d characters.", what, max),
			 errhint("Shorten it in the form, or send it in details.remarks.")));
}

/* a text argument: NULL when NULL or blank, refused when over max */
static char *
text_argument(FunctionCallInfo fcinfo, int argno, const char *what, int max)
{
	char	   *s = crm_optional_text(fcinfo, argno);

	if (crm_is_blank(s))
		return NULL;
	if (pg_mbstrlen(s) > max)
		too_long(what, max);
	return s;
}

typedef struct ShapeCheck
{
	const char *value;
	Oid			type;
} ShapeCheck;

static void
shape_step(void *arg)
{
	ShapeCheck *check = arg;

	domain_check(CStringGetTextDatum(check->value), false, check->type, NULL, NULL);
}

/* the value must be of domain crm.<domain>; sqlerrcode otherwise */
static void
check_shape(const char *value, const char *domain, int sqlerrcode, const char *what,
			const char *example)
{
	ShapeCheck	check = {value, InvalidOid};
	ErrorData  *edata;

	check.type = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum(domain),
								 ObjectIdGetDatum(get_namespace_oid("crm", false)));
	if (!OidIsValid(check.type))
		elog(ERROR, "crm: type crm.%s does not exist", domain);
	/* the domain's CHECK, in a subtransaction of its own to tell its failure */
	edata = in_subtransaction(shape_step, &check);
	if (edata == NULL)
		return;
	if (edata->sqlerrcode != ERRCODE_CHECK_VIOLATION)
		ReThrowError(edata);
	ereport(ERROR,
			(errcode(sqlerrcode),
			 errmsg("%s is not valid", what),
			 errdetail("It must have the shape of crm.%s.", domain),
			 errhint("Send a value such as %s.", example)));
}

pg_noreturn static void
bad_details(const char *msg, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s", msg),
			 errdetail("%s", detail),
			 errhint("See README \"Lead capture\" for the keys of details.")));
}

/* a details value that must be a string (or null): the string or NULL */
static char *
string_value(JsonbValue *v, const char *path)
{
	if (v->type == jbvNull)
		return NULL;
	if (v->type != jbvString)
		bad_details(psprintf("%s must be a string", path), "A JSON string or null is expected.");
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* details.consent: basis, opt-outs, source */
static void
read_consent(Capture *c, JsonbValue *consent)
{
	JsonbIterator *it;
	JsonbValue	k;
	JsonbValue	v;
	JsonbIteratorToken tok;
	bool		given = false;

	if (consent->type == jbvNull)
		return;
	if (consent->type != jbvBinary || !JsonContainerIsObject(consent->val.binary.data))
		bad_details("details.consent must be a JSON object",
					"Send {\"basis\": ..., \"email_opt_out\": ..., \"phone_opt_out\": ..., \"do_not_contact\": ..., \"source\": ...}.");
	it = JsonbIteratorInit(consent->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *key;
		bool		known = false;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(k.val.string.val, k.val.string.len);
		(void) JsonbIteratorNext(&it, &v, true);
		given = true;
		for (int f = 0; f < (int) lengthof(consent_flags); f++)
		{
			if (strcmp(key, consent_flags[f]) != 0)
				continue;
			known = true;
			if (v.type == jbvBool)
				c->flag[f] = v.val.boolean;
			else if (v.type != jbvNull)
				bad_details(psprintf("details.consent.%s must be true or false", key),
							"An opt-out is a JSON boolean.");
		}
		if (strcmp(key, "basis") == 0)
		{
			char	   *basis = string_value(&v, "details.consent.basis");
			bool		ok = basis == NULL;

			known = true;
			for (int b = 0; !ok && consent_bases[b] != NULL; b++)
				ok = strcmp(basis, consent_bases[b]) == 0;
			if (!ok)
				bad_details("details.consent.basis is not a lawful basis",
							"It is one of consent, contract, legitimate interest, legal obligation.");
			c->field[F_BASIS] = basis;
		}
		else if (strcmp(key, "source") == 0)
		{
			char	   *source = string_value(&v, "details.consent.source");

			known = true;
			if (source != NULL && crm_is_blank(source))
				source = NULL;
			if (source != NULL && pg_mbstrlen(source) > MAX_NAME)
				too_long("details.consent.source", MAX_NAME);
			c->field[F_CONSENT_SOURCE] = source;
		}
		if (!known)
			bad_details(psprintf("details.consent has an unknown key \"%s\"", key),
						"Its keys are basis, email_opt_out, phone_opt_out, do_not_contact and source; a misspelt opt-out is refused rather than lost.");
	}
	if (given && c->field[F_CONSENT_SOURCE] == NULL)
		c->field[F_CONSENT_SOURCE] = psprintf("capture:%s", c->field[F_SOURCE]);
}

/* details: the mapped columns and the consent */
static void
read_details(Capture *c)
{
	JsonbValue	v;

	if (c->details == NULL)
		return;
	if (VARSIZE(c->details) > MAX_DETAILS)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("details is too long"),
				 errdetail("A capture's details may have at most %d bytes.", MAX_DETAILS)));
	if (!JB_ROOT_IS_OBJECT(c->details))
		bad_details("details must be a JSON object", "Send {\"key\": value, ...} or NULL.");
	for (int i = 0; i < (int) lengthof(detail_columns); i++)
	{
		const char *key = detail_columns[i].key;
		char	   *path = psprintf("details.%s", key);
		char	   *s;

		if (getKeyJsonValueFromContainer(&c->details->root, key, strlen(key), &v) == NULL)
			continue;
		s = string_value(&v, path);
		if (crm_is_blank(s))
			continue;
		if (pg_mbstrlen(s) > detail_columns[i].max)
			too_long(path, detail_columns[i].max);
		c->field[detail_columns[i].field] = s;
	}
	if (getKeyJsonValueFromContainer(&c->details->root, "consent", strlen("consent"), &v) != NULL)
		read_consent(c, &v);
}

/* every argument checked; nothing read or written yet */
static void
read_arguments(FunctionCallInfo fcinfo, Capture *c)
{
	memset(c, 0, sizeof(*c));
	c->field[F_NAME] = text_argument(fcinfo, 0, "name", MAX_NAME);
	c->field[F_COMPANY] = text_argument(fcinfo, 1, "company", MAX_NAME);
	c->field[F_EMAIL] = text_argument(fcinfo, 2, "email", MAX_EMAIL);
	c->field[F_PHONE] = text_argument(fcinfo, 3, "phone", MAX_PHONE);
	c->field[F_SOURCE] = PG_ARGISNULL(4) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(4));
	if (c->field[F_SOURCE] != NULL && pg_mbstrlen(c->field[F_SOURCE]) > MAX_SOURCE)
		too_long("source", MAX_SOURCE);
	c->has_campaign = !PG_ARGISNULL(5);
	c->campaign_id = c->has_campaign ? PG_GETARG_INT64(5) : 0;
	c->details = PG_ARGISNULL(6) ? NULL : PG_GETARG_JSONB_P(6);

	if (c->field[F_NAME] == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_CAPTURE_INCOMPLETE),
				 errmsg("a capture needs a name"),
				 errhint("Send the person's name.")));
	if (c->field[F_EMAIL] == NULL && c->field[F_PHONE] == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_CAPTURE_INCOMPLETE),
				 errmsg("a capture needs an e-mail address or a phone number"),
				 errhint("Send at least one way to reach the person.")));
	if (c->field[F_SOURCE] == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_CAPTURE_UNKNOWN_SOURCE),
				 errmsg("a capture needs a lead source"),
				 errhint("Send the code of an active row of crm.lead_source, such as website.")));
	read_details(c);
	if (c->field[F_EMAIL] != NULL)
		check_shape(c->field[F_EMAIL], "email_address", ERRCODE_CRM_INVALID_EMAIL,
					"the e-mail address", "maria@example.com");
	if (c->field[F_PHONE] != NULL)
		check_shape(c->field[F_PHONE], "phone_number", ERRCODE_CRM_CAPTURE_INVALID_VALUE,
					"the phone number", "+49 30 1234567");
	if (c->field[F_WEBSITE] != NULL)
		check_shape(c->field[F_WEBSITE], "web_url", ERRCODE_CRM_CAPTURE_INVALID_VALUE,
					"details.website", "https://example.com");
}

/* ------------------------------------------------------------ the capture */

static Datum
text_array(Capture *c)
{
	Datum		elems[F_COUNT];
	bool		nulls[F_COUNT];
	int			dims[1] = {F_COUNT};
	int			lbs[1] = {1};

	for (int i = 0; i < F_COUNT; i++)
	{
		nulls[i] = c->field[i] == NULL;
		elems[i] = nulls[i] ? (Datum) 0 : CStringGetTextDatum(c->field[i]);
	}
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
}

static Datum
flag_array(Capture *c)
{
	Datum		elems[3];

	for (int i = 0; i < 3; i++)
		elems[i] = BoolGetDatum(c->flag[i]);
	return PointerGetDatum(construct_array(elems, 3, BOOLOID, 1, true, TYPALIGN_CHAR));
}

/* the key locks of the capture's person and company (see the file header) */
static void
lock_keys(Capture *c, const char *email_key, const char *phone_key)
{
	CrmLock		locks[4];
	int			n = 0;
	char	   *company = c->field[F_COMPANY] ? crm_company_key(c->field[F_COMPANY]) : NULL;
	char	   *domain = c->field[F_WEBSITE] ? crm_company_domain(crm_domain_of(c->field[F_WEBSITE])) : NULL;

	if (domain == NULL && c->field[F_EMAIL] != NULL)
		domain = crm_email_company_domain(c->field[F_EMAIL]);
	if (email_key != NULL)
		locks[n++] = crm_lock_key(CRM_LOCK_EMAIL, email_key);
	if (phone_key != NULL)
		locks[n++] = crm_lock_key(CRM_LOCK_PHONE, phone_key);
	if (company != NULL)
		locks[n++] = crm_lock_key(CRM_LOCK_COMPANY, company);
	if (domain != NULL)
		locks[n++] = crm_lock_key(CRM_LOCK_DOMAIN, domain);
	crm_lock_all(locks, n);
}

/* steps 1 to 5 of the file header; the lead's id */
static int64
capture(FunctionCallInfo fcinfo, Capture *c, Datum payload, Oid caller)
{
	char	   *email_key;
	char	   *phone_key;
	Datum		v[6];
	char		n[6];
	bool		isnull;
	bool		found;
	int64		lead = 0;

	read_arguments(fcinfo, c);
	email_key = c->field[F_EMAIL] ? str_tolower(c->field[F_EMAIL], strlen(c->field[F_EMAIL]),
												DEFAULT_COLLATION_OID) : NULL;
	phone_key = c->field[F_PHONE] ? crm_phone_digits(c->field[F_PHONE]) : NULL;

	crm_spi_connect();
	crm_param_text(v, n, 0, c->field[F_SOURCE]);
	crm_param_int64(v, n, 1, c->campaign_id, !c->has_campaign);
	crm_query_run_as_owner(&check_references, v, n, 1);
	if (!DatumGetBool(crm_result_datum(0, 1, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_CRM_CAPTURE_UNKNOWN_SOURCE),
				 errmsg("lead source \"%s\" is not an active lead source", c->field[F_SOURCE]),
				 errhint("Send the code of an active row of crm.lead_source, such as website.")));
	if (!DatumGetBool(crm_result_datum(0, 2, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_CRM_CAPTURE_UNKNOWN_CAMPAIGN),
				 errmsg("campaign " INT64_FORMAT " does not exist", c->campaign_id),
				 errhint("Send the id of a row of crm.campaign, or no campaign.")));

	/* 1. 2. the person's keys, then the open lead */
	lock_keys(c, email_key, phone_key);
	crm_param_text(v, n, 0, email_key);
	crm_param_text(v, n, 1, phone_key);
	crm_query_run_as_owner(&find_open_lead, v, n, 1);
	found = SPI_processed == 1;
	if (found)
		lead = crm_result_int64(0, 1, &isnull);
	else if (crm_query_finds_newer_rows(&probe_open_lead, v, n))
		crm_serialization_failure("the open lead of a capture",
								  "A lead with this e-mail address or phone number was committed after this transaction started.");

	/* 3. */
	v[0] = text_array(c);
	v[1] = flag_array(c);
	n[0] = n[1] = ' ';
	crm_param_int64(v, n, 2, c->campaign_id, !c->has_campaign);
	if (found)
	{
		Datum		m[4] = {Int64GetDatum(lead), v[0], v[1], v[2]};
		char		mn[4] = {' ', ' ', ' ', n[2]};

		crm_query_run_as_owner(&merge_lead, m, mn, 0);
	}
	else
	{
		crm_query_run_as_owner(&insert_lead, v, n, 0);
		if (SPI_processed != 1)
			elog(ERROR, "crm: a captured lead was not inserted");
		lead = crm_result_int64(0, 1, &isnull);
	}

	/* 4. */
	if (c->has_campaign)
	{
		crm_param_int64(v, n, 0, c->campaign_id, false);
		crm_param_int64(v, n, 1, lead, false);
		crm_query_run_as_owner(&join_campaign, v, n, 0);
	}

	/* 5. */
	v[0] = ObjectIdGetDatum(caller);
	n[0] = ' ';
	crm_param_text(v, n, 1, c->field[F_SOURCE]);
	crm_param_int64(v, n, 2, c->campaign_id, !c->has_campaign);
	v[3] = payload;
	n[3] = ' ';
	crm_param_text(v, n, 4, found ? "merged" : "created");
	crm_param_int64(v, n, 5, lead, false);
	crm_query_run_as_owner(&log_capture, v, n, 0);
	crm_spi_finish();
	return lead;
}

static void
take_lock_step(void *arg)
{
	crm_lock_all((CrmLock *) arg, 1);
}

/*
 * is_refusal -- is an error about the capture (recorded as its refusal), or
 * about the moment: a serialization failure or deadlock (class 40), a lock
 * not available (55), lack of resources (53), a cancel or shutdown (57),
 * a lost connection (08), a system or internal error (58, XX), which the
 * client retries and which are raised again unrecorded
 */
static bool
is_refusal(int sqlerrcode)
{
	static const char *const transient[] = {"08", "40", "53", "55", "57", "58", "XX"};
	const char *state = unpack_sql_state(sqlerrcode);

	for (int i = 0; i < (int) lengthof(transient); i++)
		if (strncmp(state, transient[i], 2) == 0)
			return false;
	return true;
}

/*
 * refused -- record the refusal (capture_log.c), then raise the error again
 * with the capture's id (or why it was not recorded) in its detail.
 *
 * One refusal at a time in the whole cluster is recorded: its worker runs
 * under the extension's capture-log lock (locks.c), taken here and
 * released when the worker is done.  Without it, logins sending bad
 * captures from many connections at once would hold every
 * max_worker_processes slot, and parallel queries, logical replication and
 * other extensions' workers could not start.  A refusal waits for the lock
 * at most crm.lock_wait_timeout, then is raised as not recorded.
 */
pg_noreturn static void
refused(ErrorData *edata, FunctionCallInfo fcinfo, const char *payload, Oid caller)
{
	const char *why = NULL;
	const char *note;
	char	   *source;
	int64		id = 0;
	CrmLock		slot = crm_lock_global(CRM_LOCK_CAPTURE_LOG);
	ErrorData  *waited;

	if (!is_refusal(edata->sqlerrcode))
		ReThrowError(edata);
	source = crm_optional_text(fcinfo, 4);
	if (source != NULL && strlen(source) > MAX_SOURCE)	/* the payload keeps its start */
		source = pnstrdup(source, pg_mbcliplen(source, strlen(source), MAX_SOURCE));
	waited = in_subtransaction(take_lock_step, &slot);
	if (waited != NULL && waited->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
		ReThrowError(waited);	/* a cancel while waiting */
	if (waited != NULL)
		why = "other refused captures were being recorded (crm.lock_wait_timeout passed)";
	else
	{
		id = crm_record_refused_capture(caller, source, !PG_ARGISNULL(5),
										PG_ARGISNULL(5) ? 0 : PG_GETARG_INT64(5), payload,
										unpack_sql_state(edata->sqlerrcode),
										edata->message ? edata->message : "(no message)", &why);
		crm_unlock(&slot);
	}
	if (id != 0)
		note = psprintf("The capture was kept as refused: crm.lead_capture " INT64_FORMAT ".", id);
	else
		note = psprintf("The refusal could not be recorded in crm.lead_capture: %s.", why);
	edata->detail = edata->detail ? psprintf("%s %s", edata->detail, note) : pstrdup(note);
	ReThrowError(edata);
}

typedef struct CaptureCall
{
	FunctionCallInfo fcinfo;
	Datum		payload;
	Oid			caller;
	int64		lead;
} CaptureCall;

static void
capture_step(void *arg)
{
	CaptureCall *call = arg;
	Capture		c;

	call->lead = capture(call->fcinfo, &c, call->payload, call->caller);
}

/* crm_capture_lead -- SQL crm.capture_lead(name, company, email, phone, source, campaign_id, details) */
PG_FUNCTION_INFO_V1(crm_capture_lead);
Datum
crm_capture_lead(PG_FUNCTION_ARGS)
{
	char	   *payload = payload_text(fcinfo);
	CaptureCall call = {fcinfo, (Datum) 0, crm_caller(), 0};
	ErrorData  *edata;

	call.payload = DirectFunctionCall1(jsonb_in, CStringGetDatum(payload));
	edata = in_subtransaction(capture_step, &call);
	if (edata != NULL)
		refused(edata, fcinfo, payload, call.caller);
	PG_RETURN_INT64(call.lead);
}
