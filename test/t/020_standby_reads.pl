# test/t/020_standby_reads.pl: read scale-out on a hot standby.
#
# A primary streaming to a hot standby (made from a base backup).  The demo
# data (demo/sample_data.sql) and the demo's conversions, quote and order
# (demo/convert_ready_leads.sql) are loaded on the primary.  Once the standby
# has caught up, every view in schemas crm and crm_internal (found in the
# catalog, not listed here) and every table in them -- the four maintained
# aggregates of crm_internal among them -- must read the same on both nodes:
# as the superuser, and as a sales rep of the demo (SET ROLE alice; the views
# of crm are security_invoker, so row-level security applies and the rep
# sees fewer rows than the superuser, the same on both nodes, also of the
# aggregates, read through crm.pipeline_totals and crm.account_rollup).  crm.verify_aggregates() is empty on the standby; writes
# there fail with 25006 (read-only transaction).  Then the primary converts
# another lead and moves an opportunity to another stage, and after catching
# up both nodes agree again and the standby shows the change.
use strict;
use warnings;
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = dirname(__FILE__) . '/../..';
my $db   = 'crmdemo';
my $rep  = 'alice';

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', <<'CONF');
max_connections = 20
shared_buffers = 32MB
log_statement = none
CONF
$primary->start;
$primary->backup('base');

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery (hot standby)');

# the demo, on the primary only
$primary->safe_psql('postgres', "CREATE DATABASE $db");
$primary->safe_psql($db, 'CREATE EXTENSION crm CASCADE');
$primary->safe_psql($db, slurp_file("$root/demo/sample_data.sql"));
$primary->safe_psql($db, slurp_file("$root/demo/convert_ready_leads.sql"));
$primary->wait_for_catchup($standby);

ok($primary->safe_psql($db, "SELECT count(*) FROM crm.lead WHERE status = 'Converted'") > 0,
	'the demo converted leads on the primary');
is($standby->safe_psql($db, "SELECT count(*) FROM crm.sales_order WHERE status = 'Activated'"),
	'1', 'the demo\'s activated order reached the standby');

