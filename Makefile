# Makefile for the crm extension (PGXS).
#
#   make && make install          build and install into the PostgreSQL found by PG_CONFIG
#   make installcheck             pg_regress + isolation tests against a running server
#   make installcheck REGRESS=x ISOLATION=   one pg_regress file, test/sql/x.sql
#
# sql/ holds only the extension (sql/install/: the newest version, one file
# per module; sql/versions/: the first release and the update scripts).
# Everything that tests it is under test/: pg_regress in test/sql and
# test/expected, isolation in test/isolation, TAP in test/t, end-to-end
# scripts in test/scripts.
#
# The whole suite (throwaway cluster, every test, one summary line) is
# scripts/test.sh; see README.md.

EXTENSION = crm
MODULE_big = crm
OBJS = \
	src/module.o \
	src/spi_util.o \
	src/append_rows.o \
	src/normalize.o \
	src/text_fold.o \
	src/stamp.o \
	src/permit.o \
	src/row.o \
	src/arguments.o \
	src/transitions.o \
	src/conversion_guard.o \
	src/history.o \
	src/history_frames.o \
	src/opportunity_history.o \
	src/stage_cache.o \
	src/stage_velocity.o \
	src/stage_rename.o \
	src/pipeline_as_of.o \
	src/change_log.o \
	src/convert.o \
	src/conversion_carry.o \
	src/catalog.o \
	src/line_items.o \
	src/opportunity_lifecycle.o \
	src/furthest_step.o \
	src/contact_roles.o \
	src/quotes.o \
	src/orders.o \
	src/activities.o \
	src/recurrence.o \
	src/campaigns.o \
	src/aggregates.o \
	src/aggregate_stripes.o \
	src/cents.o \
	src/reporting_line.o \
	src/sharing.o \
	src/search.o \
	src/locks.o \
	src/lock_guard.o \
	src/repoint.o \
	src/merge.o \
	src/privacy.o \
	src/erasure.o \
	src/retention.o \
	src/capture.o \
	src/capture_log.o \
	src/duplicates.o \
	src/duplicate_check.o \
	src/scoring.o \
	src/assignment.o \
	src/email_log.o \
	src/custom_fields.o \
	src/currencies.o \
	src/quotas.o

# The install script of the newest version is built from one file per
# module, in name order.  sql/versions/ keeps, unchanged once released, the
# first release's script crm--0.1.sql and the update scripts crm--A--B.sql
# from each release to the next: CREATE EXTENSION crm VERSION 'A' runs
# crm--0.1.sql and the update scripts up to A (as pg_stat_statements does).
# A release adds only its update script.
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(srcdir)/crm.control)
INSTALL_PARTS = $(sort $(wildcard $(srcdir)/sql/install/*.sql))
DATA_built = crm--$(EXTVERSION).sql
DATA = $(wildcard $(srcdir)/sql/versions/crm--*.sql)

# pg_regress: one file per capability, test/sql/NAME.sql against
# test/expected/NAME.out, run in name order.  Each file sets up what it needs
# itself (it drops and creates the extension, and the roles it uses), so any
# one of them runs alone: make installcheck REGRESS=NAME.
REGRESS = $(sort $(basename $(notdir $(wildcard $(srcdir)/test/sql/*.sql))))
REGRESS_OPTS = --inputdir=test --load-extension=pg_trgm --load-extension=unaccent

ISOLATION = convert_same_lead convert_same_company line_items_sum order_activation reminders quote_sync aggregates_concurrent aggregates_maintenance repeatable_read_checks stage_flags standard_book_switch lock_squatting merge_races erase_person duplicate_entry capture_same_person lead_queue_round_robin convert_attach recurring_complete quote_expiry contact_role_primary tag_twice log_email_twice custom_field_races quota_overlap price_book_currency red_team_currency_rr corporate_currency_rates funnel_furthest opportunity_history_race top_accounts_prepared stage_cache stage_rename_race top_accounts_rates lead_history_chain pipeline_as_of_snapshot
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=output_iso --load-extension=pg_trgm --load-extension=unaccent

# Server headers as system headers: -Wextra applies to our code, not to theirs.
PG_CPPFLAGS = -I$(srcdir)/src -isystem $(includedir_server) -isystem $(includedir_server)/port/linux
PG_CFLAGS = -Wall -Wextra $(CRM_EXTRA_CFLAGS)
# PostgreSQL 16 and later build with -Wshadow=compatible-local (gcc); so do
# we on every version, so that a shadowed variable fails on 15 too.
PG_CFLAGS += $(if $(findstring gcc,$(notdir $(CC))),-Wshadow=compatible-local)

# Prefer the Debian PostgreSQL 15 layout; any pg_config can be passed in.
ifndef PG_CONFIG
PG_CONFIG := $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
endif
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

crm--$(EXTVERSION).sql: $(INSTALL_PARTS)
	cat $^ > $@

# Lists for scripts/test.sh.
print-regress:
	@echo $(REGRESS)
print-isolation:
	@echo $(ISOLATION)
print-version:
	@echo $(EXTVERSION)
.PHONY: print-regress print-isolation print-version
