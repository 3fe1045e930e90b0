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

-- Phone keys: the digits only, a leading international 00 dropped, the last
-- nine digits of a longer number; the same number written three ways shares
-- a key, and under seven digits there is no key; an extension is not part
-- of the number (a vanity number's letters end it too).
SELECT phone, crm.phone_key(phone) AS key
  FROM unnest(ARRAY[
    '+1 (555) 014-2000', '001 555 014 2000', '555.014.2000',
    '+49 30 1234567', '030 1234567', '+44 20 7946 0958', '020 7946 0958',
    '555 0142', '12-34-56', 'ext. 12', '',
    '+1 555 014 2000 x12', '555-014-2000 ext. 345', '(555) 014-2000#9', 'tel:+1-555-014-2000;ext=7',
    '1-800-FLOWERS']) AS phone;

-- Folded text: no accents, lower case, one space between words.
SELECT t, crm.fold_text(t) AS folded
  FROM unnest(ARRAY['  Müller   GmbH ', 'MULLER gmbh', 'Ærøskøbing', 'François  Café',
                    E'tab\there', 'Łódź', '']) AS t;
SELECT crm.fold_text('Müller') = crm.fold_text('MULLER') AS accents_and_case_ignored;
-- Text of ASCII characters only is folded without calling unaccent and the
-- collation's lower-casing (they change no ASCII character here): the same
-- text as theirs, for every ASCII character and for typical names.
SELECT count(*) AS checked,
       count(*) FILTER (WHERE crm.fold_text(t) IS DISTINCT FROM
                        btrim(regexp_replace(lower(unaccent(t)), '[ \t\n\r\f\v]+', ' ', 'g'), ' ')) AS differ
  FROM (SELECT string_agg(chr(c), '' ORDER BY c) AS t FROM generate_series(1, 127) AS c
        UNION ALL SELECT string_agg(chr(c), '' ORDER BY c DESC) FROM generate_series(1, 127) AS c
        UNION ALL SELECT unnest(ARRAY['ACME Corp.', ' Jane  O''Brien ', 'JOHN.SMITH@EXAMPLE.COM',
                                      E'A\tB\nC', 'https://WWW.Example.com/Path?Q=1', 'IIII'])) AS s;

-- Both are strict and immutable.
SELECT proname, provolatile, proisstrict FROM pg_proc
 WHERE proname IN ('phone_key', 'fold_text') AND pronamespace = 'crm'::regnamespace ORDER BY 1;
