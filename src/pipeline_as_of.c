/*
 * pipeline_as_of.c: crm.pipeline_as_of(at), the pipeline as it was at a
 * moment, read from crm.opportunity_history (90_reports.sql says what it
 * returns; README "Reports").
 *
 * A deal's state at `at` is its last entry by id made at or before `at`
 * (the history is append-only); the deal counts when that entry is not its
 * deletion and the caller may read that entry (row security of the
 * history: a rep reads the entries that leave a deal with their team, and
 * every entry of a deal they see now).  A deal handed to another team
 * before `at` is therefore not in the former owner's pipeline at `at`,
 * even though they read its earlier entries.  Three steps:
 *
 *   1. As the caller: which of the history's row-security policies apply
 *      to it (pg_policy), and, when the only ones are those of
 *      95_row_security.sql, for a member of crm_sales or crm_manager its
 *      team (crm.team_roles(), as the policy) and the deals it sees now
 *      (crm.opportunity under its own row security).  The statement names
 *      every history column the reader uses, so that a caller without
 *      SELECT on them gets 42501 as from a plain SELECT.
 *   2. The totals at `at`, grouped by recorded stage, first rename of that
 *      name after the entry, owner, currency and close month.  The history
 *      is read as the extension owner: every state counts for a caller
 *      with a USING (true) policy (admins, analysts) or none subject to row
 *      security (superuser, table owner, BYPASSRLS); for a rep or a
 *      manager, the policy crm_parent_select -- the entry's new_owner is in
 *      the team, or the deal is one the caller sees now -- is evaluated
 *      once per deal, on its state, as a join against the deals the caller
 *      sees, instead of the policy's EXISTS per entry.  Under any other
 *      policies (a DBA's own, a restrictive one, none for a caller subject
 *      to row security) the states are found as the owner and read back by
 *      id as the caller, so the policies themselves decide, once per deal.
 *      The rename of an entry's stage comes from a map per stage name (id
 *      ranges of entries -> first rename) joined once per deal.
 *   3. As the caller: names, sort order, flags and rates of the groups
 *      (crm.opportunity_stage_rename, crm.opportunity_stage,
 *      crm.exchange_rate_on()), the totals passed in as arrays.
 *
 * Every statement reads under the calling statement's snapshot (read-only
 * SPI), as the SQL function it replaced did, and takes no lock: what it
 * returns is what that snapshot holds (entries carry their transaction's
 * start time, so one committed later may still date from before `at`).
 *
 * Cost: step 2 reads every entry made up to `at` once (at least one per
 * deal that existed then), whoever calls; the rest is per group.
 */
#include "crm.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/rls.h"
#include "utils/tuplestore.h"

/*
 * The expression of the policy crm_parent_select on the history as
 * 95_row_security.sql creates it, as pg_get_expr() shows it under the
 * function's search_path: only a policy of that name with this expression
 * is evaluated per deal by step 2 (a DBA who alters or re-creates it gets
 * their own expression evaluated, by the states read back as the caller).
 */
#define PARENT_SELECT_QUAL \
	"E'(((new_owner)::oid = ANY (ARRAY( SELECT crm.team_roles() AS team_roles))) OR (EXISTS ( SELECT 1\\n" \
	"   FROM crm.opportunity p\\n  WHERE (p.id = opportunity_history.opportunity_id))))'"

