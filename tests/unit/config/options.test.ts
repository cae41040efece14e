import {
  InvalidValue,
  formatDuration,
  parseBoolean,
  parseBytes,
  parseDurationMs,
  parseEnum,
  parseInteger,
  parseUrl,
} from '../../../src/config/options.js';

function expected(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof InvalidValue) return error.expected;
    throw error;
  }
  throw new Error('did not throw');
}

describe('option parsers', () => {
  it.each([
    ['0', 0],
    ['20', 20],
    [' 7 ', 7],
  ])('parseInteger(0, 20) accepts %j', (raw, value) => {
    expect(parseInteger(0, 20)(raw)).toBe(value);
  });

  it.each(['21', '-1', '1.5', 'ten', '', '1e3'])('parseInteger(0, 20) rejects %j', (raw) => {
    expect(expected(() => parseInteger(0, 20)(raw))).toBe('an integer from 0 to 20');
  });

  it('parseEnum is case-insensitive and lists the allowed values', () => {
    expect(parseEnum(['json', 'pretty'])('JSON')).toBe('json');
    expect(expected(() => parseEnum(['json', 'pretty'])('xml'))).toBe('one of json, pretty');
  });

  it.each([
    ['1', true],
    ['yes', true],
    ['off', false],
    [true, true],
    [false, false],
  ] as const)('parseBoolean(%j) = %j', (raw, value) => {
    expect(parseBoolean(raw)).toBe(value);
  });

  it('parseBoolean rejects other words', () => {
    expect(expected(() => parseBoolean('maybe'))).toMatch(/^true or false/);
  });

  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['30', 30_000],
    ['1.5m', 90_000],
    ['2h', 7_200_000],
  ])('parseDurationMs reads %j as %d ms', (raw, ms) => {
    expect(parseDurationMs(0, 10 * 3_600_000)(raw)).toBe(ms);
  });

  it('parseDurationMs enforces its range and names it', () => {
    expect(expected(() => parseDurationMs(1000, 60_000)('2m'))).toMatch(/from 1s to 1m$/);
    expect(expected(() => parseDurationMs(0, 60_000)('soon'))).toMatch(/^a duration such as/);
  });

  it('formatDuration round-trips through parseDurationMs', () => {
    for (const ms of [250, 1000, 90_000, 3_600_000]) {
      expect(parseDurationMs(0, 10 * 3_600_000)(formatDuration(ms))).toBe(ms);
    }
  });

  it.each([
    ['1048576', 1_048_576],
    ['512KiB', 524_288],
    ['10MB', 10_485_760],
    ['2g', 2_147_483_648],
  ])('parseBytes reads %j', (raw, bytes) => {
    expect(parseBytes()(raw)).toBe(bytes);
  });

  it('parseBytes rejects unknown units', () => {
    expect(expected(() => parseBytes()('10 parsecs'))).toMatch(/^a size in bytes/);
  });

  it('parseUrl accepts only the listed schemes', () => {
    expect(parseUrl(['http', 'https'])('https://sqs.eu-west-1.amazonaws.com/1/q')).toContain('https://');
    expect(expected(() => parseUrl(['http', 'https'])('file:///etc/passwd'))).toBe(
      'an absolute http or https URL',
    );
    expect(expected(() => parseUrl(['mongodb'])('not a url'))).toBe('an absolute mongodb URL');
  });
});
