-- demo/sample_data.sql: a small, realistic CRM data set for the demo.
--
-- Two sales reps (alice, bob), their manager (carol) and an analyst (dana)
-- as login roles; a
-- handful of existing customer accounts and contacts; and leads from every
-- channel in every status -- including leads whose company is already a
-- customer under a different spelling, to show duplicate detection.

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'alice') THEN CREATE ROLE alice LOGIN IN ROLE crm_sales; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bob')   THEN CREATE ROLE bob   LOGIN IN ROLE crm_sales; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'carol') THEN CREATE ROLE carol LOGIN IN ROLE crm_manager; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dana')  THEN CREATE ROLE dana  LOGIN IN ROLE crm_analyst; END IF;
END $$;

-- alice and bob report to carol: she sees and approves their work.
INSERT INTO crm.reporting_line (member, manager) VALUES ('alice', 'carol'), ('bob', 'carol');

-- Catalog: products with stock, the standard price book and a partner book.
INSERT INTO crm.product (code, name, family, list_price, inventory, track_inventory, description) VALUES
  ('NW-CHAI-24', 'Chai tea, case of 24',      'Beverages',  180.00, 120, true,  'Assam chai, 24 x 500 g'),
  ('NW-COF-12',  'Espresso beans, case of 12', 'Beverages',  240.00,  40, true,  'Single-origin espresso, 12 x 1 kg'),
  ('NW-MUG-50',  'Branded mugs, box of 50',    'Merchandise', 95.00,  15, true,  'Stoneware mugs with your logo'),
  ('NW-INST',    'Installation service',       'Services',   650.00,   0, false, 'On-site setup of brewing stations'),
  ('NW-SLA-Y',   'Support plan, yearly',       'Services',  1200.00,   0, false, 'Next-business-day support');
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price)
SELECT b.id, p.id, p.list_price FROM crm.product p, crm.price_book b WHERE b.is_standard;
INSERT INTO crm.price_book (name, description, currency) VALUES ('Partner 2027', 'Partner prices, 10% below list', 'USD');
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price)
SELECT b.id, p.id, round(p.list_price * 0.9, 2) FROM crm.product p, crm.price_book b WHERE b.name = 'Partner 2027';

-- Campaigns.
INSERT INTO crm.campaign (name, type, status, starts_on, ends_on, budgeted_cost, actual_cost, expected_revenue, owner) VALUES
  ('Spring 2027 outreach', 'Email',   'In Progress', '2027-03-01', '2027-05-31', 8000, 6500, 90000, 'carol'),
  ('Coffee Expo 2027',     'Event',   'Completed',   '2027-02-10', '2027-02-12', 15000, 17250, 120000, 'carol'),
  ('Whitepaper: office coffee ROI', 'Webinar', 'In Progress', '2027-03-15', NULL, 2000, 1200, 30000, 'carol');
UPDATE crm.campaign SET parent_id = (SELECT id FROM crm.campaign WHERE name = 'Spring 2027 outreach')
 WHERE name = 'Whitepaper: office coffee ROI';

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

-- Attribution: which campaign brought which lead.
UPDATE crm.lead SET campaign_id = (SELECT id FROM crm.campaign WHERE name = 'Whitepaper: office coffee ROI')
 WHERE name IN ('Priya Raman', 'Tom Becker', 'Ethan Novak');
UPDATE crm.lead SET campaign_id = (SELECT id FROM crm.campaign WHERE name = 'Coffee Expo 2027')
 WHERE name IN ('Sara Lopez', 'Mia Wong', 'Oliver Brooks');
UPDATE crm.lead SET campaign_id = (SELECT id FROM crm.campaign WHERE name = 'Spring 2027 outreach')
 WHERE name IN ('Margaret Peacock', 'Emma Clarke');
INSERT INTO crm.campaign_member (campaign_id, lead_id, status, responded)
SELECT campaign_id, id, 'Responded', true FROM crm.lead WHERE campaign_id IS NOT NULL;

-- Follow-up of the leads still in play: done, planned, overdue, with reminders.
INSERT INTO crm.activity (type, subject, lead_id, starts_at, status, owner)
SELECT 'call', 'Discovery call', id, now() - interval '6 days', 'Completed', owner FROM crm.lead WHERE name IN ('Ava Rossi', 'Liam O''Connor');
INSERT INTO crm.activity (type, subject, lead_id, due_at, remind_at, priority, owner)
SELECT 'task', 'Send pricing to ' || name, id, now() - interval '1 day', now() - interval '2 days', 'High', owner
  FROM crm.lead WHERE name = 'Ava Rossi';
INSERT INTO crm.activity (type, subject, lead_id, starts_at, ends_at, remind_at, owner)
SELECT 'meeting', 'Tasting session', id, now() + interval '2 days', now() + interval '2 days 1 hour', now() - interval '10 minutes', owner
  FROM crm.lead WHERE name = 'Noah Fischer';

-- Some working history for the leads still in play.
UPDATE crm.lead SET status = 'Processing' WHERE name IN ('Ava Rossi', 'Liam O''Connor');
UPDATE crm.lead SET status = 'Following Up' WHERE name IN ('Ava Rossi', 'Liam O''Connor');

-- An opportunity in progress at an existing customer, with products.
INSERT INTO crm.opportunity (name, account_id, contact_id, stage, close_date, owner)
SELECT 'Tailspin Toys - office coffee', a.id, NULL, 'Proposal', current_date + 20, 'bob'
  FROM crm.account a WHERE a.name = 'Tailspin Toys';
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity, discount, owner)
SELECT o.id, p.id, q.quantity, q.discount, 'bob'
  FROM crm.opportunity o, crm.product p,
       (VALUES ('NW-COF-12', 10, 0), ('NW-MUG-50', 2, 5), ('NW-INST', 1, 0)) AS q(code, quantity, discount)
 WHERE o.name = 'Tailspin Toys - office coffee' AND p.code = q.code;