/* 1: the caller's rights on the history */
static CrmQuery caller_rights = {
	"WITH applying AS ("
	"  SELECT p.polname, p.polpermissive,"
	"         pg_catalog.pg_get_expr(p.polqual, p.polrelid) OPERATOR(pg_catalog.=) 'true' AS sees_every_row,"
	"         p.polname OPERATOR(pg_catalog.=) 'crm_parent_select'"
	"         AND pg_catalog.pg_get_expr(p.polqual, p.polrelid) OPERATOR(pg_catalog.=) " PARENT_SELECT_QUAL " AS is_parent_select"
	"    FROM pg_catalog.pg_policy AS p"
	"   WHERE p.polrelid OPERATOR(pg_catalog.=) $1"
	"     AND p.polcmd OPERATOR(pg_catalog.=) ANY (ARRAY['r', '*']::pg_catalog.\"char\"[])"
	"     AND (0::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (p.polroles)"
	"          OR EXISTS (SELECT 1 FROM pg_catalog.unnest(p.polroles) AS r (r)"
	"                      WHERE pg_catalog.pg_has_role(r.r, 'USAGE')))),"
	" rights AS ("
	"  SELECT COALESCE(pg_catalog.bool_or(a.polpermissive AND a.sees_every_row), false) AS sees_all,"
	"         COALESCE(pg_catalog.bool_or(a.polpermissive AND a.is_parent_select), false) AS sees_team,"
	"         COALESCE(pg_catalog.bool_or(NOT a.polpermissive OR NOT (a.sees_every_row OR a.is_parent_select)), false) AS other"
	"    FROM applying AS a)"
	" SELECT r.sees_all AND NOT r.other, r.sees_team AND NOT r.other,"
	"        CASE WHEN r.sees_team AND NOT r.sees_all AND NOT r.other THEN"
	"             ARRAY(SELECT t.r FROM crm.team_roles() AS t (r)) END,"
	"        CASE WHEN r.sees_team AND NOT r.sees_all AND NOT r.other THEN"
	"             ARRAY(SELECT o.id FROM crm.opportunity AS o) END,"
	"        (SELECT pg_catalog.count(*) FROM crm.opportunity_history AS e"
	"          WHERE false AND (e.id, e.opportunity_id, e.new_stage, e.new_owner, e.currency, e.new_close_date,"
	"                           e.new_amount, e.new_probability, e.deleted, e.changed_at) IS NULL)"
	"   FROM rights AS r",
	1, {OIDOID}, NULL
};

/* the columns of an entry the totals read */
#define STATE_COLUMNS \
	"e.id, e.opportunity_id, e.new_stage, e.new_owner, e.currency, e.new_close_date, e.new_amount," \
	" e.new_probability, e.deleted"

/*
 * Each deal's state at $1: its last entry made by then.  (In descending
 * order of deal: the index on (opportunity_id, id) read backwards gives it
 * without a sort, when most entries were made by then.)
 */
#define STATES_AT \
	"(SELECT DISTINCT ON (e.opportunity_id) " STATE_COLUMNS \
	"   FROM crm.opportunity_history AS e" \
	"  WHERE e.changed_at OPERATOR(pg_catalog.<=) $1" \
	"  ORDER BY e.opportunity_id DESC, e.id DESC)"

/*
 * The map of renames, per stage name: the renames of each old name ordered
 * by last_entry; an entry with an id in (after, upto] was recorded before
 * the renames with last_entry >= upto, the first of which (lowest id) is
 * first_rename, the rename its stage went through first.
 */
#define RENAME_MAP \
	"marks AS (" \
	"  SELECT r.old_name, r.upto, r.first_rename," \
	"         pg_catalog.lag(r.upto) OVER (PARTITION BY r.old_name ORDER BY r.upto, r.first_rename) AS after" \
	"    FROM (SELECT v.old_name, v.last_entry AS upto," \
	"                 pg_catalog.min(v.id) OVER (PARTITION BY v.old_name ORDER BY v.last_entry DESC" \
	"                                            RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS first_rename" \
	"            FROM crm.opportunity_stage_rename AS v) AS r)"

/*
 * The totals of h, the states that count, by recorded stage, first rename,
 * owner, currency and close month, as arrays (one row)
 */
