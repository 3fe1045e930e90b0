#!/usr/bin/env bash
# test/scripts/client_driver.sh: crm used the way applications use it, through
# a driver -- psycopg 3 (Debian's python3-psycopg) -- over the Unix socket, as
# non-superuser logins: two sales reps (crm_sales), their manager
# (crm_manager) and an admin login (crm_admin).  test/client/crm_client.py
# checks:
#   1. leads inserted with bound parameters (text with quotes and non-ASCII,
#      a text[] for ANY(), numeric and date on the opportunity);
#      crm.convert_lead() with positional and named arguments, its
#      crm.conversion_result read by column name (dict rows, and as a
#      registered composite); the account, contact and opportunity exist and
#      the rep sees them; a second lead of the same company reuses the account;
#   2. errors as psycopg exceptions: a second conversion is ZC002 whose
#      detail says when, by whom and into which account; NULL arguments
#      22004; unknown lead ZC001, unknown owner 42704; another rep's lead is
#      invisible, an UPDATE of it changes nothing, converting it is 42501;
#      23514 and 23505 carry diag.constraint_name; after an error in a
#      transaction the connection is INERROR (25P02) until rollback, then
#      usable again;
#   3. LISTEN crm_reminder on the manager's connection; the rep creates a due
#      reminder and claims it with crm.claim_due_reminders(): exactly one
#      notification, only after the claim commits, payload
#      {"activity_id", "remind_at"} matching the activity; a second claim
#      notifies nothing; a rolled-back claim notifies nothing and leaves the
#      reminder for the next claim;
#   4. executemany; one server-side prepared statement (prepare=True)
#      converting several leads; COPY FROM as the superuser (the timestamp
#      trigger and the conversion guard still apply); COPY FROM as a rep or
#      an admin login refused under row-level security (0A000, README
#      Limitations), the temp-table workaround, COPY TO filtered by RLS;
#   5. a conversion rolled back (whole transaction, or a savepoint) leaves the
#      lead unconverted and no account; autocommit commits at once.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/common.sh

install_missing python3-psycopg
/usr/bin/python3 -c 'import psycopg' 2>/dev/null || fail "python3-psycopg is installed but /usr/bin/python3 cannot import psycopg"

test_cluster crm-client

db=crm_client
psql_as postgres postgres -c "CREATE DATABASE $db"
psql_as postgres "$db" -c "CREATE EXTENSION crm CASCADE"
psql_as postgres "$db" \
    -c "CREATE ROLE client_rep1 LOGIN IN ROLE crm_sales;
        CREATE ROLE client_rep2 LOGIN IN ROLE crm_sales;
        CREATE ROLE client_manager LOGIN IN ROLE crm_manager;
        CREATE ROLE client_admin LOGIN IN ROLE crm_admin" \
    -c "INSERT INTO crm.reporting_line (member, manager) VALUES ('client_rep1', 'client_manager'), ('client_rep2', 'client_manager')"
# Disjoint id ranges, so that a lead id taken for an account id (or any such
# mix-up) in a result, a detail message or a payload cannot go unnoticed.
psql_as postgres "$db" -c "SELECT setval(pg_get_serial_sequence('crm.' || t, 'id'), n)
    FROM (VALUES ('lead', 1000), ('account', 2000), ('contact', 3000), ('opportunity', 4000), ('activity', 5000)) v(t, n)" >/dev/null

# The program runs from the checkout; the cluster user must be able to read it.
client=$REPO_ROOT/test/client/crm_client.py
as_cluster_user test -r "$client" || { cp "$client" "$WORK/crm_client.py"; client=$WORK/crm_client.py; }

as_cluster_user env PGHOST="$PGHOST" PGPORT="$PGPORT" /usr/bin/python3 "$client" \
    --dbname "$db" --rep1 client_rep1 --rep2 client_rep2 \
    --manager client_manager --admin client_admin --superuser postgres \
    || fail "the client program failed (see above)"

# Nothing the program did may leave the conversions half done.
bad=$(psql_as postgres "$db" -c "SELECT count(*) FROM crm.lead l
    WHERE l.status = 'Converted' AND NOT EXISTS (SELECT FROM crm.account a WHERE a.id = l.account_id)")
[ "$bad" = "0" ] || fail "$bad converted leads point to no account"
echo "client driver: ok"
