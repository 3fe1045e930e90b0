-- crm 0.1 -> 0.2: ALTER EXTENSION crm UPDATE TO '0.2'.
-- Every schema change made in sql/install/ since 0.1 is repeated here, so
-- that an updated database has the same objects as a fresh install
-- (test/scripts/upgrade.sh checks it).

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION crm UPDATE TO '0.2'" to load this file. \quit
