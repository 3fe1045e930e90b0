# Makefile for the crm extension (PGXS).
#
#   make && make install          build and install into the PostgreSQL found by PG_CONFIG
#   make installcheck             pg_regress + isolation tests against a running server
#
# The whole suite (throwaway cluster, every test, one summary line) is
# scripts/test.sh; see README.md.

EXTENSION = crm
MODULE_big = crm
OBJS = \
	src/module.o \
	src/spi_util.o \
	src/normalize.o \
	src/stamp.o \
	src/permit.o \
	src/workflow.o \
	src/guards.o \
	src/history.o \
	src/convert.o \
	src/catalog.o \
	src/line_items.o \
	src/lifecycle.o \
	src/quotes.o \
	src/orders.o \
	src/activities.o \
	src/campaigns.o \
	src/aggregates.o \
	src/aggregate_stripes.o \
	src/cents.o \
	src/reporting.o \
	src/sharing.o \
	src/locks.o \
	src/lock_guard.o

# The install script of the newest version is built from one file per
# module, in name order.  Released versions' scripts and the update scripts
# between versions are kept, unchanged, in sql/versions/.
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(srcdir)/crm.control)
INSTALL_PARTS = $(sort $(wildcard $(srcdir)/sql/install/*.sql))
DATA_built = crm--$(EXTVERSION).sql
DATA = $(wildcard $(srcdir)/sql/versions/crm--*.sql)

# One regression file per capability, in dependency order.
REGRESS = \
	install \
	core_model \
	constraints \
	timestamps \
	lead_history \
	normalize \
	convert_basic \
	convert_dedupe \
	convert_options \
	convert_errors \
	convert_security \
	conversion_guard \
	convert_many \
	catalog \
	line_items \
	opportunity_lifecycle \
	quotes \
	quote_approval \
	sales_orders \
	reference_rules \
	order_numbers \
	activities \
	reminders \
	campaigns \
	invariant_checks \
	trigger_robustness \
	reports \
	aggregates \
	aggregate_hints \
	aggregate_table_rules \
	aggregate_amounts \
	aggregate_prepared \
	row_security \
	sharing_cost \
	security_attacks \
	red_team_ids \
	table_locks \
	bad_input

ISOLATION = convert_same_lead convert_same_company line_items_sum order_activation reminders quote_sync aggregates_concurrent aggregates_maintenance repeatable_read_checks stage_flags standard_book_switch lock_squatting
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=output_iso

# Server headers as system headers: -Wextra applies to our code, not to theirs.
PG_CPPFLAGS = -I$(srcdir)/src -isystem $(includedir_server) -isystem $(includedir_server)/port/linux
PG_CFLAGS = -Wall -Wextra $(CRM_EXTRA_CFLAGS)

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
