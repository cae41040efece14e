import { runCli } from '../../helpers/cli.js';
import { freePort } from '../../helpers/services.js';

// init-db's failure paths, through the real CLI in-process. Nothing listens on the ports used here,
// so these need no database; the successful paths run against real servers in tests/integration.
describe('aws-msg init-db exit codes', () => {
  it('exits 2 and says what to set when no database is configured', async () => {
    // Act
    const result = await runCli(['init-db']);

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      'aws-msg: no database configured: set --mssql-url (MSSQL_URL or MSSQL_HOST) and/or --mongo-uri (MONGODB_URI)\n',
    );
  });

  it('exits 2 on a malformed connection string, without echoing it', async () => {
    // Act
    const result = await runCli([
      'init-db',
      '--mssql-url',
      'Server=db;Database=shop;User Id=sa;Password=Flag-Pa55;Bogus=1',
    ]);

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /^aws-msg: --mssql-url: got an invalid value, expected .*part 5 has an unsupported key .*\n$/,
    );
    expect(result.stderr).not.toContain('Flag-Pa55');
  });

  it('exits 2 on a table name that is not an identifier', async () => {
    // Act
    const result = await runCli(['init-db', '--mssql-table', 'dbo.messages;DROP'], {
      env: { MSSQL_URL: 'mssql://sa:Table-Pa55@db/shop' },
    });

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--mssql-table: got "dbo.messages;DROP", expected a table name');
  });

  it('exits 3 when SQL Server cannot be reached, naming the server but never the password', async () => {
    // Prepare
    const port = await freePort();

    // Act
    const result = await runCli(['init-db', '--log-level', 'error'], {
      env: { MSSQL_URL: `mssql://sa:Unreachable-Pa55@127.0.0.1:${port}/shop?encrypt=false` },
    });

    // Assess
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(`aws-msg: SQL Server 127.0.0.1:${port}/shop: `);
    expect(result.stderr).not.toContain('Unreachable-Pa55');
    expect(result.stdout).toBe('');
  });

  it('exits 3 when MongoDB cannot be reached', async () => {
    // Prepare
    const port = await freePort();

    // Act
    const result = await runCli(['init-db', '--log-level', 'error'], {
      env: { MONGODB_URI: `mongodb://app:Mongo-Pa55@127.0.0.1:${port}/shop?serverSelectionTimeoutMS=300` },
    });

    // Assess
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(`aws-msg: MongoDB 127.0.0.1:${port}/shop.messages: `);
    expect(result.stderr).not.toContain('Mongo-Pa55');
  });

  it('documents its options in --help', async () => {
    // Act
    const result = await runCli(['init-db', '--help']);

    // Assess
    expect(result.code).toBe(0);
    for (const flag of [
      '--mssql-url',
      '--mssql-table',
      '--mongo-uri',
      '--mongo-db',
      '--mongo-collection',
      '--json',
    ]) {
      expect(result.stdout).toContain(flag);
    }
  });
});
