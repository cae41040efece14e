import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadProcessSqsSettings, type ConfigSources } from '../../../src/config/config-loader.js';
import {
  MssqlConnectionStringError,
  parseMssqlConnectionString,
  resolveMssqlSettings,
} from '../../../src/config/mssql-settings.js';
import type { ConfigError } from '../../../src/utils/errors.js';
import { createLogger } from '../../../src/utils/logger.js';
import { runCli } from '../../helpers/cli.js';
import { CaptureStream } from '../../helpers/streams.js';

const QUEUE = 'https://sqs.eu-west-1.amazonaws.com/123456789012/orders';

function sources(partial: Partial<ConfigSources> = {}): ConfigSources {
  return { flags: {}, env: {}, dotenv: {}, dotenvPath: '.env', ...partial };
}

function resolveWith(partial: Partial<ConfigSources>) {
  const problems: string[] = [];
  const settings = resolveMssqlSettings(sources(partial), problems);
  return { settings, problems };
}

describe('connection strings: URL form', () => {
  it('reads user, password (percent-decoded), host, port, database and options', () => {
    expect(
      parseMssqlConnectionString(
        'mssql://app%40corp:p%40ss%3Aw0rd%23@db.example.com:14330/shop?encrypt=strict&TrustServerCertificate=true',
      ),
    ).toEqual({
      server: 'db.example.com',
      port: 14330,
      user: 'app@corp',
      password: 'p@ss:w0rd#',
      passwordAsWritten: 'p%40ss%3Aw0rd%23',
      database: 'shop',
      encrypt: 'strict',
      trustServerCertificate: true,
    });
  });

  it('accepts sqlserver://, an IPv6 host, an instance name, and leaves out what is not given', () => {
    expect(parseMssqlConnectionString('sqlserver://[::1]/?instanceName=SQLEXPRESS&encrypt=false')).toEqual({
      server: '::1',
      instanceName: 'SQLEXPRESS',
      encrypt: false,
    });
  });
});

describe('connection strings: ADO.NET form', () => {
  it("reads an Azure portal string, with a braced password holding ';' and '}'", () => {
    expect(
      parseMssqlConnectionString(
        'Server=tcp:db.database.windows.net,1433;Initial Catalog=shop;Persist Security Info=False;User ID=app;' +
          'Password={p;a}}ss};MultipleActiveResultSets=False;Encrypt=True;TrustServerCertificate=False;Connection Timeout=30;',
      ),
    ).toEqual({
      server: 'db.database.windows.net',
      port: 1433,
      database: 'shop',
      user: 'app',
      password: 'p;a}ss',
      passwordAsWritten: '{p;a}}ss}',
      encrypt: true,
      trustServerCertificate: false,
      connectTimeoutMs: 30_000,
    });
  });

  it('reads quoted values, synonyms, a named instance and (local)', () => {
    expect(
      parseMssqlConnectionString(
        `data source = (local)\\SQLEXPRESS ; database=shop;UID=sa;PWD="pa""ss; x";App=orders;Max Pool Size=20`,
      ),
    ).toEqual({
      server: 'localhost',
      instanceName: 'SQLEXPRESS',
      database: 'shop',
      user: 'sa',
      password: 'pa"ss; x',
      passwordAsWritten: '"pa""ss; x"',
      appName: 'orders',
      poolMax: 20,
    });
  });
});

