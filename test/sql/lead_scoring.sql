-- lead_scoring: crm.scoring_rule, crm.lead.score kept by the database,
-- crm.lead_score_detail, crm.rescore_leads(); rules refused when written.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_score_admin, regress_score_rep, regress_score_rep2;
CREATE ROLE regress_score_admin IN ROLE crm_admin;
CREATE ROLE regress_score_rep IN ROLE crm_sales;
CREATE ROLE regress_score_rep2 IN ROLE crm_sales;
RESET client_min_messages;
\set VERBOSITY terse

-- Without rules every lead scores 0.
INSERT INTO crm.lead (name, industry) VALUES ('Before rules', 'Software');
SELECT name, score FROM crm.lead;

-- The issue's examples: industry = Software +10, source = referral +20,
-- an e-mail +5, a company +5; and "contains" (folded: no accents, any case).
SET ROLE regress_score_admin;
INSERT INTO crm.scoring_rule (name, column_name, operator, value, points) VALUES
    ('Software industry', 'industry', '=', 'Software', 10),
    ('Referral', 'source', '=', 'referral', 20),
    ('Has e-mail', 'email', 'is not null', NULL, 5),
    ('Has company', 'company', 'is not null', NULL, 5),
    ('Tech in the name', 'company', 'contains', 'TÉCH', 3),
    ('Not in Antarctica', 'country', '<>', 'AQ', 1);
RESET ROLE;

-- A new lead is scored on insert ...
INSERT INTO crm.lead (name, company, email, industry, source, country)
    VALUES ('Grace', 'Hopper Technologies', 'grace@hopper.example', 'Software', 'referral', 'US');
INSERT INTO crm.lead (name, source) VALUES ('Bare', 'website');
SELECT name, score FROM crm.lead ORDER BY id;
-- ... and again on every update; a score written by hand is overwritten.
UPDATE crm.lead SET industry = 'Retail', score = 999 WHERE name = 'Grace';
SELECT name, score FROM crm.lead WHERE name = 'Grace';

-- Which rules gave what (the view follows the leads' row-level security).
SELECT d.rule_name, d.points FROM crm.lead_score_detail AS d
  JOIN crm.lead AS l ON l.id = d.lead_id WHERE l.name = 'Grace' ORDER BY d.rule_id;

-- Existing leads keep their scores until crm.rescore_leads() (admins):
-- 'Before rules' scored 0 under no rules; the rescore returns how many changed.
SELECT name, score FROM crm.lead WHERE name = 'Before rules';
SET ROLE regress_score_rep;
SELECT crm.rescore_leads();   -- 42501: admins only
RESET ROLE;
SET ROLE regress_score_admin;
SELECT crm.rescore_leads();
SELECT crm.rescore_leads();   -- nothing left to change
RESET ROLE;
SELECT name, score FROM crm.lead ORDER BY id;

-- An inactive rule gives nothing; a rule change needs a rescore.
SET ROLE regress_score_admin;
UPDATE crm.scoring_rule SET active = false WHERE name = 'Referral';
SELECT crm.rescore_leads();
RESET ROLE;
SELECT name, score FROM crm.lead WHERE name = 'Grace';

-- A rule within one transaction applies at once to the next lead.
BEGIN;
INSERT INTO crm.scoring_rule (name, column_name, operator, value, points)
    VALUES ('Early lead', 'campaign_id', 'is null', NULL, -2);
INSERT INTO crm.lead (name) VALUES ('Same transaction');
SELECT name, score FROM crm.lead WHERE name = 'Same transaction';
ROLLBACK;

-- Ordered comparisons use the column type's order (an enum's declared order).
INSERT INTO crm.scoring_rule (name, column_name, operator, value, points)
    VALUES ('Past first contact', 'status', '>=', 'Processing', 7);
INSERT INTO crm.lead (name, status) VALUES ('Working', 'Following Up'), ('Fresh', 'New Lead');
SELECT name, score FROM crm.lead WHERE name IN ('Working', 'Fresh') ORDER BY name;

-- A converted lead keeps the score its conversion gave it: neither updates
-- nor rescores change it.
SELECT crm.convert_lead((SELECT id FROM crm.lead WHERE name = 'Grace')) IS NOT NULL AS converted;
INSERT INTO crm.scoring_rule (name, column_name, operator, value, points)
    VALUES ('Has a name', 'name', 'is not null', NULL, 100);
SELECT crm.rescore_leads();
SELECT name, status, score FROM crm.lead WHERE name = 'Grace';
UPDATE crm.lead SET remarks = 'called' WHERE name = 'Grace';
SELECT name, score FROM crm.lead WHERE name = 'Grace';
DELETE FROM crm.scoring_rule WHERE name = 'Has a name';

-- Rules that cannot be applied are refused when written (ZC910) ...
\set VERBOSITY default
INSERT INTO crm.scoring_rule (name, column_name, operator, value, points) VALUES ('x', 'nope', '=', '1', 1);
INSERT INTO crm.scoring_rule (name, column_name, operator, value, points) VALUES ('x', 'owner', '=', 'alice', 1);
INSERT INTO crm.scoring_rule (name, column_name, operator, value, points) VALUES ('x', 'industry', 'like', 'Soft%', 1);
INSERT INTO crm.scoring_rule (name, column_name, operator, value, points) VALUES ('x', 'industry', '=', NULL, 1);
INSERT INTO crm.scoring_rule (name, column_name, operator, value, points) VALUES ('x', 'email', 'is null', 'a@b.example', 1);
INSERT INTO crm.scoring_rule (name, column_name, operator, value, points) VALUES ('x', 'campaign_id', 'contains', '1', 1);
\set VERBOSITY terse
-- ... with the type's own error for a value not of the column's type
INSERT INTO crm.scoring_rule (name, column_name, operator, value, points) VALUES ('x', 'campaign_id', '=', 'abc', 1);
INSERT INTO crm.scoring_rule (name, column_name, operator, value, points) VALUES ('x', 'status', '=', 'Bogus', 1);
INSERT INTO crm.scoring_rule (name, column_name, operator, value, points) VALUES ('x', 'email', '=', 'not an address', 1);
-- ... also by an update; and points are bounded (23514)
UPDATE crm.scoring_rule SET column_name = 'nope' WHERE name = 'Software industry';
INSERT INTO crm.scoring_rule (name, column_name, operator, value, points) VALUES ('x', 'industry', '=', 'a', 5000);

-- Rights: admins write rules, managers and reps read them.
SET ROLE regress_score_rep;
SELECT count(*) > 0 AS rep_reads_rules FROM crm.scoring_rule;
INSERT INTO crm.scoring_rule (name, column_name, operator, value, points) VALUES ('mine', 'industry', '=', 'a', 1);
-- a rep sees the detail of its own leads only
INSERT INTO crm.lead (name, company) VALUES ('Rep lead', 'Repco');
SELECT l.name, sum(d.points) AS points, l.score
  FROM crm.lead_score_detail AS d JOIN crm.lead AS l ON l.id = d.lead_id GROUP BY l.name, l.score;
RESET ROLE;
SET ROLE regress_score_rep2;
SELECT count(*) AS other_rep_sees FROM crm.lead_score_detail;
RESET ROLE;
