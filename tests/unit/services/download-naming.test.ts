import { resolve, sep } from 'node:path';
import {
  NameRegistry,
  PathEscapeError,
  filenameFromContentDisposition,
  isPlainRelativeName,
  nameFromUrl,
  resolveInside,
  sanitizeRelativePath,
  sanitizeSegment,
  splitExtension,
  withSuffix,
} from '../../../src/services/download/naming.js';

describe('sanitizeSegment', () => {
  it.each([
    ['report.pdf', 'report.pdf'],
    ['..', undefined],
    ['...', undefined],
    ['', undefined],
    ['  ', undefined],
    ['.bashrc', 'bashrc'],
    ['..hidden', 'hidden'],
    ['trailing. . ', 'trailing'],
    ['a/b', 'a_b'],
    ['a\\b', 'a_b'],
    ['C:evil', 'C_evil'],
    ['what?.txt', 'what_.txt'],
    ['tab\there\u0000.txt', 'tabhere.txt'],
    ['bell\u0007\u009b.txt', 'bell.txt'],
    ['CON', '_CON'],
    ['nul.txt', '_nul.txt'],
    ['lpt1', '_lpt1'],
    ['console.log', 'console.log'],
    ['movie.part', 'movie.part_'],
    ['movie.PART.json', 'movie.PART.json_'],
    ['e\u0301te\u0301.txt', 'été.txt'],
    ['nul .txt', '_nul .txt'],
    ['COM\u00b9', '_COM\u00b9'],
    ['lpt\u00b3.log', '_lpt\u00b3.log'],
    ['CONIN$', '_CONIN$'],
    ['conout$.txt', '_conout$.txt'],
  ])('%j -> %j', (input, expected) => {
    expect(sanitizeSegment(input)).toBe(expected);
  });

  it('shortens a long name to 200 UTF-8 bytes and keeps the extension', () => {
    const out = sanitizeSegment(`${'é'.repeat(300)}.tar.gz`) as string;
    expect(Buffer.byteLength(out)).toBeLessThanOrEqual(200);
    expect(out.endsWith('é.tar.gz')).toBe(true);
  });

  it('checks again after shortening: no `.part` suffix, no trailing dot or space', () => {
    // No extension (it is longer than 16 characters), so the cut lands inside the name.
    const part = sanitizeSegment(`${'a'.repeat(193)}.part.averyveryverylongextension`) as string;
    expect(Buffer.byteLength(part)).toBeLessThanOrEqual(200);
    expect(part.toLowerCase().endsWith('.part')).toBe(false);
    const dots = sanitizeSegment(`${'b'.repeat(197)}. . ${'c'.repeat(20)}`) as string;
    expect(dots).toBe('b'.repeat(197));
  });
});

describe('sanitizeRelativePath', () => {
  it.each([
    ['../../etc/passwd', 'etc/passwd'],
    ['/etc/passwd', 'etc/passwd'],
    ['..\\..\\windows\\system.ini', 'windows/system.ini'],
    ['a/./b/../c.txt', 'a/b/c.txt'],
    ['reports//2024///q1.csv', 'reports/2024/q1.csv'],
    ['../..', undefined],
    ['./', undefined],
    ['images/.thumbs/x.png', 'images/thumbs/x.png'],
  ])('%j -> %j', (input, expected) => {
    expect(sanitizeRelativePath(input)).toBe(expected);
  });
});

describe('nameFromUrl', () => {
  it.each([
    ['https://example.com/data/file.csv', 'file.csv'],
    ['https://example.com/data/file.csv?token=secret&x=1', 'file.csv'],
    ['https://example.com/d/r%C3%A9sum%C3%A9.pdf', 'résumé.pdf'],
    ['https://example.com/', 'index.html'],
    ['https://example.com/dir/', 'index.html'],
    ['https://example.com', 'index.html'],
    ['https://example.com/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd', 'passwd'],
    ['https://example.com/..%5C..%5Cboot.ini', 'boot.ini'],
    ['https://example.com/%2E%2E', 'index.html'],
    ['https://example.com/%2E%2E%2E', 'download'],
    ['https://example.com/bad%E0%A4%A', 'bad%E0%A4%A'],
  ])('%s -> %s', (url, expected) => {
    expect(nameFromUrl(url)).toBe(expected);
  });
});

describe('filenameFromContentDisposition', () => {
  it.each([
    ['attachment; filename="report.pdf"', 'report.pdf'],
    ['attachment; filename=report.pdf', 'report.pdf'],
    ['attachment; filename="a \\"quoted\\" name.txt"', 'a "quoted" name.txt'],
    ['attachment; filename="semi;colon.txt"; size=3', 'semi;colon.txt'],
    [`attachment; filename="plain.txt"; filename*=UTF-8''%E2%82%AC%20rates.txt`, '€ rates.txt'],
    [`attachment; filename*=utf-8'en'na%C3%AFve.txt; filename="naive.txt"`, 'naïve.txt'],
    [`attachment; filename*=iso-8859-1''caf%E9.txt`, 'café.txt'],
    [`attachment; filename*=koi8-r''x.txt; filename="fallback.txt"`, 'fallback.txt'],
    ['attachment; filename="../../etc/passwd"', 'passwd'],
    ['attachment; filename=C:\\Windows\\evil.exe', 'evil.exe'],
    // In a quoted string a backslash escapes the next character (RFC 9110 quoted-string).
    ['attachment; filename="C:\\Windows\\evil.exe"', 'C:Windowsevil.exe'],
    ['inline', undefined],
    ['attachment; filename=""', undefined],
    [undefined, undefined],
  ])('%j -> %j', (header, expected) => {
    expect(filenameFromContentDisposition(header)).toBe(expected);
  });
});

