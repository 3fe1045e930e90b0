-- bad_input: every public function (README "Functions") and the main tables
-- fed bad input -- NULL in each argument, 0, negative and huge ids, empty and
-- 1 MB strings, unknown enum text, NaN / Infinity / negative / huge numbers,
-- infinite and far dates -- as the superuser and as a sales rep.  Each case
-- runs in its own subtransaction, which is always rolled back (a success
-- raises a sentinel error), so every case starts from the same data.  One
-- line per case: the SQLSTATE (or "ok", with the result for pure functions),
-- for both roles.  The last query asserts that no case ended in class XX
-- (internal error: a bug in the C code) and that every SQLSTATE is one the
-- README's SQLSTATE table documents.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_bad_rep;
CREATE ROLE regress_bad_rep IN ROLE crm_sales;
RESET client_min_messages;
\set VERBOSITY terse

-- The README's SQLSTATE table, copied: every error must be one of these.
-- test/scripts/docs_consistency.sh checks that this list is the README's.
CREATE TEMP TABLE documented (sqlstate text PRIMARY KEY);
INSERT INTO documented VALUES
    ('ZC001'), ('ZC002'), ('ZC003'), ('ZC004'), ('ZC005'), ('ZC006'), ('ZC007'),
    ('ZC008'), ('ZC010'), ('ZC011'), ('ZC012'), ('ZC020'), ('ZC021'), ('ZC022'),
    ('ZC101'), ('ZC102'), ('ZC103'), ('ZC104'), ('ZC105'), ('ZC110'), ('ZC111'), ('ZC112'),
    ('ZC120'), ('ZC121'), ('ZC122'),
    ('ZC201'), ('ZC205'), ('ZC207'), ('ZC208'), ('ZC209'), ('ZC210'),
    ('ZC301'), ('ZC302'), ('ZC303'), ('ZC304'),
    ('ZC501'), ('ZC601'), ('ZC602'), ('ZC603'),
    ('ZC702'), ('ZC720'), ('ZC721'), ('ZC722'),
    ('ZC801'), ('ZC802'), ('ZC910'), ('ZC420'),
    ('ZC950'), ('ZC951'), ('ZC952'), ('ZC953'),
    ('ZC901'), ('ZC902'), ('ZC903'), ('ZC904'), ('22001'),
    ('ZC701'), ('ZC710'), ('ZC711'), ('ZC712'), ('ZC713'),
    ('42501'), ('22004'), ('22023'), ('42704'), ('42703'), ('42804'), ('40001'), ('40P01'), ('39P01'),
    ('23502'), ('23503'), ('23505'), ('23514'), ('23P01'), ('22P02'), ('428C9'),
    ('22003'), ('54000'), ('42602'), ('0A000'), ('55P03'), ('53400');

-- Data, with fixed ids (fresh extension): the superuser's and the rep's own
-- lead, account, contact, opportunity with a line, a Draft quote, an
-- Accepted quote without an order, an order (Draft) and a due reminder.
INSERT INTO crm.product (code, name, list_price, inventory) VALUES ('WID-1', 'Widget', 100, 10);  -- 1
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price) VALUES (1, 1, 100);
INSERT INTO crm.account (name) VALUES ('Acme');                                           -- account 1
INSERT INTO crm.contact (name, email, account_id) VALUES ('Alice', 'alice@acme.example', 1);  -- contact 1
INSERT INTO crm.lead (name, company, email) VALUES ('Chris', 'Umbrella', 'chris@umbrella.example');  -- lead 1
INSERT INTO crm.opportunity (name, account_id) VALUES ('Deal', 1);                         -- opportunity 1
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (1, 1, 2);
SELECT crm.create_quote(1) AS q1, crm.create_quote(1) AS q2, crm.create_quote(1) AS q3;  -- 1 2 3
UPDATE crm.quote SET status = 'Presented' WHERE id IN (2, 3);
UPDATE crm.quote SET status = 'Accepted' WHERE id IN (2, 3);
SELECT crm.create_order(3) AS o1;                                                          -- order 1
INSERT INTO crm.activity (type, subject, account_id, due_at, remind_at)
    VALUES ('task', 'Call', 1, '2020-01-01', '2020-01-01');                                -- activity 1
INSERT INTO crm.custom_field (object, name, label, type) VALUES ('account', 'region', 'Region', 'text');
UPDATE crm.account SET attributes = '{"region": "EMEA"}' WHERE id = 1;                  -- a custom field value
SET ROLE regress_bad_rep;
INSERT INTO crm.account (name) VALUES ('Repco');                                          -- account 2
INSERT INTO crm.contact (name, email, account_id) VALUES ('Rita', 'rita@repco.example', 2);  -- contact 2
INSERT INTO crm.lead (name, company, email) VALUES ('Rex', 'Rexco', 'rex@rexco.example');  -- lead 2
INSERT INTO crm.opportunity (name, account_id) VALUES ('Rep deal', 2);                     -- opportunity 2
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (2, 1, 1);
SELECT crm.create_quote(2) AS q4, crm.create_quote(2) AS q5, crm.create_quote(2) AS q6;  -- 4 5 6
UPDATE crm.quote SET status = 'Presented' WHERE id IN (5, 6);
UPDATE crm.quote SET status = 'Accepted' WHERE id IN (5, 6);
SELECT crm.create_order(6) AS o2;                                                          -- order 2
INSERT INTO crm.activity (type, subject, account_id, due_at, remind_at)
    VALUES ('task', 'Call', 2, '2020-01-01', '2020-01-01');                                -- activity 2
RESET ROLE;

-- Each role's own rows, substituted for {lead}, {account}, ... in the cases.
CREATE TEMP TABLE own_ids (who text, name text, id bigint, PRIMARY KEY (who, name));
INSERT INTO own_ids VALUES
    ('superuser', 'lead', 1), ('superuser', 'account', 1), ('superuser', 'contact', 1),
    ('superuser', 'opp', 1), ('superuser', 'draft', 1), ('superuser', 'accepted', 2),
    ('superuser', 'order', 1),
    ('rep', 'lead', 2), ('rep', 'account', 2), ('rep', 'contact', 2),
    ('rep', 'opp', 2), ('rep', 'draft', 4), ('rep', 'accepted', 5), ('rep', 'order', 2);

