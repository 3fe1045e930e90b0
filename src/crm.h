/*
 * crm.h: declarations shared by the C files of the crm extension.
 *
 * Each .c file owns one concern:
 *   module.c            module magic, crm.current_role_id(), trigger call checks
 *   spi_util.c          kept SPI plans, statements run as another role, results
 *   row.c               columns of trigger tuples by name
 *   arguments.c         the calling role, role checks, function arguments
 *   transitions.c       status workflows checked against transition tables
 *   permit.c            writes only the extension's own functions may make
 *   locks.c             the extension's own transaction locks
 *   lock_guard.c        LOCK TABLE and CREATE RULE on crm relations
 *   normalize.c         company-name, web-domain and phone keys for duplicate detection
 *   duplicates.c        crm.find_duplicates(), the matching rules, dismissing pairs
 *   duplicate_check.c   the duplicate check on entry (policies allow, warn, block)
 *   text_fold.c         accent- and case-folded text; the schemas of pg_trgm and unaccent
 *   stamp.c             created_at / updated_at trigger
 *   history.c           lead status and opportunity history
 *   change_log.c        the change log (crm.change_log) and the append-only audit trail
 *   convert.c           crm.convert_lead()
 *   conversion_guard.c  triggers that make lead conversion one-way and exclusive
 *   conversion_carry.c  what hangs off a lead (activities, memberships) moves with its conversion
 *   catalog.c           products and price books; account books, tier SQL
 *   line_items.c        line item pricing and parent sums
 *   opportunity_lifecycle.c  opportunity stage rules
 *   stage_cache.c       the stages, kept per backend for the opportunity triggers
 *   contact_roles.c     an opportunity's contact roles in step with its primary contact
 *   quotes.c            quotes: numbers, validity, approval
 *   orders.c            sales orders and stock
 *   activities.c        activities and reminders
 *   recurrence.c        recurring activities: RRULE subset, next occurrence, crm.activity_occurrences()
 *   campaigns.c         campaign hierarchy and member responses
 *   aggregates.c        pipeline, account and campaign aggregates: the definitions and the fold
 *   aggregate_stripes.c adding to a backend's stripe rows in place (aggregate_stripes.h)
 *   cents.c             money amounts as whole cents for the aggregates' arithmetic
 *   reporting_line.c    the reporting hierarchy behind the managers' row security
 *   sharing.c           which accounts and contacts a row may point at (sharing rule)
 *   merge.c             crm.merge_accounts(), merge_contacts(), merge_leads()
 *   repoint.c           re-pointing every foreign key from one row to another (merges)
 *   search.c            crm.search(): trigram search with the caller's rights
 *   privacy.c           personal data: a person's rows by e-mail, crm.export_person()
 *   erasure.c           crm.erase_person(): pseudonymise a person, redact the change log
 *   retention.c         crm.purge_change_log(): the change log's retention period
 *   capture.c           crm.capture_lead(): lead capture for web forms and integrations
 *   capture_log.c       a refused capture recorded by a background worker in its own transaction
 *   scoring.c           lead scores from crm.scoring_rule, crm.rescore_leads()
 *   assignment.c        lead owners from crm.assignment_rule and queues, crm.assign_lead()
 *   email_log.c         crm.log_email(): the e-mail log, its links and threads
 *   custom_fields.c     custom fields: attributes checked against crm.custom_field
 *   currencies.c        crm.exchange_rate_on(); currency rules of rates, settings, books, deals, orders
 *   quotas.c            quota periods of one owner never overlap (keyed lock per owner)
 */
#ifndef CRM_H
#define CRM_H

#include "postgres.h"

#include "compat.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "executor/spi.h"
#include "utils/errcodes.h"
#include "utils/elog.h"
#include "datatype/timestamp.h"

/*
 * SQLSTATEs of the extension's own errors, class ZC ("CRM").  The README's
 * SQLSTATE table is the list of record; test/scripts/docs_consistency.sh
 * checks that these macros are exactly its ZC codes.
 */
