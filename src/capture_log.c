/*
 * capture_log.c: a refused lead capture recorded in a transaction of its
 * own, so the record survives the error that rolls back the caller's.
 *
 * crm.capture_lead() (capture.c) refuses a capture by raising an ERROR,
 * which rolls back everything the calling transaction wrote.  The refusal's
 * crm.lead_capture row is therefore written by a dynamic background worker
 * of the extension: the caller puts the record into a dynamic shared memory
 * segment, starts the worker (no shared_preload_libraries needed), and
 * waits for it to exit.  The worker connects to the caller's database as
 * the extension owner, inserts the row, commits, writes the row's id back
 * into the segment and exits.  Only then does the caller raise the error,
 * whose detail names the capture.
 *
 * When no worker can be started (every max_worker_processes slot taken) or
 * the worker fails, the caller is told so and raises the error anyway: a
 * refusal is never turned into success.  The wait is interruptible (a
 * cancel ends it; the worker still commits its row); the worker waits at
 * most 10 s for a lock (a superuser's transaction holding
 * crm.lead_capture locked would otherwise make the two wait for each other
 * unseen by the deadlock detector).  The segment is
 * detached on every path: explicitly, or by the resource owner when an
 * error ends the wait.
 */
#include "crm.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* the record, followed by its three strings */
typedef struct RefusalRecord
{
	Oid			database;
	Oid			owner;
	Oid			captured_by;
	TimestampTz captured_at;
	bool		has_campaign;
	int64		campaign_id;
	bool		has_source;
	char		sqlstate[6];
	Size		payload_off;
	Size		message_off;
	/* written by the worker */
	bool		recorded;
	int64		id;
	char		data[FLEXIBLE_ARRAY_MEMBER];	/* source, payload, message */
} RefusalRecord;

PGDLLEXPORT void crm_capture_refusal_worker(Datum main_arg);

/*
 * crm_record_refused_capture -- have a background worker insert the
 * refusal into crm.lead_capture and commit it; its id, or 0 with *why set
 * when it could not be recorded.
 */
int64
crm_record_refused_capture(Oid captured_by, const char *source, bool has_campaign,
						   int64 campaign_id, const char *payload, const char *sqlstate,
						   const char *message, const char **why)
{
	Size		source_len = source ? strlen(source) + 1 : 1;
	Size		payload_len = strlen(payload) + 1;
	Size		message_len = strlen(message) + 1;
	dsm_segment *seg;
	RefusalRecord *r;
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	BgwHandleStatus status;
	int64		id = 0;

	seg = dsm_create(offsetof(RefusalRecord, data) + source_len + payload_len + message_len,
					 DSM_CREATE_NULL_IF_MAXSEGMENTS);
	if (seg == NULL)
	{
		*why = "no dynamic shared memory segment was free";
		return 0;
	}
	r = dsm_segment_address(seg);
	r->database = MyDatabaseId;
	r->owner = crm_schema_owner();
	r->captured_by = captured_by;
	r->captured_at = GetCurrentTransactionStartTimestamp();
	r->has_campaign = has_campaign;
	r->campaign_id = campaign_id;
	r->has_source = source != NULL;
	strlcpy(r->sqlstate, sqlstate, sizeof(r->sqlstate));
	r->payload_off = source_len;
	r->message_off = source_len + payload_len;
	r->recorded = false;
	r->id = 0;
	memcpy(r->data, source ? source : "", source_len);
	memcpy(r->data + r->payload_off, payload, payload_len);
	memcpy(r->data + r->message_off, message, message_len);

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "crm");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "crm_capture_refusal_worker");
	snprintf(worker.bgw_name, BGW_MAXLEN, "crm refused lead capture for PID %d", MyProcPid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "crm capture log");
	worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		dsm_detach(seg);
		*why = "no background worker could be started (max_worker_processes are all in use)";
		return 0;
	}
	status = WaitForBackgroundWorkerShutdown(handle);
	if (status == BGWH_STOPPED && r->recorded)
		id = r->id;
	else
		*why = status == BGWH_POSTMASTER_DIED ? "the server is shutting down"
			: "the background worker that records it failed (see the server log)";
	dsm_detach(seg);
	return id;
}

static const char insert_refusal[] =
	"INSERT INTO crm.lead_capture (captured_at, captured_by, source, campaign_id, payload, outcome, sqlstate, message)"
	" VALUES ($1, $2, $3, $4, $5::pg_catalog.jsonb, 'refused', $6, $7) RETURNING id";

/*
 * crm_capture_refusal_worker -- the background worker's entry point: one
 * INSERT in one transaction, as the extension owner.  An error ends the
 * process (the row is not written, and the caller learns it from
 * "recorded" still being false).
 */
void
crm_capture_refusal_worker(Datum main_arg)
{
	dsm_segment *seg;
	RefusalRecord *r;
	Oid			types[7] = {TIMESTAMPTZOID, REGROLEOID, TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	bool		isnull;
	int64		id;
	uint32		flags = 0;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/* mapped for the life of the process (no resource owner yet) */
	seg = dsm_attach(DatumGetUInt32(main_arg));
	if (seg == NULL)
		elog(ERROR, "crm: the record of a refused lead capture is gone");
	r = dsm_segment_address(seg);

#ifdef BGWORKER_BYPASS_ROLELOGINCHECK
	flags |= BGWORKER_BYPASS_ROLELOGINCHECK;
#endif
	BackgroundWorkerInitializeConnectionByOid(r->database, r->owner, flags);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION);
	/* the caller waits for us: never wait for a lock for ever */
	SetConfigOption("lock_timeout", "10s", PGC_USERSET, PGC_S_SESSION);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pgstat_report_activity(STATE_RUNNING, "crm: recording a refused lead capture");
	crm_spi_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	values[0] = TimestampTzGetDatum(r->captured_at);
	values[1] = ObjectIdGetDatum(r->captured_by);
	crm_param_text(values, nulls, 2, r->has_source ? r->data : NULL);
	crm_param_int64(values, nulls, 3, r->campaign_id, !r->has_campaign);
	crm_param_text(values, nulls, 4, r->data + r->payload_off);
	crm_param_text(values, nulls, 5, r->sqlstate);
	crm_param_text(values, nulls, 6, r->data + r->message_off);
	if (SPI_execute_with_args(insert_refusal, 7, types, values, nulls, false, 0) != SPI_OK_INSERT_RETURNING ||
		SPI_processed != 1)
		elog(ERROR, "crm: recording a refused lead capture failed");
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	crm_spi_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	/* committed: only now may the caller name the row */
	r->id = id;
	pg_write_barrier();
	r->recorded = true;
	dsm_detach(seg);
	proc_exit(0);
}
