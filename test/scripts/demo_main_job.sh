#!/usr/bin/env bash
# test/scripts/demo_main_job.sh: the README's first command, end to end.
#
# Runs scripts/demo.sh into a private directory and checks that it built,
# installed, started a cluster, loaded the sample data, converted the ready
# leads with the expected reuse of existing records, refused a repeat
# conversion, and left a cluster one can connect to with the printed command;
# then that "demo.sh stop" removes it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/common.sh

export CRM_DEMO_DIR=$(mktemp -d /tmp/crm-demo-test.XXXXXX)/demo
chmod 755 "$(dirname "$CRM_DEMO_DIR")"
trap 'bash scripts/demo.sh stop >/dev/null 2>&1 || true; rm -rf "$(dirname "$CRM_DEMO_DIR")"' EXIT


out=$(bash scripts/demo.sh 2>&1) || { echo "$out"; fail "demo.sh exited non-zero"; }
echo "$out"

# The report: 9 ready leads converted, 4 new and 5 reused accounts,
# 8 new and 1 reused contact, 9 opportunities.
grep -Eq '^ +9 \| +4 \| +5 \| +8 \| +1 \| +9$' <<<"$out" || fail "summary row not as expected"
grep -q 'Margaret Peacock | Northwind Traders (existing)' <<<"$out" || fail "company variant not deduplicated"
grep -q 'Nancy Davolio    | Northwind Traders (existing) | Nancy Davolio (existing)' <<<"$out" || fail "contact not reused by e-mail"
grep -q 'Tom Becker       | Litware, Inc. (existing)' <<<"$out" || fail "second Litware lead not reusing the first's account"
grep -q 'ERROR:  lead 1 is already converted' <<<"$out" || fail "repeat conversion not refused"
grep -Eq '^ lead +\| +2 \| contact +\| +1 \| email +\| +1\.00 \| merged$' <<<"$out" || fail "duplicate of a contact by e-mail not queued on entry, or not settled by the conversion"
grep -Eq '^ +\| +\| alice +\| email +\| +$' <<<"$out" || fail "a hidden duplicate not shown as owner and rule only"
grep -Eq '^ account +\| +1 \| Northwind Traders +\| https://northwind\.example' <<<"$out" || fail "search did not find Northwind Traders"
grep -Eq '\| Hanna Berg +\| +15 \| alice +\| inbound \| created, merged$' <<<"$out" || fail "capture not scored, routed or merged"
grep -Eq '\| Luis Ortega +\| +5 \| bob +\| inbound \| created$' <<<"$out" || fail "second capture not routed round-robin"
# The Sales Cloud tour: approval by the manager, order activated, stock reserved.
grep -Eq '^ approved +\| ok for a 2-year supply contract +\| carol$' <<<"$out" || fail "quote not approved by carol"
grep -Eq '^ SO-000001 +\| Activated +\| +8528\.10 \| bob$' <<<"$out" || fail "order not activated"
grep -Eq '^ NW-COF-12 +\| +25\.00$' <<<"$out" || fail "stock not reserved"
grep -Eq '^ Coffee Expo 2027 +\| +3 \| +3 \| +3 \| +1 \| +7860\.00 \|' <<<"$out" || fail "campaign figures wrong"

# The printed connection command works, also for a sales rep.
connect=$(echo "$out" | grep -E '^ +psql -h .* -U alice ' | head -1)
[ -n "$connect" ] || fail "no connection command printed"
# Row-level security: alice sees her own converted leads, and only hers;
# carol, their manager, sees alice's and bob's.
alice=$(as_cluster_user $connect -X -At -c "SELECT count(*) || '/' || count(*) FILTER (WHERE owner = 'alice'::regrole) FROM crm.lead WHERE status = 'Converted'")
all=$(as_cluster_user ${connect/-U alice/-U postgres} -X -At -c "SELECT count(*) FILTER (WHERE owner = 'alice'::regrole) FROM crm.lead WHERE status = 'Converted'")
[ "$alice" = "$all/$all" ] && [ "$all" -gt 0 ] || fail "alice sees '$alice' converted leads (visible/own), owns $all"
carol=$(as_cluster_user ${connect/-U alice/-U carol} -X -At -c "SELECT count(*) FROM crm.lead WHERE status = 'Converted'")
[ "$carol" = "9" ] || fail "expected carol to see the team's 9 converted leads, got '$carol'"

bash scripts/demo.sh stop
[ ! -e "$CRM_DEMO_DIR" ] || fail "demo.sh stop left $CRM_DEMO_DIR behind"
echo "demo main job: ok"
