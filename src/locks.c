/*
 * locks.c: the extension's own transaction locks -- on the match keys of the
 * duplicate search, on the campaign and reporting hierarchies, and on
 * aggregate compaction.
 *
 * They are heavyweight locks of PostgreSQL's lock manager in the advisory
 * lock space, but with a tag no SQL-level function can build: the advisory
 * functions (pg_advisory_lock() and friends) always set the tag's last field
 * to 1 or 2, these locks set it to CRM_LOCK_SPACE + the kind of lock.  So a
 * user, whatever rights it has, cannot take, hold or wait for them except
 * through the extension's own code paths (a conversion, a re-parenting, a
 * change of the reporting hierarchy, a compaction), which commit or roll
 * back like any other write.
 *
 * A match key is not put into the tag as it is, nor as a plain hash: the tag
 * of a key lock is the first 64 bits of HMAC-SHA-256(secret, kind || key),
 * with a random secret made at CREATE EXTENSION and readable only by the
 * extension's owner (crm_internal.lock_key_secret, not dumped).  pg_locks, which every
 * role may read, thus shows a lock on "some key" but not which company,
 * domain or e-mail is being converted: the key cannot be guessed and checked
 * against the tag.
 *
 * Waits are bounded: a lock that is not free at once is waited for at most
 * crm.lock_wait_timeout (and never longer than lock_timeout, when that is
 * set), then the statement fails with 55P03, its context naming the lock.
 * Locks are taken in one sorted batch per call, so two callers never wait
 * for each other in opposite order.  A transaction that took one cannot be
 * prepared (PREPARE TRANSACTION fails): a prepared transaction would hold
 * it until someone commits or rolls it back, after its session is gone.
 */
#include "crm.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

/*
 * The tag's last field: "C" and the kind.  Anything but 1 and 2 is out of
 * reach of the SQL advisory lock functions.
 */
#define CRM_LOCK_SPACE		0x4300

/* crm.lock_wait_timeout, in milliseconds; 0 waits as long as lock_timeout allows */
static int	crm_lock_wait_timeout = 10000;

/* The secret of the key locks, cached per backend with the table it came from. */
static uint8 lock_secret[64];
static int	lock_secret_len = 0;
static Oid	lock_secret_relid = InvalidOid;

static CrmQuery read_secret = {
	"SELECT s.secret FROM crm_internal.lock_key_secret AS s",
	0, {InvalidOid}, NULL
};

/* whether this transaction has taken one of the locks (see prepare_guard) */
static bool locks_taken = false;

/*
 * prepare_guard -- a prepared transaction keeps its locks after its session
 * is gone, for as long as nobody commits or rolls it back: a transaction
 * that holds one of these locks would block every conversion of its keys (or
 * every hierarchy change) indefinitely.  PREPARE TRANSACTION is refused for
 * it; the transaction rolls back.
 */
static void
prepare_guard(XactEvent event, void *arg)
{
	(void) arg;
	if (event == XACT_EVENT_PRE_PREPARE && locks_taken)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot prepare a transaction that holds locks of the crm extension"),
				 errdetail("The transaction converted a lead, changed the campaign or reporting hierarchy, or compacted aggregates; a prepared transaction would keep other users from doing the same until it is committed or rolled back."),
				 errhint("Run these steps in a transaction that commits directly.")));
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT)
		locks_taken = false;
}

