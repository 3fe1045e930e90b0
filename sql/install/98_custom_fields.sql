--------------------------------------------------------------------------
-- Custom fields (src/custom_fields.c)
--
-- Admins define fields in crm.custom_field; the values live in the
-- attributes column (jsonb, {"field": value}) of the nine tables that have
-- custom fields.  crm_internal.custom_fields_check() checks every write of attributes
-- against the registry; crm_internal.custom_field_guard() keeps the rows valid when
-- the registry changes (README "Custom fields").
--------------------------------------------------------------------------
CREATE TABLE crm.custom_field (
    object    text NOT NULL
              CONSTRAINT custom_field_object_check CHECK (object OPERATOR(pg_catalog.=) ANY (ARRAY['lead', 'account',
                  'contact', 'opportunity', 'quote', 'sales_order', 'activity', 'product', 'campaign'])),
    name      text NOT NULL
              CONSTRAINT custom_field_name_check CHECK (name OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]{0,62}$'),
    label     text NOT NULL
              CONSTRAINT custom_field_label_not_blank CHECK (pg_catalog.btrim(label) OPERATOR(pg_catalog.<>) ''),
    type      text NOT NULL
              CONSTRAINT custom_field_type_check CHECK (type OPERATOR(pg_catalog.=) ANY (ARRAY['text', 'number',
                  'date', 'boolean', 'pick'])),
    required  boolean NOT NULL DEFAULT false,
    options   text[],
    CONSTRAINT custom_field_options_check CHECK (
        (type OPERATOR(pg_catalog.=) 'pick') OPERATOR(pg_catalog.=) (options IS NOT NULL)
        AND (options IS NULL OR (pg_catalog.cardinality(options) OPERATOR(pg_catalog.>) 0
             AND pg_catalog.array_position(options, NULL) IS NULL))),
    PRIMARY KEY (object, name)
);
COMMENT ON TABLE crm.custom_field IS 'Custom fields defined by admins: the keys allowed in the attributes column of each object (lead, account, contact, opportunity, quote, sales_order, activity, product, campaign)';
COMMENT ON COLUMN crm.custom_field.object IS 'The object (table of schema crm) the field belongs to';
COMMENT ON COLUMN crm.custom_field.name IS 'Key of the field in attributes: lower-case letters, digits and _, starting with a letter';
COMMENT ON COLUMN crm.custom_field.label IS 'Name of the field shown to users';
COMMENT ON COLUMN crm.custom_field.type IS 'text (a JSON string of at most 2000 characters), number (a JSON number below 1e20 in absolute value, at most 10 decimal places), date (a JSON string YYYY-MM-DD), boolean (JSON true/false) or pick (a JSON string, one of options)';
COMMENT ON COLUMN crm.custom_field.required IS 'Every row of the object must have a value for the field (refused while some row has none)';
COMMENT ON COLUMN crm.custom_field.options IS 'The allowed values of a pick field (NULL for other types)';

CREATE FUNCTION crm_internal.custom_fields_check() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_custom_fields_check'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.custom_fields_check() IS 'BEFORE INSERT OR UPDATE OF attributes trigger on the tables with custom fields: refuses unknown fields (ZC950), invalid values (ZC951) and missing required fields (ZC952)';
CREATE FUNCTION crm_internal.custom_field_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_custom_field_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.custom_field_guard() IS 'Triggers on crm.custom_field: lock the object''s table while its fields change; at commit, refuse a registry the rows do not satisfy (ZC951, ZC952, ZC953)';
CREATE TRIGGER custom_field_lock BEFORE INSERT OR UPDATE OR DELETE ON crm.custom_field
    FOR EACH ROW EXECUTE FUNCTION crm_internal.custom_field_guard();
CREATE CONSTRAINT TRIGGER custom_field_in_use AFTER INSERT OR UPDATE OR DELETE ON crm.custom_field
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION crm_internal.custom_field_guard();

