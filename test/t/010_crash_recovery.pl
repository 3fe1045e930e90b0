# test/t/010_crash_recovery.pl: crash safety under a concurrent write load.
#
# A cluster with the extension, products with little stock, accounts, many
# leads whose companies are a few names written many ways (sharing e-mail
# domains, so concurrent conversions race on the same duplicate keys),
# opportunities with line items and Draft orders ready to activate.  pgbench
# (several clients, scripts written into the test's tmp dir) converts leads,
# inserts, updates and deletes opportunities and line items, runs quotes to
# orders (create_quote -> Presented -> Accepted -> create_order ->
# activate_order, the shortest legal path for a quote within the approval
# threshold), activates and cancels orders on the limited stock, and renames
# a stage that deals are in back and forth.  In the
# middle of it the server is stopped with an immediate shutdown (no
# checkpoint: the next start is a crash recovery), restarted, and every
# invariant of test/invariants.sql must hold; committed work must have
# survived and the load must go on working.  Two cycles.
use strict;
use warnings;
use File::Basename qw(dirname);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $invariants_file = dirname(__FILE__) . '/../invariants.sql';
my $invariants_sql  = slurp_file($invariants_file);
my $db              = 'crashdb';
my $clients         = 6;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', <<'CONF');
max_connections = 40
shared_buffers = 64MB
log_statement = none
deadlock_timeout = 50ms
statement_timeout = 30s
max_locks_per_transaction = 128
# Prepared transactions possible, as in the clusters of scripts/common.sh:
# the aggregates then look for a prepared transaction's row before
# inserting a stripe's new groups.
max_prepared_transactions = 4
CONF
$node->start;
$node->safe_psql('postgres', "CREATE DATABASE $db");

# ------------------------------------------------------------------ setup
$node->safe_psql($db, <<'SQL');
CREATE EXTENSION crm CASCADE;
CREATE SCHEMA crm_test;

-- products with small stock (and a service, not tracked); the stock before
-- any activation is the baseline of the conservation check
INSERT INTO crm.product (code, name, family, list_price, inventory, track_inventory) VALUES
    ('CR-A', 'Crash widget A', 'Hardware', 100, 40, true),
    ('CR-B', 'Crash widget B', 'Hardware', 250, 30, true),
    ('CR-C', 'Crash widget C', 'Hardware', 80, 25, true),
    ('CR-D', 'Crash widget D', 'Hardware', 40, 15, true),
    ('CR-SVC', 'Crash service', 'Services', 500, 0, false);
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price)
SELECT b.id, p.id, p.list_price FROM crm.price_book b CROSS JOIN crm.product p WHERE b.is_standard;
CREATE TABLE crm_test.stock_baseline AS SELECT id AS product_id, inventory FROM crm.product;

-- accounts before any conversion (Globex and Northwind are lead companies too)
INSERT INTO crm.account (name, website, industry) VALUES
    ('Northwind Traders', 'https://www.northwind.example/', 'Food'),
    ('Globex Corporation', 'https://globex.example', 'Energy'),
    ('Contoso', NULL, 'Software'), ('Fabrikam', NULL, 'Manufacturing'),
    ('Litware', NULL, 'Software'), ('Tailspin Toys', NULL, 'Retail');

-- lead companies: families of spellings with one company key and one domain
CREATE TABLE crm_test.company (id int PRIMARY KEY, company text NOT NULL, domain text NOT NULL);
INSERT INTO crm_test.company
SELECT row_number() OVER (), company, domain FROM (VALUES
    ('Acme', 'acme.example'), ('ACME Inc.', 'acme.example'), ('acme, inc', 'acme.example'),
    ('The Acme Company', 'acme.example'), ('Acme Co., Ltd.', 'acme.example'),
    ('Globex', 'globex.example'), ('GLOBEX Corp.', 'globex.example'), ('Globex, LLC', 'globex.example'),
    ('Initech', 'initech.example'), ('INITECH GmbH', 'initech.example'), ('initech ag', 'initech.example'),
    ('Umbrella', 'umbrella.example'), ('Umbrella PLC', 'umbrella.example'), ('The Umbrella Company', 'umbrella.example'),
    ('Northwind Traders', 'northwind.example'), ('NORTHWIND TRADERS, INC.', 'northwind.example')
) AS v (company, domain);

