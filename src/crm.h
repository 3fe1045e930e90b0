/*
 * crm.h: declarations shared by the C files of the crm extension.
 *
 * Each .c file owns one concern:
 *   module.c     module magic and small SQL-callable helpers
 *   spi_util.c   kept SPI plans and running a statement as another role
 *   normalize.c  company-name and web-domain keys for duplicate detection
 *   stamp.c      created_at / updated_at trigger
 *   guards.c     triggers that make lead conversion one-way and exclusive
 *   history.c    lead status history and the change log
 *   convert.c    crm.convert_lead()
 */
#ifndef CRM_H
#define CRM_H

#include "postgres.h"

#include "executor/spi.h"
#include "utils/errcodes.h"

/*
 * SQLSTATEs of the extension's own errors, class ZC ("CRM").  Documented in
 * README.md; keep both lists in step.
 */
#define ERRCODE_CRM_LEAD_NOT_FOUND			MAKE_SQLSTATE('Z','C','0','0','1')
#define ERRCODE_CRM_LEAD_ALREADY_CONVERTED	MAKE_SQLSTATE('Z','C','0','0','2')
#define ERRCODE_CRM_LEAD_NOT_CONVERTIBLE	MAKE_SQLSTATE('Z','C','0','0','3')
#define ERRCODE_CRM_ACCOUNT_NOT_FOUND		MAKE_SQLSTATE('Z','C','0','0','4')
#define ERRCODE_CRM_CONTACT_NOT_FOUND		MAKE_SQLSTATE('Z','C','0','0','5')
#define ERRCODE_CRM_CONTACT_NOT_ON_ACCOUNT	MAKE_SQLSTATE('Z','C','0','0','6')
#define ERRCODE_CRM_NO_OPEN_STAGE			MAKE_SQLSTATE('Z','C','0','0','7')
#define ERRCODE_CRM_CONVERSION_PROTECTED	MAKE_SQLSTATE('Z','C','0','1','0')

/* spi_util.c */

/*
 * A statement whose plan is prepared on first use and kept for the life of
 * the backend.  Declare one static CrmQuery per statement.
 */
typedef struct CrmQuery
{
	const char *sql;
	int			nargs;
	Oid			argtypes[12];
	SPIPlanPtr	plan;
} CrmQuery;

extern SPIPlanPtr crm_query_plan(CrmQuery *query);
extern int	crm_query_run(CrmQuery *query, Datum *values, const char *nulls,
						  long count);
extern int	crm_query_run_as(Oid role, CrmQuery *query, Datum *values,
							 const char *nulls, long count);
extern int	crm_query_run_as_owner(CrmQuery *query, Datum *values,
								   const char *nulls, long count);
extern bool crm_query_finds_newer_rows(CrmQuery *query, Datum *values,
									   const char *nulls);
extern Oid	crm_schema_owner(void);
extern Oid	crm_relation_oid(const char *relname);

/* normalize.c: keys for duplicate detection, NULL when there is none */
extern char *crm_company_key(const char *company);
extern char *crm_domain_of(const char *url);
extern char *crm_email_company_domain(const char *email);

extern Datum crm_result_datum(int row, int col, bool *isnull);
extern int64 crm_result_int64(int row, int col, bool *isnull);
extern char *crm_result_text(int row, int col);

/* guards.c: the conversion in progress, if any, in this backend */
extern void crm_conversion_begin(int64 lead_id);
extern void crm_conversion_end(void);

/* trigger sanity checks shared by the trigger files */
struct TriggerData;
extern struct TriggerData *crm_trigger_data(FunctionCallInfo fcinfo,
											const char *funcname,
											bool want_before, bool want_row);

#endif							/* CRM_H */
