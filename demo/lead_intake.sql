-- demo/lead_intake.sql: a web form's login captures leads; a scoring rule
-- scores them and a queue hands them to alice and bob in turn, inside the
-- capturing transaction; a second capture of the same person fills the
-- open lead instead of making another.
\pset footer off
\echo
\echo '== Lead intake: scoring, a round-robin queue, captures from a web form'
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'webform') THEN CREATE ROLE webform LOGIN IN ROLE crm_intake; END IF;
END $$;
INSERT INTO crm.scoring_rule (name, column_name, operator, value, points) VALUES
    ('Software companies', 'industry', '=', 'Software', 10),
    ('Gave a phone number', 'phone', 'is not null', NULL, 5);
INSERT INTO crm.assignment_queue_member (queue, member) VALUES ('inbound', 'alice'), ('inbound', 'bob');
INSERT INTO crm.assignment_rule (priority, source, queue) VALUES (10, 'website', 'inbound');
SET ROLE webform;
SELECT crm.capture_lead('Hanna Berg', 'Fjord Software AS', 'hanna@fjordsoft.example', NULL, 'website', NULL,
                        '{"industry": "Software", "utm_campaign": "spring"}') AS lead_id;
SELECT crm.capture_lead('Luis Ortega', 'Ortega Logistica', 'luis@ortega.example', '+34 91 555 0199') AS lead_id;
SELECT crm.capture_lead('Mei Chen', NULL, 'mei.chen@mail.example') AS lead_id;
-- the same person again, now with a phone number: her open lead is filled in
SELECT crm.capture_lead('Hanna Berg', NULL, 'HANNA@fjordsoft.example', '+47 22 55 01 00') AS lead_id;
RESET ROLE;
SELECT l.id, l.name, l.score, l.owner, a.queue, c.outcome
  FROM crm.lead AS l
  JOIN crm.lead_assignment AS a ON a.lead_id = l.id
  JOIN LATERAL (SELECT string_agg(outcome, ', ' ORDER BY id) AS outcome FROM crm.lead_capture AS c
                 WHERE c.lead_id = l.id) AS c ON true
 ORDER BY l.id;