#define TOTALS_OF_H \
	" SELECT pg_catalog.array_agg(t.stage), pg_catalog.array_agg(t.first_rename), pg_catalog.array_agg(t.owner)," \
	"        pg_catalog.array_agg(t.currency), pg_catalog.array_agg(t.close_month)," \
	"        pg_catalog.array_agg(t.opportunities), pg_catalog.array_agg(t.amount)," \
	"        pg_catalog.array_agg(t.weighted_amount)" \
	"   FROM (SELECT h.new_stage AS stage, m.first_rename, h.new_owner::pg_catalog.oid AS owner, h.currency," \
	"                COALESCE(pg_catalog.date_trunc('month', h.new_close_date::pg_catalog.\"timestamp\")::pg_catalog.date," \
	"                         'infinity'::pg_catalog.date) AS close_month," \
	"                pg_catalog.count(*) AS opportunities, pg_catalog.sum(h.new_amount) AS amount," \
	"                pg_catalog.sum(pg_catalog.round(h.new_amount OPERATOR(pg_catalog.*) COALESCE(h.new_probability, 0)" \
	"                                                OPERATOR(pg_catalog./) 100, 2)) AS weighted_amount" \
	"           FROM h LEFT JOIN marks AS m ON m.old_name OPERATOR(pg_catalog.=) h.new_stage" \
	"                                     AND h.id OPERATOR(pg_catalog.<=) m.upto" \
	"                                     AND (m.after IS NULL OR h.id OPERATOR(pg_catalog.>) m.after)" \
	"          GROUP BY 1, 2, 3, 4, 5) AS t"

/*
 * 2: the totals at $1, as the owner.  $2: every state counts; else those
 * whose new_owner is in $3 (the team) or whose deal is in $4 (the deals
 * the caller sees now), the policy crm_parent_select on the deal's state.
 */
static CrmQuery totals_as_of = {
	"WITH " RENAME_MAP ","
	" h AS (SELECT s.* FROM " STATES_AT " AS s"
	"        LEFT JOIN (SELECT DISTINCT d.id FROM pg_catalog.unnest($4) AS d (id)) AS d"
	"               ON d.id OPERATOR(pg_catalog.=) s.opportunity_id"
	"       WHERE NOT s.deleted"
	"         AND ($2 OR s.new_owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($3) OR d.id IS NOT NULL))"
	TOTALS_OF_H,
	4, {TIMESTAMPTZOID, BOOLOID, OIDARRAYOID, INT8ARRAYOID}, NULL
};

/* 2, under other policies: the states at $1 (ids), as the owner ... */
static CrmQuery states_as_of = {
	"SELECT pg_catalog.array_agg(s.id) FROM " STATES_AT " AS s WHERE NOT s.deleted",
	1, {TIMESTAMPTZOID}, NULL
};

/*
 * ... and their totals as the caller: row security on each state's entry
 * (fetched by id: the policies run once per deal)
 */
static CrmQuery totals_of_states = {
	"WITH " RENAME_MAP ","
	" h AS (SELECT " STATE_COLUMNS " FROM pg_catalog.unnest($1) AS c (id)"
	"         JOIN crm.opportunity_history AS e ON e.id OPERATOR(pg_catalog.=) c.id)"
	TOTALS_OF_H,
	1, {INT8ARRAYOID}, NULL
};

/*
 * 3: the report from the totals ($2..$9) at $1: each group's stage is the
 * stage its recorded name meant then, followed through the renames made
 * after the entry (first_rename) to the stage's name now (sort_order,
 * is_closed, is_won; NULL for a stage since removed), shown under the name
 * that stage had at $1; every active stage appears (zeros without deals),
 * but not one known to have been created after $1.
 */