#define ERRCODE_CRM_LEAD_NOT_FOUND			MAKE_SQLSTATE('Z','C','0','0','1')
#define ERRCODE_CRM_LEAD_ALREADY_CONVERTED	MAKE_SQLSTATE('Z','C','0','0','2')
#define ERRCODE_CRM_LEAD_NOT_CONVERTIBLE	MAKE_SQLSTATE('Z','C','0','0','3')
#define ERRCODE_CRM_ACCOUNT_NOT_FOUND		MAKE_SQLSTATE('Z','C','0','0','4')
#define ERRCODE_CRM_CONTACT_NOT_FOUND		MAKE_SQLSTATE('Z','C','0','0','5')
#define ERRCODE_CRM_CONTACT_NOT_ON_ACCOUNT	MAKE_SQLSTATE('Z','C','0','0','6')
#define ERRCODE_CRM_NO_OPEN_STAGE			MAKE_SQLSTATE('Z','C','0','0','7')
#define ERRCODE_CRM_HIDDEN_DUPLICATE		MAKE_SQLSTATE('Z','C','0','0','8')
#define ERRCODE_CRM_CONVERSION_PROTECTED	MAKE_SQLSTATE('Z','C','0','1','0')
#define ERRCODE_CRM_OPPORTUNITY_NOT_FOUND	MAKE_SQLSTATE('Z','C','0','1','1')
#define ERRCODE_CRM_OPPORTUNITY_NOT_ON_ACCOUNT	MAKE_SQLSTATE('Z','C','0','1','2')
/* workflows: quotes, orders */
#define ERRCODE_CRM_ILLEGAL_TRANSITION		MAKE_SQLSTATE('Z','C','0','2','0')
#define ERRCODE_CRM_TRANSITION_RESERVED		MAKE_SQLSTATE('Z','C','0','2','1')
#define ERRCODE_CRM_NOT_EDITABLE			MAKE_SQLSTATE('Z','C','0','2','2')
/* catalog and line items */
#define ERRCODE_CRM_NO_STANDARD_PRICE		MAKE_SQLSTATE('Z','C','1','0','1')
#define ERRCODE_CRM_NOT_IN_PRICE_BOOK		MAKE_SQLSTATE('Z','C','1','0','2')
#define ERRCODE_CRM_STANDARD_BOOK			MAKE_SQLSTATE('Z','C','1','0','3')
#define ERRCODE_CRM_PRICE_BOOK_FIXED		MAKE_SQLSTATE('Z','C','1','0','4')
#define ERRCODE_CRM_AMOUNT_FROM_LINES		MAKE_SQLSTATE('Z','C','1','0','5')
#define ERRCODE_CRM_LOSS_REASON_REQUIRED	MAKE_SQLSTATE('Z','C','1','1','0')
#define ERRCODE_CRM_STAGE_IN_USE			MAKE_SQLSTATE('Z','C','1','1','1')
#define ERRCODE_CRM_LOSS_REASON_INACTIVE	MAKE_SQLSTATE('Z','C','1','1','2')
/* currencies (sql/install/72_currencies.sql) */
#define ERRCODE_CRM_NO_EXCHANGE_RATE		MAKE_SQLSTATE('Z','C','1','2','0')
#define ERRCODE_CRM_CURRENCY_FIXED			MAKE_SQLSTATE('Z','C','1','2','1')
#define ERRCODE_CRM_CORPORATE_RATE			MAKE_SQLSTATE('Z','C','1','2','2')
/* quotes */
#define ERRCODE_CRM_QUOTE_NOT_FOUND			MAKE_SQLSTATE('Z','C','2','0','1')
#define ERRCODE_CRM_APPROVAL_REQUIRED		MAKE_SQLSTATE('Z','C','2','0','5')
#define ERRCODE_CRM_SELF_APPROVAL			MAKE_SQLSTATE('Z','C','2','0','7')
#define ERRCODE_CRM_COMMENT_REQUIRED		MAKE_SQLSTATE('Z','C','2','0','8')
#define ERRCODE_CRM_QUOTE_EXPIRED			MAKE_SQLSTATE('Z','C','2','0','9')
#define ERRCODE_CRM_DISCOUNT_RAISED			MAKE_SQLSTATE('Z','C','2','1','0')
/* orders */
#define ERRCODE_CRM_ORDER_NOT_FOUND			MAKE_SQLSTATE('Z','C','3','0','1')
#define ERRCODE_CRM_QUOTE_NOT_ACCEPTED		MAKE_SQLSTATE('Z','C','3','0','2')
#define ERRCODE_CRM_QUOTE_HAS_ORDER			MAKE_SQLSTATE('Z','C','3','0','3')
#define ERRCODE_CRM_INSUFFICIENT_STOCK		MAKE_SQLSTATE('Z','C','3','0','4')
/* campaigns */
#define ERRCODE_CRM_CAMPAIGN_CYCLE			MAKE_SQLSTATE('Z','C','5','0','1')
/* security */
#define ERRCODE_CRM_REPORTING_CYCLE			MAKE_SQLSTATE('Z','C','6','0','1')
#define ERRCODE_CRM_AUDIT_APPEND_ONLY		MAKE_SQLSTATE('Z','C','6','0','2')
/* merging (src/merge.c, src/repoint.c) */
#define ERRCODE_CRM_MERGE_CONVERTED_LEAD	MAKE_SQLSTATE('Z','C','7','0','2')
#define ERRCODE_CRM_MERGE_SAME_RECORD		MAKE_SQLSTATE('Z','C','7','2','0')
#define ERRCODE_CRM_MERGE_BAD_TAKE			MAKE_SQLSTATE('Z','C','7','2','1')
#define ERRCODE_CRM_MERGE_FOREIGN_KEY		MAKE_SQLSTATE('Z','C','7','2','2')
/* duplicates */
#define ERRCODE_CRM_DUPLICATE_BLOCKED		MAKE_SQLSTATE('Z','C','7','0','1')
#define ERRCODE_CRM_POSSIBLE_DUPLICATE		MAKE_SQLSTATE('Z','C','7','1','0')
#define ERRCODE_CRM_RECORD_NOT_FOUND		MAKE_SQLSTATE('Z','C','7','1','1')
#define ERRCODE_CRM_CANDIDATE_NOT_FOUND		MAKE_SQLSTATE('Z','C','7','1','2')
#define ERRCODE_CRM_CANDIDATE_RESOLVED		MAKE_SQLSTATE('Z','C','7','1','3')
/* backup and restore: raised by the install script (sql/install/00_header.sql) */
#define ERRCODE_CRM_RESTORE_NOT_REPLICA		MAKE_SQLSTATE('Z','C','6','0','3')
/* personal data */
#define ERRCODE_CRM_INVALID_EMAIL			MAKE_SQLSTATE('Z','C','8','0','1')
#define ERRCODE_CRM_MEMBER_OPTED_OUT		MAKE_SQLSTATE('Z','C','8','0','2')
/* lead capture (src/capture.c) */
#define ERRCODE_CRM_CAPTURE_INCOMPLETE		MAKE_SQLSTATE('Z','C','9','0','1')
#define ERRCODE_CRM_CAPTURE_INVALID_VALUE	MAKE_SQLSTATE('Z','C','9','0','2')
#define ERRCODE_CRM_CAPTURE_UNKNOWN_SOURCE	MAKE_SQLSTATE('Z','C','9','0','3')
#define ERRCODE_CRM_CAPTURE_UNKNOWN_CAMPAIGN	MAKE_SQLSTATE('Z','C','9','0','4')
/* lead scoring and assignment */
#define ERRCODE_CRM_BAD_SCORING_RULE		MAKE_SQLSTATE('Z','C','9','1','0')
/* recurring activities (src/recurrence.c) */
#define ERRCODE_CRM_BAD_RECURRENCE		MAKE_SQLSTATE('Z','C','4','2','0')

