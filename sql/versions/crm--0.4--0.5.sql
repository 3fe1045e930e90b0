-- crm 0.4 -> 0.5: ALTER EXTENSION crm UPDATE TO '0.5'.
-- Every schema change made in sql/install/ since 0.4 is repeated here, so
-- that an updated database has the same objects as a fresh install
-- (test/scripts/upgrade.sh checks it).
--
-- 0.5 closes what a red team with ordinary CRM logins could still do to
-- 0.4 (forged ids, lock squatting, hidden references, unbounded change-log
-- values) and what a fault run found (two-phase commit, maintenance of the
-- aggregate tables, restores without replica mode).

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION crm UPDATE TO '0.5'" to load this file. \quit

