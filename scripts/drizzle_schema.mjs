#!/usr/bin/env node
// scripts/drizzle_schema.mjs: makes the schema.ts and relations.ts that
// `drizzle-kit pull` (0.31) writes for schema crm compile.  Usage, after the
// pull (test/typegen/drizzle.config.ts is an example configuration):
//
//     node scripts/drizzle_schema.mjs OUT-DIR     (drizzle-kit's "out")
//
// It rewrites both files in place and changes only what drizzle-kit gets
// wrong in schema.ts:
//   * types drizzle-kit does not know, which it writes as `unknown("col")`
//     with a "TODO: failed to parse database type" comment, and which do not
//     compile:
//       - regrole (the owner columns), regclass (crm.change_log.table_name):
//         text -- PostgreSQL reads and writes them as the role's or table's
//         name;
//       - the domains crm.email_address, crm.phone_number, crm.web_url:
//         text -- their base type; their CHECKs stay in the database;
//       - bytea: a custom type read and written as a Buffer;
//       - an array of one of crm's enums (crm.settings.convertible_statuses):
//         that enum's array, with the database's default (which drizzle-kit
//         cuts up) put together again as SQL;
//     any other unknown type stops the script, naming the type;
//     such a column's default, which drizzle-kit leaves out (the owners'
//     crm.current_role_id()), is taken from the pull's meta/0000_snapshot.json;
//   * a default that calls a function of crm (crm.corporate_currency(),
//     the currency of deals, quotes, orders, quotas), which drizzle-kit writes
//     as a JavaScript call: as SQL; an empty text[] default ('{}'), which it
//     writes as [""]: [];
//   * the table callbacks get their return type written out
//     (PgTableExtraConfigValue[]): crm.lead and crm.opportunity reference each
//     other (lead.opportunity_id, opportunity.lead_id), and without the
//     annotation TypeScript cannot infer either (TS7022, TS7024);
// and in relations.ts: a relation written twice under one name (a deal's and
// a quote's price book: two foreign keys on price_book_id, one of them with
// the currency) is kept once (TS1117).
// Run it on a fresh pull only (it refuses a file it has already changed).
// The schema is for typed queries: crm's tables belong to the extension, so
// never run drizzle-kit push or migrate against them.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir) {
    console.error('usage: node scripts/drizzle_schema.mjs OUT-DIR');
    process.exit(2);
}
const file = join(dir, 'schema.ts');
let src = readFileSync(file, 'utf8');
const marker = '// crm: rewritten by scripts/drizzle_schema.mjs\n';
if (src.startsWith(marker)) {
    console.error(`${file}: already rewritten`);
    process.exit(2);
}

const asText = new Set(['regrole', 'regclass', 'crm.email_address', 'crm.phone_number', 'crm.web_url']);
// the enum constants drizzle-kit declared: crm.enum("lead_status", ...)
const enums = new Map([...src.matchAll(/^export const (\w+) = (\w+)\.enum\("(\w+)"/gm)]
    .map(([, constant, schema, name]) => [`${schema === 'crm' ? 'crm.' : ''}${name}`, constant]));
const needed = new Set();
const unknownTypes = new Set();
// drizzle-kit leaves out the default of a column it cannot type (an owner's
// crm.current_role_id()); its snapshot of the pull has it
const snapshot = JSON.parse(readFileSync(join(dir, 'meta', '0000_snapshot.json'), 'utf8'));
const relations = [...src.matchAll(/^export const \w+ = crm\.(table|view)\("(\w+)"/gm)];
const defaultOf = (offset, col) => {
    const rel = relations.filter((m) => m.index < offset).pop();
    return rel && rel[1] === 'table' ? snapshot.tables[`crm.${rel[2]}`]?.columns[col]?.default : undefined;
};
const asSql = (text) => 'sql`' + text.replace(/[`\\]|\$\{/g, (c) => '\\' + c) + '`';

// "// TODO: failed to parse database type 'T'" + newline + indent + "prop: unknown("col")[...],"
src = src.replace(/[ \t]*\/\/ TODO: failed to parse database type '([^']+)'\n(\s*)(\w+): unknown\("([^"]+)"\)(.*),$/gm,
    (_, type, indent, prop, col, rest, offset) => {
        let builder;
        const dflt = defaultOf(offset, col);
        if (dflt !== undefined && !rest.includes('.default(')) rest = `.default(${asSql(dflt)})${rest}`;
        if (asText.has(type)) {
            builder = `text("${col}")`;
            needed.add('text');
        } else if (type === 'bytea') {
            builder = `bytea("${col}")`;
            needed.add('customType');
        } else if (type.endsWith('[]') && enums.has(type.slice(0, -2))) {
            const enumType = type.slice(0, -2);
            builder = `${enums.get(enumType)}("${col}")`;
            // drizzle-kit splits an ARRAY['a'::t, 'b'::t] default at its
            // commas and cuts two characters off each end
            rest = rest.replace(/\.default\((\[[^\]]*\])\)/, (d, list) => {
                const parts = JSON.parse(list);
                if (!parts.length || !parts[0].startsWith('RAY[')) return d;
                parts[0] = 'AR' + parts[0];
                parts[parts.length - 1] = parts[parts.length - 1].replace(/::[\w.]*$/, '') + `::${enumType}]`;
                return '.default(sql`' + parts.join(', ') + '`)';
            });
        } else {
            unknownTypes.add(type);
            return _;
        }
        return `${indent}${prop}: ${builder}${rest},`;
    });
if (unknownTypes.size) {
    console.error(`${file}: no mapping for the database type(s) ${[...unknownTypes].join(', ')}: add one to scripts/drizzle_schema.mjs`);
    process.exit(1);
}
if (/\bunknown\(/.test(src)) {
    console.error(`${file}: an unknown(...) column is left that this script did not recognise`);
    process.exit(1);
}

// defaults: crm's functions as SQL, an empty text[] as []
src = src.replace(/\.default\((crm\.\w+\([^()]*\))\)/g, '.default(sql`$1`)');
src = src.replace(/\.array\(\)\.default\(\[""\]\)/g, '.array().default([])');

// the table callbacks, typed: breaks the lead <-> opportunity inference cycle
src = src.replace(/\}, \(table\) => \[/g, '}, (table): PgTableExtraConfigValue[] => [');
needed.add('type PgTableExtraConfigValue');

// the imports from drizzle-orm/pg-core
src = src.replace(/^import \{ ([^}]*) \} from "drizzle-orm\/pg-core"/m, (line, names) => {
    const have = new Set(names.split(',').map((n) => n.trim()));
    for (const n of needed) have.add(n);
    return `import { ${[...have].join(', ')} } from "drizzle-orm/pg-core"`;
});
if (needed.has('customType')) {
    src = src.replace(/^(import \{ sql \} from "drizzle-orm"\n)/m,
        '$1\nconst bytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => "bytea" });\n');
}
writeFileSync(file, marker + src);

// relations.ts: one property per name in each relations(...) object
const relFile = join(dir, 'relations.ts');
const out = [];
let seen = new Set();
let skipping = false;
for (const line of readFileSync(relFile, 'utf8').split('\n')) {
    if (line.startsWith('export const')) seen = new Set();
    const prop = /^\t(\w+): /.exec(line);
    if (prop) {
        skipping = seen.has(prop[1]);
        seen.add(prop[1]);
    } else if (!line.startsWith('\t\t') && !line.startsWith('\t}')) {
        skipping = false;
    }
    if (!skipping) out.push(line);
}
writeFileSync(relFile, marker + out.join('\n'));
