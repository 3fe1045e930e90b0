#!/usr/bin/env bash
# test/scripts/docs_consistency.sh: the lists kept by hand agree with their
# one source of truth.
#
# SQLSTATEs.  The source of truth is the table under "## SQLSTATEs" in
# README.md (first column of each row).  Checked against it:
#   1. the ERRCODE_CRM_* macros of src/crm.h: exactly the README's ZC codes;
#   2. every such macro is raised: used in a src/*.c file, or its code is
#      raised by the install script (ERRCODE = 'ZC...' in sql/install/*.sql);
#   3. every ERRCODE_* name used in src/*.c, resolved through src/crm.h and
#      PostgreSQL's utils/errcodes.h, and every ERRCODE = '.....' raised in
#      sql/install/*.sql, is in the README's table;
#   4. every code in the README's table is a ZC code of crm.h or a code
#      PostgreSQL defines (no typos);
#   5. the table of documented codes in the bad_input regression test (the
#      INSERT INTO documented VALUES list) holds exactly the README's codes.
# Functions.  The source of truth is the catalog after CREATE EXTENSION crm CASCADE;
# checked against it, in the README section "## Functions":
#   6. every function of schema crm is named there (crm.NAME(...));
#   7. every crm.NAME( there is a function of schema crm;
#   8. every crm.NAME(a, b, ...) there whose arguments are plain names (a
#      signature, not an example) gives the function's input argument names,
#      in order;
#   9. every function a CRM role may execute (EXECUTE granted to PUBLIC or to
#      a crm_* role; trigger functions excluded) is called in bad_input.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/common.sh

readme=README.md
header=src/crm.h
bad_input=
for f in test/sql/bad_input.sql sql/bad_input.sql; do   # where pg_regress inputs live
    [ -e "$f" ] && { bad_input=$f; break; }
done
[ -n "$bad_input" ] || fail "bad_input.sql not found"
errcodes_h=$("$PG_BIN/pg_config" --includedir-server)/utils/errcodes.h
[ -f "$errcodes_h" ] || fail "$errcodes_h not found"

problems=0
problem() { echo "MISMATCH: $*" >&2; problems=$((problems + 1)); }

# in_list ITEM LIST: ITEM is a line of LIST (no pipe: grep -q would cut
# echo off, and pipefail would count that as a failure)
in_list() { grep -qxF -- "$1" <<<"$2"; }

# same_set WHAT_A LIST_A WHAT_B LIST_B: one problem per element in only one list
same_set() {
    local c
    while read -r c; do
        [ -n "$c" ] && problem "$c is in $1 but not in $3"
    done < <(comm -23 <(echo "$2") <(echo "$4"))
    while read -r c; do
        [ -n "$c" ] && problem "$c is in $3 but not in $1"
    done < <(comm -13 <(echo "$2") <(echo "$4"))
}

# section TITLE: the lines of README.md from "## TITLE" to the next "## "
section() {
    awk -v t="## $1" '$0 == t { on = 1; next } on && /^## / { exit } on' "$readme"
}

# ---------------------------------------------------------------- SQLSTATEs
# codes of the README's table: backticked five-character codes in the first cell
readme_codes=$(section SQLSTATEs | awk -F'|' '/^\| *`/ { print $2 }' \
    | grep -oE '`[0-9A-Z]{5}`' | tr -d '`' | sort -u)
[ "$(echo "$readme_codes" | grep -c .)" -ge 30 ] || fail "the README's SQLSTATE table was not found"
readme_zc=$(echo "$readme_codes" | grep '^ZC' || true)

# name -> code of a MAKE_SQLSTATE('A','B','C','D','E') #define line
macro_codes() {
    sed -nE "s/^#define[[:space:]]+(ERRCODE_[A-Z0-9_]+)[[:space:]]+MAKE_SQLSTATE\('(.)','(.)','(.)','(.)','(.)'\).*/\1 \2\3\4\5\6/p" "$@"
}
crm_macros=$(macro_codes "$header" | sort)
header_zc=$(echo "$crm_macros" | awk '{ print $2 }' | sort -u)

# 1. crm.h == README (ZC)
same_set "$header's ERRCODE_CRM_* macros" "$header_zc" "the README's SQLSTATE table" "$readme_zc"