/* custom fields (src/custom_fields.c) */
#define ERRCODE_CRM_UNKNOWN_CUSTOM_FIELD	MAKE_SQLSTATE('Z','C','9','5','0')
#define ERRCODE_CRM_CUSTOM_FIELD_VALUE		MAKE_SQLSTATE('Z','C','9','5','1')
#define ERRCODE_CRM_CUSTOM_FIELD_REQUIRED	MAKE_SQLSTATE('Z','C','9','5','2')
#define ERRCODE_CRM_CUSTOM_FIELD_IN_USE		MAKE_SQLSTATE('Z','C','9','5','3')

/* spi_util.c */

/*
 * A statement whose plan is prepared on first use and kept for the life of
 * the backend.  Declare one static CrmQuery per statement.
 */
typedef struct CrmQuery
{
	const char *sql;
	int			nargs;
	Oid			argtypes[16];
	SPIPlanPtr	plan;
} CrmQuery;

/*
 * Domains of schema crm as CrmQuery argument types, looked up when the plan
 * is prepared (built-in types are given by their OIDs).  A value that already
 * is of such a domain (read from a column of it) is then stored into another
 * column of it without the domain's CHECK being run again.
 */
#define CRM_TYPE_EMAIL_ADDRESS	((Oid) 0xFFFFFFF0)
#define CRM_TYPE_WEB_URL		((Oid) 0xFFFFFFF1)
#define CRM_TYPE_PHONE_NUMBER	((Oid) 0xFFFFFFF2)

