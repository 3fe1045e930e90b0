-- normalize: the keys duplicate detection compares.  Two company names are the
-- same account when crm.company_match_key() agrees; two web addresses are the
-- same site when crm.web_domain() agrees.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;

-- Case, white space, punctuation and legal forms do not matter.
SELECT name, crm.company_match_key(name) AS key
  FROM unnest(ARRAY[
    'Acme', 'ACME, Inc.', 'acme inc', 'Acme  Incorporated', 'Acme Corp.',
    'The Acme Company', 'Acme Co., Ltd.', 'Acme GmbH & Co. KG', 'Acme L.L.C.',
    'Acme Pty Ltd', 'acme-widgets', 'Acme Widgets', 'AcmeWidgets',
    'O''Reilly Media', 'OReilly Media Inc']) AS name;

-- Different companies keep different keys; a name made only of a legal
-- form keeps it; a name with no letters or digits has no key.
SELECT name, crm.company_match_key(name) AS key, crm.company_match_key(name) IS NULL AS no_key
  FROM unnest(ARRAY['Acme Widgets Europe', 'Initech', 'Inc.', 'The', '!!!', '   ', '',
                    'Müller GmbH', 'MÜLLER gmbh', '北京 有限公司']) AS name;

-- Web domains: no scheme, user, port, path or leading www; lower case.
SELECT url, crm.web_domain(url) AS domain
  FROM unnest(ARRAY[
    'acme.example', 'https://www.ACME.example/contact', 'http://user@acme.example:8080/?q=1',
    'www.acme.example.', '//cdn.acme.example/x', 'ACME.example#top',
    'sub.acme.example', 'localhost', 'www.', '', 'https://']) AS url;

-- Both are strict and immutable, so they back the account indexes.
SELECT proname, provolatile, proisstrict FROM pg_proc
 WHERE proname IN ('company_match_key', 'web_domain') ORDER BY 1;
SELECT crm.company_match_key(NULL) IS NULL AS null_in_null_out;
SELECT indexrelid::regclass FROM pg_index WHERE indrelid = 'crm.account'::regclass AND indexprs IS NOT NULL ORDER BY indexrelid::regclass::text;