-- 600 leads: ready to convert (a few Not Qualified); e-mails personal, one
-- shared per domain (contacts race on it) or at a public provider
INSERT INTO crm.lead (name, company, email, website, industry, status)
SELECT nm, c.company,
       CASE g % 4 WHEN 0 THEN 'buyer@' || c.domain
                  WHEN 1 THEN lower(replace(nm, ' ', '.')) || '@' || c.domain
                  WHEN 2 THEN lower(replace(nm, ' ', '')) || (g % 50) || '@gmail.com'
                  ELSE lower(replace(nm, ' ', '.')) || g || '@' || c.domain END,
       CASE WHEN g % 5 = 0 THEN 'https://www.' || c.domain || '/' END,
       'Industry ' || g % 3,
       (CASE WHEN g % 23 = 0 THEN 'Not Qualified' WHEN g % 2 = 0 THEN 'Completed' ELSE 'In Transaction' END)::crm.lead_status
  FROM generate_series(1, 600) g
 CROSS JOIN LATERAL (SELECT (ARRAY['Ann Lee', 'Bob Novak', 'Carla Rossi', 'Dev Sato', 'Eve Weber', 'Hal Okafor'])[1 + g % 6] AS nm) n
  JOIN crm_test.company c ON c.id = 1 + (g * 7) % 16;

-- 60 opportunities with one to three line items on the tracked products
INSERT INTO crm.opportunity (name, account_id, stage, close_date)
SELECT 'Setup deal ' || g, 1 + g % 6, 'Proposal', date '2027-06-01' + g FROM generate_series(1, 60) g;
-- a quarter of them in a stage the load renames back and forth (rename.sql;
-- nothing else names that stage): a rename is no stage change
UPDATE crm.opportunity SET stage = 'Deal Closed' WHERE name LIKE 'Setup deal %' AND id % 4 = 0;
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity, discount)
SELECT o.id, p.id, 1 + (o.id + p.id) % 3, 0
  FROM crm.opportunity o JOIN crm.product p ON p.code IN ('CR-A', 'CR-B', 'CR-C', 'CR-D', 'CR-SVC')
 WHERE (o.id + p.id) % 3 <> 0
 ORDER BY o.id, p.id;

-- Draft orders ready to activate, for 40 of them: quote -> Presented ->
-- Accepted (no discount: within the approval threshold) -> order
DO $$
DECLARE o record; q bigint;
BEGIN
    FOR o IN SELECT id FROM crm.opportunity WHERE id <= 40 ORDER BY id LOOP
        q := crm.create_quote(o.id);
        UPDATE crm.quote SET status = 'Presented' WHERE id = q;
        UPDATE crm.quote SET status = 'Accepted' WHERE id = q;
        PERFORM crm.create_order(q);
    END LOOP;
END $$;

-- business errors the load's helpers caught, by SQLSTATE
CREATE TABLE crm_test.caught (what text NOT NULL, sqlstate text NOT NULL);
CREATE FUNCTION crm_test.note(what text, state text) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO crm_test.caught VALUES (what, state) $$;

-- convert a lead: one of the oldest convertible ones (clients collide on
-- them and on their keys) or a random one
CREATE FUNCTION crm_test.convert() RETURNS text LANGUAGE plpgsql AS $$
DECLARE lid bigint; r crm.conversion_result;
BEGIN
    IF random() < 0.5 THEN
        SELECT id INTO lid FROM crm.lead WHERE status NOT IN ('Converted', 'Not Qualified')
         ORDER BY id OFFSET floor(random() * 4)::int LIMIT 1;
    ELSE
        SELECT id INTO lid FROM crm.lead WHERE status NOT IN ('Converted', 'Not Qualified')
         ORDER BY random() LIMIT 1;
    END IF;
    IF lid IS NULL THEN RETURN 'none'; END IF;
    SELECT * INTO r FROM crm.convert_lead(lid);
    RETURN 'converted';
EXCEPTION WHEN SQLSTATE 'ZC001' OR SQLSTATE 'ZC002' OR SQLSTATE 'ZC003' THEN
    PERFORM crm_test.note('convert', SQLSTATE);
    RETURN SQLSTATE;
END $$;

-- a random opportunity, a random line item
CREATE FUNCTION crm_test.pick_opp() RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT id FROM crm.opportunity
     WHERE id >= (SELECT (random() * max(id))::bigint FROM crm.opportunity) ORDER BY id LIMIT 1 $$;
CREATE FUNCTION crm_test.pick_line() RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT id FROM crm.opportunity_line_item
     WHERE id >= (SELECT (random() * max(id))::bigint FROM crm.opportunity_line_item) ORDER BY id LIMIT 1 $$;

