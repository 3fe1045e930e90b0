--------------------------------------------------------------------------
-- Merging duplicates: crm.merge_accounts(), merge_contacts(), merge_leads()
-- (src/merge.c, src/repoint.c; README "Merging")
--------------------------------------------------------------------------

CREATE TABLE crm.merge_record (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind           text NOT NULL
                   CONSTRAINT merge_record_kind_check CHECK (kind OPERATOR(pg_catalog.=) ANY (ARRAY['account', 'contact', 'lead'])),
    survivor_id    bigint NOT NULL,
    merged_id      bigint NOT NULL,
    merged_values  jsonb NOT NULL,
    taken          text[] NOT NULL DEFAULT '{}',
    merged_by      regrole NOT NULL,
    merged_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE crm.merge_record IS 'One row per merge of two accounts, contacts or leads: the record that was merged away (with all its values), the one it was merged into, who and when; written only by the merge functions';
COMMENT ON COLUMN crm.merge_record.id IS 'Entry id, in order of merging';
COMMENT ON COLUMN crm.merge_record.kind IS 'account, contact or lead';
COMMENT ON COLUMN crm.merge_record.survivor_id IS 'The record that remains (when it is itself merged later, the record it was merged into)';
COMMENT ON COLUMN crm.merge_record.merged_id IS 'The record that was merged into the survivor and deleted';
COMMENT ON COLUMN crm.merge_record.merged_values IS 'Every field of the merged record as it was just before the merge (JSON object, column name to value)';
COMMENT ON COLUMN crm.merge_record.taken IS 'Fields taken from the merged record although the survivor had them set (the take argument)';
COMMENT ON COLUMN crm.merge_record.merged_by IS 'Role that merged';
COMMENT ON COLUMN crm.merge_record.merged_at IS 'When the merge was made (transaction time)';
CREATE INDEX merge_record_survivor_idx ON crm.merge_record (kind, survivor_id);
CREATE INDEX merge_record_merged_idx ON crm.merge_record (kind, merged_id);

-- Row-level security of crm.merge_record: 95_row_security.sql (it needs crm.team_roles()).
GRANT SELECT ON crm.merge_record TO crm_admin, crm_manager, crm_sales;

CREATE FUNCTION crm.merge_accounts(survivor bigint, merged bigint, take text[] DEFAULT NULL)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'crm_merge_accounts'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.merge_accounts(bigint, bigint, text[]) IS
'Merges account merged into account survivor and returns survivor: every row pointing at merged (contacts, links, leads, deals, quotes, orders, activities, any foreign key) is re-pointed, empty fields of survivor are filled from merged (the columns in take are taken even when set), the merge is recorded in crm.merge_record and merged is deleted. The caller must be able to update both. See README "Merging".';

CREATE FUNCTION crm.merge_contacts(survivor bigint, merged bigint, take text[] DEFAULT NULL)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'crm_merge_contacts'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.merge_contacts(bigint, bigint, text[]) IS
'Merges contact merged into contact survivor and returns survivor: every row pointing at merged is re-pointed (duplicate account links, campaign memberships and meeting participations folded into one), empty fields of survivor are filled from merged (the columns in take are taken even when set), the merge is recorded in crm.merge_record and merged is deleted. See README "Merging".';

CREATE FUNCTION crm.merge_leads(survivor bigint, merged bigint, take text[] DEFAULT NULL)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'crm_merge_leads'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.merge_leads(bigint, bigint, text[]) IS
'Merges lead merged into lead survivor and returns survivor: its activities, campaign memberships and status history move to survivor, empty fields of survivor are filled from merged (the columns in take are taken even when set), the merge is recorded in crm.merge_record and merged is deleted. A converted lead cannot be the merged one (ZC702). See README "Merging".';

REVOKE ALL ON FUNCTION crm.merge_accounts(bigint, bigint, text[]), crm.merge_contacts(bigint, bigint, text[]),
    crm.merge_leads(bigint, bigint, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.merge_accounts(bigint, bigint, text[]), crm.merge_contacts(bigint, bigint, text[]),
    crm.merge_leads(bigint, bigint, text[]) TO crm_admin, crm_manager, crm_sales;