describe('suffixes', () => {
  it.each([
    ['report.pdf', ['report', '.pdf']],
    ['archive.tar.gz', ['archive', '.tar.gz']],
    ['README', ['README', '']],
    ['.env', ['.env', '']],
    ['weird.averyveryverylongextension', ['weird.averyveryverylongextension', '']],
  ])('splitExtension(%j)', (name, parts) => {
    expect(splitExtension(name)).toEqual(parts);
  });

  it('puts the counter before the extension and keeps directories', () => {
    expect(withSuffix('report.pdf', 2)).toBe('report-2.pdf');
    expect(withSuffix('a/b.tar.gz', 3)).toBe('a/b-3.tar.gz');
    expect(withSuffix('Makefile', 2)).toBe('Makefile-2');
  });
});

describe('NameRegistry', () => {
  it('gives a name to its first entry in list order and numbered names to the others', () => {
    const registry = new NameRegistry();
    // Given out of order on purpose: the result must depend on the index only.
    const claims = registry.plan([
      { index: 2, name: 'data.csv' },
      { index: 0, name: 'data.csv' },
      { index: 1, name: 'DATA.csv' },
    ]);
    expect(claims.get(0)).toEqual({ name: 'data.csv' });
    expect(claims.get(1)).toEqual({ name: 'DATA-2.csv', renamedFrom: 'DATA.csv' });
    expect(claims.get(2)).toEqual({ name: 'data-3.csv', renamedFrom: 'data.csv' });
  });

  it('lets a name asked for explicitly win over an invented suffix', () => {
    const registry = new NameRegistry();
    const claims = registry.plan([
      { index: 0, name: 'x.txt' },
      { index: 1, name: 'x.txt' },
      { index: 2, name: 'x-2.txt' },
    ]);
    expect(claims.get(2)).toEqual({ name: 'x-2.txt' });
    expect(claims.get(1)).toEqual({ name: 'x-3.txt', renamedFrom: 'x.txt' });
  });

  it('resolves names learnt later against everything already handed out', () => {
    const registry = new NameRegistry();
    registry.plan([{ index: 0, name: 'report.pdf' }]);
    expect(registry.claim(1, 'report.pdf')).toEqual({ name: 'report-2.pdf', renamedFrom: 'report.pdf' });
    expect(registry.claim(2, 'other.pdf')).toEqual({ name: 'other.pdf' });
    expect(registry.claim(2, 'other.pdf')).toEqual({ name: 'other.pdf' });
  });

  it('keeps a numbered name an entry already owns when a header asks for the original', () => {
    const registry = new NameRegistry();
    registry.plan([
      { index: 0, name: 'file.bin' },
      { index: 1, name: 'file.bin' },
    ]);
    expect(registry.claim(1, 'file.bin')).toEqual({ name: 'file-2.bin', renamedFrom: 'file.bin' });
  });

  it('gives names the manifest records for listed URLs before any other name', () => {
    const registry = new NameRegistry();
    const claims = registry.plan([
      { index: 0, name: 'data.csv', source: 'url' },
      { index: 1, name: 'data.csv', source: 'manifest' },
    ]);
    expect(claims.get(1)).toEqual({ name: 'data.csv' });
    expect(claims.get(0)).toEqual({ name: 'data-2.csv', renamedFrom: 'data.csv' });
  });

  it('treats a file and a directory of the same name as a collision, either way round', () => {
    const fileFirst = new NameRegistry().plan([
      { index: 0, name: 'a' },
      { index: 1, name: 'A/b.txt' },
      { index: 2, name: 'a/c/d.txt' },
    ]);
    expect(fileFirst.get(1)).toEqual({ name: 'A-2/b.txt', renamedFrom: 'A/b.txt' });
    expect(fileFirst.get(2)).toEqual({ name: 'a-2/c/d.txt', renamedFrom: 'a/c/d.txt' });

    const directoryFirst = new NameRegistry();
    const claims = directoryFirst.plan([
      { index: 0, name: 'a/b.txt' },
      { index: 1, name: 'a' },
    ]);
    expect(claims.get(1)).toEqual({ name: 'a-2', renamedFrom: 'a' });
    expect(directoryFirst.claim(2, 'A')).toEqual({ name: 'A-3', renamedFrom: 'A' });
  });
});

describe('resolveInside', () => {
  const root = resolve('/srv/downloads');

  it('joins a nested name under the root', () => {
    expect(resolveInside(root, 'a/b.txt')).toBe(`${root}${sep}a${sep}b.txt`);
  });

  it.each(['../x', 'a/../../x', '..'])('refuses %j', (name) => {
    expect(() => resolveInside(root, name)).toThrow(PathEscapeError);
  });
});

describe('isPlainRelativeName', () => {
  it.each(['a.txt', 'a/b.txt', 'x/y/z..tar', '...bin'])('accepts %j', (name) => {
    expect(isPlainRelativeName(name)).toBe(true);
  });

  it.each(['', '/etc/passwd', '../x', 'a/../x', 'a/./b', './a', 'a//b', 'a/', 'a\\b', 'a\u0000b', '..'])(
    'refuses %j (left to resolveInside)',
    (name) => {
      expect(isPlainRelativeName(name)).toBe(false);
    },
  );

  it('accepts every name sanitizeRelativePath returns', () => {
    const raws = ['../../etc/passwd', 'a\\..\\b', './x/./y', 'C:/Windows', '.hidden/..dots../f.txt'];
    const names = raws.map((raw) => sanitizeRelativePath(raw));
    expect(names).toEqual(['etc/passwd', 'a/b', 'x/y', 'C_/Windows', 'hidden/dots/f.txt']);
    for (const name of names) expect(isPlainRelativeName(name ?? '')).toBe(true);
  });
});