-- opportunity and line-item churn: 1 new deal with lines, 2 stage change,
-- 3 line quantity, 4 line delete, 5 delete a load deal without quotes
CREATE FUNCTION crm_test.churn(kind int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE oid bigint; st text;
BEGIN
    CASE kind
    WHEN 1 THEN
        INSERT INTO crm.opportunity (name, account_id, stage, close_date)
        VALUES ('Load deal', 1 + floor(random() * 6)::int, 'Qualification', date '2027-01-01' + floor(random() * 365)::int)
        RETURNING id INTO oid;
        INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity, discount)
        SELECT oid, p.id, 1 + floor(random() * 3)::int, 0
          FROM crm.product p WHERE random() < 0.5 OR p.code = 'CR-A' ORDER BY p.id;
    WHEN 2 THEN
        st := (ARRAY['Qualification', 'Requirement', 'Proposal', 'Negotiation', 'Successful', 'Failed'])[1 + floor(random() * 6)::int];
        UPDATE crm.opportunity SET stage = st, loss_reason = CASE WHEN st = 'Failed' THEN 'lost on price' ELSE loss_reason END,
               loss_reason_code = CASE WHEN st = 'Failed' THEN 'price' ELSE loss_reason_code END
         WHERE id = crm_test.pick_opp();
    WHEN 3 THEN
        UPDATE crm.opportunity_line_item SET quantity = 1 + floor(random() * 5)::int WHERE id = crm_test.pick_line();
    WHEN 4 THEN
        DELETE FROM crm.opportunity_line_item WHERE id = crm_test.pick_line();
    ELSE
        DELETE FROM crm.opportunity o
         WHERE o.id = (SELECT id FROM crm.opportunity x WHERE x.name = 'Load deal'
                          AND NOT EXISTS (SELECT 1 FROM crm.quote q WHERE q.opportunity_id = x.id)
                        ORDER BY random() LIMIT 1);
    END CASE;
    RETURN 'ok';
EXCEPTION WHEN SQLSTATE '23503' THEN   -- a quote appeared on the deal meanwhile
    PERFORM crm_test.note('churn', SQLSTATE);
    RETURN SQLSTATE;
END $$;

-- activate a random Draft order; not enough stock (ZC304) leaves it Draft
CREATE FUNCTION crm_test.activate() RETURNS text LANGUAGE plpgsql AS $$
DECLARE oid bigint;
BEGIN
    SELECT id INTO oid FROM crm.sales_order WHERE status = 'Draft' ORDER BY random() LIMIT 1;
    IF oid IS NULL THEN RETURN 'none'; END IF;
    PERFORM crm.activate_order(oid);
    RETURN 'activated';
EXCEPTION WHEN SQLSTATE 'ZC304' OR SQLSTATE 'ZC020' THEN   -- no stock; activated meanwhile
    PERFORM crm_test.note('activate', SQLSTATE);
    RETURN SQLSTATE;
END $$;

-- the whole path from an opportunity with lines to an activated order
CREATE FUNCTION crm_test.quote_to_order() RETURNS text LANGUAGE plpgsql AS $$
DECLARE opp bigint; q bigint; so bigint;
BEGIN
    SELECT o.id INTO opp FROM crm.opportunity o
     WHERE EXISTS (SELECT 1 FROM crm.opportunity_line_item i WHERE i.opportunity_id = o.id)
     ORDER BY random() LIMIT 1;
    q := crm.create_quote(opp);
    UPDATE crm.quote SET status = 'Presented' WHERE id = q;
    UPDATE crm.quote SET status = 'Accepted' WHERE id = q;
    so := crm.create_order(q);
    BEGIN
        PERFORM crm.activate_order(so);
    EXCEPTION WHEN SQLSTATE 'ZC304' THEN
        PERFORM crm_test.note('quote_to_order', SQLSTATE);
        RETURN 'order left Draft';
    END;
    RETURN 'activated';
EXCEPTION WHEN SQLSTATE 'ZC011' OR SQLSTATE '23503' OR SQLSTATE 'ZC105' THEN   -- the deal went away
    PERFORM crm_test.note('quote_to_order', SQLSTATE);
    RETURN SQLSTATE;
END $$;

-- cancel a random activated order: its stock comes back
CREATE FUNCTION crm_test.cancel() RETURNS text LANGUAGE plpgsql AS $$
DECLARE oid bigint;
BEGIN
    SELECT id INTO oid FROM crm.sales_order WHERE status = 'Activated' ORDER BY random() LIMIT 1;
    IF oid IS NULL THEN RETURN 'none'; END IF;
    PERFORM crm.cancel_order(oid, 'crash test');
    RETURN 'cancelled';
EXCEPTION WHEN SQLSTATE 'ZC020' THEN   -- cancelled meanwhile
    PERFORM crm_test.note('cancel', SQLSTATE);
    RETURN SQLSTATE;
