/**
 * A file that passes `stat` can still fail to read (permissions changed, replaced by a directory):
 * that must be a usage error naming the file, not an internal error. The read is faked because
 * the race cannot be staged reliably (and root reads files whatever their mode).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';

const actual = await import('node:fs/promises');
let readError: NodeJS.ErrnoException | undefined;
jest.unstable_mockModule('node:fs/promises', () => ({
  ...actual,
  readFile: async (...args: Parameters<typeof actual.readFile>) => {
    if (readError !== undefined) throw readError;
    return actual.readFile(...args);
  },
}));
const { readJsonFile } = await import('../../../src/utils/file-reader.js');
const { AppError } = await import('../../../src/utils/errors.js');

const path = join(mkdtempSync(join(tmpdir(), 'aws-msg-read-error-')), 'messages.json');
writeFileSync(path, '[]');

describe('readJsonFile when the read fails after stat', () => {
  it.each([
    ['EACCES', 'permission denied'],
    ['EISDIR', 'it is a directory'],
  ])('%s is a usage error (exit 2) naming the file', async (code, why) => {
    // Prepare
    readError = Object.assign(new Error(`${code}: failed, read`), { code });

    // Act
    const error = await readJsonFile(path, { label: '--file messages.json' }).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ code: 'INPUT_NOT_FOUND', exitCode: 2 });
    expect((error as Error).message).toBe(`--file messages.json: cannot read the file: ${why}`);
  });

  it('reads the file when nothing fails', async () => {
    readError = undefined;
    await expect(readJsonFile(path)).resolves.toEqual([]);
  });
});