# codes raised by the install script: ERRCODE = 'xxxxx'
sql_codes=$(grep -hoE "ERRCODE[[:space:]]*=[[:space:]]*'[0-9A-Z]{5}'" sql/install/*.sql \
    | grep -oE "'[0-9A-Z]{5}'" | tr -d "'" | sort -u)

# 2. every crm.h macro is raised somewhere
while read -r name code; do
    [ -n "$name" ] || continue
    if ! grep -qw "$name" src/*.c && ! in_list "$code" "$sql_codes"; then
        problem "$code ($name) is defined in $header but raised nowhere (src/*.c, sql/install/*.sql)"
    fi
done <<<"$crm_macros"

# 3. every code raised in C or by the install script is documented
all_macros=$( (macro_codes "$errcodes_h"; echo "$crm_macros") | sort -u)
for name in $(grep -hoE '\bERRCODE_[A-Z0-9_]+' src/*.c | sort -u); do
    code=$(echo "$all_macros" | awk -v n="$name" '$1 == n { print $2 }')
    if [ -z "$code" ]; then
        problem "$name (used in src/*.c) is neither in $header nor in PostgreSQL's errcodes.h"
    elif ! in_list "$code" "$readme_codes"; then
        problem "$code ($name, raised in $(grep -lw "$name" src/*.c | tr '\n' ' '| sed 's/ $//')) is not in the README's SQLSTATE table"
    fi
done
for code in $sql_codes; do
    in_list "$code" "$readme_codes" \
        || problem "$code (raised in $(grep -l "'$code'" sql/install/*.sql | tr '\n' ' ')) is not in the README's SQLSTATE table"
done

# 4. every README code exists
pg_codes=$(macro_codes "$errcodes_h" | awk '{ print $2 }' | sort -u)
for code in $readme_codes; do
    case $code in ZC*) continue ;; esac
    in_list "$code" "$pg_codes" || problem "$code in the README's SQLSTATE table is not a PostgreSQL SQLSTATE"
done

# 5. bad_input's table of documented codes == README
bad_codes=$(awk '/^INSERT INTO documented VALUES/ { on = 1; next } on { print } on && /;[[:space:]]*$/ { exit }' "$bad_input" \
    | grep -oE "'[0-9A-Z]{5}'" | tr -d "'" | sort -u)
[ "$(echo "$bad_codes" | grep -c .)" -ge 30 ] || fail "the documented list of $bad_input was not found"
same_set "the README's SQLSTATE table" "$readme_codes" "$bad_input's documented list" "$bad_codes"

# ---------------------------------------------------------------- functions
test_cluster crm-docs
psql_as postgres postgres -c "CREATE EXTENSION crm CASCADE"
# name|input argument names, comma-separated|callable by a CRM role
catalog=$(psql_as postgres postgres -F'|' -c "
SELECT p.proname,
       coalesce((SELECT string_agg(a.name, ', ' ORDER BY a.n)
                   FROM unnest(p.proargnames, p.proargmodes::text[]) WITH ORDINALITY AS a(name, mode, n)
                  WHERE coalesce(a.mode, 'i') IN ('i', 'b', 'v')), ''),
       p.prorettype <> 'trigger'::regtype
       AND (p.proacl IS NULL
            OR EXISTS (SELECT FROM aclexplode(p.proacl) x
                        WHERE x.privilege_type = 'EXECUTE'
                          AND (x.grantee = 0 OR pg_get_userbyid(x.grantee) LIKE 'crm\_%')))
  FROM pg_proc p
 WHERE p.pronamespace = 'crm'::regnamespace
 ORDER BY 1")
[ "$(echo "$catalog" | grep -c .)" -ge 30 ] || fail "too few functions in schema crm"
# overloaded names (several rows of one name): each signature must be
# given in the README (checked with 8. below)
overloaded=$(echo "$catalog" | cut -d'|' -f1 | sort | uniq -d)

functions=$(section Functions)
[ -n "$functions" ] || fail "the README has no section \"## Functions\""
documented_names=$(echo "$functions" | grep -oE 'crm\.[a-z_0-9]+\(' | sed 's/^crm\.//; s/($//' | sort -u)

# 6. and 9.
while IFS='|' read -r name args callable; do
    in_list "$name" "$documented_names" \
        || problem "crm.$name() is not in the README's Functions section"
    if in_list "$name" "$overloaded" && ! grep -qF "crm.$name($args)" <<<"$functions"; then
        problem "crm.$name($args), one of the functions named crm.$name, is not in the README's Functions section"
    fi
    if [ "$callable" = t ] && ! grep -q "crm\.$name(" "$bad_input"; then
        problem "crm.$name() may be called by CRM roles but $bad_input does not call it"
    fi
done <<<"$catalog"

# 7.
for name in $documented_names; do
    in_list "$name" "$(cut -d'|' -f1 <<<"$catalog")" \
        || problem "crm.$name() is in the README's Functions section but not in schema crm"
done

# 8. signatures: crm.name(a, b) with plain lower-case names
while read -r sig; do
    name=${sig%%(*}; name=${name#crm.}
    given=${sig#*(}; given=${given%)}
    actual=$(echo "$catalog" | awk -F'|' -v n="$name" '$1 == n { print $2 }')
    in_list "$name" "$(cut -d'|' -f1 <<<"$catalog")" || continue   # reported by 7.
    in_list "$given" "$actual" \
        || problem "the README gives crm.$name($given); its arguments are ($(echo "$actual" | paste -sd';' | sed 's/;/) or (/g'))"
done < <(echo "$functions" | grep -oE 'crm\.[a-z_0-9]+\(([a-z_][a-z_0-9]*(, [a-z_][a-z_0-9]*)*)?\)' | sort -u)

[ "$problems" -eq 0 ] || fail "$problems mismatches between the README, $header, the code and $bad_input"
echo "SQLSTATEs: $(echo "$readme_codes" | wc -l) documented, $(echo "$header_zc" | wc -l) in $header; functions: $(echo "$catalog" | wc -l) in schema crm, all documented"