static CrmQuery report_as_of = {
	"WITH totals AS ("
	"  SELECT t.stage, t.first_rename, t.owner, t.currency, t.close_month, t.opportunities, t.amount, t.weighted_amount"
	"    FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5),"
	"                    pg_catalog.unnest($6), pg_catalog.unnest($7), pg_catalog.unnest($8), pg_catalog.unnest($9))"
	"      AS t (stage, first_rename, owner, currency, close_month, opportunities, amount, weighted_amount)),"
	" renames AS ("
	"  SELECT v.id, v.old_name, v.renamed_at, v.current_name FROM crm.opportunity_stage_rename AS v),"
	/* each group's stage: the name it has now */
	" staged AS ("
	"  SELECT t.stage AS recorded_stage, t.first_rename, COALESCE(v.current_name, t.stage) AS current_stage"
	"    FROM (SELECT DISTINCT t.stage, t.first_rename FROM totals AS t) AS t"
	"    LEFT JOIN renames AS v ON v.id OPERATOR(pg_catalog.=) t.first_rename),"
	/*
	 * each stage's name at the moment: walking back from now through its
	 * renames made after the moment (up to one made by then), the old name
	 * of the earliest; and whether it is known to have been created later
	 * (another stage had that name then and was renamed after the moment)
	 */
	" named AS ("
	"  SELECT c.current_stage, COALESCE(b.old_name, c.current_stage) AS stage,"
	"         EXISTS (SELECT 1 FROM renames AS x"
	"                  WHERE x.old_name OPERATOR(pg_catalog.=) COALESCE(b.old_name, c.current_stage)"
	"                    AND (b.id IS NULL OR x.id OPERATOR(pg_catalog.<) b.id)"
	"                    AND x.renamed_at OPERATOR(pg_catalog.>) $1"
	"                    AND x.current_name OPERATOR(pg_catalog.<>) c.current_stage) AS created_later"
	"    FROM (SELECT g.current_stage FROM staged AS g UNION SELECT s.name FROM crm.opportunity_stage AS s) AS c"
	"    LEFT JOIN LATERAL ("
	"          SELECT r.id, r.old_name FROM renames AS r"
	"           WHERE r.current_name OPERATOR(pg_catalog.=) c.current_stage AND r.renamed_at OPERATOR(pg_catalog.>) $1"
	"             AND NOT EXISTS (SELECT 1 FROM renames AS l"
	"                              WHERE l.current_name OPERATOR(pg_catalog.=) c.current_stage AND l.id OPERATOR(pg_catalog.>) r.id"
	"                                AND l.renamed_at OPERATOR(pg_catalog.<=) $1)"
	"           ORDER BY r.id LIMIT 1) AS b ON true),"
	" grouped AS ("
	"  SELECT s.sort_order, n.stage, s.is_closed, s.is_won, pg_catalog.pg_get_userbyid(t.owner)::text AS owner,"
	"         pg_catalog.sum(t.opportunities)::bigint AS opportunities,"
	"         pg_catalog.round(pg_catalog.sum(t.amount OPERATOR(pg_catalog.*) r.rate), 2) AS amount,"
	"         pg_catalog.round(pg_catalog.sum(t.weighted_amount OPERATOR(pg_catalog.*) r.rate), 2) AS weighted_amount,"
	"         t.currency, pg_catalog.sum(t.amount) AS amount_in_currency, pg_catalog.sum(t.weighted_amount) AS weighted_amount_in_currency,"
	"         c.current_stage"
	"    FROM totals AS t"
	"    JOIN staged AS c ON c.recorded_stage OPERATOR(pg_catalog.=) t.stage"
	"                    AND c.first_rename IS NOT DISTINCT FROM t.first_rename"
	"    JOIN named AS n ON n.current_stage OPERATOR(pg_catalog.=) c.current_stage"
	"    LEFT JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) c.current_stage"
	"   CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(t.currency, NULLIF(t.close_month, 'infinity'::pg_catalog.date)) AS rate) AS r"
	"   GROUP BY s.sort_order, c.current_stage, n.stage, s.is_closed, s.is_won, 5, t.currency)"
	" SELECT g.sort_order, g.stage, g.is_closed, g.is_won, g.owner, g.opportunities, g.amount, g.weighted_amount,"
	"        g.currency, g.amount_in_currency, g.weighted_amount_in_currency"
	"   FROM grouped AS g"
	" UNION ALL"
	" SELECT s.sort_order, n.stage, s.is_closed, s.is_won, NULL::text, 0::bigint, 0.00::numeric, 0.00::numeric,"
	"        NULL::text, 0.00::numeric, 0.00::numeric"
	"   FROM crm.opportunity_stage AS s"
	"   JOIN named AS n ON n.current_stage OPERATOR(pg_catalog.=) s.name"
	"  WHERE s.active AND NOT n.created_later"
	"    AND NOT EXISTS (SELECT 1 FROM grouped AS g WHERE g.current_stage OPERATOR(pg_catalog.=) s.name)",
	9, {TIMESTAMPTZOID, TEXTARRAYOID, INT8ARRAYOID, OIDARRAYOID, TEXTARRAYOID, DATEARRAYOID,
		INT8ARRAYOID, NUMERICARRAYOID, NUMERICARRAYOID}, NULL
};

