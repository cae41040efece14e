import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadUrlList, normaliseUrlList } from '../../../src/services/download/input.js';
import { AppError } from '../../../src/utils/errors.js';
import { redactString } from '../../../src/utils/logger.js';

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof AppError) {
      expect(error.exitCode).toBe(2);
      return error.message;
    }
    throw error;
  }
  throw new Error('expected an AppError');
}

describe('valid lists', () => {
  it('accepts an array of URL strings', () => {
    const entries = normaliseUrlList(['https://example.com/a.txt', 'http://example.com:8080/b?x=1#frag']);
    expect(entries).toEqual([
      { index: 0, pointer: '/0', url: 'https://example.com/a.txt', headers: {} },
      { index: 1, pointer: '/1', url: 'http://example.com:8080/b?x=1', headers: {} },
    ]);
  });

  it('merges defaults into entries; entry headers win whatever their case', () => {
    const entries = normaliseUrlList({
      defaults: { headers: { Accept: '*/*', 'X-Team': 'data' }, maxBytes: 100 },
      urls: [
        'https://example.com/a',
        {
          url: 'https://example.com/b',
          filename: 'b/b.bin',
          sha256: 'AB'.repeat(32),
          headers: { accept: 'text/csv' },
          maxBytes: 5,
        },
      ],
    });
    expect(entries[0]).toEqual({
      index: 0,
      pointer: '/urls/0',
      url: 'https://example.com/a',
      headers: { accept: '*/*', 'x-team': 'data' },
      maxBytes: 100,
    });
    expect(entries[1]).toEqual({
      index: 1,
      pointer: '/urls/1',
      url: 'https://example.com/b',
      filename: 'b/b.bin',
      sha256: 'ab'.repeat(32),
      headers: { accept: 'text/csv', 'x-team': 'data' },
      maxBytes: 5,
    });
  });

  it('accepts an empty list', () => {
    expect(normaliseUrlList([])).toEqual([]);
  });

  it('registers header values as secrets so they never reach a log line', () => {
    normaliseUrlList([{ url: 'https://example.com/x', headers: { Authorization: 'Bearer tok-9f8e7d6c5b' } }]);
    expect(redactString('request failed with Bearer tok-9f8e7d6c5b')).not.toContain('tok-9f8e7d6c5b');
  });
});

describe('invalid lists name the JSON pointer and the rule', () => {
  it.each([
    [['file:///etc/passwd'], 'input: /0: must be an absolute http:// or https:// URL (rule "pattern")'],
    [
      { urls: [{ url: 'ftp://example.com/x' }] },
      'input: /urls/0/url: must be an absolute http:// or https:// URL (rule "pattern")',
    ],
    [
      ['https://example.com/ok', 'not a url'],
      'input: /1: must be an absolute http:// or https:// URL (rule "pattern")',
    ],
    [['https://exa mple.com/x'], 'input: /0: must be an absolute http:// or https:// URL (rule "format")'],
    [
      ['https://user:pw@example.com/x'],
      'input: /0: must not contain credentials (user:password@); put them in "headers" (e.g. Authorization) (rule "format")',
    ],
    [[42], 'input: /0: must be object (rule "type")'],
    [[{ filename: 'x' }], `input: /0: must have required property 'url' (rule "required")`],
    [
      [{ url: 'https://e.com/x', sha256: 'abc' }],
      'input: /0/sha256: must match pattern "^[0-9A-Fa-f]{64}$" (rule "pattern")',
    ],
    [[{ url: 'https://e.com/x', maxBytes: 0 }], 'input: /0/maxBytes: must be >= 1 (rule "minimum")'],
    [
      [{ url: 'https://e.com/x', size: 1 }],
      'input: /0: must not have the property "size" (rule "additionalProperties")',
    ],
    [
      [{ url: 'https://e.com/x', headers: { 'Bad Header': 'x' } }],
      'input: /0/headers: must match pattern "^[!#$%&\'*+.^_`|~0-9A-Za-z-]+$" (rule "pattern")',
    ],
    [
      [{ url: 'https://e.com/x', headers: { 'X-A': 'line\r\nInjected: 1' } }],
      'input: /0/headers/X-A: must match pattern "^[^\\r\\n\\u0000]*$" (rule "pattern")',
    ],
    [
      [{ url: 'https://e.com/x', headers: { Range: 'bytes=0-' } }],
      'input: /0/headers/Range: is set by aws-msg itself and cannot be given (rule "reserved")',
    ],
    [
      { defaults: { headers: { Host: 'evil' } }, urls: [] },
      'input: /defaults/headers/Host: is set by aws-msg itself and cannot be given (rule "reserved")',
    ],
    [{ urls: 'https://e.com/x' }, 'input: /urls: must be array (rule "type")'],
    [{ defaults: {} }, `input: /: must have required property 'urls' (rule "required")`],
    ['https://e.com/x', 'input: /: must be array,object (rule "type")'],
  ])('%j', (data, message) => {
    expect(messageOf(() => normaliseUrlList(data))).toBe(message);
  });
});

describe('loadUrlList', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'aws-msg-input-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('names the file in errors', async () => {
    const path = join(dir, 'urls.json');
    writeFileSync(path, JSON.stringify(['file:///etc/shadow']));
    await expect(loadUrlList(path)).rejects.toThrow(
      `${path}: /0: must be an absolute http:// or https:// URL`,
    );
  });

  it('reports invalid JSON with its line and column', async () => {
    const path = join(dir, 'urls.json');
    writeFileSync(path, '[\n  "https://e.com/a",\n  oops\n]');
    await expect(loadUrlList(path)).rejects.toThrow(`${path}:3:3: invalid JSON`);
  });

  it('refuses a file above the size limit', async () => {
    const path = join(dir, 'urls.json');
    writeFileSync(path, JSON.stringify(['https://e.com/a']));
    await expect(loadUrlList(path, { maxBytes: 5 })).rejects.toMatchObject({
      code: 'INPUT_TOO_LARGE',
      exitCode: 2,
    });
  });

  it('reads the bundled sample', async () => {
    const entries = await loadUrlList(join(process.cwd(), 'input_data', 'urls.json'));
    expect(entries.length).toBeGreaterThan(3);
    expect(entries.every((entry) => entry.url.startsWith('https://'))).toBe(true);
  });
});