extern void crm_spi_connect(void);
extern void crm_spi_finish(void);
extern void crm_param_text(Datum *values, char *nulls, int i, const char *s);
extern void crm_param_int64(Datum *values, char *nulls, int i, int64 v, bool isnull);
extern SPIPlanPtr crm_query_plan(CrmQuery *query);
extern void crm_query_prefer_generic(CrmQuery *query);
extern void crm_query_prefer_custom(CrmQuery *query);
extern int	crm_query_run(CrmQuery *query, Datum *values, const char *nulls,
						  long count);
extern int	crm_query_run_as(Oid role, CrmQuery *query, Datum *values,
							 const char *nulls, long count);
extern int	crm_query_run_as_owner(CrmQuery *query, Datum *values,
								   const char *nulls, long count);
extern int	crm_query_run_as_table_owner(Oid role, CrmQuery *query, Datum *values,
										 const char *nulls, long count);
extern int	crm_query_run_latest_as_owner(CrmQuery *query, Datum *values,
										  const char *nulls, long count);
extern int	crm_query_read_as_owner(CrmQuery *query, Datum *values,
									const char *nulls, long count);
extern bool crm_query_finds_newer_rows(CrmQuery *query, Datum *values,
									   const char *nulls);
extern bool crm_query_finds_newer_rows_as(Oid role, CrmQuery *query, Datum *values,
										  const char *nulls);
extern bool crm_query_run_fresh(CrmQuery *query, Datum *values, const char *nulls,
								long count);
pg_noreturn extern void crm_serialization_failure(const char *object, const char *detail);
/*
 * Appending rows to one of the extension's own log tables below SQL
 * (append_rows.c): a target names crm.<table> and the columns each row
 * gives; the other columns take their defaults.
 */
#define CRM_APPEND_MAX_COLUMNS	16
typedef struct CrmAppendTarget
{
	const char *table;
	int			ncolumns;
	const char *columns[CRM_APPEND_MAX_COLUMNS];
	Oid			types[CRM_APPEND_MAX_COLUMNS];	/* each value's type (InvalidOid:
												 * the caller's values are of
												 * the column's type, see
												 * crm_append_column_type) */
	SPIPlanPtr	plan;			/* kept INSERT of the statement path */
	struct CrmAppendLayout *layout; /* the table's columns and defaults, kept */
} CrmAppendTarget;
typedef struct CrmAppender CrmAppender;
extern CrmAppender *crm_append_begin(CrmAppendTarget *target);
extern void crm_append_row(CrmAppender *a, const Datum *values, const bool *isnull);
extern Oid	crm_append_column_type(CrmAppender *a, int c);
extern void crm_append_end(CrmAppender *a);

extern Oid	crm_schema_owner(void);
extern Oid	crm_acting_role(void);
extern Oid	crm_relation_oid(const char *relname);
extern Oid	crm_internal_namespace(void);
extern Oid	crm_internal_relation_oid(const char *relname);
extern Datum crm_result_datum(int row, int col, bool *isnull);
extern int64 crm_result_int64(int row, int col, bool *isnull);
extern char *crm_result_text(int row, int col);

/* normalize.c: keys for duplicate detection, NULL when there is none */
extern char *crm_company_key(const char *company);
extern char *crm_domain_of(const char *url);
extern char *crm_company_domain(char *host);
extern char *crm_email_company_domain(const char *email);
extern char *crm_phone_digits(const char *phone);

/* text_fold.c: folded text; the schema of a required contrib extension */
extern char *crm_fold(const char *s);
extern char *crm_required_schema(const char *extname);


