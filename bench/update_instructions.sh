#!/usr/bin/env bash
# bench/update_instructions.sh: what one single-row UPDATE of each searched
# table costs, counted in CPU instructions (callgrind), for comparing trees
# (run it in each: the 0.6 figures in bench/README.md came from the 0.6
# tree with this script copied in).
#
#   bash bench/update_instructions.sh      WARM=20000 COUNT=1000
#   KINDS=lea bash bench/update_instructions.sh    (some of opp acc con lea)
#
# The database of bench/aggregates.sh (100,000 opportunities over 1,000
# accounts), plus 100,000 each of accounts, contacts and leads with accented
# names, e-mails and phones, loaded with triggers off.  Updates that touch
# no searched column, each a prepared statement on a random row: an
# opportunity's stage and amount (as bench/instructions.sh), an account's
# industry, a contact's title, a lead's title.  WARM of each first, then,
# from copies of that state, COUNT and 2 x COUNT in new single-user backends
# under callgrind: (long - short) / COUNT per update.  About 15 minutes.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
N=100000; WARM=${WARM:-20000}; COUNT=${COUNT:-1000}
ensure_packages
install_missing valgrind
build_and_install >&2
WORK=$(mktemp -d /tmp/crm-bench-upd.XXXXXX); chmod 755 "$WORK"
[ "$(id -u)" -ne 0 ] || chown "$(cluster_user)": "$WORK"
trap 'stop_cluster "$WORK/cluster"; rm -rf "$WORK"' EXIT
start_cluster "$WORK/cluster" >&2
make_db tpl "$N"
psql_q -d tpl -c "SET session_replication_role = replica;
  INSERT INTO crm.account (name, website, phone, owner) SELECT 'Firma ' || g || ' Müller GmbH', 'https://f' || g || '.example', '+49 30 ' || g, 'bench_rep1' FROM generate_series(1, $N) g;
  INSERT INTO crm.contact (name, email, phone, account_id, owner) SELECT 'Jürgen Weiß ' || g, 'jw' || g || '@f.example', '+49 30 ' || g, 1 + g % 1000, 'bench_rep1' FROM generate_series(1, $N) g;
  INSERT INTO crm.lead (name, company, email, phone, owner, furthest_status) SELECT 'Léa Dubois ' || g, 'Firma ' || g, 'lea' || g || '@f.example', '+33 1 ' || g, 'bench_rep1', 'New Lead' FROM generate_series(1, $N) g;" >/dev/null
psql_q -d tpl -c "VACUUM ANALYZE" >/dev/null
gen() { # seed n kind
    awk -v seed="$1" -v n="$2" -v kind="$3" -v max="$N" 'BEGIN {
        srand(seed); split("Qualification Requirement Proposal Negotiation", stage, " ")
        if (kind == "opp") print "PREPARE u(text, numeric, bigint) AS UPDATE crm.opportunity SET stage = $1, amount = $2 WHERE id = $3;"
        if (kind == "acc") print "PREPARE u(text, bigint) AS UPDATE crm.account SET industry = $1 WHERE id = $2 + 1000;"
        if (kind == "con") print "PREPARE u(text, bigint) AS UPDATE crm.contact SET title = $1 WHERE id = $2;"
        if (kind == "lea") print "PREPARE u(text, bigint) AS UPDATE crm.lead SET title = $1 WHERE id = $2;"
        for (i = 0; i < n; i++) {
            if (kind == "opp") printf "EXECUTE u(%c%s%c, %d, %d);\n", 39, stage[1 + int(rand() * 4)], 39, 1 + int(rand() * 100000), 1 + int(rand() * max)
            else printf "EXECUTE u(%cT%d%c, %d);\n", 39, int(rand() * 100), 39, 1 + int(rand() * max)
        }
    }'
}
KINDS=${KINDS:-opp acc con lea}
for k in $KINDS; do gen 1 $WARM $k >$WORK/${k}_warm.sql; gen 2 $COUNT $k >$WORK/${k}_short.sql; gen 2 $((2*COUNT)) $k >$WORK/${k}_long.sql; done
chmod a+r $WORK/*.sql
stop_cluster "$WORK/cluster"
for k in $KINDS; do as_cluster_user "$PG_BIN/postgres" --single -D "$WORK/cluster/data" tpl <$WORK/${k}_warm.sql >/dev/null 2>&1; done
as_cluster_user pg_ctl -D "$WORK/cluster/data" -l "$WORK/cluster/server.log" -w start >/dev/null
log "after the warm-up: aggregates exact, changes recorded, leads updated:"
psql_q -d tpl -At -c "SELECT count(*) FILTER (WHERE stripe = 1) > 0 AND NOT EXISTS (SELECT FROM crm.verify_aggregates()) FROM crm_internal.pipeline_aggregate" -c "SELECT count(*) FROM crm.opportunity_history" -c "SELECT count(*) FROM crm.lead WHERE title IS NOT NULL" >&2
stop_cluster "$WORK/cluster"
instructions() {
    local db=$1 file=$2 dir
    dir=$(mktemp -d "$WORK/cg.XXXXXX"); chmod 755 "$dir"
    [ "$(id -u)" -ne 0 ] || chown "$(cluster_user)": "$dir"
    as_cluster_user cp -a "$WORK/cluster/data" "$dir/data"
    as_cluster_user valgrind --tool=callgrind --callgrind-out-file="$dir/out" "$PG_BIN/postgres" --single -D "$dir/data" "$db" <"$file" >"$dir/log" 2>&1
    grep -q ERROR "$dir/log" && { grep ERROR "$dir/log" | head -2 >&2; }
    sed -n 's/^summary: \([0-9]*\)$/\1/p' "$dir/out"; rm -rf "$dir"
}
printf '\n%-44s %12s\n' "instructions per single-row update" "per update"
for k in $KINDS; do
    log "callgrind: $k, $COUNT and $((2 * COUNT)) updates"
    instructions tpl "$WORK/${k}_short.sql" >"$WORK/s" &
    l=$(instructions tpl "$WORK/${k}_long.sql"); wait; s=$(cat "$WORK/s")
    [ -n "$s" ] && [ -n "$l" ] || { echo "the measured runs of $k did not run" >&2; exit 1; }
    case $k in opp) what="opportunity: stage and amount";; acc) what="account: industry";;
               con) what="contact: title";; lea) what="lead: title";; esac
    printf '%-44s %12d\n' "$what" $(( (l - s) / COUNT ))
done