-- The cases.  kind 'expr': an expression, evaluated as text (shown when
-- show, else just "ok"); kind 'stmt': a statement.  big: a 1 MB string; rnd:
-- 640 kB of hex digits that do not compress.
CREATE TEMP TABLE cases (n serial, label text, kind text DEFAULT 'expr', sql text, show boolean DEFAULT false);
INSERT INTO cases (label, sql, show) VALUES
    -- convert_lead: each argument in turn
    ('convert_lead valid',                     'crm.convert_lead({lead})', false),
    ('convert_lead lead NULL',                 'crm.convert_lead(NULL)', false),
    ('convert_lead lead 0',                    'crm.convert_lead(0)', false),
    ('convert_lead lead -1',                   'crm.convert_lead(-1)', false),
    ('convert_lead lead int max',              'crm.convert_lead(2147483647)', false),
    ('convert_lead lead bigint max',           'crm.convert_lead(9223372036854775807)', false),
    ('convert_lead lead bigint min',           'crm.convert_lead(-9223372036854775808)', false),
    ('convert_lead account NULL',              'crm.convert_lead({lead}, account_id => NULL)', false),
    ('convert_lead account 0',                 'crm.convert_lead({lead}, account_id => 0)', false),
    ('convert_lead account -1',                'crm.convert_lead({lead}, account_id => -1)', false),
    ('convert_lead account bigint max',        'crm.convert_lead({lead}, account_id => 9223372036854775807)', false),
    ('convert_lead account other''s',          'crm.convert_lead({lead}, account_id => {other_account})', false),
    ('convert_lead contact NULL',              'crm.convert_lead({lead}, contact_id => NULL)', false),
    ('convert_lead contact 0',                 'crm.convert_lead({lead}, contact_id => 0)', false),
    ('convert_lead contact -1',                'crm.convert_lead({lead}, contact_id => -1)', false),
    ('convert_lead contact bigint max',        'crm.convert_lead({lead}, contact_id => 9223372036854775807)', false),
    ('convert_lead contact other''s',          'crm.convert_lead({lead}, contact_id => {other_contact})', false),
    ('convert_lead create_opportunity NULL',   'crm.convert_lead({lead}, create_opportunity => NULL)', false),
    ('convert_lead opportunity_name NULL',     'crm.convert_lead({lead}, opportunity_name => NULL)', false),
    ('convert_lead opportunity_name empty',    'crm.convert_lead({lead}, opportunity_name => '''')', false),
    ('convert_lead opportunity_name blank',    'crm.convert_lead({lead}, opportunity_name => ''   '')', false),
    ('convert_lead opportunity_name 1 MB',     'crm.convert_lead({lead}, opportunity_name => {big})', false),
    ('convert_lead owner NULL',                'crm.convert_lead({lead}, owner => NULL)', false),
    ('convert_lead owner 0',                   'crm.convert_lead({lead}, owner => 0::oid::regrole)', false),
    ('convert_lead owner empty',               'crm.convert_lead({lead}, owner => '''')', false),
    ('convert_lead owner unknown',             'crm.convert_lead({lead}, owner => ''regress_no_such_role'')', false),
    ('convert_lead owner analyst group',       'crm.convert_lead({lead}, owner => ''crm_analyst'')', false),
    ('convert_lead dedupe NULL',               'crm.convert_lead({lead}, dedupe => NULL)', false),
    ('convert_lead all NULL',                  'crm.convert_lead(NULL, NULL, NULL, NULL, NULL, NULL, NULL)', false),
    ('convert_lead opportunity NULL',          'crm.convert_lead({lead}, opportunity_id => NULL)', false),
    ('convert_lead opportunity 0',             'crm.convert_lead({lead}, opportunity_id => 0)', false),
    ('convert_lead opportunity -1',            'crm.convert_lead({lead}, opportunity_id => -1)', false),
    ('convert_lead opportunity bigint max',    'crm.convert_lead({lead}, opportunity_id => 9223372036854775807)', false),
    ('convert_lead opportunity other''s',      'crm.convert_lead({lead}, opportunity_id => {other_opp})', false),
    ('convert_lead opportunity own',           'crm.convert_lead({lead}, opportunity_id => {opp})', false),
    ('convert_lead opportunity, no deal',      'crm.convert_lead({lead}, opportunity_id => {opp}, create_opportunity => false)', false),
    ('convert_lead opportunity and name',      'crm.convert_lead({lead}, opportunity_id => {opp}, opportunity_name => ''x'')', false),
    ('convert_lead opportunity, other account', 'crm.convert_lead({lead}, account_id => {other_account}, opportunity_id => {opp})', false),
    ('convert_lead all NULL (8)',              'crm.convert_lead(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)', false),
    -- conversion_preview: the same arguments, nothing written
    ('conversion_preview valid',               '(SELECT count(*) FROM crm.conversion_preview({lead}))', true),
    ('conversion_preview lead NULL',           '(SELECT count(*) FROM crm.conversion_preview(NULL))', false),
    ('conversion_preview lead 0',              '(SELECT count(*) FROM crm.conversion_preview(0))', false),
    ('conversion_preview lead -1',             '(SELECT count(*) FROM crm.conversion_preview(-1))', false),
    ('conversion_preview lead bigint max',     '(SELECT count(*) FROM crm.conversion_preview(9223372036854775807))', false),
    ('conversion_preview other''s lead',       '(SELECT count(*) FROM crm.conversion_preview({other_lead}))', false),
    ('conversion_preview account other''s',    '(SELECT count(*) FROM crm.conversion_preview({lead}, account_id => {other_account}))', false),
    ('conversion_preview contact other''s',    '(SELECT count(*) FROM crm.conversion_preview({lead}, contact_id => {other_contact}))', false),
    ('conversion_preview create_opp NULL',     '(SELECT count(*) FROM crm.conversion_preview({lead}, create_opportunity => NULL))', false),
    ('conversion_preview name 1 MB',           '(SELECT count(*) FROM crm.conversion_preview({lead}, opportunity_name => {big}))', false),
    ('conversion_preview owner unknown',       '(SELECT count(*) FROM crm.conversion_preview({lead}, owner => ''regress_no_such_role''))', false),
    ('conversion_preview dedupe NULL',         '(SELECT count(*) FROM crm.conversion_preview({lead}, dedupe => NULL))', false),
    ('conversion_preview opportunity -1',      '(SELECT count(*) FROM crm.conversion_preview({lead}, opportunity_id => -1))', false),
    ('conversion_preview opportunity other''s', '(SELECT count(*) FROM crm.conversion_preview({lead}, opportunity_id => {other_opp}))', false),
    ('conversion_preview opportunity, no deal', '(SELECT count(*) FROM crm.conversion_preview({lead}, opportunity_id => {opp}, create_opportunity => false))', false),
    ('conversion_preview all NULL',            '(SELECT count(*) FROM crm.conversion_preview(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL))', false),
    -- merge_accounts, merge_contacts, merge_leads (survivor, merged, take)
    ('merge_accounts survivor NULL',          'crm.merge_accounts(NULL, {account})', false),
    ('merge_accounts merged NULL',            'crm.merge_accounts({account}, NULL)', false),
    ('merge_accounts all NULL',               'crm.merge_accounts(NULL, NULL, NULL)', false),
    ('merge_accounts into itself',            'crm.merge_accounts({account}, {account})', false),
    ('merge_accounts merged 0',               'crm.merge_accounts({account}, 0)', false),
    ('merge_accounts merged -1',              'crm.merge_accounts({account}, -1)', false),
    ('merge_accounts merged bigint max',      'crm.merge_accounts({account}, 9223372036854775807)', false),
    ('merge_accounts survivor bigint min',    'crm.merge_accounts(-9223372036854775808, {account})', false),
    ('merge_accounts merged other''s',        'crm.merge_accounts({account}, {other_account})', false),
    ('merge_accounts survivor other''s',      'crm.merge_accounts({other_account}, {account})', false),
    ('merge_accounts take empty',             'crm.merge_accounts({account}, {other_account}, ''{}'')', false),
    ('merge_accounts take unknown',           'crm.merge_accounts({account}, {other_account}, ARRAY[''nope''])', false),
    ('merge_accounts take id',                'crm.merge_accounts({account}, {other_account}, ARRAY[''id''])', false),
    ('merge_accounts take NULL element',      'crm.merge_accounts({account}, {other_account}, ARRAY[NULL]::text[])', false),
    ('merge_accounts take 2-D',               'crm.merge_accounts({account}, {other_account}, ARRAY[ARRAY[''name'']])', false),
    ('merge_accounts take 1 MB name',         'crm.merge_accounts({account}, {other_account}, ARRAY[{big}])', false),
    ('merge_contacts survivor NULL',          'crm.merge_contacts(NULL, {contact})', false),
    ('merge_contacts merged NULL',            'crm.merge_contacts({contact}, NULL)', false),
    ('merge_contacts all NULL',               'crm.merge_contacts(NULL, NULL, NULL)', false),
    ('merge_contacts into itself',            'crm.merge_contacts({contact}, {contact})', false),
    ('merge_contacts merged 0',               'crm.merge_contacts({contact}, 0)', false),
    ('merge_contacts merged -1',              'crm.merge_contacts({contact}, -1)', false),
    ('merge_contacts merged bigint max',      'crm.merge_contacts({contact}, 9223372036854775807)', false),
    ('merge_contacts survivor bigint min',    'crm.merge_contacts(-9223372036854775808, {contact})', false),
    ('merge_contacts merged other''s',        'crm.merge_contacts({contact}, {other_contact})', false),
    ('merge_contacts survivor other''s',      'crm.merge_contacts({other_contact}, {contact})', false),
    ('merge_contacts take empty',             'crm.merge_contacts({contact}, {other_contact}, ''{}'')', false),
    ('merge_contacts take unknown',           'crm.merge_contacts({contact}, {other_contact}, ARRAY[''nope''])', false),
    ('merge_contacts take id',                'crm.merge_contacts({contact}, {other_contact}, ARRAY[''id''])', false),
    ('merge_contacts take NULL element',      'crm.merge_contacts({contact}, {other_contact}, ARRAY[NULL]::text[])', false),
    ('merge_contacts take 2-D',               'crm.merge_contacts({contact}, {other_contact}, ARRAY[ARRAY[''name'']])', false),
    ('merge_contacts take 1 MB name',         'crm.merge_contacts({contact}, {other_contact}, ARRAY[{big}])', false),
    ('merge_leads survivor NULL',             'crm.merge_leads(NULL, {lead})', false),
    ('merge_leads merged NULL',               'crm.merge_leads({lead}, NULL)', false),
    ('merge_leads all NULL',                  'crm.merge_leads(NULL, NULL, NULL)', false),
    ('merge_leads into itself',               'crm.merge_leads({lead}, {lead})', false),
    ('merge_leads merged 0',                  'crm.merge_leads({lead}, 0)', false),
    ('merge_leads merged -1',                 'crm.merge_leads({lead}, -1)', false),
    ('merge_leads merged bigint max',         'crm.merge_leads({lead}, 9223372036854775807)', false),
    ('merge_leads survivor bigint min',       'crm.merge_leads(-9223372036854775808, {lead})', false),
    ('merge_leads merged other''s',           'crm.merge_leads({lead}, {other_lead})', false),
    ('merge_leads survivor other''s',         'crm.merge_leads({other_lead}, {lead})', false),
    ('merge_leads take empty',                'crm.merge_leads({lead}, {other_lead}, ''{}'')', false),
    ('merge_leads take unknown',              'crm.merge_leads({lead}, {other_lead}, ARRAY[''nope''])', false),
    ('merge_leads take id',                   'crm.merge_leads({lead}, {other_lead}, ARRAY[''id''])', false),
    ('merge_leads take NULL element',         'crm.merge_leads({lead}, {other_lead}, ARRAY[NULL]::text[])', false),
    ('merge_leads take 2-D',                  'crm.merge_leads({lead}, {other_lead}, ARRAY[ARRAY[''name'']])', false),
    ('merge_leads take 1 MB name',            'crm.merge_leads({lead}, {other_lead}, ARRAY[{big}])', false),
    ('merge_leads take status',               'crm.merge_leads({lead}, {other_lead}, ARRAY[''status''])', false),
    -- find_duplicates(kind, id), find_duplicates(kind, candidate), dismiss_duplicate
    ('find_duplicates valid',                  'crm.find_duplicates(''lead'', {lead})', false),
    ('find_duplicates kind NULL',              'crm.find_duplicates(NULL, {lead})', false),
    ('find_duplicates kind empty',             'crm.find_duplicates('''', {lead})', false),
    ('find_duplicates kind 1 MB',              'crm.find_duplicates({big}, {lead})', false),
    ('find_duplicates id NULL',                'crm.find_duplicates(''lead'', NULL::bigint)', false),
    ('find_duplicates id 0',                   'crm.find_duplicates(''lead'', 0)', false),
    ('find_duplicates id -1',                  'crm.find_duplicates(''account'', -1)', false),
    ('find_duplicates id bigint max',          'crm.find_duplicates(''contact'', 9223372036854775807)', false),
    ('find_duplicates id other''s',            'crm.find_duplicates(''lead'', {other_lead})', false),
    ('find_duplicates candidate valid',        'crm.find_duplicates(''contact'', candidate => ''{"name": "Alice", "email": "alice@acme.example"}'')', false),
    ('find_duplicates candidate NULL',         'crm.find_duplicates(''lead'', NULL::jsonb)', false),
    ('find_duplicates candidate empty',        'crm.find_duplicates(''lead'', candidate => ''{}'')', false),
    ('find_duplicates candidate scalar',       'crm.find_duplicates(''lead'', candidate => ''1'')', false),
    ('find_duplicates candidate bad column',   'crm.find_duplicates(''account'', candidate => ''{"company": "x"}'')', false),
    ('find_duplicates candidate 1 MB name',    'crm.find_duplicates(''account'', candidate => jsonb_build_object(''name'', {big}))', false),
    ('find_duplicates candidate account_id',   'crm.find_duplicates(''contact'', candidate => ''{"name": "A", "account_id": 9223372036854775807}'')', false),
    ('dismiss_duplicate none',                 'crm.dismiss_duplicate(''lead'', {lead}, ''lead'', 0)', false),
    ('dismiss_duplicate kind NULL',            'crm.dismiss_duplicate(NULL, 1, ''lead'', 2)', false),
    ('dismiss_duplicate duplicate_kind bad',   'crm.dismiss_duplicate(''lead'', 1, ''deal'', 2)', false),
    ('dismiss_duplicate id NULL',              'crm.dismiss_duplicate(''lead'', NULL, ''lead'', 2)', false),
    ('dismiss_duplicate duplicate_of bigint max', 'crm.dismiss_duplicate(''lead'', 1, ''lead'', 9223372036854775807)', false),
    ('name_key empty',                         'crm.name_key('''')', true),
    ('name_key NULL',                          'crm.name_key(NULL)', true),
    ('name_key 1 MB',                          'crm.name_key({big})', false),
    ('match_domain NULL',                      'crm.match_domain(NULL, NULL)', true),
    ('match_domain empty',                     'crm.match_domain('''', ''@'')', true),
    ('match_domain 1 MB',                      'crm.match_domain({big}, {big})', false),
    -- create_quote(opportunity_id, name, valid_until, discount, tax_rate)
    ('create_quote valid',                     'crm.create_quote({opp})', false),
    ('create_quote opportunity NULL',          'crm.create_quote(NULL)', false),
    ('create_quote opportunity 0',             'crm.create_quote(0)', false),
    ('create_quote opportunity -1',            'crm.create_quote(-1)', false),
    ('create_quote opportunity int max',       'crm.create_quote(2147483647)', false),
    ('create_quote opportunity bigint max',    'crm.create_quote(9223372036854775807)', false),
    ('create_quote opportunity other''s',      'crm.create_quote({other_opp})', false),
    ('create_quote name NULL',                 'crm.create_quote({opp}, name => NULL)', false),
    ('create_quote name empty',                'crm.create_quote({opp}, name => '''')', false),
    ('create_quote name 1 MB',                 'crm.create_quote({opp}, name => {big})', false),
    ('create_quote valid_until NULL',          'crm.create_quote({opp}, valid_until => NULL)', false),
    ('create_quote valid_until infinity',      'crm.create_quote({opp}, valid_until => ''infinity'')', false),
    ('create_quote valid_until -infinity',     'crm.create_quote({opp}, valid_until => ''-infinity'')', false),
    ('create_quote valid_until max date',      'crm.create_quote({opp}, valid_until => ''5874897-12-31'')', false),
    ('create_quote valid_until 4713 BC',       'crm.create_quote({opp}, valid_until => ''4713-01-01 BC'')', false),
    ('create_quote discount NULL',             'crm.create_quote({opp}, discount => NULL)', false),
    ('create_quote discount NaN',              'crm.create_quote({opp}, discount => ''NaN'')', false),
    ('create_quote discount Infinity',         'crm.create_quote({opp}, discount => ''Infinity'')', false),
    ('create_quote discount -Infinity',        'crm.create_quote({opp}, discount => ''-Infinity'')', false),
    ('create_quote discount -1',               'crm.create_quote({opp}, discount => -1)', false),
    ('create_quote discount 100.001',          'crm.create_quote({opp}, discount => 100.001)', false),
    ('create_quote discount 1e100',            'crm.create_quote({opp}, discount => 1e100)', false),
    ('create_quote tax_rate NULL',             'crm.create_quote({opp}, tax_rate => NULL)', false),
    ('create_quote tax_rate NaN',              'crm.create_quote({opp}, tax_rate => ''NaN'')', false),
    ('create_quote tax_rate Infinity',         'crm.create_quote({opp}, tax_rate => ''Infinity'')', false),
    ('create_quote tax_rate -1',               'crm.create_quote({opp}, tax_rate => -1)', false),
    ('create_quote tax_rate 1e100',            'crm.create_quote({opp}, tax_rate => 1e100)', false),
    -- submit_quote, approve_quote, reject_quote (quote_id, comment)
    ('submit_quote valid',                     'crm.submit_quote({draft})', true),
    ('submit_quote quote NULL',                'crm.submit_quote(NULL)', false),
    ('submit_quote quote 0',                   'crm.submit_quote(0)', false),
    ('submit_quote quote -1',                  'crm.submit_quote(-1)', false),
    ('submit_quote quote bigint max',          'crm.submit_quote(9223372036854775807)', false),
    ('submit_quote quote other''s',            'crm.submit_quote({other_draft})', false),
    ('submit_quote comment NULL',              'crm.submit_quote({draft}, NULL)', true),
    ('submit_quote comment empty',             'crm.submit_quote({draft}, '''')', true),
    ('submit_quote comment 1 MB',              'crm.submit_quote({draft}, {big})', true),
    ('submit_quote not Draft',                 'crm.submit_quote({accepted})', false),
    ('approve_quote Draft',                    'crm.approve_quote({draft})', false),
    ('approve_quote quote NULL',               'crm.approve_quote(NULL)', false),
    ('approve_quote quote 0',                  'crm.approve_quote(0)', false),
    ('approve_quote quote -1',                 'crm.approve_quote(-1)', false),
    ('approve_quote quote bigint max',         'crm.approve_quote(9223372036854775807)', false),
    ('approve_quote comment NULL',             'crm.approve_quote({draft}, NULL)', false),
    ('approve_quote comment 1 MB',             'crm.approve_quote({draft}, {big})', false),
    ('approve_quote submitted',                'crm.approve_quote((crm.submit_quote({draft}) IS NOT NULL)::int * {draft}, ''ok'')', true),
    ('approve_quote submitted, 1 MB comment',  'crm.approve_quote((crm.submit_quote({draft}) IS NOT NULL)::int * {draft}, {big})', true),
    ('reject_quote submitted, 1 MB comment',   'crm.reject_quote((crm.submit_quote({draft}) IS NOT NULL)::int * {draft}, {big})', true),
    ('reject_quote Draft',                     'crm.reject_quote({draft}, ''no'')', false),
    ('reject_quote quote NULL',                'crm.reject_quote(NULL, ''no'')', false),
    ('reject_quote quote 0',                   'crm.reject_quote(0, ''no'')', false),
    ('reject_quote quote -1',                  'crm.reject_quote(-1, ''no'')', false),
    ('reject_quote quote bigint max',          'crm.reject_quote(9223372036854775807, ''no'')', false),
    ('reject_quote comment NULL',              'crm.reject_quote({draft}, NULL)', false),
    ('reject_quote comment empty',             'crm.reject_quote({draft}, '''')', false),
    ('reject_quote comment blank',             'crm.reject_quote({draft}, ''  '')', false),
    ('reject_quote comment 1 MB',              'crm.reject_quote({draft}, {big})', false),
    ('reject_quote submitted, no comment',     'crm.reject_quote((crm.submit_quote({draft}) IS NOT NULL)::int * {draft}, NULL)', false),
    -- approve_quote(quote_id, comment, discount); expire_quotes()
    ('approve_quote discount NULL',            'crm.approve_quote((crm.submit_quote({draft}) IS NOT NULL)::int * {draft}, ''ok'', NULL)', true),
    ('approve_quote discount same',            'crm.approve_quote((crm.submit_quote({draft}) IS NOT NULL)::int * {draft}, ''ok'', 0)', true),
    ('approve_quote discount -1',              'crm.approve_quote((crm.submit_quote({draft}) IS NOT NULL)::int * {draft}, ''ok'', -1)', false),
    ('approve_quote discount 100.001',         'crm.approve_quote((crm.submit_quote({draft}) IS NOT NULL)::int * {draft}, ''ok'', 100.001)', false),
    ('approve_quote discount 1e100',           'crm.approve_quote((crm.submit_quote({draft}) IS NOT NULL)::int * {draft}, ''ok'', 1e100)', false),
    ('approve_quote discount NaN',             'crm.approve_quote((crm.submit_quote({draft}) IS NOT NULL)::int * {draft}, ''ok'', ''NaN'')', false),
    ('approve_quote discount Infinity',        'crm.approve_quote((crm.submit_quote({draft}) IS NOT NULL)::int * {draft}, ''ok'', ''Infinity'')', false),
    ('approve_quote discount -Infinity',       'crm.approve_quote((crm.submit_quote({draft}) IS NOT NULL)::int * {draft}, ''ok'', ''-Infinity'')', false),
    ('approve_quote discount, Draft',          'crm.approve_quote({draft}, ''ok'', 0)', false),
    ('approve_quote discount, other''s',       'crm.approve_quote({other_draft}, ''ok'', 0)', false),
    ('expire_quotes',                          'crm.expire_quotes()', true),
    -- sync_quote(quote_id)
    ('sync_quote valid',                       'crm.sync_quote({draft})', false),
    ('sync_quote quote NULL',                  'crm.sync_quote(NULL)', false),
    ('sync_quote quote 0',                     'crm.sync_quote(0)', false),
    ('sync_quote quote -1',                    'crm.sync_quote(-1)', false),
    ('sync_quote quote int max',               'crm.sync_quote(2147483647)', false),
    ('sync_quote quote bigint max',            'crm.sync_quote(9223372036854775807)', false),
    ('sync_quote quote other''s',              'crm.sync_quote({other_draft})', false),
    -- create_order(quote_id, order_number)
    ('create_order valid',                     'crm.create_order({accepted})', false),
    ('create_order quote NULL',                'crm.create_order(NULL)', false),
    ('create_order quote 0',                   'crm.create_order(0)', false),
    ('create_order quote -1',                  'crm.create_order(-1)', false),
    ('create_order quote bigint max',          'crm.create_order(9223372036854775807)', false),
    ('create_order quote Draft',               'crm.create_order({draft})', false),
    ('create_order quote other''s',            'crm.create_order({other_accepted})', false),
    ('create_order number NULL',               'crm.create_order({accepted}, NULL)', false),
    ('create_order number empty',              'crm.create_order({accepted}, '''')', false),
    ('create_order number blank',              'crm.create_order({accepted}, '' '')', false),
    ('create_order number SO- (drawn form)',   'crm.create_order({accepted}, (SELECT order_number FROM crm.sales_order WHERE id = {order}))', false),
    ('create_order number 1 MB',               'crm.create_order({accepted}, {big})', false),
    ('create_order number 640 kB random',      'crm.create_order({accepted}, {rnd})', false),
    -- activate_order(order_id), cancel_order(order_id, reason)
    ('activate_order valid',                   'crm.activate_order({order})', true),
    ('activate_order order NULL',              'crm.activate_order(NULL)', false),
    ('activate_order order 0',                 'crm.activate_order(0)', false),
    ('activate_order order -1',                'crm.activate_order(-1)', false),
    ('activate_order order int max',           'crm.activate_order(2147483647)', false),
    ('activate_order order bigint max',        'crm.activate_order(9223372036854775807)', false),
    ('activate_order order other''s',          'crm.activate_order({other_order})', false),
    ('cancel_order valid',                     'crm.cancel_order({order}, ''withdrawn'')', true),
    ('cancel_order order NULL',                'crm.cancel_order(NULL, ''x'')', false),
    ('cancel_order order 0',                   'crm.cancel_order(0, ''x'')', false),
    ('cancel_order order -1',                  'crm.cancel_order(-1, ''x'')', false),
    ('cancel_order order bigint max',          'crm.cancel_order(9223372036854775807, ''x'')', false),
    ('cancel_order order other''s',            'crm.cancel_order({other_order}, ''x'')', false),
    ('cancel_order reason NULL',               'crm.cancel_order({order}, NULL)', true),
    ('cancel_order reason empty',              'crm.cancel_order({order}, '''')', true),
    ('cancel_order reason 1 MB',               'crm.cancel_order({order}, {big})', true),
    -- claim_due_reminders(max_count, due_before): the count of reminders handed out
    ('claim_due_reminders default',            '(SELECT count(*) FROM crm.claim_due_reminders())', true),
    ('claim_due_reminders max_count NULL',     '(SELECT count(*) FROM crm.claim_due_reminders(NULL))', true),
    ('claim_due_reminders max_count 0',        '(SELECT count(*) FROM crm.claim_due_reminders(0))', true),
    ('claim_due_reminders max_count -1',       '(SELECT count(*) FROM crm.claim_due_reminders(-1))', true),
    ('claim_due_reminders max_count int min',  '(SELECT count(*) FROM crm.claim_due_reminders(-2147483648))', true),
    ('claim_due_reminders max_count 10000',    '(SELECT count(*) FROM crm.claim_due_reminders(10000))', true),
    ('claim_due_reminders max_count 10001',    '(SELECT count(*) FROM crm.claim_due_reminders(10001))', true),
    ('claim_due_reminders max_count int max',  '(SELECT count(*) FROM crm.claim_due_reminders(2147483647))', true),
    ('claim_due_reminders due NULL',           '(SELECT count(*) FROM crm.claim_due_reminders(10, NULL))', true),
    ('claim_due_reminders due infinity',       '(SELECT count(*) FROM crm.claim_due_reminders(10, ''infinity''))', true),
    ('claim_due_reminders due -infinity',      '(SELECT count(*) FROM crm.claim_due_reminders(10, ''-infinity''))', true),
    ('claim_due_reminders due 294276 AD',      '(SELECT count(*) FROM crm.claim_due_reminders(10, ''294276-12-31 23:59:59+00''))', true),
    ('claim_due_reminders due 4713 BC',        '(SELECT count(*) FROM crm.claim_due_reminders(10, ''4713-01-01 00:00:00+00 BC''))', true),
    -- take_reminder(activity_id, remind_at): the count of reminders taken (none is claimed)
    ('take_reminder unclaimed',                '(SELECT count(*) FROM crm.take_reminder(1, ''2020-01-01''))', true),
    ('take_reminder activity NULL',            '(SELECT count(*) FROM crm.take_reminder(NULL, ''2020-01-01''))', true),
    ('take_reminder remind_at NULL',           '(SELECT count(*) FROM crm.take_reminder(1, NULL))', true),
    ('take_reminder activity 0',               '(SELECT count(*) FROM crm.take_reminder(0, ''2020-01-01''))', true),
    ('take_reminder activity -1',              '(SELECT count(*) FROM crm.take_reminder(-1, ''2020-01-01''))', true),
    ('take_reminder activity bigint max',      '(SELECT count(*) FROM crm.take_reminder(9223372036854775807, ''2020-01-01''))', true),
    ('take_reminder remind_at infinity',       '(SELECT count(*) FROM crm.take_reminder(1, ''infinity''))', true),
    -- activity_occurrences(from, to): how many calendar rows (only those the role sees)
    ('activity_occurrences valid',             '(SELECT count(*) FROM crm.activity_occurrences(''2019-01-01'', ''2021-01-01''))', true),
    ('activity_occurrences from NULL',         '(SELECT count(*) FROM crm.activity_occurrences(NULL, ''2021-01-01''))', true),
    ('activity_occurrences to NULL',           '(SELECT count(*) FROM crm.activity_occurrences(''2019-01-01'', NULL))', true),
    ('activity_occurrences empty window',      '(SELECT count(*) FROM crm.activity_occurrences(''2020-01-01'', ''2020-01-01''))', true),
    ('activity_occurrences reversed',          '(SELECT count(*) FROM crm.activity_occurrences(''2021-01-01'', ''2019-01-01''))', true),
    ('activity_occurrences infinite',          '(SELECT count(*) FROM crm.activity_occurrences(''-infinity'', ''infinity''))', true),
    ('activity_occurrences 4713 BC to 294276 AD', '(SELECT count(*) FROM crm.activity_occurrences(''4713-01-01 00:00:00+00 BC'', ''294276-12-31 23:59:59+00''))', true),
    -- search(query, kinds, max_results): how many rows found (only those the role sees)
    -- find_by_attributes(object, filter): how many ids found (only those the role sees)
    ('find_by_attributes valid',               '(SELECT count(*) FROM crm.find_by_attributes(''account'', ''{"region": "EMEA"}''))', true),
    ('find_by_attributes object NULL',         '(SELECT count(*) FROM crm.find_by_attributes(NULL, ''{}''))', true),
    ('find_by_attributes object empty',        '(SELECT count(*) FROM crm.find_by_attributes('''', ''{}''))', true),
    ('find_by_attributes object not one',      '(SELECT count(*) FROM crm.find_by_attributes(''change_log'', ''{}''))', true),
    ('find_by_attributes object huge',         '(SELECT count(*) FROM crm.find_by_attributes({big}, ''{}''))', true),
    ('find_by_attributes filter NULL',         '(SELECT count(*) FROM crm.find_by_attributes(''account'', NULL))', true),
    ('find_by_attributes filter empty',        '(SELECT count(*) FROM crm.find_by_attributes(''account'', ''{}''))', true),
    ('find_by_attributes filter array',        '(SELECT count(*) FROM crm.find_by_attributes(''account'', ''[]''))', true),
    ('find_by_attributes filter scalar',       '(SELECT count(*) FROM crm.find_by_attributes(''account'', ''1''))', true),
    ('find_by_attributes filter huge',         '(SELECT count(*) FROM crm.find_by_attributes(''account'', pg_catalog.jsonb_build_object(''region'', {big})))', true),
    ('search valid',                           '(SELECT count(*) FROM crm.search(''acme''))', true),
    ('search other''s row',                    '(SELECT count(*) FROM crm.search(''repco''))', true),
    ('search query NULL',                      '(SELECT count(*) FROM crm.search(NULL))', true),
    ('search query empty',                     '(SELECT count(*) FROM crm.search(''''))', true),
    ('search query blank',                     '(SELECT count(*) FROM crm.search(''   ''))', true),
    ('search query two letters',               '(SELECT count(*) FROM crm.search(''ac''))', true),
    ('search query wildcards only',            '(SELECT count(*) FROM crm.search(''%%%___\\\\''))', true),
    ('search query wildcards and letters',     '(SELECT count(*) FROM crm.search(''%ac_me%''))', true),
    ('search query control characters',        '(SELECT count(*) FROM crm.search(E''\x01\x02acme\x7f''))', true),
    ('search query 200 characters',            '(SELECT count(*) FROM crm.search(repeat(''acme '', 40)))', true),
    ('search query 1 MB',                      '(SELECT count(*) FROM crm.search({big}))', true),
    ('search kinds empty',                     '(SELECT count(*) FROM crm.search(''acme'', ''{}''))', true),
    ('search kinds NULL element',              '(SELECT count(*) FROM crm.search(''acme'', ARRAY[NULL]::text[]))', true),
    ('search kinds unknown',                   '(SELECT count(*) FROM crm.search(''acme'', ARRAY[''quote'']))', true),
    ('search kinds 1 MB',                      '(SELECT count(*) FROM crm.search(''acme'', ARRAY[{big}]))', true),
    ('search kinds repeated, 2-D',             '(SELECT count(*) FROM crm.search(''acme'', ''{{lead,lead},{account,contact}}''))', true),
    ('search max_results NULL',                '(SELECT count(*) FROM crm.search(''acme'', max_results => NULL))', true),
    ('search max_results 0',                   '(SELECT count(*) FROM crm.search(''acme'', max_results => 0))', true),
    ('search max_results -1',                  '(SELECT count(*) FROM crm.search(''acme'', max_results => -1))', true),
    ('search max_results 1000',                '(SELECT count(*) FROM crm.search(''acme'', max_results => 1000))', true),
    ('search max_results int max',             '(SELECT count(*) FROM crm.search(''acme'', max_results => 2147483647))', true),
    -- top_accounts(by, n, owner): how many accounts (only those the role sees)
    ('top_accounts valid',                     '(SELECT count(*) FROM crm.top_accounts(''open_amount'', 10))', true),
    ('top_accounts by NULL',                   '(SELECT count(*) FROM crm.top_accounts(NULL, 10))', true),
    ('top_accounts by unknown',                '(SELECT count(*) FROM crm.top_accounts(''amount'', 10))', true),
    ('top_accounts by 1 MB',                   '(SELECT count(*) FROM crm.top_accounts({big}, 10))', true),
    ('top_accounts n NULL',                    '(SELECT count(*) FROM crm.top_accounts(''won_amount'', NULL))', true),
    ('top_accounts n -1',                      '(SELECT count(*) FROM crm.top_accounts(''won_amount'', -1))', true),
    ('top_accounts n 0',                       '(SELECT count(*) FROM crm.top_accounts(''won_amount'', 0))', true),
    ('top_accounts n int max',                 '(SELECT count(*) FROM crm.top_accounts(''open_amount'', 2147483647))', true),
    ('top_accounts owner NULL',                '(SELECT count(*) FROM crm.top_accounts(''open_amount'', 10, NULL))', true),
    ('top_accounts owner unknown',             '(SELECT count(*) FROM crm.top_accounts(''open_amount'', 10, ''nobody''))', true),
    ('top_accounts owner 1 MB',                '(SELECT count(*) FROM crm.top_accounts(''open_amount'', 10, {big}))', true),
    -- search_document(fields, phone): pure, the result shown
    ('search_document NULL',                   'crm.search_document(NULL, NULL)', true),
    ('search_document NULL elements',          'crm.search_document(ARRAY[NULL, NULL]::text[], ''no digits'')', true),
    ('search_document multibyte',              'crm.search_document(ARRAY[''ÆØ'', ''ß''], ''+1 (5)'')', true),
    ('search_document 2-D',                    'crm.search_document(''{{a,b},{c,NULL}}'', NULL)', true),
    ('search_document 1 MB',                   'length(crm.search_document(ARRAY[{big}, {big}], {big}))', true),
    -- company_match_key(text), web_domain(text): pure, the result shown
    ('company_match_key NULL',                 'crm.company_match_key(NULL)', true),
    ('company_match_key empty',                'crm.company_match_key('''')', true),
    ('company_match_key blank',                'crm.company_match_key(''   '')', true),
    ('company_match_key punctuation only',     'crm.company_match_key(''.,;:!?''''"-()'')', true),
    ('company_match_key legal forms only',     'crm.company_match_key(''The Inc. Ltd. GmbH'')', true),
    ('company_match_key multibyte',            'crm.company_match_key(''Ärger & Söhne GmbH'')', true),
    ('company_match_key 1 MB',                 'length(crm.company_match_key({big}))', true),
    ('company_match_key 1 MB of blanks',       'crm.company_match_key(repeat('' '', 1000000))', true),
    ('company_match_key 400 kB of Inc',        'crm.company_match_key(repeat(''Inc '', 100000))', true),
    -- phone_key(text), fold_text(text): pure, the result shown
    ('phone_key NULL',                         'crm.phone_key(NULL)', true),
    ('phone_key empty',                        'crm.phone_key('''')', true),
    ('phone_key six digits',                   'crm.phone_key(''12-34-56'')', true),
    ('phone_key 00 only',                      'crm.phone_key(''00'')', true),
    ('phone_key letters',                      'crm.phone_key(''CALL-ME-NOW'')', true),
    ('phone_key 1 MB',                         'length(crm.phone_key({big}))', true),
    ('fold_text NULL',                         'crm.fold_text(NULL)', true),
    ('fold_text empty',                        'crm.fold_text('''')', true),
    ('fold_text blank',                        'crm.fold_text(repeat('' '', 1000))', true),
    ('fold_text multibyte',                    'crm.fold_text(''ÆØÅ ß Ǆ Ⅻ'')', true),
    ('fold_text 1 MB',                         'length(crm.fold_text({big}))', true),
    ('web_domain NULL',                        'crm.web_domain(NULL)', true),
    ('web_domain empty',                       'crm.web_domain('''')', true),
    ('web_domain scheme only',                 'crm.web_domain(''https://'')', true),
    ('web_domain www. only',                   'crm.web_domain(''https://www.'')', true),
    ('web_domain at sign',                     'crm.web_domain(''@'')', true),
    ('web_domain colon slashes',               'crm.web_domain(''://'')', true),
    ('web_domain port only',                   'crm.web_domain('':8080'')', true),
    ('web_domain IPv6',                        'crm.web_domain(''http://[::1]:80/x'')', true),
    ('web_domain 1 MB',                        'length(crm.web_domain({big}))', true),
    ('web_domain 1 MB of dots',                'length(crm.web_domain(repeat(''a.'', 500000)))', true),
    -- current_role_id(), team_roles()
    ('current_role_id',                        'crm.current_role_id() = current_user::regrole', true),
    ('team_roles',                             '(SELECT count(*) FROM crm.team_roles())', true),
    -- may_reference_account, may_reference_contact, may_link_account (id):
    -- NULL is true by design (a row that points at nothing may be written)
    ('may_reference_account own',              'crm.may_reference_account({account})', true),
    ('may_reference_account other''s',         'crm.may_reference_account({other_account})', true),
    ('may_reference_account NULL',             'crm.may_reference_account(NULL)', true),
    ('may_reference_account 0',                'crm.may_reference_account(0)', true),
    ('may_reference_account -1',               'crm.may_reference_account(-1)', true),
    ('may_reference_account bigint max',       'crm.may_reference_account(9223372036854775807)', true),
    ('may_reference_contact own',              'crm.may_reference_contact({contact})', true),
    ('may_reference_contact other''s',         'crm.may_reference_contact({other_contact})', true),
    ('may_reference_contact NULL',             'crm.may_reference_contact(NULL)', true),
    ('may_reference_contact 0',                'crm.may_reference_contact(0)', true),
    ('may_reference_contact -1',               'crm.may_reference_contact(-1)', true),
    ('may_reference_contact bigint max',       'crm.may_reference_contact(9223372036854775807)', true),
    ('may_link_account own',                   'crm.may_link_account({account})', true),
    ('may_link_account other''s',              'crm.may_link_account({other_account})', true),
    ('may_link_account NULL',                  'crm.may_link_account(NULL)', true),
    ('may_link_account 0',                     'crm.may_link_account(0)', true),
    ('may_link_account -1',                    'crm.may_link_account(-1)', true),
    ('may_link_account bigint max',            'crm.may_link_account(9223372036854775807)', true),
    -- the aggregates: verify (rows that differ), compact and rebuild (admins)
    ('verify_aggregates',                      '(SELECT count(*) FROM crm.verify_aggregates())', true),
    ('compact_aggregates',                     'crm.compact_aggregates()', false),
    ('rebuild_aggregates',                     'crm.rebuild_aggregates()', false),
    -- the as-of pipeline: no moment (STRICT), before everything, after everything
    ('pipeline_as_of NULL',                    '(SELECT count(*) FROM crm.pipeline_as_of(NULL))', true),
    ('pipeline_as_of -infinity',               '(SELECT count(*) FROM crm.pipeline_as_of(''-infinity''))', true),
    ('pipeline_as_of infinity',                '(SELECT count(*) FROM crm.pipeline_as_of(''infinity''))', true),
    -- currencies: the corporate currency, the rate valid on a day
    ('corporate_currency',                     'crm.corporate_currency()', true),
    ('exchange_rate_on corporate',             'crm.exchange_rate_on(''USD'', ''2027-01-01'')', true),
    ('exchange_rate_on no rate',               'crm.exchange_rate_on(''EUR'', ''2027-01-01'')', true),
    ('exchange_rate_on day NULL',              'crm.exchange_rate_on(''EUR'', NULL)', true),
    ('exchange_rate_on currency NULL',         'crm.exchange_rate_on(NULL, ''2027-01-01'')', true),
    ('exchange_rate_on empty',                 'crm.exchange_rate_on('''', ''2027-01-01'')', true),
    ('exchange_rate_on unknown',               'crm.exchange_rate_on(''XXX'', ''2027-01-01'')', true),
    ('exchange_rate_on 1 MB',                  'crm.exchange_rate_on({big}, ''2027-01-01'')', true),
    ('exchange_rate_on infinity',              'crm.exchange_rate_on(''EUR'', ''infinity'')', true),
    -- personal data: export and erasure (privacy officers), purge (admins)
    ('export_person valid',                    'crm.export_person(''chris@umbrella.example'') <> ''{}''', true),
    ('export_person NULL',                     'crm.export_person(NULL)', true),
    ('export_person empty',                    'crm.export_person('''')', true),
    ('export_person no at sign',               'crm.export_person(''chris'')', true),
    ('export_person two addresses',            'crm.export_person(''a@b.example c@d.example'')', true),
    ('export_person 1 MB',                     'crm.export_person({big})', true),
    ('export_person nobody',                   'crm.export_person(''nobody@nowhere.example'')', true),
    ('erase_person valid',                     'crm.erase_person(''chris@umbrella.example'', ''request'')', false),
    ('erase_person nobody',                    'crm.erase_person(''nobody@nowhere.example'', ''request'')', false),
    ('erase_person email NULL',                'crm.erase_person(NULL, ''request'')', false),
    ('erase_person email 1 MB',                'crm.erase_person({big}, ''request'')', false),
    ('erase_person reason NULL',               'crm.erase_person(''chris@umbrella.example'', NULL)', false),
    ('erase_person reason blank',              'crm.erase_person(''chris@umbrella.example'', ''  '')', false),
    ('erase_person reason 1 MB',               'crm.erase_person(''nobody@nowhere.example'', {big})', false),
    ('purge_change_log default',               'crm.purge_change_log()', true),
    ('purge_change_log NULL',                  'crm.purge_change_log(NULL)', true),
    ('purge_change_log past',                  'crm.purge_change_log(''2000-01-01'')', true),
    ('purge_change_log -infinity',             'crm.purge_change_log(''-infinity'')', true),
    ('purge_change_log future',                'crm.purge_change_log(now() + interval ''1 day'')', true),
    ('purge_change_log infinity',              'crm.purge_change_log(''infinity'')', true),
    -- lead capture (crm_intake only: 42501 for both roles here; the
    -- superuser's refusals are kept in crm.lead_capture, by design)
    ('capture_lead valid',                     'crm.capture_lead(''Bad Input'', NULL, ''bad.input@capture.example'') > 0', true),
    ('capture_lead name NULL',                 'crm.capture_lead(NULL, NULL, ''bad.input@capture.example'')', true),
    ('capture_lead name empty',                'crm.capture_lead('''', NULL, ''bad.input@capture.example'')', true),
    ('capture_lead name 1 MB',                 'crm.capture_lead({big}, NULL, ''bad.input@capture.example'')', true),
    ('capture_lead company 1 MB',              'crm.capture_lead(''B'', {big}, ''bad.input@capture.example'')', true),
    ('capture_lead no email, no phone',        'crm.capture_lead(''B'')', true),
    ('capture_lead email malformed',           'crm.capture_lead(''B'', NULL, ''a@b'')', true),
    ('capture_lead email 1 MB',                'crm.capture_lead(''B'', NULL, {big})', true),
    ('capture_lead phone malformed',           'crm.capture_lead(''B'', NULL, NULL, ''phone'')', true),
    ('capture_lead phone 1 MB',                'crm.capture_lead(''B'', NULL, NULL, {big})', true),
    ('capture_lead source NULL',               'crm.capture_lead(''B'', NULL, ''b@capture.example'', NULL, NULL)', true),
    ('capture_lead source empty',              'crm.capture_lead(''B'', NULL, ''b@capture.example'', NULL, '''')', true),
    ('capture_lead source 1 MB',               'crm.capture_lead(''B'', NULL, ''b@capture.example'', NULL, {big})', true),
    ('capture_lead campaign 0',                'crm.capture_lead(''B'', NULL, ''b@capture.example'', NULL, ''website'', 0)', true),
    ('capture_lead campaign -1',               'crm.capture_lead(''B'', NULL, ''b@capture.example'', NULL, ''website'', -1)', true),
    ('capture_lead campaign bigint max',       'crm.capture_lead(''B'', NULL, ''b@capture.example'', NULL, ''website'', 9223372036854775807)', true),
    ('capture_lead details array',             'crm.capture_lead(''B'', NULL, ''b@capture.example'', NULL, ''website'', NULL, ''[]'')', true),
    ('capture_lead details 640 kB',            'crm.capture_lead(''B'', NULL, ''b@capture.example'', NULL, ''website'', NULL, jsonb_build_object(''x'', {rnd}))', true),
    ('capture_lead details consent bad',       'crm.capture_lead(''B'', NULL, ''b@capture.example'', NULL, ''website'', NULL, ''{"consent": {"basis": 1}}'')', true),
    -- log_email(message_id, direction, from_address, to_addresses, cc_addresses, subject, body_text, sent_at, in_reply_to)
    ('log_email valid',                        'crm.log_email(''<bad@input.example>'', ''inbound'', ''alice@acme.example'', ARRAY[''rita@repco.example''], ARRAY[''rex@rexco.example'']) > 0', true),
    ('log_email message_id NULL',              'crm.log_email(NULL, ''inbound'', ''a@b.example'', NULL)', true),
    ('log_email message_id empty',             'crm.log_email('''', ''inbound'', ''a@b.example'', NULL)', true),
    ('log_email message_id <>',                'crm.log_email(''<>'', ''inbound'', ''a@b.example'', NULL)', true),
    ('log_email message_id 1 MB',              'crm.log_email({big}, ''inbound'', ''a@b.example'', NULL)', true),
    ('log_email direction NULL',               'crm.log_email(''m'', NULL, ''a@b.example'', NULL)', true),
    ('log_email direction unknown',            'crm.log_email(''m'', ''both'', ''a@b.example'', NULL)', true),
    ('log_email from NULL',                    'crm.log_email(''m'', ''inbound'', NULL, NULL)', true),
    ('log_email from empty',                   'crm.log_email(''m'', ''inbound'', '''', NULL)', true),
    ('log_email from 1 MB',                    'crm.log_email(''m'', ''inbound'', {big}, NULL)', true),
    ('log_email to NULL element',              'crm.log_email(''m'', ''inbound'', ''a@b.example'', ARRAY[NULL]::text[])', true),
    ('log_email to empty',                     'crm.log_email(''m'', ''inbound'', ''a@b.example'', ''{}'') > 0', true),
    ('log_email to 2-D',                       'crm.log_email(''m'', ''inbound'', ''a@b.example'', ARRAY[[''a@b.example'']])', true),
    ('log_email to 100000',                    'crm.log_email(''m'', ''inbound'', ''a@b.example'', array_fill(''a@b.example''::text, ARRAY[100000]))', true),
    ('log_email cc malformed',                 'crm.log_email(''m'', ''inbound'', ''a@b.example'', NULL, ARRAY[''a@b''])', true),
    ('log_email subject 1 MB',                 'crm.log_email(''m'', ''inbound'', ''a@b.example'', NULL, NULL, {big}) > 0', true),
    ('log_email sent_at NULL',                 'crm.log_email(''m'', ''inbound'', ''a@b.example'', NULL, sent_at => NULL)', true),
    ('log_email sent_at -infinity',            'crm.log_email(''m'', ''inbound'', ''a@b.example'', NULL, sent_at => ''-infinity'')', true),
    ('log_email in_reply_to 1 MB',             'crm.log_email(''m'', ''inbound'', ''a@b.example'', NULL, in_reply_to => {big})', true),
    ('log_email in_reply_to itself',           'crm.log_email(''m'', ''inbound'', ''a@b.example'', NULL, in_reply_to => ''<m>'') > 0', true),
    -- assign_lead(lead_id), rescore_leads(), lead_score_rules(lead)
    ('assign_lead NULL',                       'crm.assign_lead(NULL)', false),
    ('assign_lead 0',                          'crm.assign_lead(0)', false),
    ('assign_lead -1',                         'crm.assign_lead(-1)', false),
    ('assign_lead bigint max',                 'crm.assign_lead(9223372036854775807)', false),
    ('assign_lead own',                        'crm.assign_lead({lead})', true),
    ('assign_lead other''s',                   'crm.assign_lead({other_lead})', false),
    ('rescore_leads',                          'crm.rescore_leads()', true),
    ('lead_score_rules NULL',                  '(SELECT count(*) FROM crm.lead_score_rules(NULL::crm.lead))', true),
    ('lead_score_rules own',                   '(SELECT count(*) FROM crm.lead_score_rules((SELECT l FROM crm.lead AS l WHERE l.id = {lead})))', true);

-- Direct writes to the main tables with bad values.
INSERT INTO cases (label, kind, sql) VALUES
    ('lead status unknown',                    'stmt', 'INSERT INTO crm.lead (name, status) VALUES (''x'', ''Bogus'')'),
    ('lead status empty',                      'stmt', 'UPDATE crm.lead SET status = '''' WHERE id = {lead}'),
    ('lead status Converted by hand',          'stmt', 'UPDATE crm.lead SET status = ''Converted'' WHERE id = {lead}'),
    ('lead source unknown',                    'stmt', 'INSERT INTO crm.lead (name, source) VALUES (''x'', ''nowhere'')'),
    ('lead name 1 MB',                         'stmt', 'INSERT INTO crm.lead (name) VALUES ({big})'),
    ('lead email 1 MB',                        'stmt', 'INSERT INTO crm.lead (name, email) VALUES (''x'', {big})'),
    ('lead website 1 MB',                      'stmt', 'INSERT INTO crm.lead (name, website) VALUES (''x'', {big})'),
    ('lead consent_basis unknown',             'stmt', 'UPDATE crm.lead SET consent_basis = ''because'' WHERE id = {lead}'),
    ('lead consent_at without basis',          'stmt', 'UPDATE crm.lead SET consent_at = now() WHERE id = {lead}'),
    ('contact consent_source blank',           'stmt', 'UPDATE crm.contact SET consent_basis = ''consent'', consent_source = '' '' WHERE id = {contact}'),
    ('contact opt-outs NULL',                  'stmt', 'UPDATE crm.contact SET email_opt_out = NULL WHERE id = {contact}'),
    ('settings change_log_retention negative', 'stmt', 'UPDATE crm.settings SET change_log_retention = ''-1 day'''),
    ('account name empty',                     'stmt', 'INSERT INTO crm.account (name) VALUES ('''')'),
    ('opportunity amount NaN',                 'stmt', 'UPDATE crm.opportunity SET amount = ''NaN'' WHERE id = {opp}'),
    ('opportunity amount NaN, no lines',       'stmt', 'INSERT INTO crm.opportunity (name, account_id, amount) VALUES (''x'', {account}, ''NaN'')'),
    ('opportunity amount Infinity',            'stmt', 'INSERT INTO crm.opportunity (name, account_id, amount) VALUES (''x'', {account}, ''Infinity'')'),
    ('opportunity amount -1',                  'stmt', 'INSERT INTO crm.opportunity (name, account_id, amount) VALUES (''x'', {account}, -1)'),
    ('opportunity amount 1e20',                'stmt', 'INSERT INTO crm.opportunity (name, account_id, amount) VALUES (''x'', {account}, 1e20)'),
    ('opportunity probability NaN',            'stmt', 'INSERT INTO crm.opportunity (name, account_id, probability) VALUES (''x'', {account}, ''NaN'')'),
    ('opportunity stage unknown',              'stmt', 'INSERT INTO crm.opportunity (name, account_id, stage) VALUES (''x'', {account}, ''Bogus'')'),
    ('opportunity close_date infinity',        'stmt', 'INSERT INTO crm.opportunity (name, account_id, close_date) VALUES (''x'', {account}, ''infinity'')'),
    ('opportunity close_date -infinity',       'stmt', 'UPDATE crm.opportunity SET close_date = ''-infinity'' WHERE id = {opp}'),
    ('opportunity close_date 5874897 AD',      'stmt', 'UPDATE crm.opportunity SET close_date = ''5874897-12-31'' WHERE id = {opp}'),
    ('line item quantity -1',                  'stmt', 'INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES ({opp}, 1, -1)'),
    ('line item quantity 0',                   'stmt', 'INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES ({opp}, 1, 0)'),
    ('line item quantity NaN',                 'stmt', 'INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES ({opp}, 1, ''NaN'')'),
    ('line item quantity 1e20',                'stmt', 'INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES ({opp}, 1, 1e20)'),
    ('line item unit_price NaN',               'stmt', 'INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, unit_price) VALUES ({opp}, 1, ''NaN'')'),
    ('line item discount NaN',                 'stmt', 'INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, discount) VALUES ({opp}, 1, ''NaN'')'),
    ('line item product NULL',                 'stmt', 'INSERT INTO crm.opportunity_line_item (opportunity_id, product_id) VALUES ({opp}, NULL)'),
    ('line item product -1',                   'stmt', 'INSERT INTO crm.opportunity_line_item (opportunity_id, product_id) VALUES ({opp}, -1)'),
    ('line item opportunity bigint max',       'stmt', 'INSERT INTO crm.opportunity_line_item (opportunity_id, product_id) VALUES (9223372036854775807, 1)'),
    ('product list_price NaN',                 'stmt', 'INSERT INTO crm.product (code, name, list_price) VALUES (''X'', ''x'', ''NaN'')'),
    ('product inventory NaN',                  'stmt', 'UPDATE crm.product SET inventory = ''NaN'' WHERE id = 1'),
    ('product inventory -1',                   'stmt', 'UPDATE crm.product SET inventory = -1 WHERE id = 1'),
    ('quote status unknown',                   'stmt', 'UPDATE crm.quote SET status = ''Bogus'' WHERE id = {draft}'),
    ('quote discount NaN',                     'stmt', 'UPDATE crm.quote SET discount = ''NaN'' WHERE id = {draft}'),
    ('quote tax_rate Infinity',                'stmt', 'UPDATE crm.quote SET tax_rate = ''Infinity'' WHERE id = {draft}'),
    ('sales_order status unknown',             'stmt', 'UPDATE crm.sales_order SET status = ''Bogus'' WHERE id = {order}'),
    ('sales_order shipping_status unknown',    'stmt', 'UPDATE crm.sales_order SET shipping_status = ''Bogus'' WHERE id = {order}'),
    ('activity type unknown',                  'stmt', 'INSERT INTO crm.activity (type, subject, account_id) VALUES (''fax'', ''x'', {account})'),
    ('activity priority empty',                'stmt', 'INSERT INTO crm.activity (type, subject, account_id, priority) VALUES (''task'', ''x'', {account}, '''')'),
    ('activity remind_at -infinity',           'stmt', 'INSERT INTO crm.activity (type, subject, account_id, remind_at) VALUES (''task'', ''x'', {account}, ''-infinity'')'),
    ('activity recurrence unknown part',       'stmt', 'INSERT INTO crm.activity (type, subject, account_id, due_at, recurrence) VALUES (''task'', ''x'', {account}, now(), ''FREQ=YEARLY'')'),
    ('activity recurrence empty',              'stmt', 'INSERT INTO crm.activity (type, subject, account_id, due_at, recurrence) VALUES (''task'', ''x'', {account}, now(), '''')'),
    ('activity recurrence 1 MB',               'stmt', 'INSERT INTO crm.activity (type, subject, account_id, due_at, recurrence) VALUES (''task'', ''x'', {account}, now(), {big})'),
    ('activity recurrence no due_at',          'stmt', 'INSERT INTO crm.activity (type, subject, account_id, recurrence) VALUES (''task'', ''x'', {account}, ''FREQ=DAILY'')'),
    ('activity recurrence zone empty',         'stmt', 'INSERT INTO crm.activity (type, subject, account_id, due_at, recurrence, recurrence_time_zone) VALUES (''task'', ''x'', {account}, now(), ''FREQ=DAILY'', '''')'),
    ('activity recurrence zone 1 MB',          'stmt', 'INSERT INTO crm.activity (type, subject, account_id, due_at, recurrence, recurrence_time_zone) VALUES (''task'', ''x'', {account}, now(), ''FREQ=DAILY'', {big})'),
    ('activity recurrence due 294276 AD',      'stmt', 'INSERT INTO crm.activity (type, subject, account_id, due_at, recurrence) VALUES (''task'', ''x'', {account}, ''294276-12-31 23:59:59+00'', ''FREQ=DAILY'') ;; UPDATE crm.activity SET status = ''Completed'' WHERE subject = ''x'''),
    ('activity series_id forged',              'stmt', 'UPDATE crm.activity SET series_id = 9223372036854775807, occurrence_number = 2147483647 WHERE account_id = {account}'),
    ('activity completed, recurring',          'stmt', 'UPDATE crm.activity SET recurrence = ''FREQ=DAILY;COUNT=2'', status = ''Completed'' WHERE account_id = {account} ;; UPDATE crm.activity SET status = ''Completed'' WHERE occurrence_number = 2 ;; SELECT crm.activity_occurrences(''2019-01-01'', ''2021-01-01'')'),
    ('activity recurring, occurrences infinite', 'stmt', 'UPDATE crm.activity SET recurrence = ''FREQ=WEEKLY;BYDAY=MO,SU'' WHERE account_id = {account} ;; SELECT count(*) FROM crm.activity_occurrences(''-infinity'', ''infinity'')'),
    ('campaign status unknown',                'stmt', 'INSERT INTO crm.campaign (name, status) VALUES (''x'', ''Bogus'')'),
    ('campaign budgeted_cost NaN',             'stmt', 'INSERT INTO crm.campaign (name, budgeted_cost) VALUES (''x'', ''NaN'')'),
    ('scoring_rule column unknown',            'stmt', 'INSERT INTO crm.scoring_rule (name, column_name, operator, value, points) VALUES (''x'', ''nope'', ''='', ''1'', 1)'),
    ('scoring_rule column empty',              'stmt', 'INSERT INTO crm.scoring_rule (name, column_name, operator, value, points) VALUES (''x'', '''', ''='', ''1'', 1)'),
    ('scoring_rule operator unknown',          'stmt', 'INSERT INTO crm.scoring_rule (name, column_name, operator, value, points) VALUES (''x'', ''industry'', ''~'', ''a'', 1)'),
    ('scoring_rule value NULL',                'stmt', 'INSERT INTO crm.scoring_rule (name, column_name, operator, value, points) VALUES (''x'', ''industry'', ''='', NULL, 1)'),
    ('scoring_rule value not a bigint',        'stmt', 'INSERT INTO crm.scoring_rule (name, column_name, operator, value, points) VALUES (''x'', ''campaign_id'', ''>'', ''NaN'', 1)'),
    ('scoring_rule value 1 MB',                'stmt', 'INSERT INTO crm.scoring_rule (name, column_name, operator, value, points) VALUES (''x'', ''remarks'', ''contains'', {big}, 1) ;; INSERT INTO crm.lead (name) VALUES (''scored'')'),
    ('scoring_rule points bigint max',         'stmt', 'INSERT INTO crm.scoring_rule (name, column_name, operator, value, points) VALUES (''x'', ''industry'', ''='', ''a'', 9223372036854775807)'),
    ('assignment_rule no target',              'stmt', 'INSERT INTO crm.assignment_rule (priority) VALUES (1)'),
    ('assignment_rule queue 1 MB',             'stmt', 'INSERT INTO crm.assignment_rule (priority, queue) VALUES (1, {big}) ;; INSERT INTO crm.lead (name) VALUES (''routed'')'),
    ('queue member capacity -1',               'stmt', 'INSERT INTO crm.assignment_queue_member (queue, member, max_open_leads) VALUES (''q'', ''crm_sales'', -1)'),
    ('settings default_lead_owner unknown',    'stmt', 'UPDATE crm.settings SET default_lead_owner = ''no_such_role'''),
    -- a merge of the role's own record with a new duplicate of it
    ('merge_accounts valid',                   'stmt', 'INSERT INTO crm.account (name) VALUES (''Acme Dup'') ;; SELECT crm.merge_accounts({account}, (SELECT max(id) FROM crm.account))'),
    ('merge_contacts valid',                   'stmt', 'INSERT INTO crm.contact (name) VALUES (''Dup'') ;; SELECT crm.merge_contacts({contact}, (SELECT max(id) FROM crm.contact))'),
    ('merge_leads valid',                      'stmt', 'INSERT INTO crm.lead (name) VALUES (''Dup'') ;; SELECT crm.merge_leads({lead}, (SELECT max(id) FROM crm.lead))'),
    -- NaN where a ">= 0" check alone would let it through, and what it would do
    -- further on (statements separated by " ;; "): refused at the write (23514)
    ('NaN stock, then activate_order',         'stmt', 'UPDATE crm.product SET inventory = ''NaN'' WHERE id = 1 ;; SELECT crm.activate_order({order})'),
    ('NaN price, then a line item',            'stmt', 'UPDATE crm.price_book_entry SET unit_price = ''NaN'' WHERE product_id = 1 ;; INSERT INTO crm.opportunity_line_item (opportunity_id, product_id) VALUES ({opp}, 1)'),
    ('NaN costs, then campaign_performance',   'stmt', 'INSERT INTO crm.campaign (name, actual_cost, budgeted_cost, expected_revenue) VALUES (''N'', ''NaN'', ''NaN'', ''NaN'') ;; SELECT count(*) FROM crm.campaign_performance');