/* read_as_caller -- run a read-only statement as the caller, under the statement's snapshot */
static void
read_as_caller(CrmQuery *query, Datum *values, const char *nulls)
{
	int			ret = SPI_execute_plan(crm_query_plan(query), values, nulls, true, 0);

	if (ret != SPI_OK_SELECT)
		elog(ERROR, "crm: pipeline_as_of statement failed: %s", SPI_result_code_string(ret));
}

/* crm_pipeline_as_of -- SQL crm.pipeline_as_of(at timestamptz) (STRICT) */
PG_FUNCTION_INFO_V1(crm_pipeline_as_of);
Datum
crm_pipeline_as_of(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			history = crm_relation_oid("opportunity_history");
	Datum		rights[1];
	Datum		totals_args[4];
	char		totals_nulls[4] = {' ', ' ', 'n', 'n'};
	Datum		report_args[9];
	char		report_nulls[9];
	bool		as_caller = false;

	InitMaterializedSRF(fcinfo, 0);
	crm_spi_connect();
	crm_query_prefer_custom(&totals_as_of);
	totals_args[0] = PG_GETARG_DATUM(0);
	totals_args[1] = BoolGetDatum(true);

	/* 1: the caller's rights (errors as a plain SELECT would raise) */
	rights[0] = ObjectIdGetDatum(history);
	read_as_caller(&caller_rights, rights, NULL);
	if (check_enable_rls(history, InvalidOid, false) == RLS_ENABLED)
	{
		bool		isnull;
		bool		sees_all = DatumGetBool(crm_result_datum(0, 1, &isnull));
		bool		sees_team = DatumGetBool(crm_result_datum(0, 2, &isnull));

		if (!sees_all && sees_team)
		{
			totals_args[1] = BoolGetDatum(false);
			totals_args[2] = crm_result_datum(0, 3, &isnull);
			totals_nulls[2] = isnull ? 'n' : ' ';
			totals_args[3] = crm_result_datum(0, 4, &isnull);
			totals_nulls[3] = isnull ? 'n' : ' ';
		}
		else if (!sees_all)
			as_caller = true;
	}

	/*
	 * 2: the totals, as the owner filtered by the rights; or the states as
	 * the owner and their totals as the caller
	 */
	if (as_caller)
	{
		Datum		states[1];
		char		states_nulls[1];
		bool		isnull;

		crm_query_read_as_owner(&states_as_of, totals_args, NULL, 0);
		states[0] = crm_result_datum(0, 1, &isnull);
		states_nulls[0] = isnull ? 'n' : ' ';
		crm_query_prefer_generic(&totals_of_states);
		read_as_caller(&totals_of_states, states, states_nulls);
	}
	else
		crm_query_read_as_owner(&totals_as_of, totals_args, totals_nulls, 0);
	if (SPI_processed != 1)
		elog(ERROR, "crm: pipeline_as_of totals returned " UINT64_FORMAT " rows", SPI_processed);

	/* 3: the report, as the caller */
	report_args[0] = PG_GETARG_DATUM(0);
	report_nulls[0] = ' ';
	for (int i = 1; i < 9; i++)
	{
		bool		isnull;

		report_args[i] = crm_result_datum(0, i, &isnull);
		report_nulls[i] = isnull ? 'n' : ' ';
	}
	read_as_caller(&report_as_of, report_args, report_nulls);

	for (uint64 row = 0; row < SPI_processed; row++)
	{
		Datum		values[11];
		bool		nulls[11];

		for (int c = 0; c < 11; c++)
			values[c] = crm_result_datum(row, c + 1, &nulls[c]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	crm_spi_finish();
	return (Datum) 0;
}