void
crm_locks_init(void)
{
	RegisterXactCallback(prepare_guard, NULL);
	DefineCustomIntVariable("crm.lock_wait_timeout",
							"How long a conversion, campaign re-parenting or reporting-line change waits for the same lock held by another transaction.",
							"0 waits as long as lock_timeout allows; otherwise the shorter of the two applies.",
							&crm_lock_wait_timeout,
							10000, 0, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	MarkGUCPrefixReserved("crm");
}

/*
 * load_secret -- the secret of crm_internal.lock_key_secret, read as the extension's
 * owner once per backend and again when the table is a new one (the
 * extension was dropped and created again).
 */
static void
load_secret(void)
{
	Oid			relid = get_relname_relid("lock_key_secret", crm_internal_namespace());
	bool		isnull;
	bytea	   *secret;
	int			len;

	if (relid == lock_secret_relid && lock_secret_len > 0)
		return;
	if (!OidIsValid(relid))
	{
		/*
		 * A database still at a version before 0.5 (ALTER EXTENSION crm
		 * UPDATE not run yet): the locks are as exclusive, only their tags
		 * are the same in every database until the update makes a secret.
		 */
		static const char fallback[] = "crm lock keys before 0.5";

		memcpy(lock_secret, fallback, sizeof(fallback));
		lock_secret_len = sizeof(fallback);
		lock_secret_relid = InvalidOid;
		return;
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "crm: SPI_connect failed");
	crm_query_run_as_owner(&read_secret, NULL, NULL, 2);
	if (SPI_processed != 1)
		elog(ERROR, "crm: crm_internal.lock_key_secret must hold exactly one row");
	secret = DatumGetByteaPP(crm_result_datum(0, 1, &isnull));
	len = isnull ? 0 : VARSIZE_ANY_EXHDR(secret);
	if (len < 16 || len > (int) sizeof(lock_secret))
		elog(ERROR, "crm: the secret in crm_internal.lock_key_secret must have 16 to 64 bytes");
	memcpy(lock_secret, VARDATA_ANY(secret), len);
	lock_secret_len = len;
	lock_secret_relid = relid;
	crm_spi_finish();
}

/*
 * The last few keys' locks: a conversion names each key twice (before and
 * after it locks the lead), and the hash is the dearer part.
 */
#define KEY_CACHE_SIZE 4
#define KEY_CACHE_MAX_KEY 256

typedef struct KeyCacheEntry
{
	CrmLockKind kind;
	Oid			relid;			/* the secret's table when cached */
	char		key[KEY_CACHE_MAX_KEY];
	CrmLock		lock;
} KeyCacheEntry;

static KeyCacheEntry key_cache[KEY_CACHE_SIZE];
static int	key_cache_next = 0;

/* crm_lock_key -- the lock of one match key of a kind (keyed, see above) */
CrmLock
crm_lock_key(CrmLockKind kind, const char *key)
{
	CrmLock		lock;
	pg_hmac_ctx *ctx;
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	uint8		kind_byte = (uint8) kind;
	bool		cacheable = strlen(key) < KEY_CACHE_MAX_KEY;

	load_secret();
	if (cacheable)
	{
		for (int i = 0; i < KEY_CACHE_SIZE; i++)
			if (key_cache[i].kind == kind && key_cache[i].relid == lock_secret_relid &&
				strcmp(key_cache[i].key, key) == 0)
				return key_cache[i].lock;
	}
	ctx = pg_hmac_create(PG_SHA256);
	if (ctx == NULL)
		elog(ERROR, "crm: out of memory");
	if (pg_hmac_init(ctx, lock_secret, lock_secret_len) < 0 ||
		pg_hmac_update(ctx, &kind_byte, 1) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) key, strlen(key)) < 0 ||
		pg_hmac_final(ctx, digest, sizeof(digest)) < 0)
		elog(ERROR, "crm: could not compute a lock key: %s", pg_hmac_error(ctx));
	pg_hmac_free(ctx);

	lock.kind = kind;
	memcpy(&lock.hi, digest, sizeof(uint32));
	memcpy(&lock.lo, digest + sizeof(uint32), sizeof(uint32));
	if (cacheable)
	{
		KeyCacheEntry *e = &key_cache[key_cache_next];

		e->kind = kind;
		e->relid = lock_secret_relid;
		strlcpy(e->key, key, sizeof(e->key));
		e->lock = lock;
		key_cache_next = (key_cache_next + 1) % KEY_CACHE_SIZE;
	}
	return lock;
}

/* crm_lock_global -- the one lock of a kind (a hierarchy) */
CrmLock
crm_lock_global(CrmLockKind kind)
{
	CrmLock		lock = {kind, 0, 0, false};

	return lock;
}

/*
 * crm_lock_key_space -- the lock of every key of one key kind at once.
 *
 * Every batch that takes key locks of a kind also takes its key space in
 * share mode (crm_lock_all adds it); a statement that would need more key
 * locks than the lock table should hold (a bulk INSERT or COPY checked for
 * duplicates, duplicate_check.c) takes the key space alone, exclusively:
 * it then waits for, and blocks, everyone who works with keys of that kind.
 */
CrmLock
crm_lock_key_space(CrmLockKind key_kind)
{
	CrmLock		lock = {CRM_LOCK_KEY_SPACE, (uint32) key_kind, 0, false};

	return lock;
}

static bool
is_key_kind(CrmLockKind kind)
{
	return kind == CRM_LOCK_COMPANY || kind == CRM_LOCK_DOMAIN ||
		kind == CRM_LOCK_EMAIL || kind == CRM_LOCK_PHONE;
}

static const char *
lock_kind_name(CrmLockKind kind)
{
	switch (kind)
	{
		case CRM_LOCK_COMPANY:
			return "the duplicate-search lock of a company name";
		case CRM_LOCK_DOMAIN:
			return "the duplicate-search lock of a company domain";
		case CRM_LOCK_EMAIL:
			return "the duplicate-search lock of an e-mail address";
		case CRM_LOCK_PHONE:
			return "the duplicate-search lock of a phone number";
		case CRM_LOCK_KEY_SPACE:
			return "the duplicate-search lock of all keys of a kind (held by a bulk load)";
		case CRM_LOCK_CAMPAIGN_HIERARCHY:
			return "the lock of the campaign hierarchy";
		case CRM_LOCK_REPORTING_HIERARCHY:
			return "the lock of the reporting hierarchy";
		case CRM_LOCK_COMPACTION:
			return "the lock of aggregate compaction";
		case CRM_LOCK_LEAD_ROUTING:
			return "the lock of the lead assignment queues";
		case CRM_LOCK_CAPTURE_LOG:
			return "the lock of the background worker that records refused lead captures";
		case CRM_LOCK_EMAIL_MESSAGE:
			return "the lock of a logged e-mail's message id";
		case CRM_LOCK_QUOTA_OWNER:
			return "the lock of the quotas of one owner";
	}
	return "a lock of the crm extension";
}