describe('connection strings that are refused say why, without echoing a value', () => {
  it.each([
    ['postgres://u:hunter22@h/db', 'scheme "postgres" is not mssql or sqlserver'],
    ['mssql://u:hunter22@h/a/b', 'the path must be one database name'],
    ['mssql://u:hunter22@h/db?ssl=true', 'query parameter 1 is not supported'],
    // A "?" in an unencoded password starts the query: its tail is no parameter name to echo.
    ['mssql://u:1/hun?ter22@h', 'query parameter 1 is not supported'],
    ['mssql://u:hunter22%zz@h/db', 'the password has a "%" not followed by two hex digits'],
    ['mssql://u%zz:hunter22@h/db', 'the user name has a "%" not followed by two hex digits'],
    ['mssql://u:hun#ter22@h/db', 'not a valid URL'],
    ['mssql://u:hunter22@h/db#x', 'percent-encode it as %23'],
    ['Server=h;Database=d;User Id=u;Password=hunter22;Colour=blue', 'part 5 has an unsupported key'],
    // An unquoted ";" in the password: what follows it looks like a key, and is the password's tail.
    ['Server=h;Database=d;User Id=u;Password=hun;ter22=ef;', 'part 5 has an unsupported key'],
    ['Server=h;Password=hun;ter22={x', 'the value in part 3 has no closing }'],
    ['Server=h;Password=hun;ter22="x"y', 'the value in part 3 continues after its closing "'],
    ['Server=np:\\\\h\\pipe;Password=hunter22', 'only TCP is supported'],
    ['Server=h,99999;Password=hunter22', 'the port in Server: expected an integer from 1 to 65535'],
    ['Server=h;Integrated Security=SSPI;Password=hunter22', 'only SQL Server authentication'],
    ['Server=h;Authentication=Active Directory Password;Password=hunter22', 'only SqlPassword'],
    ['Server=h;Password=hunter22;Encrypt=sometimes', 'Encrypt: expected true, false or strict'],
    ['Server=h;Password=hun;ter22', 'part 3 has no "="'],
    ['Server=h;Password={hunter22', 'the value in part 2 has no closing }'],
    ['Database=d;Password=hunter22', 'it names no Server'],
    ['hunter22', 'neither a mssql:// URL nor Key=Value pairs'],
  ])('%s', (text, reason) => {
    // Act
    let error: unknown;
    try {
      parseMssqlConnectionString(text);
    } catch (e) {
      error = e;
    }

    // Assess
    expect(error).toBeInstanceOf(MssqlConnectionStringError);
    expect((error as Error).message).toContain(reason);
    expect((error as Error).message).not.toMatch(/hunter|ter22/);
  });
});

describe('a malformed percent-encoding in MSSQL_URL', () => {
  it('is a configuration problem naming MSSQL_URL, not an internal error', async () => {
    // Act
    const result = await runCli(['process-sqs'], {
      env: { SQS_QUEUE_URL: QUEUE, MSSQL_URL: 'mssql://u:p%zzS3cret@h/db' },
      cwd: mkdtempSync(join(tmpdir(), 'aws-msg-mssql-')),
    });

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /^aws-msg: MSSQL_URL: got an invalid value, expected .*the password has a "%"/,
    );
    expect(result.stderr).not.toContain('internal error');
    expect(result.stderr).not.toContain('S3cret');
  });
});

describe('resolving the SQL Server settings', () => {
  it('is off when neither MSSQL_URL nor MSSQL_HOST is set', () => {
    expect(resolveWith({})).toEqual({ settings: undefined, problems: [] });
  });

  it('takes everything from MSSQL_URL and applies the defaults', () => {
    // Act
    const { settings, problems } = resolveWith({ env: { MSSQL_URL: 'mssql://app:S3cret-one@db:1433/shop' } });

    // Assess
    expect(problems).toEqual([]);
    expect(settings).toEqual({
      connection: {
        server: 'db',
        port: 1433,
        database: 'shop',
        user: 'app',
        password: 'S3cret-one',
        encrypt: true,
        trustServerCertificate: false,
        appName: 'aws-msg',
        poolMax: 10,
        connectTimeoutMs: 15_000,
        requestTimeoutMs: 30_000,
      },
      table: { schema: 'dbo', name: 'messages', quoted: '[dbo].[messages]', display: 'dbo.messages' },
    });
  });

  it('lets a discrete variable override its part of MSSQL_URL, and a flag beat the environment', () => {
    // Act
    const { settings } = resolveWith({
      flags: { mssqlTable: 'audit.sqs' },
      env: {
        MSSQL_URL: 'Server=db,1433;Database=shop;User Id=app;Password=from-url-1;Encrypt=false',
        MSSQL_PASSWORD: 'from-vault-2',
        MSSQL_DATABASE: 'orders',
        MSSQL_TABLE: 'ignored_because_of_the_flag',
        MSSQL_REQUEST_TIMEOUT: '2m',
      },
      dotenv: { MSSQL_TRUST_SERVER_CERTIFICATE: 'true', MSSQL_POOL_MAX: '3' },
    });

    // Assess
    expect(settings?.connection).toMatchObject({
      server: 'db',
      database: 'orders',
      password: 'from-vault-2',
      encrypt: false,
      trustServerCertificate: true,
      poolMax: 3,
      requestTimeoutMs: 120_000,
    });
    expect(settings?.table.quoted).toBe('[audit].[sqs]');
  });

  it('works from discrete variables alone; an instance name without a port leaves the port to SQL Browser', () => {
    // Act
    const plain = resolveWith({
      env: {
        MSSQL_HOST: 'db',
        MSSQL_PORT: '1500',
        MSSQL_DATABASE: 'shop',
        MSSQL_USER: 'app',
        MSSQL_PASSWORD: 'pw-three',
      },
    });
    const named = resolveWith({
      env: { MSSQL_URL: 'Server=db\\SQLEXPRESS;Database=d;User Id=u;Password=pw-four' },
    });

    // Assess
    expect(plain.settings?.connection).toMatchObject({ server: 'db', port: 1500, encrypt: true });
    expect(named.settings?.connection.instanceName).toBe('SQLEXPRESS');
    expect(named.settings?.connection.port).toBeUndefined();
  });

  it('reports each missing part, naming the variable', () => {
    expect(resolveWith({ env: { MSSQL_HOST: 'db' } }).problems).toEqual([
      'MSSQL_DATABASE (or the database in --mssql-url/MSSQL_URL) is required when SQL Server is enabled',
      'MSSQL_USER (or the user in --mssql-url/MSSQL_URL) is required when SQL Server is enabled',
      'MSSQL_PASSWORD (or the password in --mssql-url/MSSQL_URL) is required when SQL Server is enabled',
    ]);
  });

  it('reports settings that would be ignored because no server is named', () => {
    expect(resolveWith({ env: { MSSQL_DATABASE: 'shop', MSSQL_PASSWORD: 'pw-five' } }).problems).toEqual([
      'MSSQL_DATABASE, MSSQL_PASSWORD: set --mssql-url (MSSQL_URL) or MSSQL_HOST as well; without a server SQL Server is not enabled',
    ]);
  });

  it('names a bad table or port, and never echoes the connection string', () => {
    // Act
    const { problems } = resolveWith({
      env: {
        MSSQL_URL: 'mssql://app:Leaky-Pa55@db:1433/shop?ssl=1',
        MSSQL_TABLE: 'dbo.bad-name',
        MSSQL_PORT: '0',
      },
    });

    // Assess
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(
      /^MSSQL_URL: got an invalid value, expected a connection string .*query parameter 1 is not supported/,
    );
    expect(problems[1]).toBe('MSSQL_PORT: got "0", expected an integer from 1 to 65535');
    expect(problems[2]).toMatch(
      /^MSSQL_TABLE: got "dbo.bad-name", expected a table name such as dbo.messages or messages: /,
    );
    expect(problems.join('\n')).not.toContain('Leaky-Pa55');
  });

  it('enables the SQL Server store for process-sqs on its own', () => {
    // Act
    const settings = loadProcessSqsSettings(
      sources({ env: { SQS_QUEUE_URL: QUEUE, MSSQL_URL: 'mssql://app:pw-six-x@db/shop' } }),
    );

    // Assess
    expect(settings.mssql?.connection.server).toBe('db');
    expect(settings.mongo).toBeUndefined();
  });
});