-- {other_*}: the other role's row of that kind.
CREATE TEMP TABLE results (n int, who text, result text, PRIMARY KEY (n, who));
GRANT SELECT ON cases, own_ids TO regress_bad_rep;
GRANT INSERT ON results TO regress_bad_rep;

-- Runs every case as the current role, each in a subtransaction that is
-- always rolled back, and records its SQLSTATE or "ok" (with the result).
CREATE FUNCTION pg_temp.run_cases(p_who text) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    c record;
    i record;
    stmt text;
    part text;
    res text;
    state text;
    msg text;
BEGIN
    FOR c IN SELECT * FROM pg_temp.cases ORDER BY n LOOP
        stmt := replace(replace(c.sql, '{big}', 'repeat(''x'', 1000000)'),
                        '{rnd}', '(SELECT string_agg(md5(g::text), '''') FROM generate_series(1, 20000) AS g)');
        FOR i IN SELECT o.name, o.id, (o.who = p_who) AS own FROM pg_temp.own_ids AS o LOOP
            stmt := replace(stmt, format('{%s%s}', CASE WHEN i.own THEN '' ELSE 'other_' END, i.name), i.id::text);
        END LOOP;
        BEGIN
            IF c.kind = 'expr' THEN
                EXECUTE format('SELECT (%s)::text', stmt) INTO res;
            ELSE
                FOREACH part IN ARRAY string_to_array(stmt, ' ;; ') LOOP
                    EXECUTE part;
                END LOOP;
                res := NULL;
            END IF;
            res := CASE WHEN c.show THEN 'ok: ' || coalesce(left(res, 30), 'NULL') ELSE 'ok' END;
            -- undo what the case did: every case starts from the same data
            RAISE EXCEPTION USING ERRCODE = 'ZZ999', MESSAGE = res;
        EXCEPTION
            WHEN SQLSTATE 'ZZ999' THEN
                GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
                state := msg;
            WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
        END;
        INSERT INTO pg_temp.results VALUES (c.n, p_who, state);
    END LOOP;
END
$fn$;

SELECT pg_temp.run_cases('superuser');
SET ROLE regress_bad_rep;
SELECT pg_temp.run_cases('rep');
RESET ROLE;

-- One line per case.  documented: "yes" when both results are "ok" or in
-- the README's table, else "NO".
CREATE TEMP VIEW verdicts AS
SELECT n, who, result,
       CASE WHEN result LIKE 'ok%' OR result IN (SELECT sqlstate FROM documented) THEN 'yes'
            ELSE 'NO' END AS documented
  FROM results;
SELECT c.label, s.result AS as_superuser, r.result AS as_rep,
       CASE WHEN 'NO' IN (s.documented, r.documented) THEN 'NO'
            ELSE 'yes' END AS documented
  FROM cases c JOIN verdicts s ON s.n = c.n AND s.who = 'superuser'
               JOIN verdicts r ON r.n = c.n AND r.who = 'rep'
 ORDER BY c.n;

-- Every case ran for both roles.
SELECT count(*) AS cases, count(*) FILTER (WHERE who = 'superuser') AS as_superuser,
       count(*) FILTER (WHERE who = 'rep') AS as_rep FROM results;

-- The verdict: no internal errors (class XX: a bug in the C code) and no
-- SQLSTATE outside the README's table.
SELECT count(*) FILTER (WHERE result LIKE 'XX%') AS internal_errors,
       count(*) FILTER (WHERE documented = 'NO') AS undocumented
  FROM verdicts;
SELECT v.who, c.label, v.result FROM verdicts v JOIN cases c USING (n)
 WHERE v.result LIKE 'XX%' OR v.documented = 'NO'
 ORDER BY v.n, v.who;

-- Nothing was left behind: the data are as set up.
SELECT (SELECT count(*) FROM crm.lead) AS leads, (SELECT count(*) FROM crm.quote) AS quotes,
       (SELECT count(*) FROM crm.sales_order) AS orders,
       (SELECT count(*) FROM crm.verify_aggregates()) AS aggregate_differences;