static void
lock_wait_context(void *arg)
{
	CrmLock    *lock = (CrmLock *) arg;

	errcontext("waiting for %s, held by another transaction (crm.lock_wait_timeout = %d ms)",
			   lock_kind_name(lock->kind), crm_lock_wait_timeout);
}

static int
lock_cmp(const void *a, const void *b)
{
	const CrmLock *x = (const CrmLock *) a;
	const CrmLock *y = (const CrmLock *) b;

	/* key spaces first, then the rest */
	if ((x->kind == CRM_LOCK_KEY_SPACE) != (y->kind == CRM_LOCK_KEY_SPACE))
		return x->kind == CRM_LOCK_KEY_SPACE ? -1 : 1;
	if (x->hi != y->hi)
		return x->hi < y->hi ? -1 : 1;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (x->shared != y->shared)
		return x->shared ? 1 : -1;
	return 0;
}

/*
 * lock_tag -- the tag of a lock: in the current database, except the
 * capture log's, which is one for the whole cluster (it limits background
 * workers, a resource of the cluster)
 */
static void
lock_tag(LOCKTAG *tag, const CrmLock *lock)
{
	SET_LOCKTAG_ADVISORY(*tag, lock->kind == CRM_LOCK_CAPTURE_LOG ? InvalidOid : MyDatabaseId,
						 lock->hi, lock->lo, (uint16) (CRM_LOCK_SPACE + lock->kind));
}

/* acquire -- one lock to the end of the transaction, waiting a bounded time */
static void
acquire(CrmLock *lock)
{
	LOCKTAG		tag;
	ErrorContextCallback callback;
	int			nestlevel;

	lock_tag(&tag, lock);
	if (LockAcquire(&tag, lock->shared ? ShareLock : ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL)
		return;

	/* held by another transaction: wait, but not longer than the setting */
	nestlevel = NewGUCNestLevel();
	if (crm_lock_wait_timeout > 0 && (LockTimeout == 0 || LockTimeout > crm_lock_wait_timeout))
		(void) set_config_option("lock_timeout", psprintf("%d", crm_lock_wait_timeout),
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
								 true, 0, false);
	callback.callback = lock_wait_context;
	callback.arg = lock;
	callback.previous = error_context_stack;
	error_context_stack = &callback;
	(void) LockAcquire(&tag, lock->shared ? ShareLock : ExclusiveLock, false, false);
	error_context_stack = callback.previous;
	AtEOXact_GUC(true, nestlevel);
}

/*
 * crm_lock_all -- take locks, held to the end of the transaction, in one
 * sorted batch; a lock this transaction holds already is not waited for.
 * Key locks come with their key space in share mode (see
 * crm_lock_key_space), taken first.
 */
void
crm_lock_all(CrmLock *locks, int nlocks)
{
	CrmLock    *all = palloc(sizeof(CrmLock) * (nlocks + 5));
	int			nall = 0;
	bool		space[CRM_LOCK_PHONE + 1] = {false};

	for (int i = 0; i < nlocks; i++)
	{
		all[nall++] = locks[i];
		if (is_key_kind(locks[i].kind) && !space[locks[i].kind])
		{
			space[locks[i].kind] = true;
			all[nall] = crm_lock_key_space(locks[i].kind);
			all[nall++].shared = true;
		}
	}
	if (nall > 0)
		locks_taken = true;
	qsort(all, nall, sizeof(CrmLock), lock_cmp);
	for (int i = 0; i < nall; i++)
		acquire(&all[i]);
	pfree(all);
}

/*
 * crm_unlock -- release a lock taken by crm_lock_all before the end of the
 * transaction (the capture log's, held only while its worker runs)
 */
void
crm_unlock(const CrmLock *lock)
{
	LOCKTAG		tag;
	ResourceOwner owner = CurrentResourceOwner;
	bool		released;

	/* a lock taken in a subtransaction that committed is the transaction's */
	lock_tag(&tag, lock);
	CurrentResourceOwner = CurTransactionResourceOwner;
	released = LockRelease(&tag, lock->shared ? ShareLock : ExclusiveLock, false);
	CurrentResourceOwner = owner;
	if (!released)
		elog(WARNING, "crm: %s was not held", lock_kind_name(lock->kind));
}
