#!/usr/bin/python3
"""crm_client.py: the crm extension used the way an application uses it,
through a driver (psycopg 3), over the Unix socket, as non-superuser logins.

Run by test/scripts/client_driver.sh, which creates the cluster, the database
and the login roles.  Connection: libpq's environment (PGHOST, PGPORT) plus
the options below.  Every check prints "ok: ..."; the first failing check
prints "FAIL: ..." and the program exits with status 1.

Checks (numbered as in client_driver.sh):
  1. bound parameters and convert_lead()'s composite result, read by name;
  2. errors as psycopg exceptions: SQLSTATE and diagnostics fields;
  3. LISTEN crm_reminder / crm.claim_due_reminders() across connections;
  4. prepared statements, executemany, COPY (superuser; refused under RLS);
  5. autocommit vs. transactions: a rolled-back conversion leaves nothing.
"""

import argparse
import datetime
import json
import select
import sys
import time
from decimal import Decimal

import psycopg
from psycopg import errors, sql
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from psycopg.types.composite import CompositeInfo, register_composite


class CheckFailed(Exception):
    pass


def check(cond, message):
    if not cond:
        raise CheckFailed(message)


def ok(message):
    print("ok: " + message, flush=True)


def expect_error(conn, sqlstate, query, params=None, what=""):
    """Run query on conn; it must fail with sqlstate.  Returns the exception.
    The transaction (if any) is left as the error left it."""
    try:
        conn.execute(query, params)
    except psycopg.Error as e:
        check(e.sqlstate == sqlstate,
              "%s: expected SQLSTATE %s, got %s: %s" % (what or query, sqlstate, e.sqlstate, e))
        return e
    raise CheckFailed("%s: expected SQLSTATE %s, but it succeeded" % (what or query, sqlstate))