/* permit.c: writes only the extension's own functions may make */
typedef enum CrmPermitKind
{
	CRM_PERMIT_CONVERSION,		/* a lead's conversion record; id = lead */
	CRM_PERMIT_QUOTE_STATUS,	/* approval states; id = quote */
	CRM_PERMIT_QUOTE_DISCOUNT,	/* crm.approve_quote lowers the discount; id = quote */
	CRM_PERMIT_ORDER_CREATE,	/* a new order and its items; id = quote, then order */
	CRM_PERMIT_ORDER_STATUS,	/* activation, cancellation; id = order */
	CRM_PERMIT_LINE_SUM,		/* amounts kept from line items; any row */
	CRM_PERMIT_MERGE_ACCOUNT,	/* re-pointing to a merge's survivor; id = survivor */
	CRM_PERMIT_MERGE_CONTACT,
	CRM_PERMIT_MERGE_LEAD,
	CRM_PERMIT_AUDIT_ERASE,		/* crm.erase_person rewrites change-log entries */
	CRM_PERMIT_AUDIT_PURGE,		/* crm.purge_change_log deletes change-log entries */
	CRM_PERMIT_CONVERTING,		/* records made from a lead; id = lead (duplicate_check.c) */
	CRM_PERMIT_CONTACT_ROLE_SYNC	/* contact roles <-> opportunity.contact_id; id = opportunity */
} CrmPermitKind;

#define CRM_PERMIT_ANY_ROW	PG_INT64_MIN

extern bool crm_permitted(CrmPermitKind kind, int64 id);
extern void crm_permit_push(CrmPermitKind kind, int64 id);
extern void crm_permit_pop(CrmPermitKind kind, int64 id);
extern bool crm_merge_repointed(HeapTuple oldtup, HeapTuple newtup, TupleDesc tupdesc,
								const char *colname, CrmPermitKind kind);
extern HeapTuple crm_without_merge_repoints(HeapTuple oldtup, HeapTuple newtup,
											TupleDesc tupdesc);

/* conversion_guard.c: the conversion record the guards fill in (no role writes it) */
typedef struct CrmConversionRecord
{
	int64		lead_id;
	int64		account_id;
	int64		contact_id;
	int64		opportunity_id;
	bool		has_opportunity;
	Oid			converted_by;
	bool		new_opportunity;	/* the next opportunity inserted gets lead_id */
} CrmConversionRecord;

extern void crm_conversion_record(const CrmConversionRecord *r);

/* repoint.c: every foreign key from one row to another (merges) */
extern void crm_repoint_references(Oid relid, int64 from_id, int64 to_id);
extern bool crm_permit_row(CrmPermitKind kind, int64 *id);

/* conversion_carry.c: a lead's activities and memberships move with its conversion */
extern void crm_carry_lead_rows(int64 lead_id, int64 contact_id, bool contact_created,
								int64 opportunity_id, bool has_opportunity);
extern void crm_conversion_preview_row(ReturnSetInfo *rsinfo, const char *action,
									   const char *kind, int64 id, bool id_isnull,
									   const char *rule, const char *name);
extern void crm_preview_lead_rows(ReturnSetInfo *rsinfo, Oid caller, int64 lead_id,
								  int64 contact_id, bool contact_isnull, bool has_opportunity);

/* recurrence.c: recurring activities */
extern HeapTuple crm_recurrence_row(HeapTuple oldtup, HeapTuple newtup, TupleDesc tupdesc);

/* catalog.c */
extern bool crm_has_price_rules(void);
extern char *crm_price_sql(bool tiers, const char *entry, const char *quantity);
extern char *crm_account_book_sql(bool rules, const char *account);
extern void crm_require_active_price_book(int64 book_id);

/* stage_cache.c: the stages, kept per backend for the opportunity triggers */
typedef struct CrmStage
{
	char	   *name;
	Datum		probability;	/* numeric */
	bool		is_closed;
	bool		is_won;
	int32		sort_order;
} CrmStage;
extern const CrmStage *crm_stage_lookup(const char *name);
extern const CrmStage *crm_first_open_stage(void);
extern bool crm_stage_exists(const char *name);

