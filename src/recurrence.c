/*
 * recurrence.c: recurring activities.
 *
 * crm.activity.recurrence holds a subset of an iCalendar RRULE (RFC 5545):
 *
 *     FREQ=DAILY|WEEKLY|MONTHLY   required
 *     INTERVAL=n                  1..999, default 1
 *     COUNT=n                     1..100000: the series has n occurrences
 *     UNTIL=yyyymmdd              last day (in the series' time zone), or
 *     UNTIL=yyyymmddThhmmssZ      last moment (UTC); not with COUNT
 *     BYDAY=MO,WE,...             WEEKLY only: weekdays, no duplicates,
 *                                 no numeric prefix (weeks start on Monday)
 *
 * Parts are separated by ';', in any order, each at most once; names and
 * values are case-insensitive; an optional "RRULE:" prefix and white space
 * around the whole rule are accepted, white space inside is not.  Anything
 * else is refused with ZC420, the detail naming the offending part.  A valid
 * rule is stored in canonical form: upper case, FREQ, INTERVAL (when not 1),
 * BYDAY (in week order), COUNT or UNTIL.
 *
 * Series.  The occurrences of a series share series_id (the id of the first
 * occurrence) and are numbered by occurrence_number from 1; both are set by
 * the database (crm_internal.activity_lifecycle), never by a user.  When an open
 * occurrence (Planned, In Progress) becomes Completed or Cancelled, the
 * AFTER trigger crm_internal.activity_next_occurrence() inserts the next one, as the
 * extension owner, copying type, subject, description, priority, owner, the
 * lead/account/contact/opportunity link, the rule and the time zone of the
 * occurrence just closed; its due_at, starts_at, ends_at and remind_at are
 * the closed one's moved by the same number of days in local time of
 * recurrence_time_zone (so a 09:00 meeting stays at 09:00 across daylight
 * saving changes).  The anchor is starts_at, or due_at when there is none.
 * MONTHLY keeps the day of the month and skips months without it (RFC 5545:
 * a series on the 31st has no occurrence in April).  COUNT=n: occurrence n is
 * the last; UNTIL: no occurrence after it.
 *
 * Exactly once.  The closing UPDATE holds the occurrence's row lock; a second
 * session closing it at the same time waits and then updates a row that is
 * already closed, which is no transition from an open status, so no second
 * insert (REPEATABLE READ: 40001).  The unique index (series_id,
 * occurrence_number) and ON CONFLICT DO NOTHING make every other path
 * (re-opening and closing again) a no-op.
 *
 * crm.activity_occurrences(from, to) lists, with the caller's rights, the
 * stored activities in the window and the future occurrences the open head
 * of each visible series would create in it (virtual rows), without
 * writing.  Expansion is bounded: at most MAX_VIRTUAL_ROWS virtual rows per
 * call, MAX_STEPS steps per series and MAX_CALL_STEPS steps of all series
 * together per call (54000 beyond); the loop can be cancelled.
 */
#include "crm.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#define MAX_INTERVAL		999
#define MAX_COUNT			100000
#define MAX_VIRTUAL_ROWS	10000
#define MAX_STEPS			100000
/* steps of all series together, per call: a caller's many old heads cannot pin a CPU */
#define MAX_CALL_STEPS		5000000
#define MAX_MONTH_SKIPS		1000

typedef enum RecurFreq
{
	FREQ_DAILY,
	FREQ_WEEKLY,
	FREQ_MONTHLY
} RecurFreq;

typedef struct Recurrence
{
	RecurFreq	freq;
	int			interval;
	int			count;			/* 0: none */
	bool		has_until;
	bool		until_is_date;
	int			until_day;		/* Julian day (date form) */
	TimestampTz until;			/* date-time form */
	int			byday;			/* bit 0 = Monday ... bit 6 = Sunday */
} Recurrence;

