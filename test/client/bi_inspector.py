"""test/client/bi_inspector.py (run by test/scripts/bi_inspector.sh): what a
BI tool built on SQLAlchemy's inspector sees of crm as an analyst.

  1. every column of every view of schema crm the analyst may read is typed
     by the inspector as it comes, with nothing mapped: the views show owners
     as role names (text);
  2. the tables keep their owners as regrole, which the inspector does not
     know: those come back untyped (NullType), and nothing else does; with
     regrole mapped to String -- the one line an application reading the
     tables' owner columns adds, README "Using crm from an application" --
     every column of every table is typed too;
  3. every view the analyst may read returns its rows (SELECT *), with the
     types the inspector gave;
  4. the inspector lists every view of schema crm (PostgreSQL shows every
     relation's name), and the analyst may read each of them whole or not at
     all: no view grants it only some columns.  The views it may not read
     are exactly those below, each refused with 42501, because each shows
     what an analyst may not read (README "Role model": no names of people,
     e-mail addresses, phone numbers, descriptions or notes).
Usage: bi_inspector.py URL   (a SQLAlchemy URL naming the analyst's login)
"""
import sys
import warnings

from sqlalchemy import String, create_engine, inspect, text
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.types import NullType

# the views an analyst may not read, and why
REFUSED = {
    "quote_document": "the customer's and contact's names, e-mail and address",
    "overdue_task": "activity subjects (free text about people)",
    "overdue_tasks_by_owner": "reads crm.overdue_task (security_invoker)",
    "lead_follow_up": "leads' names",
    "lead_update_log": "the change log's old and new values (names, e-mail addresses)",
    "lead_score_detail": "evaluates the scoring rules on the whole lead row (every personal column)",
    "contactable": "names, e-mail addresses, phone numbers",
    "email_thread": "e-mail subjects and addresses",
}

warnings.simplefilter("ignore")  # "Did not recognize type 'regrole'" (tables' owners)
engine = create_engine(sys.argv[1])
failures = 0


def check(ok, what):
    global failures
    print(("ok: " if ok else "FAIL: ") + what)
    failures += not ok


def readable_relations(conn):
    insp = inspect(conn)
    for kind, names in (("view", insp.get_view_names("crm")), ("table", insp.get_table_names("crm"))):
        for name in names:
            if conn.execute(text("SELECT has_any_column_privilege(:r, 'SELECT')"),
                            {"r": "crm." + name}).scalar():
                yield kind, name


def untyped(conn):
    insp = inspect(conn)
    out = []
    for kind, name in readable_relations(conn):
        for col in insp.get_columns(name, schema="crm"):
            if isinstance(col["type"], NullType):
                pgtype = conn.execute(text(
                    "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = CAST(:r AS regclass) AND attname = :c"),
                    {"r": "crm." + name, "c": col["name"]}).scalar()
                out.append((kind, name, col["name"], pgtype))
    return out


with engine.connect() as conn:
    rels = list(readable_relations(conn))
    views = [n for k, n in rels if k == "view"]
    check(len(views) >= 10, f"the analyst may read {len(views)} views")
    missing = untyped(conn)
    in_views = [m for m in missing if m[0] == "view"]
    check(not in_views, "with nothing mapped every column of every view is typed"
          + ("" if not in_views else ": " + ", ".join(f"{m[1]}.{m[2]} ({m[3]})" for m in in_views)))
    others = [m for m in missing if m[3] != "regrole"]
    check(not others, "untyped table columns are all regrole: " + (", ".join(f"{m[1]}.{m[2]} ({m[3]})" for m in others) or "yes"))
    check(any(m[0] == "table" for m in missing), "the tables' owner columns are regrole (untyped before the mapping)")
    listed = inspect(conn).get_view_names("crm")
    partial = [n for n in listed if n not in views and conn.execute(
        text("SELECT has_any_column_privilege(:r, 'SELECT')"), {"r": "crm." + n}).scalar()]
    check(not partial, "no view is readable in part only" + (": " + ", ".join(partial) if partial else ""))
    refused = sorted(n for n in listed if n not in views)
    check(refused == sorted(REFUSED), "the views the analyst may not read: " + ", ".join(refused)
          + ("" if refused == sorted(REFUSED) else "; expected " + ", ".join(sorted(REFUSED))))
    for name in refused:
        try:
            with conn.begin_nested():
                conn.execute(text(f"SELECT * FROM crm.{name}")).fetchall()
            check(False, f"the analyst may not read crm.{name} ({REFUSED.get(name)})")
        except Exception as e:  # noqa: BLE001
            code = getattr(getattr(e, "orig", None), "pgcode", None)
            check(code == "42501", f"crm.{name} refused with {code} ({REFUSED.get(name)})")
    for name in views:
        try:
            with conn.begin_nested():
                conn.execute(text(f"SELECT * FROM crm.{name}")).fetchall()
        except Exception as e:  # noqa: BLE001 -- report every view
            check(False, f"the analyst reads crm.{name}: {e}")

PGDialect.ischema_names["regrole"] = String
engine.dispose()
with engine.connect() as conn:
    missing = untyped(conn)
    check(not missing, "with regrole mapped to String every column is typed"
          + ("" if not missing else ": " + ", ".join(f"{m[1]}.{m[2]}" for m in missing)))

print("all checks passed" if not failures else f"{failures} checks failed")
sys.exit(1 if failures else 0)