END $$;
SQL

# the invariants hold before the load (and the check itself runs)
is($node->safe_psql($db, $invariants_sql), '', 'invariants hold after setup');
is($node->safe_psql($db, "SELECT count(*) FROM crm.sales_order WHERE status = 'Draft'"),
	'40', 'setup: 40 Draft orders ready to activate');

# ------------------------------------------------------------------ load
my $tmp = PostgreSQL::Test::Utils::tempdir;
my %scripts = (
	'convert.sql'        => "SELECT crm_test.convert();\n",
	'churn.sql'          => "\\set k random(1, 5)\nSELECT crm_test.churn(:k);\n",
	'activate.sql'       => "SELECT crm_test.activate();\n",
	'quote_to_order.sql' => "SELECT crm_test.quote_to_order();\n",
	'cancel.sql'         => "SELECT crm_test.cancel();\n",
	'rename.sql'         => "UPDATE crm.opportunity_stage SET name = CASE WHEN name = 'Deal Closed' "
	  . "THEN 'Deal Closed (renamed)' ELSE 'Deal Closed' END "
	  . "WHERE name IN ('Deal Closed', 'Deal Closed (renamed)');\n",
	'multi.sql'          => <<'EOF',
BEGIN;
SELECT crm_test.churn(1);
SELECT crm_test.convert();
SELECT crm_test.churn(3);
SELECT crm_test.activate();
COMMIT;
EOF
);
for my $f (keys %scripts)
{
	open my $fh, '>', "$tmp/$f" or die "$tmp/$f: $!";
	print $fh $scripts{$f};
	close $fh;
}
my @mix = ('convert.sql@30', 'churn.sql@30', 'activate.sql@10', 'quote_to_order.sql@8',
	'cancel.sql@2', 'multi.sql@5', 'rename.sql@2');