static const char *const day_names[7] = {"MO", "TU", "WE", "TH", "FR", "SA", "SU"};
static const char *const freq_names[3] = {"DAILY", "WEEKLY", "MONTHLY"};

pg_noreturn static void
bad_rule(const char *detail, const char *part)
{
	/* a long part is shown by its first 60 bytes (whole characters) */
	if (strlen(part) > 60)
		part = psprintf("%s...", pnstrdup(part, pg_mbcliplen(part, strlen(part), 60)));
	ereport(ERROR,
			(errcode(ERRCODE_CRM_BAD_RECURRENCE),
			 errmsg("invalid recurrence rule"),
			 errdetail(detail, part),
			 errhint("Use FREQ=DAILY|WEEKLY|MONTHLY with optional INTERVAL, COUNT or UNTIL, and BYDAY for WEEKLY, separated by \";\".")));
}

/* a positive decimal number of at most 6 digits, else -1 */
static int
parse_number(const char *s)
{
	int			n = 0;

	if (*s == '\0' || strlen(s) > 6)
		return -1;
	for (; *s; s++)
	{
		if (*s < '0' || *s > '9')
			return -1;
		n = n * 10 + (*s - '0');
	}
	return n;
}

static bool
all_digits(const char *s, int n)
{
	for (int i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int
digits(const char *s, int n)
{
	int			v = 0;

	for (int i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

static void
parse_until(const char *value, const char *part, Recurrence *r)
{
	size_t		len = strlen(value);
	int			y,
				m,
				d;

	if (!((len == 8 && all_digits(value, 8)) ||
		  (len == 16 && all_digits(value, 8) && value[8] == 'T' &&
		   all_digits(value + 9, 6) && value[15] == 'Z')))
		bad_rule("%s: UNTIL is a date (yyyymmdd) or a UTC date-time (yyyymmddThhmmssZ).", part);
	y = digits(value, 4);
	m = digits(value + 4, 2);
	d = digits(value + 6, 2);
	if (y < 1 || m < 1 || m > 12 || d < 1 || d > day_tab[isleap(y)][m - 1])
		bad_rule("%s: no such date.", part);
	r->has_until = true;
	r->until_is_date = (len == 8);
	r->until_day = date2j(y, m, d);
	if (!r->until_is_date)
	{
		struct pg_tm tm = {0};

		tm.tm_year = y;
		tm.tm_mon = m;
		tm.tm_mday = d;
		tm.tm_hour = digits(value + 9, 2);
		tm.tm_min = digits(value + 11, 2);
		tm.tm_sec = digits(value + 13, 2);
		if (tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 59)
			bad_rule("%s: no such time of day.", part);
		if (tm2timestamp(&tm, 0, NULL, &r->until) != 0)
			bad_rule("%s: out of range.", part);
	}
}

static void
parse_byday(char *value, const char *part, Recurrence *r)
{
	char	   *save = NULL;

	for (char *tok = strtok_r(value, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
	{
		int			day = -1;

		for (int i = 0; i < 7; i++)
			if (strcmp(tok, day_names[i]) == 0)
				day = i;
		if (day < 0)
			bad_rule("%s: BYDAY lists weekdays MO, TU, WE, TH, FR, SA, SU (no numeric prefix).", part);
		if (r->byday & (1 << day))
			bad_rule("%s: a weekday is listed twice.", part);
		r->byday |= 1 << day;
	}
	/* "BYDAY=", "BYDAY=MO,,TU" and "BYDAY=MO," leave an empty item */
	if (r->byday == 0 || strstr(part, ",,") || part[strlen(part) - 1] == ',')
		bad_rule("%s: BYDAY lists weekdays MO, TU, WE, TH, FR, SA, SU (no numeric prefix).", part);
}

/* recurrence_parse -- a rule into *r, or ZC420 */
static void
recurrence_parse(const char *rule, Recurrence *r)
{
	char	   *buf;
	char	   *start;
	char	   *end;
	char	   *save = NULL;
	int			seen = 0;		/* bits: FREQ, INTERVAL, COUNT, UNTIL, BYDAY */

	memset(r, 0, sizeof(*r));
	r->interval = 1;
	buf = pstrdup(rule);
	for (char *p = buf; *p; p++)
		*p = pg_ascii_toupper((unsigned char) *p);
	start = buf;
	while (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r')
		start++;
	end = start + strlen(start);
	while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
		*--end = '\0';
	if (strncmp(start, "RRULE:", 6) == 0)
		start += 6;
	if (*start == '\0')
		bad_rule("%sthe rule is empty (use NULL for an activity that does not recur).", "");
	for (char *p = start; *p; p++)
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			bad_rule("%s: white space inside the rule.", rule);
	if (start[strlen(start) - 1] == ';' || strstr(start, ";;") || start[0] == ';')
		bad_rule("%s: an empty part.", rule);

	for (char *part = strtok_r(start, ";", &save); part; part = strtok_r(NULL, ";", &save))
	{
		char	   *eq = strchr(part, '=');
		char	   *whole = pstrdup(part);
		char	   *value;
		int			bit;
		int			n;

		if (eq == NULL || eq == part || eq[1] == '\0')
			bad_rule("%s: a part is NAME=value.", whole);
		*eq = '\0';
		value = eq + 1;
		if (strcmp(part, "FREQ") == 0)
			bit = 1;
		else if (strcmp(part, "INTERVAL") == 0)
			bit = 2;
		else if (strcmp(part, "COUNT") == 0)
			bit = 4;
		else if (strcmp(part, "UNTIL") == 0)
			bit = 8;
		else if (strcmp(part, "BYDAY") == 0)
			bit = 16;
		else
			bad_rule("%s: unknown or unsupported part (FREQ, INTERVAL, COUNT, UNTIL, BYDAY).", whole);
		if (seen & bit)
			bad_rule("%s: the part is given twice.", whole);
		seen |= bit;
		switch (bit)
		{
			case 1:
				if (strcmp(value, "DAILY") == 0)
					r->freq = FREQ_DAILY;
				else if (strcmp(value, "WEEKLY") == 0)
					r->freq = FREQ_WEEKLY;
				else if (strcmp(value, "MONTHLY") == 0)
					r->freq = FREQ_MONTHLY;
				else
					bad_rule("%s: FREQ is DAILY, WEEKLY or MONTHLY.", whole);
				break;
			case 2:
				n = parse_number(value);
				if (n < 1 || n > MAX_INTERVAL)
					bad_rule("%s: INTERVAL is a number from 1 to 999.", whole);
				r->interval = n;
				break;
			case 4:
				n = parse_number(value);
				if (n < 1 || n > MAX_COUNT)
					bad_rule("%s: COUNT is a number from 1 to 100000.", whole);
				r->count = n;
				break;
			case 8:
				parse_until(value, whole, r);
				break;
			default:
				parse_byday(value, whole, r);
				break;
		}
	}
	if (!(seen & 1))
		bad_rule("%s: FREQ is required.", rule);
	if ((seen & 4) && (seen & 8))
		bad_rule("%s: COUNT and UNTIL exclude each other.", rule);
	if ((seen & 16) && r->freq != FREQ_WEEKLY)
		bad_rule("%s: BYDAY is allowed only with FREQ=WEEKLY.", rule);
}

/* recurrence_text -- the canonical form of a parsed rule */
static char *
recurrence_text(const Recurrence *r)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "FREQ=%s", freq_names[r->freq]);
	if (r->interval != 1)
		appendStringInfo(&buf, ";INTERVAL=%d", r->interval);
	if (r->byday)
	{
		const char *sep = ";BYDAY=";

		for (int i = 0; i < 7; i++)
			if (r->byday & (1 << i))
			{
				appendStringInfo(&buf, "%s%s", sep, day_names[i]);
				sep = ",";
			}
	}
	if (r->count)
		appendStringInfo(&buf, ";COUNT=%d", r->count);
	if (r->has_until)
	{
		int			y,
					m,
					d;

		j2date(r->until_day, &y, &m, &d);
		appendStringInfo(&buf, ";UNTIL=%04d%02d%02d", y, m, d);
		if (!r->until_is_date)
		{
			struct pg_tm tm;
			fsec_t		fsec;

			if (timestamp2tm(r->until, NULL, &tm, &fsec, NULL, NULL) == 0)
				appendStringInfo(&buf, "T%02d%02d%02dZ", tm.tm_hour, tm.tm_min, tm.tm_sec);
		}
	}
	return buf.data;
}

/*
 * next_day -- the local day (Julian) of the occurrence after the one on day
 * j, or false when the rule cannot reach one (a month day that never comes)
 */
static bool
next_day(const Recurrence *r, int j, int *next)
{
	int			y,
				m,
				d;

	switch (r->freq)
	{
		case FREQ_DAILY:
			*next = j + r->interval;
			return true;
		case FREQ_WEEKLY:
			if (r->byday == 0)
				*next = j + 7 * r->interval;
			else
			{
				int			wd = (j2day(j) + 6) % 7;	/* Monday = 0 */

				for (int k = wd + 1; k < 7; k++)
					if (r->byday & (1 << k))
					{
						*next = j + (k - wd);
						return true;
					}
				for (int k = 0; k < 7; k++)
					if (r->byday & (1 << k))
					{
						*next = j - wd + 7 * r->interval + k;
						break;
					}
			}
			return true;
		default:
			j2date(j, &y, &m, &d);
			for (int skips = 0; skips < MAX_MONTH_SKIPS; skips++)
			{
				int			months = (y * 12 + m - 1) + r->interval;

				y = months / 12;
				m = months % 12 + 1;
				if (y > 294276)
					return false;
				if (d <= day_tab[isleap(y)][m - 1])
				{
					*next = date2j(y, m, d);
					return true;
				}
			}
			return false;
	}
}

/* local_day -- the local Julian day of ts in zone tz */
static bool
local_day(TimestampTz ts, pg_tz *tz, int *j)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			off;

	if (TIMESTAMP_NOT_FINITE(ts) || timestamp2tm(ts, &off, &tm, &fsec, NULL, tz) != 0)
		return false;
	*j = date2j(tm.tm_year, tm.tm_mon, tm.tm_mday);
	return true;
}

/* shift_days -- ts moved by days in local time of tz (same wall-clock time) */
static bool
shift_days(TimestampTz ts, int days, pg_tz *tz, TimestampTz *out)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			off;
	int			j;

	if (TIMESTAMP_NOT_FINITE(ts) || timestamp2tm(ts, &off, &tm, &fsec, NULL, tz) != 0)
		return false;
	j = date2j(tm.tm_year, tm.tm_mon, tm.tm_mday) + days;
	j2date(j, &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
	if (tm.tm_year > 294276 || tm.tm_year < -4713)
		return false;
	off = DetermineTimeZoneOffset(&tm, tz);
	if (tm2timestamp(&tm, fsec, &off, out) != 0 || !IS_VALID_TIMESTAMP(*out))
		return false;
	return true;
}

/*
 * next_occurrence -- the number of days from the occurrence number `number`
 * anchored at `anchor` to the next one, and its anchor; false when the series
 * ends (COUNT, UNTIL, the end of time)
 */
static bool
next_occurrence(const Recurrence *r, pg_tz *tz, int number, TimestampTz anchor,
				int *days, TimestampTz *next_anchor)
{
	int			j,
				jn = 0;

	if (r->count && number >= r->count)
		return false;
	if (!local_day(anchor, tz, &j) || !next_day(r, j, &jn))
		return false;
	if (r->has_until && r->until_is_date && jn > r->until_day)
		return false;
	if (!shift_days(anchor, jn - j, tz, next_anchor))
		return false;
	if (r->has_until && !r->until_is_date && *next_anchor > r->until)
		return false;
	*days = jn - j;
	return true;
}

static pg_tz *
zone_or_error(const char *zone)
{
	pg_tz	   *tz = pg_tzset(zone);

	if (tz == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CRM_BAD_RECURRENCE),
				 errmsg("invalid recurrence time zone"),
				 errdetail("recurrence_time_zone \"%s\" is not a time zone name.", zone),
				 errhint("Use a name from pg_timezone_names, e.g. Europe/Berlin or UTC.")));
	return tz;
}

/* occurrence_number (integer) of a row, 0 when null */
static int32
occurrence_number(HeapTuple tuple, TupleDesc tupdesc)
{
	bool		isnull;
	Datum		d = heap_getattr(tuple, crm_attnum(tupdesc, "occurrence_number"), tupdesc, &isnull);

	return isnull ? 0 : DatumGetInt32(d);
}

/* the next occurrence being inserted by this backend (see next_occurrence trigger) */
static int64 pending_series = 0;
static int32 pending_number = 0;

/*
 * crm_recurrence_row -- from crm_internal.activity_lifecycle: validate and canonicalise
 * the rule, default the time zone, keep series_id and occurrence_number the
 * database's.
 */
HeapTuple
crm_recurrence_row(HeapTuple oldtup, HeapTuple newtup, TupleDesc tupdesc)
{
	bool		isnull;
	bool		recurs;
	int64		series;
	int64		number;

	/* the columns exist from version 0.7 on; this library serves older ones too */
	if (SPI_fnumber(tupdesc, "recurrence") <= 0)
		return newtup;
	recurs = !heap_attisnull(newtup, crm_attnum(tupdesc, "recurrence"), tupdesc);
	if (recurs)
	{
		Recurrence	r;
		char	   *zone = crm_column_text(newtup, tupdesc, "recurrence_time_zone");

		recurrence_parse(crm_column_text(newtup, tupdesc, "recurrence"), &r);
		newtup = crm_set_column(newtup, tupdesc, "recurrence",
								CStringGetTextDatum(recurrence_text(&r)), false);
		if (zone == NULL)
			newtup = crm_set_column(newtup, tupdesc, "recurrence_time_zone",
									CStringGetTextDatum(pg_get_timezone_name(session_timezone)), false);
		else
			(void) zone_or_error(zone);
		if (heap_attisnull(newtup, crm_attnum(tupdesc, "starts_at"), tupdesc) &&
			heap_attisnull(newtup, crm_attnum(tupdesc, "due_at"), tupdesc))
			ereport(ERROR,
					(errcode(ERRCODE_CRM_BAD_RECURRENCE),
					 errmsg("a recurring activity needs a due_at or starts_at"),
					 errdetail("The occurrences of a series are placed from starts_at, or due_at when there is none.")));
	}
	else if (!heap_attisnull(newtup, crm_attnum(tupdesc, "recurrence_time_zone"), tupdesc))
		(void) zone_or_error(crm_column_text(newtup, tupdesc, "recurrence_time_zone"));

	/* series_id and occurrence_number are the database's */
	series = crm_column_int64(newtup, tupdesc, "series_id", &isnull);
	number = isnull ? 0 : occurrence_number(newtup, tupdesc);
	if (oldtup == NULL && pending_series != 0 && series == pending_series && number == pending_number)
		return newtup;			/* the next occurrence, inserted below */
	if (oldtup != NULL)
	{
		newtup = crm_keep_column(oldtup, newtup, tupdesc, "series_id");
		newtup = crm_keep_column(oldtup, newtup, tupdesc, "occurrence_number");
		if (!heap_attisnull(newtup, crm_attnum(tupdesc, "series_id"), tupdesc) || !recurs)
			return newtup;
	}
	if (recurs)
	{
		/* a new series: the first occurrence is its id */
		newtup = crm_set_column(newtup, tupdesc, "series_id",
								Int64GetDatum(crm_column_int64(newtup, tupdesc, "id", &isnull)), false);
		newtup = crm_set_column(newtup, tupdesc, "occurrence_number", Int32GetDatum(1), false);
	}
	else
	{
		newtup = crm_set_column(newtup, tupdesc, "series_id", (Datum) 0, true);
		newtup = crm_set_column(newtup, tupdesc, "occurrence_number", (Datum) 0, true);
	}
	return newtup;
}

static CrmQuery insert_next = {
	"INSERT INTO crm.activity (type, subject, description, priority, owner,"
	"       lead_id, account_id, contact_id, opportunity_id,"
	"       recurrence, recurrence_time_zone, series_id, occurrence_number,"
	"       due_at, starts_at, ends_at, remind_at)"
	" SELECT a.type, a.subject, a.description, a.priority, a.owner,"
	"        a.lead_id, a.account_id, a.contact_id, a.opportunity_id,"
	"        a.recurrence, a.recurrence_time_zone, $2, $3, $4, $5, $6, $7"
	"   FROM crm.activity AS a WHERE a.id OPERATOR(pg_catalog.=) $1"
	" ON CONFLICT (series_id, occurrence_number) WHERE series_id IS NOT NULL DO NOTHING",
	7, {INT8OID, INT8OID, INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID},
	NULL
};

/* a timestamp column moved by days into values[i] / nulls[i] */
static void
shifted_param(HeapTuple tuple, TupleDesc tupdesc, const char *colname, int days,
			  pg_tz *tz, Datum *values, char *nulls, int i)
{
	bool		isnull;
	Datum		d = heap_getattr(tuple, crm_attnum(tupdesc, colname), tupdesc, &isnull);
	TimestampTz out;

	nulls[i] = 'n';
	values[i] = (Datum) 0;
	if (!isnull && shift_days(DatumGetTimestampTz(d), days, tz, &out))
	{
		values[i] = TimestampTzGetDatum(out);
		nulls[i] = ' ';
	}
}

static TimestampTz
anchor_of(HeapTuple tuple, TupleDesc tupdesc, bool *isnull)
{
	Datum		d = heap_getattr(tuple, crm_attnum(tupdesc, "starts_at"), tupdesc, isnull);

	if (*isnull)
		d = heap_getattr(tuple, crm_attnum(tupdesc, "due_at"), tupdesc, isnull);
	return *isnull ? 0 : DatumGetTimestampTz(d);
}

/* crm_activity_next_occurrence -- trigger crm_internal.activity_next_occurrence() */
PG_FUNCTION_INFO_V1(crm_activity_next_occurrence);
Datum
crm_activity_next_occurrence(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = crm_trigger_data(fcinfo, "activity_next_occurrence", false, true);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	HeapTuple	oldtup = trigdata->tg_trigtuple;
	HeapTuple	newtup = trigdata->tg_newtuple;
	Recurrence	r;
	pg_tz	   *tz;
	bool		isnull;
	int64		series;
	int64		number;
	TimestampTz anchor;
	TimestampTz next_anchor;
	int			days;
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

	if (!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		elog(ERROR, "activity_next_occurrence: fired by something other than UPDATE");
	/* only an open occurrence that closes now creates the next one */
	if (!(crm_column_is(oldtup, tupdesc, "status", "Planned") ||
		  crm_column_is(oldtup, tupdesc, "status", "In Progress")) ||
		!(crm_column_is(newtup, tupdesc, "status", "Completed") ||
		  crm_column_is(newtup, tupdesc, "status", "Cancelled")) ||
		heap_attisnull(newtup, crm_attnum(tupdesc, "recurrence"), tupdesc))
		return PointerGetDatum(NULL);
	series = crm_column_int64(newtup, tupdesc, "series_id", &isnull);
	if (isnull)
		return PointerGetDatum(NULL);
	number = occurrence_number(newtup, tupdesc);
	anchor = anchor_of(newtup, tupdesc, &isnull);
	if (isnull || number >= PG_INT32_MAX)
		return PointerGetDatum(NULL);
	recurrence_parse(crm_column_text(newtup, tupdesc, "recurrence"), &r);
	tz = zone_or_error(crm_column_text(newtup, tupdesc, "recurrence_time_zone"));
	if (!next_occurrence(&r, tz, (int) number, anchor, &days, &next_anchor))
		return PointerGetDatum(NULL);

	values[0] = Int64GetDatum(crm_column_int64(newtup, tupdesc, "id", &isnull));
	values[1] = Int64GetDatum(series);
	values[2] = Int32GetDatum((int32) number + 1);
	shifted_param(newtup, tupdesc, "due_at", days, tz, values, nulls, 3);
	shifted_param(newtup, tupdesc, "starts_at", days, tz, values, nulls, 4);
	shifted_param(newtup, tupdesc, "ends_at", days, tz, values, nulls, 5);
	shifted_param(newtup, tupdesc, "remind_at", days, tz, values, nulls, 6);

	crm_spi_connect();
	pending_series = series;
	pending_number = (int32) number + 1;
	PG_TRY();
	{
		crm_query_run_as_owner(&insert_next, values, nulls, 0);
	}
	PG_FINALLY();
	{
		pending_series = 0;
		pending_number = 0;
	}
	PG_END_TRY();
	crm_spi_finish();
	return PointerGetDatum(NULL);
}

/*
 * crm.activity_occurrences(from, to): stored activities in [from, to) and
 * the virtual occurrences of each visible series' open head.  Both queries
 * run with the caller's rights.  They compare the stored column occurs_at
 * (not COALESCE(starts_at, due_at): PostgreSQL counts a COALESCE as
 * possibly leaky and would apply it only after the row-level security
 * filter, never as an index condition), so its indexes serve them under
 * row-level security.
 */
static CrmQuery stored_in_window = {
	"SELECT a.id, a.series_id, a.occurrence_number, false,"
	"       a.occurs_at, a.type, a.subject, a.status, a.owner,"
	"       a.due_at, a.starts_at, a.ends_at,"
	"       a.lead_id, a.account_id, a.contact_id, a.opportunity_id"
	"  FROM crm.activity AS a"
	" WHERE a.occurs_at OPERATOR(pg_catalog.>=) $1"
	"   AND a.occurs_at OPERATOR(pg_catalog.<) $2",
	2, {TIMESTAMPTZOID, TIMESTAMPTZOID}, NULL
};

/*
 * The open head of each series: the open occurrence with recurrence that no
 * later stored occurrence follows.
 */
static CrmQuery series_heads = {
	"SELECT a.id, a.series_id, a.occurrence_number, true,"
	"       a.occurs_at, a.type, a.subject, 'Planned'::crm.activity_status, a.owner,"
	"       a.due_at, a.starts_at, a.ends_at,"
	"       a.lead_id, a.account_id, a.contact_id, a.opportunity_id,"
	"       a.recurrence, a.recurrence_time_zone"
	"  FROM crm.activity AS a"
	" WHERE a.recurrence IS NOT NULL"
	"   AND a.status OPERATOR(pg_catalog.<>) ALL (ARRAY['Completed', 'Cancelled']::crm.activity_status[])"
	"   AND a.occurs_at OPERATOR(pg_catalog.<) $1"
	"   AND NOT EXISTS (SELECT 1 FROM crm.activity AS b"
	"                    WHERE b.series_id OPERATOR(pg_catalog.=) a.series_id"
	"                      AND b.occurrence_number OPERATOR(pg_catalog.>) a.occurrence_number)",
	1, {TIMESTAMPTZOID}, NULL
};

#define OCC_COLS 16

static void
too_many(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("too many occurrences to expand"),
			 errdetail("%s", detail),
			 errhint("Ask for a shorter window, or one closer to the open occurrences.")));
}

/* expand_head -- the virtual occurrences of SPI result row i in [from, to) */
static void
expand_head(ReturnSetInfo *rsinfo, int i, TimestampTz from, TimestampTz to, int *returned,
			int64 *call_steps)
{
	Datum		head[OCC_COLS];
	bool		headnulls[OCC_COLS];
	Datum		row[OCC_COLS];
	bool		rownulls[OCC_COLS];
	Recurrence	r;
	pg_tz	   *tz;
	int			number;
	TimestampTz anchor;
	int			total_days = 0;

	for (int c = 0; c < OCC_COLS; c++)
		head[c] = crm_result_datum(i, c + 1, &headnulls[c]);
	memcpy(row, head, sizeof(row));
	memcpy(rownulls, headnulls, sizeof(rownulls));
	recurrence_parse(crm_result_text(i, 17), &r);
	tz = zone_or_error(crm_result_text(i, 18));
	number = DatumGetInt32(head[2]);
	anchor = DatumGetTimestampTz(row[4]);
	rownulls[0] = true;			/* not stored: no activity id */
	for (int step = 0;; step++)
	{
		TimestampTz next_anchor;
		int			days;

		if (step >= MAX_STEPS)
			too_many("A series would take more than 100000 steps to reach the end of the window.");
		if (++*call_steps > MAX_CALL_STEPS)
			too_many("The series in view would take more than 5000000 steps together to reach the end of the window.");
		CHECK_FOR_INTERRUPTS();
		if (number >= PG_INT32_MAX || !next_occurrence(&r, tz, number, anchor, &days, &next_anchor))
			return;
		if (next_anchor >= to)
			return;
		number++;
		anchor = next_anchor;
		total_days += days;
		if (anchor < from)
			continue;
		if (++*returned > MAX_VIRTUAL_ROWS)
			too_many("The window holds more than 10000 future occurrences.");
		row[2] = Int32GetDatum(number);
		row[4] = TimestampTzGetDatum(anchor);
		for (int c = 9; c <= 11; c++)	/* due_at, starts_at, ends_at */
		{
			TimestampTz out;

			rownulls[c] = headnulls[c] ||
				!shift_days(DatumGetTimestampTz(head[c]), total_days, tz, &out);
			row[c] = rownulls[c] ? (Datum) 0 : TimestampTzGetDatum(out);
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row, rownulls);
	}
}

/* crm_activity_occurrences -- SQL crm.activity_occurrences(from, to) */
PG_FUNCTION_INFO_V1(crm_activity_occurrences);
Datum
crm_activity_occurrences(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TimestampTz from;
	TimestampTz to;
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	int			returned = 0;
	int64		call_steps = 0;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", PG_ARGISNULL(0) ? "from" : "to")));
	from = PG_GETARG_TIMESTAMPTZ(0);
	to = PG_GETARG_TIMESTAMPTZ(1);
	if (!(from < to))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the window must end after it starts"),
				 errhint("Pass from < to; the window includes from and excludes to.")));

	InitMaterializedSRF(fcinfo, 0);
	crm_spi_connect();
	values[0] = TimestampTzGetDatum(from);
	values[1] = TimestampTzGetDatum(to);
	crm_query_run(&stored_in_window, values, nulls, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		Datum		row[OCC_COLS];
		bool		rownulls[OCC_COLS];

		for (int c = 0; c < OCC_COLS; c++)
			row[c] = crm_result_datum(i, c + 1, &rownulls[c]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row, rownulls);
	}
	crm_query_run(&series_heads, &values[1], &nulls[1], 0);
	for (uint64 i = 0; i < SPI_processed; i++)
		expand_head(rsinfo, (int) i, from, to, &returned, &call_steps);
	crm_spi_finish();
	return (Datum) 0;
}