class Client:
    def __init__(self, args):
        self.args = args
        self.dbname = args.dbname

    def connect(self, user, autocommit=True, **kw):
        conn = psycopg.connect(dbname=self.dbname, user=user, autocommit=autocommit,
                               application_name="crm_client", **kw)
        # The test is about the Unix socket: a socket directory, not a TCP host.
        check(conn.info.host.startswith("/"),
              "%s connected to %r, expected a Unix socket directory" % (user, conn.info.host))
        return conn

    def insert_lead(self, conn, name, company, email=None, **extra):
        cols = ["name", "company", "email"] + list(extra)
        vals = [name, company, email] + list(extra.values())
        q = sql.SQL("INSERT INTO crm.lead ({}) VALUES ({}) RETURNING id").format(
            sql.SQL(", ").join(map(sql.Identifier, cols)),
            sql.SQL(", ").join(sql.Placeholder() * len(cols)))
        return conn.execute(q, vals).fetchone()[0]

    # ------------------------------------------------------------------
    # 1. Bound parameters, convert_lead()'s result by column name.
    def check_convert(self):
        rep = self.rep1
        # Text parameters, including characters a hand-built SQL string would
        # mangle; a text array binds the companies for a bulk lookup.
        name, company = "Zoë O'Brien", 'Þórr "Quoted" Ltd; DROP TABLE x'
        lead_id = self.insert_lead(rep, name, company, "zoe@thorr.example",
                                   title="CTO", city="Reykjavík", country="IS",
                                   website="https://www.thorr.example/about")
        row = rep.execute("SELECT name, company, owner::text FROM crm.lead WHERE id = %s",
                          (lead_id,)).fetchone()
        check(row == (name, company, self.args.rep1),
              "lead %d read back as %r" % (lead_id, row))
        ids = [r[0] for r in rep.execute(
            "SELECT id FROM crm.lead WHERE company = ANY(%s) ORDER BY id",
            ([company, "no such company"],))]
        check(ids == [lead_id], "company = ANY(text[] parameter) found %r" % ids)
        ok("lead %d inserted with bound text parameters (quotes, ';', non-ASCII) and found by a text[] parameter" % lead_id)

        # Positional and named arguments; the result as columns, by name.
        with rep.cursor(row_factory=dict_row) as cur:
            res = cur.execute(
                "SELECT * FROM crm.convert_lead(%s, opportunity_name => %s, create_opportunity => %s)",
                (lead_id, "Thorr platform deal", True)).fetchone()
        expected_cols = ["lead_id", "account_id", "contact_id", "opportunity_id",
                         "account_created", "contact_created", "opportunity_created"]
        check(list(res) == expected_cols, "convert_lead columns are %r" % list(res))
        check(res["lead_id"] == lead_id, "result lead_id %r" % res["lead_id"])
        check(res["account_created"] and res["contact_created"] and res["opportunity_created"],
              "a new company should give three new rows: %r" % res)
        self.converted = res
        ok("convert_lead(%d, opportunity_name => ..., create_opportunity => ...) returned %r" % (lead_id, res))

        # The rows it points to exist and the rep sees them.
        acc = rep.execute("SELECT name, city, owner::text FROM crm.account WHERE id = %s",
                          (res["account_id"],)).fetchone()
        check(acc == (company, "Reykjavík", self.args.rep1), "account row %r" % (acc,))
        con = rep.execute("SELECT name, email, account_id FROM crm.contact WHERE id = %s",
                          (res["contact_id"],)).fetchone()
        check(con == (name, "zoe@thorr.example", res["account_id"]), "contact row %r" % (con,))
        opp = rep.execute("SELECT name, account_id, contact_id, lead_id FROM crm.opportunity WHERE id = %s",
                          (res["opportunity_id"],)).fetchone()
        check(opp == ("Thorr platform deal", res["account_id"], res["contact_id"], lead_id),
              "opportunity row %r" % (opp,))
        lead = rep.execute("SELECT status::text, account_id, contact_id, opportunity_id, converted_by::text "
                           "FROM crm.lead WHERE id = %s", (lead_id,)).fetchone()
        check(lead == ("Converted", res["account_id"], res["contact_id"], res["opportunity_id"], self.args.rep1),
              "lead after conversion %r" % (lead,))
        ok("account %d, contact %d and opportunity %d exist, are the rep's and the lead points to them"
           % (res["account_id"], res["contact_id"], res["opportunity_id"]))

        # Numeric and date parameters round-trip as Decimal and date.
        amount, close = Decimal("125000.50"), datetime.date(2031, 2, 28)
        row = rep.execute("UPDATE crm.opportunity SET amount = %s, close_date = %s WHERE id = %s "
                          "RETURNING amount, close_date", (amount, close, res["opportunity_id"])).fetchone()
        check(row == (amount, close) and isinstance(row[0], Decimal) and isinstance(row[1], datetime.date),
              "opportunity amount/close_date read back as %r" % (row,))
        ok("numeric and date parameters: opportunity amount %s, close date %s" % row)

        # The composite as one value: register the type, read attributes by name.
        info = CompositeInfo.fetch(rep, "crm.conversion_result")
        check(info is not None, "type crm.conversion_result not found")
        register_composite(info, rep)
        lead2 = self.insert_lead(rep, "Ana Lima", "Lima Consulting", "ana@lima.example")
        r = rep.execute("SELECT crm.convert_lead(lead_id => %s, create_opportunity => %s, dedupe => %s)",
                        (lead2, False, True)).fetchone()[0]
        check(r.lead_id == lead2 and r.opportunity_id is None and r.opportunity_created is False
              and r.account_created is True and isinstance(r.account_id, int),
              "composite value %r" % (r,))
        ok("convert_lead(lead_id => ..., create_opportunity => false) as a registered composite: %r" % (r,))

        # Dedupe: another lead of the same company (other spelling) reuses the account.
        lead3 = self.insert_lead(rep, "Bo Lima", "LIMA CONSULTING, Inc.", "bo@lima.example")
        r3 = rep.execute("SELECT crm.convert_lead(%s)", (lead3,)).fetchone()[0]
        check(r3.account_id == r.account_id and r3.account_created is False and r3.contact_created is True,
              "second lead of Lima Consulting: %r, first account %d" % (r3, r.account_id))
        ok("a second lead of the same company reuses account %d (account_created = false)" % r.account_id)

    # ------------------------------------------------------------------
    # 2. Errors.
    def check_errors(self):
        rep, res = self.rep1, self.converted
        lead_id = res["lead_id"]
        conv_at = rep.execute("SELECT converted_at::text FROM crm.lead WHERE id = %s", (lead_id,)).fetchone()[0]

        # Converted twice: ZC002 with when / by whom / into which account.
        e = expect_error(rep, "ZC002", "SELECT * FROM crm.convert_lead(%s)", (lead_id,), "second conversion")
        d = e.diag
        check(d.sqlstate == "ZC002", "diag.sqlstate %r" % d.sqlstate)
        check(d.message_primary == "lead %d is already converted" % lead_id,
              "message_primary %r" % d.message_primary)
        detail = d.message_detail or ""
        check(conv_at in detail, "detail %r does not say when (%s)" % (detail, conv_at))
        check("by %s" % self.args.rep1 in detail, "detail %r does not say by whom" % detail)
        check("into account %d" % res["account_id"] in detail,
              "detail %r does not name account %d" % (detail, res["account_id"]))
        check(d.message_hint and "account" in d.message_hint, "hint %r" % d.message_hint)
        check(d.severity_nonlocalized == "ERROR", "severity %r" % d.severity_nonlocalized)
        ok("second conversion: %s %s / detail: %s / hint: %s" % (e.sqlstate, d.message_primary, detail, d.message_hint))

        # NULL where a value is required: 22004, as NullValueNotAllowed.
        e = expect_error(rep, "22004", "SELECT * FROM crm.convert_lead(%s)", (None,), "NULL lead_id")
        check(isinstance(e, errors.NullValueNotAllowed), "NULL lead_id raised %s" % type(e).__name__)
        check(e.diag.message_primary == "lead_id must not be null", "message %r" % e.diag.message_primary)
        fresh = self.insert_lead(rep, "Null Test", "Null Test Co")
        e = expect_error(rep, "22004", "SELECT * FROM crm.convert_lead(%s, create_opportunity => %s)",
                         (fresh, None), "create_opportunity => NULL")
        check("create_opportunity" in e.diag.message_primary, "message %r" % e.diag.message_primary)
        ok("NULL arguments: 22004 (psycopg.errors.NullValueNotAllowed): %s" % e.diag.message_primary)

        # Unknown lead: ZC001; unknown owner role: 42704.
        expect_error(rep, "ZC001", "SELECT * FROM crm.convert_lead(%s)", (10**12,), "unknown lead")
        expect_error(rep, "42704", "SELECT * FROM crm.convert_lead(%s, owner => %s)",
                     (fresh, "no_such_role_x"), "unknown owner")
        ok("unknown lead: ZC001; unknown owner role: 42704")

        # Another rep's row.  rep2's lead is invisible to rep1: reading finds
        # nothing, an UPDATE changes nothing, converting it is 42501.
        other = self.insert_lead(self.rep2, "Rep Two's lead", "Second Rep Corp")
        n = rep.execute("SELECT count(*) FROM crm.lead WHERE id = %s", (other,)).fetchone()[0]
        check(n == 0, "rep1 sees rep2's lead %d" % other)
        cur = rep.execute("UPDATE crm.lead SET remarks = 'hijacked' WHERE id = %s", (other,))
        check(cur.rowcount == 0, "rep1's UPDATE of rep2's lead changed %d rows" % cur.rowcount)
        e = expect_error(rep, "42501", "SELECT * FROM crm.convert_lead(%s)", (other,), "convert rep2's lead")
        check(isinstance(e, errors.InsufficientPrivilege), "raised %s" % type(e).__name__)
        check("row-level security" in (e.diag.message_detail or "").lower(), "detail %r" % e.diag.message_detail)
        e2 = expect_error(rep, "42501", "INSERT INTO crm.lead (name, owner) VALUES (%s, %s)",
                          ("Pushed", self.args.rep2), "insert a lead owned by rep2")
        check("row-level security" in e2.diag.message_primary, "message %r" % e2.diag.message_primary)
        remarks = self.rep2.execute("SELECT remarks FROM crm.lead WHERE id = %s", (other,)).fetchone()[0]
        check(remarks is None, "rep2's lead remarks became %r" % remarks)
        ok("another rep's lead: invisible, UPDATE 0 rows, convert 42501 (%s), insert for rep2 42501"
           % e.diag.message_primary)

        # Constraint violations name the constraint.
        e = expect_error(rep, "23514", "INSERT INTO crm.lead (name) VALUES (%s)", ("   ",), "blank lead name")
        check(isinstance(e, errors.CheckViolation), "raised %s" % type(e).__name__)
        check(e.diag.constraint_name == "lead_name_not_blank" and e.diag.table_name == "lead"
              and e.diag.schema_name == "crm",
              "diag constraint/table/schema %r/%r/%r" % (e.diag.constraint_name, e.diag.table_name, e.diag.schema_name))
        act = rep.execute("INSERT INTO crm.activity (type, subject, lead_id) VALUES ('task', 'Call back', %s) "
                          "RETURNING id", (fresh,)).fetchone()[0]
        q = "INSERT INTO crm.activity_participant (activity_id, user_role) VALUES (%s, %s)"
        rep.execute(q, (act, self.args.rep1))
        e = expect_error(rep, "23505", q, (act, self.args.rep1), "participant twice")
        check(isinstance(e, errors.UniqueViolation), "raised %s" % type(e).__name__)
        check(e.diag.constraint_name == "activity_participant_user_key", "constraint %r" % e.diag.constraint_name)
        ok("constraints: 23514 on %s.%s (%s), 23505 on %s"
           % (e.diag.schema_name, "lead", "lead_name_not_blank", e.diag.constraint_name))

        # An error inside a transaction: the transaction is aborted (25P02 for
        # anything else) until rollback; then the connection works again.
        conn = self.connect(self.args.rep1, autocommit=False)
        try:
            kept = self.insert_lead(conn, "Lost in rollback", "Rollback Co")
            expect_error(conn, "ZC002", "SELECT crm.convert_lead(%s)", (lead_id,), "conversion in a transaction")
            check(conn.info.transaction_status == TransactionStatus.INERROR,
                  "transaction status after the error: %s" % conn.info.transaction_status.name)
            e = expect_error(conn, "25P02", "SELECT 1", None, "statement in an aborted transaction")
            check(isinstance(e, errors.InFailedSqlTransaction), "raised %s" % type(e).__name__)
            conn.rollback()
            check(conn.info.transaction_status == TransactionStatus.IDLE,
                  "after rollback: %s" % conn.info.transaction_status.name)
            check(conn.execute("SELECT count(*) FROM crm.lead WHERE id = %s", (kept,)).fetchone()[0] == 0,
                  "the lead inserted before the error survived the rollback")
            r = conn.execute("SELECT (crm.convert_lead(%s)).account_created", (fresh,)).fetchone()[0]
            conn.commit()
            check(r is True, "conversion after rollback: %r" % r)
        finally:
            conn.close()
        ok("error in a transaction: INERROR, then 25P02; rollback undid the insert; the connection converted a lead afterwards")

    # ------------------------------------------------------------------
    # 3. LISTEN crm_reminder.
    def wait_notifies(self, conn, got, want, timeout):
        """Wait until `want` notifications are in `got` (filled by the handler)
        or timeout seconds passed.  psycopg 3.1's notifies() has no timeout,
        so wait on the socket and let a trivial query dispatch what arrived."""
        deadline = time.monotonic() + timeout
        while len(got) < want:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([conn.fileno()], [], [], left)
            if r:
                conn.execute("SELECT 1")
        return got

    def check_reminders(self):
        args = self.args
        listener = self.connect(args.manager)      # any login may LISTEN
        got = []
        listener.add_notify_handler(lambda n: got.append(n))
        listener.execute("LISTEN %s" % args.channel)
        try:
            worker = self.connect(args.rep1, autocommit=False)
            try:
                lead = self.insert_lead(worker, "Reminder lead", "Remind Me GmbH")
                act, remind_at = worker.execute(
                    "INSERT INTO crm.activity (type, subject, lead_id, due_at, remind_at, priority) "
                    "VALUES ('task', %s, %s, now() + interval '1 day', now() - interval '1 minute', 'High') "
                    "RETURNING id, remind_at", ("Send pricing", lead)).fetchone()
                worker.commit()
                claimed = worker.execute(
                    "SELECT activity_id, subject, owner::text FROM crm.claim_due_reminders(%s)", (100,)).fetchall()
                check(claimed == [(act, "Send pricing", args.rep1)], "claim returned %r" % claimed)
                # Nothing before the claim commits.
                self.wait_notifies(listener, got, 1, 0.3)
                check(got == [], "notification before the claim committed: %r" % got)
                worker.commit()
                self.wait_notifies(listener, got, 1, 5)
                check(len(got) == 1, "expected 1 notification after the claim committed, got %r" % got)
                n = got[0]
                check(n.channel == "crm_reminder", "channel %r" % n.channel)
                check(n.pid == worker.info.backend_pid, "sent by pid %d, worker is %d" % (n.pid, worker.info.backend_pid))
                payload = json.loads(n.payload)
                check(set(payload) == {"activity_id", "remind_at"}, "payload keys %r" % sorted(payload))
                check(payload["activity_id"] == act, "payload activity_id %r, the claimed activity is %d" % (payload["activity_id"], act))
                check(datetime.datetime.fromisoformat(payload["remind_at"]) == remind_at,
                      "payload remind_at %r, activity has %s" % (payload["remind_at"], remind_at))
                # The receiver reads the activity under its own row-level security
                # (the manager sees its team's activities).
                row = listener.execute("SELECT subject, reminder_sent_at IS NOT NULL FROM crm.activity WHERE id = %s",
                                       (payload["activity_id"],)).fetchone()
                check(row == ("Send pricing", True), "manager reads the activity as %r" % (row,))
                ok("LISTEN crm_reminder (as the manager): one notification on commit, payload %s" % n.payload)

                # A second claim finds nothing and notifies nothing.
                again = worker.execute("SELECT count(*) FROM crm.claim_due_reminders(%s)", (100,)).fetchone()[0]
                worker.commit()
                check(again == 0, "second claim returned %d reminders" % again)
                self.wait_notifies(listener, got, 2, 0.7)
                check(len(got) == 1, "second claim notified again: %r" % got[1:])
                ok("a second claim returns no reminder and sends no notification")

                # A rolled-back claim notifies nothing and leaves the reminder for the next one.
                act2 = worker.execute(
                    "INSERT INTO crm.activity (type, subject, lead_id, starts_at, remind_at) "
                    "VALUES ('call', 'Follow-up call', %s, now() + interval '1 hour', now() - interval '1 second') "
                    "RETURNING id", (lead,)).fetchone()[0]
                worker.commit()
                n1 = worker.execute("SELECT count(*) FROM crm.claim_due_reminders()").fetchone()[0]
                worker.rollback()
                self.wait_notifies(listener, got, 2, 0.5)
                check(n1 == 1 and len(got) == 1, "rolled-back claim: %d claimed, notifications %r" % (n1, got))
                ids = [r[0] for r in worker.execute("SELECT activity_id FROM crm.claim_due_reminders()")]
                worker.commit()
                self.wait_notifies(listener, got, 2, 5)
                check(ids == [act2] and len(got) == 2 and json.loads(got[1].payload)["activity_id"] == act2,
                      "claim after rollback: %r, notifications %r" % (ids, got))
                ok("a rolled-back claim sends nothing; the next claim gets activity %d and notifies it" % act2)
            finally:
                worker.close()
        finally:
            listener.close()

    # ------------------------------------------------------------------
    # 4. Prepared statements, executemany, COPY.
    def check_bulk(self):
        args, rep = self.args, self.rep1
        # executemany inserts a batch of leads.
        rows = [("Batch lead %d" % i, "Batch Company %d" % i, "b%d@batch%d.example" % (i, i)) for i in range(6)]
        with rep.cursor() as cur:
            cur.executemany("INSERT INTO crm.lead (name, company, email) VALUES (%s, %s, %s) RETURNING id",
                            rows, returning=True)
            ids = []
            while True:
                ids.append(cur.fetchone()[0])
                if not cur.nextset():
                    break
        check(len(ids) == 6 and len(set(ids)) == 6, "executemany returned ids %r" % ids)
        n = rep.execute("SELECT count(*) FROM crm.lead WHERE id = ANY(%s) AND owner = current_user::regrole",
                        (ids,)).fetchone()[0]
        check(n == 6, "%d of the 6 executemany leads are there and the rep's" % n)
        ok("executemany inserted 6 leads %r" % ids)

        # One prepared statement, executed for each lead.
        conv = "SELECT account_id, opportunity_id FROM crm.convert_lead(%s, opportunity_name => %s)"
        results = []
        with rep.cursor() as cur:
            for i, lead in enumerate(ids):
                results.append(cur.execute(conv, (lead, "Batch deal %d" % i), prepare=True).fetchone())
        check(len({r[0] for r in results}) == 6, "batch conversions gave accounts %r" % results)
        prep = rep.execute("SELECT count(*), sum(generic_plans + custom_plans) FROM pg_prepared_statements "
                           "WHERE statement LIKE '%%crm.convert_lead%%' AND NOT from_sql").fetchone()
        check(prep == (1, 6), "server-side prepared statements for convert_lead (count, executions): %r" % (prep,))
        names = [r[0] for r in rep.execute("SELECT name FROM crm.opportunity WHERE lead_id = ANY(%s) ORDER BY name",
                                           (ids,))]
        check(names == ["Batch deal %d" % i for i in range(6)], "opportunity names %r" % names)
        ok("one server-side prepared statement converted 6 leads (6 executions in pg_prepared_statements)")

        # COPY FROM as the superuser: the triggers still apply (timestamps are
        # the transaction's, whatever the file says), the rows belong to whom
        # the file says, and the guard refuses a forged conversion.
        su = self.connect(args.superuser)
        try:
            with su.transaction():
                with su.cursor() as cur:
                    with cur.copy("COPY crm.lead (name, company, email, owner, created_at) FROM STDIN") as cp:
                        for i in range(5):
                            cp.write_row(("Copied %d" % i, "Copy Corp %d" % i, "c%d@copy%d.example" % (i, i),
                                          args.rep1, datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)))
                    check(cur.rowcount == 5, "COPY loaded %d rows" % cur.rowcount)
                bad = su.execute("SELECT count(*) FROM crm.lead WHERE name LIKE 'Copied %%' "
                                 "AND created_at <> now()").fetchone()[0]
                check(bad == 0, "%d copied leads kept the created_at of the file" % bad)
            e = None
            try:
                with su.cursor() as cur:
                    with cur.copy("COPY crm.lead (name, status) FROM STDIN") as cp:
                        cp.write_row(("Forged", "Converted"))
            except psycopg.Error as err:
                e = err
            check(e is not None and e.sqlstate == "ZC010",
                  "COPY of a lead with status Converted: %s" % (e and e.sqlstate))
        finally:
            su.close()
        seen = rep.execute("SELECT count(*) FROM crm.lead WHERE name LIKE 'Copied %%'").fetchone()[0]
        check(seen == 5, "rep1 sees %d of the 5 leads copied for it" % seen)
        ok("COPY FROM as the superuser: 5 leads for rep1, created_at stamped by the trigger; a forged 'Converted' row: ZC010")

        # COPY FROM under row-level security is refused (README Limitations),
        # for a rep and for an admin login alike; COPY TO works and is filtered.
        for role in (args.rep1, args.admin):
            conn = rep if role == args.rep1 else self.connect(role)
            try:
                with conn.cursor() as cur:
                    with cur.copy("COPY crm.lead (name) FROM STDIN") as cp:
                        cp.write_row(("Via COPY as %s" % role,))
            except psycopg.Error as err:
                check(err.sqlstate == "0A000" and "COPY FROM not supported with row-level security" in str(err),
                      "COPY FROM as %s: %s %s" % (role, err.sqlstate, err))
            else:
                raise CheckFailed("COPY FROM as %s succeeded under row-level security" % role)
            finally:
                if conn is not rep:
                    conn.close()
        check(rep.info.transaction_status == TransactionStatus.IDLE, "rep connection not idle after the COPY error")
        # The documented workaround: COPY into a temporary table, INSERT ... SELECT.
        with rep.transaction():
            rep.execute("CREATE TEMP TABLE lead_in (name text, company text) ON COMMIT DROP")
            with rep.cursor() as cur:
                with cur.copy("COPY lead_in FROM STDIN") as cp:
                    for i in range(3):
                        cp.write_row(("Staged %d" % i, "Staged Co %d" % i))
            n = rep.execute("INSERT INTO crm.lead (name, company) SELECT name, company FROM lead_in").rowcount
        check(n == 3, "INSERT ... SELECT from the staging table inserted %d" % n)
        with rep.cursor() as cur:
            with cur.copy("COPY crm.lead (name, owner) TO STDOUT") as cp:
                out = list(cp.rows())
        owners = {r[1] for r in out}
        check(owners == {args.rep1} and len(out) > 0, "COPY TO as rep1 gives owners %r" % owners)
        ok("COPY FROM as rep and admin logins: 0A000 (row-level security); temp table + INSERT ... SELECT loads 3; "
           "COPY TO as rep1 gives only its %d leads" % len(out))

    # ------------------------------------------------------------------
    # 5. Autocommit vs. transactions.
    def check_transactions(self):
        args = self.args
        conn = self.connect(args.rep1, autocommit=False)
        obs = self.connect(args.rep1)        # autocommit: sees only what is committed
        try:
            lead = self.insert_lead(conn, "Rolled back", "Rollback Dynamics")
            conn.commit()
            res = conn.execute("SELECT account_id, opportunity_id FROM crm.convert_lead(%s)", (lead,)).fetchone()
            inside = conn.execute("SELECT status::text FROM crm.lead WHERE id = %s", (lead,)).fetchone()[0]
            check(inside == "Converted", "inside the transaction the lead is %s" % inside)
            outside = obs.execute("SELECT status::text, (SELECT count(*) FROM crm.account WHERE id = %s) "
                                  "FROM crm.lead WHERE id = %s", (res[0], lead)).fetchone()
            check(outside == ("New Lead", 0), "another session sees %r before commit" % (outside,))
            conn.rollback()
            after = obs.execute("SELECT l.status::text, l.account_id, "
                                "(SELECT count(*) FROM crm.account WHERE name = 'Rollback Dynamics'), "
                                "(SELECT count(*) FROM crm.opportunity WHERE id = %s) "
                                "FROM crm.lead l WHERE l.id = %s", (res[1], lead)).fetchone()
            check(after == ("New Lead", None, 0, 0), "after rollback: %r" % (after,))
            ok("a rolled-back conversion leaves the lead unconverted and no account or opportunity")

            # A conversion in a savepoint that is rolled back: the outer
            # transaction keeps its own work and the lead stays convertible.
            with conn.transaction():
                keep = self.insert_lead(conn, "Kept", "Outer Work Ltd")
                try:
                    with conn.transaction():
                        conn.execute("SELECT crm.convert_lead(%s)", (lead,))
                        raise RuntimeError("application changes its mind")
                except RuntimeError:
                    pass
                st = conn.execute("SELECT status::text FROM crm.lead WHERE id = %s", (lead,)).fetchone()[0]
                check(st == "New Lead", "after the savepoint rollback the lead is %s" % st)
            check(obs.execute("SELECT count(*) FROM crm.lead WHERE id = %s", (keep,)).fetchone()[0] == 1,
                  "outer transaction's lead not committed")
            ok("a conversion in a rolled-back savepoint is undone; the outer transaction commits its own work")

            # Autocommit: each statement commits on its own, so an error does
            # not undo the previous statement and needs no rollback.
            obs.execute("SELECT crm.convert_lead(%s)", (lead,))
            expect_error(obs, "ZC002", "SELECT crm.convert_lead(%s)", (lead,), "autocommit reconversion")
            check(obs.info.transaction_status == TransactionStatus.IDLE,
                  "autocommit connection after an error: %s" % obs.info.transaction_status.name)
            st = conn.execute("SELECT status::text FROM crm.lead WHERE id = %s", (lead,)).fetchone()[0]
            conn.commit()
            check(st == "Converted", "the autocommit conversion is not visible to another session: %s" % st)
            ok("autocommit: the conversion committed at once, the failed second one needed no rollback")
        finally:
            conn.close()
            obs.close()

    def run(self):
        self.rep1 = self.connect(self.args.rep1)
        self.rep2 = self.connect(self.args.rep2)
        check(self.rep1.info.parameter_status("is_superuser") != "on", "rep1 is a superuser")
        try:
            self.check_convert()
            self.check_errors()
            self.check_reminders()
            self.check_bulk()
            self.check_transactions()
        finally:
            self.rep1.close()
            self.rep2.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dbname", required=True)
    p.add_argument("--rep1", required=True, help="login, member of crm_sales")
    p.add_argument("--rep2", required=True, help="another login, member of crm_sales")
    p.add_argument("--manager", required=True, help="login, member of crm_manager, manages rep1 and rep2")
    p.add_argument("--admin", required=True, help="login, member of crm_admin")
    p.add_argument("--superuser", default="postgres")
    p.add_argument("--channel", default="crm_reminder", help="channel to LISTEN on")
    args = p.parse_args()
    started = time.monotonic()
    try:
        Client(args).run()
    except CheckFailed as e:
        print("FAIL: %s" % e, file=sys.stderr)
        return 1
    except psycopg.Error as e:
        print("FAIL: unexpected database error %s: %s" % (e.sqlstate, e), file=sys.stderr)
        return 1
    print("crm client: ok (%.1f s)" % (time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