/* history_frames.c: entries of statements run inside others, kept in order */
#define CRM_FRAME_INSERT	0
#define CRM_FRAME_UPDATE	1
#define CRM_FRAME_DELETE	2
#define CRM_FRAME_EVENTS	3
typedef struct CrmFrame CrmFrame;
typedef struct CrmFrames
{
	const char *table;			/* crm.<table>, for messages */
	List	   *frames;			/* CrmFrame *, outermost first */
	uint64		events;			/* frames opened and closed so far */
	bool		registered;
} CrmFrames;
typedef struct CrmHeld
{
	SubTransactionId subxact;	/* the subtransaction that made the change */
	Datum	   *values;
	bool	   *isnull;
} CrmHeld;
extern void crm_frame_open(CrmFrames *set, int event);
extern CrmFrame *crm_frame_close(CrmFrames *set, int event, CrmFrame **enclosing);
extern void crm_frame_hold(CrmFrame *enclosing, int nvalues, const Oid *types,
						   const Datum *values, const bool *isnull);
extern List *crm_frame_release(CrmFrame *f, CrmFrame *enclosing);
extern bool crm_after_trigger_fires(Relation rel, const char *tgname);

/* stage_rename.c: the cascade of a stage rename told from a move */
extern bool crm_stage_rename_cascades(int64 deal, const char *old_name, const char *new_name,
									  bool moved_before);
extern bool crm_stage_moved(int64 deal, const char *old_name, const char *new_name,
							TimestampTz entered_before, TimestampTz entered_after);

/* furthest_step.c: a stage as a step of the pipeline (lost stages are exits) */
typedef struct CrmStageStep
{
	bool		found;
	bool		is_step;		/* open or won */
	bool		is_won;
	int32		sort_order;
} CrmStageStep;
extern const char *crm_furthest_stage(const char *stage, const CrmStageStep *now,
									  const char *old_furthest, const CrmStageStep *before,
									  const char *first_open);

/* transitions.c: status workflows */
extern void crm_check_transition(CrmQuery *lookup, const char *what, int64 id,
								 const char *from, const char *to,
								 CrmPermitKind kind);

/* row.c: columns of trigger tuples by name */
extern int	crm_attnum(TupleDesc tupdesc, const char *colname);
extern int	crm_attnum_hint(TupleDesc tupdesc, const char *colname, int *hint);
extern char *crm_column_text(HeapTuple tuple, TupleDesc tupdesc, const char *colname);
extern char *crm_attribute_text(HeapTuple tuple, TupleDesc tupdesc, int attnum);
extern bool crm_column_is(HeapTuple tuple, TupleDesc tupdesc, const char *colname,
						  const char *s);
extern int64 crm_column_int64(HeapTuple tuple, TupleDesc tupdesc, const char *colname,
							  bool *isnull);
extern bool crm_column_changed(HeapTuple oldtup, HeapTuple newtup, TupleDesc tupdesc,
							   const char *colname);
extern bool crm_attribute_changed(HeapTuple oldtup, HeapTuple newtup, TupleDesc tupdesc,
								  int attnum);
extern HeapTuple crm_set_column(HeapTuple tuple, TupleDesc tupdesc, const char *colname,
								Datum value, bool isnull);
extern HeapTuple crm_keep_column(HeapTuple oldtup, HeapTuple newtup, TupleDesc tupdesc,
								 const char *colname);
extern const char *crm_changed_column_outside(HeapTuple oldtup, HeapTuple newtup,
											  TupleDesc tupdesc,
											  const char *const *allowed);

/* arguments.c: calls of the SQL-callable functions */
extern Oid	crm_caller(void);
extern int64 crm_required_id(FunctionCallInfo fcinfo, int argno, const char *argname);
extern char *crm_optional_text(FunctionCallInfo fcinfo, int argno);
extern Datum crm_enum_result(FunctionCallInfo fcinfo, const char *label);
extern bool crm_is_blank(const char *s);
extern void crm_require_role(Oid role, const char *const *groups, const char *action);
extern const char *crm_role_name(Oid role);
pg_noreturn extern void crm_not_visible(int sqlerrcode, const char *what, int64 id, Oid caller);

/* cents.c: amounts with two decimals as int64 cents; false: use numeric */
extern bool crm_numeric_cents(Datum value, int64 *cents);
extern Datum crm_cents_numeric(int64 cents);
extern bool crm_weighted_cents(int64 amount, int64 probability, int64 *weighted);