DO $custom$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['lead', 'account', 'contact', 'opportunity', 'quote', 'sales_order',
                             'activity', 'product', 'campaign']
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE crm.%I ADD COLUMN attributes jsonb NOT NULL DEFAULT ''{}''', t);
        EXECUTE pg_catalog.format('COMMENT ON COLUMN crm.%I.attributes IS %L', t,
            'Custom field values: {"field": value}, the fields of crm.custom_field for object ' || t
            || ' (crm.custom_field_value lists them as rows)');
        EXECUTE pg_catalog.format('CREATE INDEX %I ON crm.%I USING gin (attributes jsonb_path_ops)',
            t || '_attributes_idx', t);
        EXECUTE pg_catalog.format('CREATE TRIGGER custom_fields_check BEFORE INSERT OR UPDATE OF attributes'
            ' ON crm.%I FOR EACH ROW EXECUTE FUNCTION crm_internal.custom_fields_check()', t);
    END LOOP;
END
$custom$;

-- One row per value: BI tools chart custom fields without JSON functions.
CREATE VIEW crm.custom_field_value WITH (security_invoker = true) AS
SELECT v.object, v.record_id, v.field, f.label, f.type,
       CASE WHEN pg_catalog.jsonb_typeof(v.value) OPERATOR(pg_catalog.=) 'string'
            THEN v.value OPERATOR(pg_catalog.#>>) '{}'::text[] ELSE v.value::text END AS value_text,
       CASE WHEN f.type OPERATOR(pg_catalog.=) 'number' THEN v.value::numeric END AS value_number,
       CASE WHEN f.type OPERATOR(pg_catalog.=) 'date'
            THEN (v.value OPERATOR(pg_catalog.#>>) '{}'::text[])::date END AS value_date,
       CASE WHEN f.type OPERATOR(pg_catalog.=) 'boolean' THEN v.value::boolean END AS value_boolean
  FROM (SELECT 'lead'::text AS object, t.id AS record_id, e.key AS field, e.value
          FROM crm.lead AS t, pg_catalog.jsonb_each(t.attributes) AS e
         WHERE t.attributes OPERATOR(pg_catalog.<>) '{}'::jsonb
        UNION ALL
        SELECT 'account', t.id, e.key, e.value
          FROM crm.account AS t, pg_catalog.jsonb_each(t.attributes) AS e
         WHERE t.attributes OPERATOR(pg_catalog.<>) '{}'::jsonb
        UNION ALL
        SELECT 'contact', t.id, e.key, e.value
          FROM crm.contact AS t, pg_catalog.jsonb_each(t.attributes) AS e
         WHERE t.attributes OPERATOR(pg_catalog.<>) '{}'::jsonb
        UNION ALL
        SELECT 'opportunity', t.id, e.key, e.value
          FROM crm.opportunity AS t, pg_catalog.jsonb_each(t.attributes) AS e
         WHERE t.attributes OPERATOR(pg_catalog.<>) '{}'::jsonb
        UNION ALL
        SELECT 'quote', t.id, e.key, e.value
          FROM crm.quote AS t, pg_catalog.jsonb_each(t.attributes) AS e
         WHERE t.attributes OPERATOR(pg_catalog.<>) '{}'::jsonb
        UNION ALL
        SELECT 'sales_order', t.id, e.key, e.value
          FROM crm.sales_order AS t, pg_catalog.jsonb_each(t.attributes) AS e
         WHERE t.attributes OPERATOR(pg_catalog.<>) '{}'::jsonb
        UNION ALL
        SELECT 'activity', t.id, e.key, e.value
          FROM crm.activity AS t, pg_catalog.jsonb_each(t.attributes) AS e
         WHERE t.attributes OPERATOR(pg_catalog.<>) '{}'::jsonb
        UNION ALL
        SELECT 'product', t.id, e.key, e.value
          FROM crm.product AS t, pg_catalog.jsonb_each(t.attributes) AS e
         WHERE t.attributes OPERATOR(pg_catalog.<>) '{}'::jsonb
        UNION ALL
        SELECT 'campaign', t.id, e.key, e.value
          FROM crm.campaign AS t, pg_catalog.jsonb_each(t.attributes) AS e
         WHERE t.attributes OPERATOR(pg_catalog.<>) '{}'::jsonb) AS v
  JOIN crm.custom_field AS f
    ON f.object OPERATOR(pg_catalog.=) v.object AND f.name OPERATOR(pg_catalog.=) v.field;
COMMENT ON VIEW crm.custom_field_value IS 'Custom field values as rows, one per record and field, typed for BI tools (security_invoker: each role sees the values of the records it may read)';
COMMENT ON COLUMN crm.custom_field_value.object IS 'The object: lead, account, contact, opportunity, quote, sales_order, activity, product or campaign';
COMMENT ON COLUMN crm.custom_field_value.record_id IS 'Id of the record in the object''s table (crm.<object>.id)';
COMMENT ON COLUMN crm.custom_field_value.field IS 'Name of the custom field (crm.custom_field.name)';
COMMENT ON COLUMN crm.custom_field_value.label IS 'Label of the custom field';
COMMENT ON COLUMN crm.custom_field_value.type IS 'Type of the custom field: text, number, date, boolean or pick';
COMMENT ON COLUMN crm.custom_field_value.value_text IS 'The value as text (every type)';
COMMENT ON COLUMN crm.custom_field_value.value_number IS 'The value of a number field; NULL for other types';
COMMENT ON COLUMN crm.custom_field_value.value_date IS 'The value of a date field; NULL for other types';
COMMENT ON COLUMN crm.custom_field_value.value_boolean IS 'The value of a boolean field; NULL for other types';

-- Under row-level security a role's own "attributes @> ..." cannot use the
-- GIN index (jsonb containment is not LEAKPROOF): crm.find_by_attributes
-- finds the candidates through it as the owner, then keeps those the
-- caller sees (README "Custom fields").
CREATE FUNCTION crm.find_by_attributes(object text, filter jsonb) RETURNS SETOF bigint
    AS 'MODULE_PATHNAME', 'crm_find_by_attributes'
    LANGUAGE C STABLE ROWS 100
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.find_by_attributes(text, jsonb) IS 'Ids of the records of object (lead, account, contact, opportunity, quote, sales_order, activity, product, campaign) the caller may see whose attributes contain filter (attributes @> filter), in id order; index-backed also for roles under row-level security';
REVOKE ALL ON FUNCTION crm.find_by_attributes(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.find_by_attributes(text, jsonb) TO crm_admin, crm_manager, crm_sales, crm_analyst;

-- Everybody working with the data reads the registry; admins write it.
-- Analysts read the values on every object (they are reporting data: README
-- "Custom fields" says not to define fields for personal data).
GRANT SELECT ON crm.custom_field, crm.custom_field_value TO crm_admin, crm_manager, crm_sales, crm_analyst;
GRANT INSERT, UPDATE, DELETE ON crm.custom_field TO crm_admin;
GRANT SELECT (id, attributes) ON crm.lead, crm.account, crm.contact, crm.opportunity, crm.quote,
    crm.sales_order, crm.activity TO crm_analyst;
