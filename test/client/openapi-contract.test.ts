// The typed client against openapi.yaml: every operation the client sends exists in the spec, and each
// type the client declares for a request or response has exactly the spec schema's fields, with the
// spec's required fields required and the others optional (read from src/client/types.ts by the
// TypeScript compiler, so a drift on either side fails here).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { parse } from 'yaml';
import { COLLECTIONS, OPERATIONS, type Operation } from '../../src/client/index.ts';
import { REPO_ROOT } from '../helpers/golden.ts';

// biome-ignore lint/suspicious/noExplicitAny: the OpenAPI document is free-form YAML
type Schema = Record<string, any>;
const spec = parse(readFileSync(path.join(REPO_ROOT, 'openapi.yaml'), 'utf8')) as Schema;

function resolve(schema: Schema): Schema {
  if (schema?.$ref) return resolve(spec.components.schemas[String(schema.$ref).split('/').pop()!]);
  return schema;
}

/** The properties of every interface in types.ts: name -> (property -> optional?). */
function declaredInterfaces(): Map<string, Map<string, boolean>> {
  const file = path.join(REPO_ROOT, 'src', 'client', 'types.ts');
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const out = new Map<string, Map<string, boolean>>();
  source.forEachChild((node) => {
    if (!ts.isInterfaceDeclaration(node)) return;
    const members = new Map<string, boolean>();
    for (const member of node.members) {
      if (ts.isPropertySignature(member) && member.name && ts.isIdentifier(member.name)) {
        members.set(member.name.text, member.questionToken !== undefined);
      }
    }
    out.set(node.name.text, members);
  });
  return out;
}

const interfaces = declaredInterfaces();
const HTTP = (operation: Operation) => operation.method.toLowerCase();

function expand(operation: Operation): string[] {
  return operation.path.includes('{collection}')
    ? Object.values(COLLECTIONS).map((c) => operation.path.replace('{collection}', c))
    : [operation.path];
}

function successSchema(operationSpec: Schema): Schema | null {
  for (const [status, response] of Object.entries(operationSpec.responses ?? {})) {
    if (!String(status).startsWith('2')) continue;
    const schema = (response as Schema).content?.['application/json']?.schema;
    if (schema && (schema.$ref || schema.type === 'object')) return resolve(schema);
  }
  return null;
}

/** Null when the interface has the schema's fields with the schema's optionality, else the differences. */
function compare(typeName: string, schema: Schema): string | null {
  const declared = interfaces.get(typeName);
  if (!declared) return `src/client/types.ts has no interface ${typeName}`;
  const properties = Object.keys(schema.properties ?? {});
  const required = new Set<string>(schema.required ?? []);
  const problems: string[] = [];
  for (const name of properties) {
    if (!declared.has(name)) problems.push(`${name} missing`);
    else if (declared.get(name) === required.has(name)) {
      problems.push(`${name} is ${required.has(name) ? 'required' : 'optional'} in the spec`);
    }
  }
  for (const name of declared.keys())
    if (!properties.includes(name)) problems.push(`${name} not in the spec`);
  return problems.length > 0 ? `${typeName}: ${problems.join('; ')}` : null;
}

describe('the typed client against openapi.yaml', () => {
  for (const [name, operation] of Object.entries(OPERATIONS) as Array<[string, Operation]>) {
    it(`${name}: ${operation.method} ${operation.path} exists, and its types match the schemas`, () => {
      for (const p of expand(operation)) {
        const operationSpec = spec.paths[p]?.[HTTP(operation)];
        assert.ok(operationSpec, `${operation.method} ${p} is not in openapi.yaml`);
        if (operation.response) {
          const schema = successSchema(operationSpec);
          assert.ok(schema, `${operation.method} ${p} documents no JSON object response`);
          assert.equal(compare(operation.response, schema), null);
          // Pages: their items are the declared item type.
          const items = schema.properties?.items?.items;
          if (items) {
            const itemType = { ArtifactPage: 'Artifact', JobPage: 'Job', MethodList: 'MergeMethod' }[
              operation.response
            ];
            assert.ok(itemType, `${operation.response} has items of an undeclared type`);
            assert.equal(compare(itemType, resolve(items)), null);
          }
        }
        if (operation.request) {
          const body = operationSpec.requestBody?.content?.['application/json']?.schema;
          assert.ok(body, `${operation.method} ${p} documents no JSON body`);
          const schema = resolve(body);
          // The recipe's mergekit-compatible keys are many; the client types the ones it relies on
          // and lets the rest through an index signature, so only those and `required` are compared.
          if (operation.request === 'MergeRecipe') {
            const declared = interfaces.get('MergeRecipe')!;
            for (const field of schema.required)
              assert.equal(declared.get(field), false, `MergeRecipe.${field}`);
            for (const field of declared.keys())
              assert.ok(field in schema.properties, `MergeRecipe.${field}`);
          } else {
            assert.equal(compare(operation.request, schema), null);
          }
        }
      }
    });
  }

  it('the comparison can fail: a type missing a required field or adding one is reported', () => {
    const schema = { properties: { id: {}, state: {} }, required: ['id', 'state'] };
    interfaces.set(
      'Broken',
      new Map([
        ['id', false],
        ['extra', true],
      ]),
    );
    assert.equal(compare('Broken', schema), 'Broken: state missing; extra not in the spec');
    interfaces.set(
      'Loose',
      new Map([
        ['id', true],
        ['state', false],
      ]),
    );
    assert.equal(compare('Loose', schema), 'Loose: id is required in the spec');
  });

  it('package.json exports the client as the package entry', () => {
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
    assert.equal(pkg.exports['.'].default, './src/client/index.ts');
    assert.equal(pkg.exports['./client'].default, './src/client/index.ts');
  });
});