/* locks.c: the extension's own transaction locks (out of reach of SQL) */
typedef enum CrmLockKind
{
	CRM_LOCK_COMPANY = 1,		/* a company match key */
	CRM_LOCK_DOMAIN = 2,		/* a company domain */
	CRM_LOCK_EMAIL = 3,			/* an e-mail address in lower case */
	CRM_LOCK_PHONE = 4,			/* a phone key (crm.phone_key) */
	CRM_LOCK_CAMPAIGN_HIERARCHY = 16,	/* campaign re-parenting */
	CRM_LOCK_REPORTING_HIERARCHY = 17,	/* changes of crm.reporting_line */
	CRM_LOCK_COMPACTION = 18,	/* crm.compact_aggregates(), one at a time */
	CRM_LOCK_KEY_SPACE = 19,	/* all keys of one key kind (bulk entry checks) */
	CRM_LOCK_LEAD_ROUTING = 20,	/* queue positions and capacities (assignment.c) */
	CRM_LOCK_CAPTURE_LOG = 21,	/* the one refusal-recording worker (capture.c), cluster-wide */
	CRM_LOCK_EMAIL_MESSAGE = 22,	/* a logged e-mail's message id (email_log.c) */
	CRM_LOCK_QUOTA_OWNER = 23	/* the quotas of one owner, key: the role's oid (quotas.c) */
} CrmLockKind;

typedef struct CrmLock
{
	CrmLockKind kind;
	uint32		hi;
	uint32		lo;
	bool		shared;			/* a key space taken in share mode */
} CrmLock;

extern void crm_locks_init(void);
extern CrmLock crm_lock_key(CrmLockKind kind, const char *key);
extern CrmLock crm_lock_global(CrmLockKind kind);
extern CrmLock crm_lock_key_space(CrmLockKind key_kind);
extern void crm_lock_all(CrmLock *locks, int nlocks);
extern void crm_unlock(const CrmLock *lock);

/* capture_log.c: refused lead captures, recorded in a transaction of their own */
extern int64 crm_record_refused_capture(Oid captured_by, const char *source, bool has_campaign,
										int64 campaign_id, const char *payload,
										const char *sqlstate, const char *message,
										const char **why);

/* privacy.c: personal data */
extern char *crm_person_email(FunctionCallInfo fcinfo, int argno);
extern bool crm_is_email_address(const char *s);
extern void crm_require_privacy_officer(Oid caller, const char *action);
/* duplicates.c: the matching rules, shared with duplicate_check.c */
typedef enum CrmRecordKind
{
	CRM_RECORD_LEAD,
	CRM_RECORD_ACCOUNT,
	CRM_RECORD_CONTACT
} CrmRecordKind;

extern const char *crm_record_kind_name(CrmRecordKind kind);
extern bool crm_record_kind_parse(const char *name, CrmRecordKind *kind);
extern char *crm_probe_sql(CrmRecordKind kind, const char *from, const char *old);
extern char *crm_match_sql(CrmRecordKind kind, const char *probes);
extern bool crm_record_visible(Oid role, const char *kind, int64 id);
extern const char *crm_rule_words(const char *rule);
extern int	crm_duplicates_no_jit(void);

/* scoring.c: lead scores */
extern int	crm_lead_score(HeapTuple tuple, TupleDesc tupdesc, int *current);
extern AttrNumber crm_lead_score_attnum(void);

/* currencies.c: a write in a currency the reports can convert (ZC120 otherwise) */
extern void crm_require_exchange_rate(Datum currency, Datum day, bool day_isnull);

/* lock_guard.c: LOCK TABLE on the extension's relations */
extern void crm_lock_guard_init(void);

/* custom_fields.c: a lead's custom field values go with its conversion */
extern void crm_carry_lead_attributes(int64 lead_id, int64 account_id, int64 contact_id,
									  int64 opportunity_id, bool has_opportunity,
									  const bool made[3]);

/* trigger sanity checks shared by the trigger files */
struct TriggerData;
extern struct TriggerData *crm_trigger_data(FunctionCallInfo fcinfo,
											const char *funcname,
											bool want_before, bool want_row);

#endif							/* CRM_H */