# every view and every table of schemas crm and crm_internal, from the catalog
my $rels_sql = <<'SQL';
SELECT c.oid::regclass AS rel, c.relkind,
       has_table_privilege('%s', c.oid, 'SELECT') AND c.relnamespace = 'crm'::regnamespace AS rep_reads,
       -- what to checksum of each row: the whole row, except for views that
       -- read the clock, where columns of type interval (now() - due_at)
       -- would differ between two reads taken at different moments
       CASE WHEN c.relkind = 'v' AND pg_get_viewdef(c.oid) ~* 'now\(\)|current_timestamp|clock_timestamp|statement_timestamp'
                 AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND a.atttypid = 'interval'::regtype)
            THEN 'ROW(' || (SELECT string_agg('t.' || quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
                             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                               AND a.atttypid <> 'interval'::regtype) || ')'
            ELSE 't' END AS row_expr
  FROM pg_class c
 WHERE c.relnamespace IN ('crm'::regnamespace, 'crm_internal'::regnamespace) AND c.relkind IN ('v', 'm', 'r', 'p')
 ORDER BY c.oid::regclass::text
SQL
my (@views, @tables, %row_expr, %rep_reads);
for my $line (split /\n/, $primary->safe_psql($db, sprintf($rels_sql, $rep)))
{
	my ($rel, $kind, $reads, $expr) = split /\|/, $line;
	push @{ $kind =~ /[vm]/ ? \@views : \@tables }, $rel;
	$row_expr{$rel}  = $expr;
	$rep_reads{$rel} = $reads eq 't';
	note("$rel: rows compared without their interval columns (the view reads the clock): $expr")
	  if $expr ne 't';
}
my @aggregates = grep { /_aggregate$/ } @tables;
my @rep_views = grep { $rep_reads{$_} } @views;
# the rep reads the aggregates through these security_invoker views (no
# USAGE on schema crm_internal)
my @aggregate_views = grep { $_ eq 'crm.pipeline_totals' || $_ eq 'crm.account_rollup' } @rep_views;
note("views $rep may not read (compared as the superuser only): "
	  . join(', ', grep { !$rep_reads{$_} } @views));
cmp_ok(scalar @views, '>=', 9, 'schema crm has views to compare (' . scalar(@views) . ')');
cmp_ok(scalar @rep_views, '>=', 9, "$rep may read most of them (" . scalar(@rep_views) . ')');
is(scalar @aggregates, 10, 'schema crm_internal has the ten aggregate tables: ' . join(', ', @aggregates));
is(scalar @aggregate_views, 2, "$rep reads the aggregates through views: @aggregate_views");
is( $standby->safe_psql($db,
		"SELECT string_agg(c.oid::regclass::text, ',' ORDER BY c.oid::regclass::text) FROM pg_class c"
		  . " WHERE c.relnamespace IN ('crm'::regnamespace, 'crm_internal'::regnamespace) AND c.relkind IN ('v', 'm')"),
	join(',', @views), 'the standby has the same views');

# one line per relation: name, row count and md5 of its rows' text, sorted
sub fingerprint_sql
{
	my @rels = @_;
	return join("\nUNION ALL\n",
		map {
			"SELECT '$_' AS rel, count(*) AS n, md5(coalesce(string_agg($row_expr{$_}::text, E'\\n' ORDER BY $row_expr{$_}::text), '')) AS md5 FROM $_ t"
		} @rels) . "\nORDER BY 1";
}

# fingerprints(node, role, relations...): { relation => "rows md5" }
sub fingerprints
{
	my ($node, $role, @rels) = @_;
	my $sql = fingerprint_sql(@rels);
	$sql = "SET ROLE $role;\n$sql" if $role;
	my %fp;
	for my $line (split /\n/, $node->safe_psql($db, $sql))
	{
		my ($rel, $n, $md5) = split /\|/, $line;
		$fp{$rel} = "$n $md5";
	}
	return \%fp;
}

sub total_rows { my $fp = shift; my $n = 0; $n += (split / /, $_)[0] for values %$fp; return $n; }

# compare(label): both nodes, as the superuser and as the rep
sub compare
{
	my ($label) = @_;
	my %result;
	for my $who (['superuser', undef, [ @views, @tables ]], [$rep, $rep, [ @rep_views ]])
	{
		my ($name, $role, $rels) = @$who;
		my $p = fingerprints($primary, $role, @$rels);
		my $s = fingerprints($standby, $role, @$rels);
		my @differ = grep { ($p->{$_} // '') ne ($s->{$_} // '') } @$rels;
		is(scalar @differ, 0,
			"$label, as $name: all " . scalar(@$rels) . ' views/tables read the same on primary and standby')
		  or diag("differ: @differ");
		is_deeply($s, $p, "$label, as $name: identical row counts and checksums");
		$result{$name} = $p;
	}

	# row-level security applies through the security_invoker views
	my ($su, $r) = ($result{superuser}, $result{$rep});
	my $su_views  = total_rows({ map { $_ => $su->{$_} } @rep_views });
	my $rep_views = total_rows({ map { $_ => $r->{$_} } @rep_views });
	cmp_ok($rep_views, '<', $su_views,
		"$label: $rep sees fewer view rows than the superuser ($rep_views < $su_views)");
	cmp_ok($rep_views, '>', 0, "$label: $rep sees some view rows (her own figures)");
	my @agg_fewer = grep { (split / /, $r->{$_})[0] < (split / /, $su->{$_})[0] } @aggregate_views;
	ok(scalar @agg_fewer > 0, "$label: $rep sees fewer aggregate rows than the superuser (@agg_fewer)");
	my ($su_pipe, $rep_pipe) = map { (split / /, $_->{'crm.pipeline_by_stage'})[0] } $su, $r;
	cmp_ok($rep_pipe, '<', $su_pipe, "$label: crm.pipeline_by_stage has fewer rows for $rep ($rep_pipe < $su_pipe)");
	return \%result;
}

my $before = compare('after the demo');

is($standby->safe_psql($db, 'SELECT count(*) FROM crm.verify_aggregates()'),
	'0', 'crm.verify_aggregates() returns no rows on the standby');
is($standby->safe_psql($db, "SET ROLE $rep; SELECT count(*) FROM crm.pipeline_by_stage WHERE owner::text <> '$rep'"),
	'0', "on the standby $rep reads only her own pipeline");

# writes on the standby fail: read-only transaction (25006)
my $lead = $primary->safe_psql($db,
	"SELECT min(id) FROM crm.lead WHERE status NOT IN ('Converted', 'Not Qualified')");
for my $write (
	[ 'crm.convert_lead()', "SELECT * FROM crm.convert_lead($lead)" ],
	[ 'INSERT',             "INSERT INTO crm.lead (name, company) VALUES ('Standby Lead', 'Nowhere')" ],
	[ 'UPDATE',             "UPDATE crm.opportunity SET stage = 'Negotiation'" ])
{
	my ($what, $sql) = @$write;
	my ($ret, $out, $err) = $standby->psql($db, "\\set VERBOSITY verbose\n$sql");
	isnt($ret, 0, "$what on the standby fails");
	like($err, qr/ERROR:  25006: cannot execute .* in a read-only transaction/,
		"$what on the standby: SQLSTATE 25006, read-only transaction");
}

# more writes on the primary: a conversion and a stage change
my $opp = $primary->safe_psql($db,
	"SELECT opportunity_id FROM crm.convert_lead($lead)");
ok($opp =~ /^\d+$/, "the primary converts lead $lead (opportunity $opp)");
my $tailspin = $primary->safe_psql($db,
	"SELECT id FROM crm.opportunity WHERE name = 'Tailspin Toys - office coffee'");
$primary->safe_psql($db,
	"UPDATE crm.opportunity SET stage = 'Negotiation' WHERE id = $tailspin");
$primary->wait_for_catchup($standby);

is($standby->safe_psql($db, "SELECT status FROM crm.lead WHERE id = $lead"),
	'Converted', 'the standby shows the new conversion');
is($standby->safe_psql($db, "SELECT stage FROM crm.opportunity WHERE id = $tailspin"),
	'Negotiation', 'the standby shows the stage change');

my $after = compare('after more writes');
isnt($after->{superuser}{'crm.pipeline_by_stage'}, $before->{superuser}{'crm.pipeline_by_stage'},
	'crm.pipeline_by_stage changed with the writes (the comparison sees new data)');
is($standby->safe_psql($db, 'SELECT count(*) FROM crm.verify_aggregates()'),
	'0', 'crm.verify_aggregates() returns no rows on the standby after the writes');

$standby->stop;
$primary->stop;
done_testing();
