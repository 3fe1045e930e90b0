/*
 * crm--0.5.sql: the CRM sales schema of the newest version, built by the
 * Makefile from the files in sql/install/, one per module, in name order.
 * Released versions are kept in sql/versions/ with the update scripts
 * between them (crm--A--B.sql); a change here ships in an update script too.  Reads top to bottom
 * like a schema document: roles and domains, the core model (accounts,
 * contacts, leads, opportunities), history, lead conversion, then the Sales
 * Cloud modules (catalog, line items, quotes, orders, activities, campaigns),
 * and last the grants and pg_dump configuration.
 *
 * Every name used inside functions is schema-qualified; the C code that runs
 * SQL does the same, so nothing here depends on the caller's search_path.
 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION crm" to load this file. \quit