describe('the SQL Server password never reaches a log line or an error', () => {
  function logged(fields: Record<string, unknown>): string {
    const stream = new CaptureStream();
    createLogger({ level: 'info', format: 'json', stream }).error('store_write_failed', fields);
    return stream.text();
  }

  it('URL form: masked in connection strings, in driver messages and as a bare value', () => {
    // Prepare
    const url = 'mssql://app:Url-Pa55word@db.example.com:1433/shop';
    resolveWith({ env: { MSSQL_URL: url } });

    // Act
    const line = logged({
      url,
      error: new Error(`Login failed; tried Url-Pa55word against ${url}`),
      note: 'password was Url-Pa55word',
    });

    // Assess
    expect(line).not.toContain('Url-Pa55word');
    expect(line).toContain('db.example.com');
  });

  it('ADO form: masked even when the password holds a ; that would end a Password=value pattern', () => {
    // Prepare
    const ado = 'Server=db.example.com;Database=shop;User Id=app;Password={Ado;Pa55}}x};Encrypt=true';
    resolveWith({ env: { MSSQL_URL: ado } });

    // Act
    const line = logged({ detail: 'connecting with Password=Ado;Pa55}x;Encrypt=true', raw: ado });

    // Assess
    expect(line).not.toMatch(/Ado;Pa55|Pa55}/);
    expect(line).toContain('db.example.com');
  });

  it('MSSQL_PASSWORD: masked too, and absent from configuration errors', () => {
    // Prepare
    const env = { SQS_QUEUE_URL: QUEUE, MSSQL_HOST: 'db', MSSQL_USER: 'app', MSSQL_PASSWORD: 'Env-Pa55word' };

    // Act
    let message = '';
    try {
      loadProcessSqsSettings(sources({ env }));
    } catch (error) {
      message = (error as ConfigError).message;
    }
    const line = logged({ error: `cannot log in with Env-Pa55word` });

    // Assess
    expect(message).toContain('MSSQL_DATABASE');
    expect(message).not.toContain('Env-Pa55word');
    expect(line).not.toContain('Env-Pa55word');
  });
});
