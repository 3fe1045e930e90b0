-- demo/sample_data.sql: a small, realistic CRM data set for the demo.
--
-- Two sales reps (alice, bob) and their manager (carol) as login roles; a
-- handful of existing customer accounts and contacts; and leads from every
-- channel in every status -- including leads whose company is already a
-- customer under a different spelling, to show duplicate detection.

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'alice') THEN CREATE ROLE alice LOGIN IN ROLE crm_sales; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bob')   THEN CREATE ROLE bob   LOGIN IN ROLE crm_sales; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'carol') THEN CREATE ROLE carol LOGIN IN ROLE crm_manager; END IF;
END $$;

-- Existing customers.
INSERT INTO crm.account (name, industry, phone, website, city, country, owner) VALUES
  ('Northwind Traders',        'Wholesale',     '+1 206 555 0100', 'https://northwind.example',     'Seattle',   'USA',     'alice'),
  ('Contoso Ltd.',             'Manufacturing', '+44 20 7946 0100', 'contoso.example',              'London',    'UK',      'alice'),
  ('Fabrikam, Inc.',           'Textiles',      NULL,              'https://www.fabrikam.example', 'Portland',  'USA',     'bob'),
  ('Tailspin Toys',            'Retail',        '+1 312 555 0199', 'tailspintoys.example',          'Chicago',   'USA',     'bob'),
  ('Wide World Importers GmbH','Logistics',     '+49 30 1234 5678', 'https://wideworld.example',    'Berlin',    'Germany', 'carol'),
  ('Adventure Works',          'Sporting Goods', NULL,             NULL,                           'Denver',    'USA',     'alice');

INSERT INTO crm.contact (name, title, email, phone, account_id, owner) VALUES
  ('Nancy Davolio',   'Purchasing Manager', 'nancy.davolio@northwind.example', '+1 206 555 0101', 1, 'alice'),
  ('Andrew Fuller',   'VP Sales',           'andrew.fuller@northwind.example', NULL,              1, 'alice'),
  ('Kim Abercrombie', 'Operations Lead',    'kim@contoso.example',             '+44 20 7946 0111', 2, 'alice'),
  ('Ben Smith',       'Buyer',              'ben.smith@fabrikam.example',      NULL,              3, 'bob'),
  ('Lena Kraus',      'Head of Logistics',  'lena.kraus@wideworld.example',    '+49 30 1234 5600', 5, 'carol');

INSERT INTO crm.lead (name, company, title, email, phone, website, industry, city, country, source, status, remarks, owner) VALUES
  -- Ready to convert; the company is already a customer (other spelling, same domain or same person).
  ('Margaret Peacock', 'NORTHWIND TRADERS LLC', 'Category Buyer', 'margaret.peacock@northwind.example', '+1 206 555 0102', NULL, 'Wholesale', 'Seattle', 'USA', 'website', 'In Transaction', 'Wants Q3 pricing for beverages', 'alice'),
  ('Nancy Davolio',    'Northwind Traders',           'Purchasing Manager', 'Nancy.Davolio@Northwind.example', NULL, NULL, NULL, NULL, NULL, 'email', 'Completed', 'Repeat order via web form', 'alice'),
  ('Dave Green',       'Contoso',               'IT Director', 'dave.green@contoso.example', '+44 20 7946 0123', 'https://www.contoso.example', 'Manufacturing', 'London', 'UK', 'referral', 'In Transaction', 'Referred by Kim Abercrombie', 'alice'),
  ('Sara Lopez',       'Fabrikam Textiles Division', 'Designer', 'sara.lopez@fabrikam.example', NULL, 'fabrikam.example/textiles', NULL, 'Portland', 'USA', 'event', 'Completed', 'Met at trade show', 'bob'),
  -- Ready to convert; new companies.
  ('Oliver Brooks',    'Blue Yonder Airlines',  'Procurement', 'oliver.brooks@blueyonder.example', '+1 425 555 0150', 'https://blueyonder.example', 'Aviation', 'Redmond', 'USA', 'phone', 'In Transaction', 'Fleet upholstery tender', 'bob'),
  ('Priya Raman',      'Litware, Inc.',         'CTO', 'priya@litware.example', '+91 80 5555 0100', 'litware.example', 'Software', 'Bengaluru', 'India', 'campaign', 'Completed', 'Downloaded the whitepaper twice', 'alice'),
  ('Tom Becker',       'Litware Inc',           'Head of Sales', 'tom.becker@litware.example', NULL, NULL, 'Software', NULL, NULL, 'campaign', 'In Transaction', 'Same company as Priya', 'bob'),
  ('Mia Wong',         'Coho Winery',           'Owner', 'mia@cohowinery.example', '+1 707 555 0177', 'https://cohowinery.example', 'Food & Beverage', 'Napa', 'USA', 'partner', 'Completed', NULL, 'bob'),
  ('Lucas Martin',     NULL,                    NULL, 'lucas.martin@mail.example', '+33 1 55 55 01 01', NULL, NULL, 'Paris', 'France', 'social', 'In Transaction', 'Private customer, no company', 'alice'),
  -- Still being worked.
  ('Emma Clarke',      'Proseware',             'COO', 'emma@proseware.example', NULL, 'proseware.example', 'Software', 'Austin', 'USA', 'website', 'New Lead', NULL, 'alice'),
  ('Noah Fischer',     'Graphic Design Institute', 'Dean', 'noah@gdi.example', NULL, NULL, 'Education', 'Vienna', 'Austria', 'email', 'Processing', 'Asked for a callback', 'bob'),
  ('Ava Rossi',        'Trey Research',         'Lab Manager', 'ava.rossi@treyresearch.example', '+39 02 5555 0100', NULL, 'Research', 'Milan', 'Italy', 'referral', 'Following Up', 'Second call booked', 'bob'),
  ('Liam O''Connor',   'Margie''s Travel',      'Founder', 'liam@margiestravel.example', NULL, NULL, 'Travel', 'Dublin', 'Ireland', 'phone', 'Following Up', NULL, 'alice'),
  ('Zoe Kim',          'Southridge Video',      'Producer', 'zoe@southridge.example', NULL, NULL, 'Media', 'Seoul', 'Korea', 'website', 'Not Qualified', 'Budget too small', 'bob'),
  ('Ethan Novak',      'Humongous Insurance',   'CFO', 'ethan.novak@humongous.example', '+1 212 555 0190', NULL, 'Insurance', 'New York', 'USA', 'campaign', 'New Lead', NULL, 'carol');

-- Some working history for the leads still in play.
UPDATE crm.lead SET status = 'Processing' WHERE name IN ('Ava Rossi', 'Liam O''Connor');
UPDATE crm.lead SET status = 'Following Up' WHERE name IN ('Ava Rossi', 'Liam O''Connor');
