import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  compileSchema,
  lineAndColumn,
  parseJsonText,
  readJsonFile,
  readValidatedJson,
} from '../../../src/utils/file-reader.js';
import { AppError } from '../../../src/utils/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'aws-msg-reader-'));
function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

async function failure(promise: Promise<unknown>): Promise<AppError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof AppError)) throw new Error(`expected an AppError, got ${String(error)}`);
  return error;
}

const schema = compileSchema<{ urls: Array<{ url: string }> }>(
  {
    type: 'object',
    required: ['urls'],
    additionalProperties: false,
    properties: {
      urls: {
        type: 'array',
        items: {
          type: 'object',
          required: ['url'],
          properties: { url: { type: 'string', pattern: '^https?://' } },
        },
      },
    },
  },
  'test schema',
);

describe('parseJsonText', () => {
  it.each([
    ['{\n  "a": 1,\n  "b": x\n}', 'in.json:3:8: invalid JSON: unexpected character'],
    ['{"a": 1,}', 'in.json:1:9: invalid JSON: expected a double-quoted property name'],
    ['[1, 2', "in.json:1:6: invalid JSON: expected ']'"],
    ['{"a": 1} trailing', 'in.json:1:10: invalid JSON: unexpected character'],
    ['', 'in.json:1:1: invalid JSON: the file is empty'],
    ['// comment\n{}', 'in.json:1:1: invalid JSON: comments are not allowed in JSON'],
  ])('locates the error in %j', (text, message) => {
    let thrown: unknown;
    try {
      parseJsonText(text, 'in.json');
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(AppError);
    expect((thrown as AppError).message).toBe(message);
    expect((thrown as AppError).code).toBe('INPUT_INVALID_JSON');
    expect((thrown as AppError).exitCode).toBe(2);
  });

  it('accepts a UTF-8 byte order mark', () => {
    expect(parseJsonText('\ufeff{"ok":true}', 'x')).toEqual({ ok: true });
  });

  it('lineAndColumn counts from 1', () => {
    expect(lineAndColumn('ab\ncd', 0)).toEqual({ line: 1, column: 1 });
    expect(lineAndColumn('ab\ncd', 4)).toEqual({ line: 2, column: 2 });
  });
});

describe('readValidatedJson', () => {
  it('returns the validated document', async () => {
    const path = file('ok.json', '{"urls":[{"url":"https://example.com/a"}]}');
    await expect(readValidatedJson(path, schema)).resolves.toEqual({
      urls: [{ url: 'https://example.com/a' }],
    });
  });

  it('names the JSON pointer and the rule of a schema violation', async () => {
    const path = file('bad.json', '{"urls":[{"url":"https://ok"},{"url":"ftp://nope"}]}');
    const error = await failure(readValidatedJson(path, schema, { label: 'urls.json' }));
    expect(error.message).toBe('urls.json: /urls/1/url: must match pattern "^https?://" (rule "pattern")');
    expect(error.code).toBe('INPUT_SCHEMA');
  });

  it('names a missing property and an unexpected one', async () => {
    const missing = await failure(readValidatedJson(file('m.json', '{"urls":[{}]}'), schema, { label: 'f' }));
    expect(missing.message).toBe('f: /urls/0: must have required property \'url\' (rule "required")');
    const extra = await failure(
      readValidatedJson(file('e.json', '{"urls":[],"x":1}'), schema, { label: 'f' }),
    );
    expect(extra.message).toBe('f: /: must not have the property "x" (rule "additionalProperties")');
  });

  it('refuses a file above the size limit before reading it', async () => {
    const path = file('big.json', 'x'.repeat(3 * 1024 + 512));
    const error = await failure(readJsonFile(path, { maxBytes: 1024, label: 'big.json' }));
    expect(error.code).toBe('INPUT_TOO_LARGE');
    expect(error.message).toMatch(/^big\.json: the file is 3\.5 KiB, above the 1 KiB limit for input files$/);
  });

  it('says when the file does not exist', async () => {
    const error = await failure(readJsonFile(join(dir, 'missing.json'), { label: 'missing.json' }));
    expect(error.message).toBe('missing.json: cannot read the file: no such file');
    expect(error.exitCode).toBe(2);
  });

  it('reports a broken schema as a configuration error naming its source', () => {
    expect(() => compileSchema({ type: 'no-such-type' }, '--schema my.json')).toThrow(
      /^--schema my\.json: not a usable JSON Schema/,
    );
  });
});
