--------------------------------------------------------------------------
-- Duplicates: pairs found on entry, waiting for a decision
--------------------------------------------------------------------------

CREATE TABLE crm.duplicate_candidate (
    kind            text NOT NULL
                    CONSTRAINT duplicate_candidate_kind_check CHECK (kind IN ('lead', 'account', 'contact')),
    id              bigint NOT NULL,
    duplicate_kind  text NOT NULL
                    CONSTRAINT duplicate_candidate_duplicate_kind_check CHECK (duplicate_kind IN ('lead', 'account', 'contact')),
    duplicate_of    bigint NOT NULL,
    rule            text NOT NULL,
    score           real NOT NULL
                    CONSTRAINT duplicate_candidate_score_range CHECK (score > 0 AND score <= 1),
    found_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    status          text NOT NULL DEFAULT 'open'
                    CONSTRAINT duplicate_candidate_status_check CHECK (status IN ('open', 'merged', 'dismissed')),
    resolved_by     regrole,
    resolved_at     timestamptz,
    PRIMARY KEY (kind, id, duplicate_kind, duplicate_of),
    CONSTRAINT duplicate_candidate_not_self CHECK (kind <> duplicate_kind OR id <> duplicate_of),
    CONSTRAINT duplicate_candidate_resolved CHECK ((status = 'open') = (resolved_at IS NULL AND resolved_by IS NULL))
);
COMMENT ON TABLE crm.duplicate_candidate IS 'Possible duplicates found when a lead, account or contact was written (policy warn, and every similar-name match): one row per pair, open until merged or dismissed';
COMMENT ON COLUMN crm.duplicate_candidate.kind IS 'Kind of the record that was written: lead, account or contact';
COMMENT ON COLUMN crm.duplicate_candidate.id IS 'Id of the record that was written';
COMMENT ON COLUMN crm.duplicate_candidate.duplicate_kind IS 'Kind of the existing record it resembles';
COMMENT ON COLUMN crm.duplicate_candidate.duplicate_of IS 'Id of the existing record it resembles';
COMMENT ON COLUMN crm.duplicate_candidate.rule IS 'The matching rule that found the pair (the strongest one when several did), e.g. email, phone, company_key, domain, similar_name';
COMMENT ON COLUMN crm.duplicate_candidate.score IS 'How sure the match is, from 0 (exclusive) to 1';
COMMENT ON COLUMN crm.duplicate_candidate.found_at IS 'When the pair was found';
COMMENT ON COLUMN crm.duplicate_candidate.status IS 'open (waiting), merged (the records were merged), dismissed (not duplicates)';
COMMENT ON COLUMN crm.duplicate_candidate.resolved_by IS 'Who merged or dismissed the pair';
COMMENT ON COLUMN crm.duplicate_candidate.resolved_at IS 'When the pair was merged or dismissed';
CREATE INDEX duplicate_candidate_duplicate_of_idx ON crm.duplicate_candidate (duplicate_kind, duplicate_of);