# start_load(): pgbench in the background, for longer than we let it run
sub start_load
{
	my ($out, $err) = ('', '');
	my @cmd = ('pgbench', '-n', '-c', $clients, '-j', $clients, '-T', 60,
		'--max-tries=20', '-h', $node->host, '-p', $node->port, '-U', 'postgres');
	push @cmd, map { ('-f', "$tmp/$_") } @mix;
	push @cmd, $db;
	my $h = IPC::Run::start(\@cmd, '<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout(120));
	return { h => $h, out => \$out, err => \$err };
}

my $count_sql = <<'SQL';
SELECT (SELECT count(*) FROM crm.lead WHERE status = 'Converted') || ' '
    || (SELECT count(*) FROM crm.sales_order WHERE status = 'Activated') || ' '
    || (SELECT count(*) FROM crm.opportunity WHERE name = 'Load deal')
SQL

for my $cycle (1, 2)
{
	my $cycle_start = $node->safe_psql($db, 'SELECT now()');
	my $load = start_load();

	# let committed work pile up, then crash in the middle of the load
	ok( $node->poll_query_until($db,
			"SELECT (SELECT count(*) FROM crm.lead WHERE converted_at > '$cycle_start') >= 25"
			  . " AND EXISTS (SELECT FROM crm.sales_order WHERE activated_at > '$cycle_start')"
			  . " AND EXISTS (SELECT FROM crm.opportunity WHERE name = 'Load deal' AND created_at > '$cycle_start')"),
		"cycle $cycle: the load committed conversions, activations and new deals");
	# what has committed so far (the load goes on meanwhile: orders may still
	# be cancelled, deals deleted, but leads never unconverted)
	my $leads_before = $node->safe_psql($db,
		"SELECT string_agg(id::text, ',' ORDER BY id) FROM crm.lead WHERE status = 'Converted'");
	my $orders_before = $node->safe_psql($db,
		"SELECT string_agg(id::text, ',' ORDER BY id) FROM crm.sales_order WHERE status = 'Activated'");
	my $deals_before = $node->safe_psql($db,
		"SELECT string_agg(id::text, ',' ORDER BY id) FROM crm.opportunity WHERE name = 'Load deal'");
	my $n_leads_before  = scalar(split /,/, $leads_before);
	my $n_orders_before = scalar(split /,/, $orders_before);
	ok($load->{h}->pumpable, "cycle $cycle: pgbench still running when the server is stopped");

	my $log_offset = -s $node->logfile;
	$node->stop('immediate');

	# pgbench loses its connections and ends
	eval { $load->{h}->finish; };
	my $pgbench_output = ${ $load->{out} } . ${ $load->{err} };
	note("pgbench's errors, first lines:\n"
		  . join("\n", grep { defined } (split /\n/, ${ $load->{err} })[0 .. 7]));
	like(${ $load->{err} }, qr/terminating connection due to immediate shutdown command/,
		"cycle $cycle: pgbench's sessions were terminated by the immediate shutdown");
	# pgbench reports a connection lost mid-command in one of three ways,
	# depending on where it notices: "perhaps the backend died"; while
	# reading a result, libpq's "server closed the connection unexpectedly";
	# or, when the backend sent its goodbye before closing, the FATAL
	# "terminating connection due to immediate shutdown command"
	my $aborted = () = ${ $load->{err} } =~
	  /client \d+ (?:script \d+ )?aborted in command [^\n]*(?:perhaps the backend died|server closed the connection unexpectedly|terminating connection due to immediate shutdown)/g;
	is($aborted, $clients,
		"cycle $cycle: all $clients pgbench clients lost their connection in mid-load (aborted)")
	  or diag(${ $load->{err} });
	unlike($pgbench_output, qr/ERROR:  (?!.*terminating connection)/,
		"cycle $cycle: pgbench saw no SQL error before the crash")
	  or diag($pgbench_output);

	$node->start;
	my $log = slurp_file($node->logfile, $log_offset);
	like($log, qr/received immediate shutdown request/,
		"cycle $cycle: the server log shows the immediate shutdown");
	like($log, qr/database system was not properly shut down; automatic recovery in progress/,
		"cycle $cycle: the restart was a crash recovery");
	like($log, qr/redo done at|redo starts at/, "cycle $cycle: WAL was replayed");

	# committed work survived: at least what was counted before the crash
	my ($converted, $activated, $deals) = split / /, $node->safe_psql($db, $count_sql);
	is( $node->safe_psql($db,
			"SELECT count(*) FROM crm.lead WHERE status = 'Converted' AND id IN ($leads_before)"),
		$n_leads_before,
		"cycle $cycle: all $n_leads_before leads converted before the crash are still converted");
	is( $node->safe_psql($db,
			"SELECT count(*) FROM crm.sales_order WHERE status IN ('Activated', 'Cancelled') AND id IN ($orders_before)"),
		$n_orders_before,
		"cycle $cycle: all $n_orders_before orders activated before the crash are still activated (or since cancelled)");
	# a deal seen before the crash is still there, unless the load deleted
	# it in a committed transaction (which the change log then records)
	is( $node->safe_psql($db,
			"SELECT count(*) FROM unnest('{$deals_before}'::bigint[]) AS d (id)"
			  . " WHERE NOT EXISTS (SELECT FROM crm.opportunity o WHERE o.id = d.id)"
			  . "   AND NOT EXISTS (SELECT FROM crm.change_log c WHERE c.table_name = 'crm.opportunity'::regclass"
			  . "                      AND c.row_id = d.id AND c.operation = 'DELETE')"),
		'0',
		"cycle $cycle: every deal inserted by the load before the crash survived or was deleted by a committed transaction");

	my $violations = $node->safe_psql($db, $invariants_sql);
	is($violations, '', "cycle $cycle: every invariant of test/invariants.sql holds after recovery");
	is($node->safe_psql($db, 'SELECT count(*) FROM crm.verify_aggregates()'),
		'0', "cycle $cycle: crm.verify_aggregates() is empty after recovery");
	is($node->safe_psql($db, <<'SQL'), '', "cycle $cycle: no product oversold (stock >= 0)");
SELECT code FROM crm.product WHERE inventory < 0
SQL

	# work goes on: one more conversion, as a sales rep would do it (of a
	# lead the load left, or of a new one when the load converted them all)
	my $lead = $node->safe_psql($db,
		"SELECT min(id) FROM crm.lead WHERE status NOT IN ('Converted', 'Not Qualified')");
	$lead = $node->safe_psql($db,
		"INSERT INTO crm.lead (name, company, email) VALUES ('After cycle $cycle', 'Restart $cycle Ltd', 'lead$cycle\@restart.example') RETURNING id")
	  if $lead eq '';
	is( $node->safe_psql($db,
			"SELECT opportunity_id IS NOT NULL AND account_id IS NOT NULL AND contact_id IS NOT NULL FROM crm.convert_lead($lead)"),
		't', "cycle $cycle: a lead converts after the restart");
	is($node->safe_psql($db, $invariants_sql), '',
		"cycle $cycle: invariants hold after the post-restart conversion");
}

# what the load did, for the log
note($node->safe_psql($db,
	"SELECT what || ' ' || sqlstate || ': ' || count(*) FROM crm_test.caught GROUP BY what, sqlstate ORDER BY 1"));
note($node->safe_psql($db, $count_sql));

$node->stop;
done_testing();
