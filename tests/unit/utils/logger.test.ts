import { createLogger, redact, redactString, registerSecret, REDACTED } from '../../../src/utils/logger.js';
import { CaptureStream } from '../../helpers/streams.js';

describe('redaction', () => {
  it.each([
    ['mongodb://app:s3cr3t@db.example.com:27017/shop', 'mongodb://app:***@db.example.com:27017/shop'],
    [
      'mongodb+srv://app:p%40ss@cluster0.example.net/?retryWrites=true',
      'mongodb+srv://app:***@cluster0.example.net/?retryWrites=true',
    ],
    ['mssql://sa:Str0ng!Pass@sql:1433/db', 'mssql://sa:***@sql:1433/db'],
    [
      'Server=sql,1433;Database=msgs;User Id=sa;Password=Str0ng!Pass;Encrypt=true',
      'Server=sql,1433;Database=msgs;User Id=sa;Password=***;Encrypt=true',
    ],
    [
      'Server=sql;User Id=sa;Password={pa;ss}};word};Encrypt=true',
      'Server=sql;User Id=sa;Password=***;Encrypt=true',
    ],
    ["Server=sql;Pwd='it''s;secret';Encrypt=true", 'Server=sql;Pwd=***;Encrypt=true'],
    ['AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'AWS_SECRET_ACCESS_KEY=***'],
    ['aws_secret_access_key: "abc/def+ghi"', 'aws_secret_access_key: "***"'],
    ['Authorization: Bearer eyJhbGciOi.payload.sig', `Authorization: ${REDACTED}`],
    [
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261203/us-east-1/sqs/aws4_request, Signature=abcdef0123',
      'AWS4-HMAC-SHA256 Credential=***, Signature=***',
    ],
    [
      'https://b.s3.amazonaws.com/k?X-Amz-Signature=deadbeef&X-Amz-Expires=60',
      'https://b.s3.amazonaws.com/k?X-Amz-Signature=***&X-Amz-Expires=60',
    ],
    ['key id AKIAIOSFODNN7EXAMPLE used', 'key id AKIAIOSF************ used'],
    // Secrets that were never registered, in third-party text
    ['{"password":"hunter22"}', '{"password":"***"}'],
    ['{"secretAccessKey": "abcdEFGH/ijkl", "region":"eu"}', '{"secretAccessKey": "***", "region":"eu"}'],
    ["{'token': 'tok 123'}", "{'token': '***'}"],
    ['Server=h;User Id=u;Password=abc def;Encrypt=true', 'Server=h;User Id=u;Password=***;Encrypt=true'],
    ['Server=h;Password=p&ss;', 'Server=h;Password=***;'],
    ['MSSQL_PASSWORD={a;b}', 'MSSQL_PASSWORD=***'],
    ['MSSQL_PASSWORD=a b c\nLOG_LEVEL=debug', 'MSSQL_PASSWORD=***\nLOG_LEVEL=debug'],
    ['mongodb://user:pa/ss@host/db', 'mongodb://user:***@host/db'],
    ['mongodb://user:p@ss/word@h1:27017,h2:27017/db', 'mongodb://user:***@h1:27017,h2:27017/db'],
    ['Cookie: session=abc123; theme=dark', `Cookie: ${REDACTED}`],
    ['set-cookie: sid=abc123', `set-cookie: ${REDACTED}`],
    // In a URL query "&" ends the value, so two URLs that differ after it stay distinct
    ['https://h/file?token=abc&page=2', 'https://h/file?token=***&page=2'],
  ])('masks %s', (input, output) => {
    expect(redactString(input)).toBe(output);
  });

  it('leaves ordinary text alone', () => {
    const text = 'stored 10 messages in 12 ms from https://sqs.eu-west-1.amazonaws.com/123/q (passed=10)';
    expect(redactString(text)).toBe(text);
  });

  it('leaves a port alone: host:8080/ is not user-info, even with an @ later in the URL', () => {
    const text = 'GET https://files.example.com:8443/u/a@b.com/report.json';
    expect(redactString(text)).toBe(text);
  });

  it.each([
    'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: set both or neither',
    'MSSQL_PASSWORD: got an invalid value, expected a password',
    'MONGODB_URI: got an invalid value, expected a connection string',
    'MSSQL_PASSWORD: set --mssql-url (MSSQL_URL) or MSSQL_HOST as well; without a server SQL Server is not enabled',
  ])('keeps our own configuration problem intact: %s', (line) => {
    expect(redactString(line)).toBe(line);
  });

  it('still masks an upper-case setting with a value after ": "', () => {
    expect(redactString('AWS_SECRET_ACCESS_KEY: wJalrXUtnFEMI/K7MDENG')).toBe('AWS_SECRET_ACCESS_KEY: ***');
    expect(redactString('MSSQL_PASSWORD: hunter22')).toBe('MSSQL_PASSWORD: ***');
  });

  it('masks values under secret-looking keys, at any depth, and inside errors', () => {
    const out = redact({
      password: 'x',
      headers: { Authorization: 'Basic Zm9vOmJhcg==', accept: 'json' },
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
      cookie: 'session=abc',
      passed: 3,
      error: new Error('connect to mongodb://u:topsecret@h/ failed'),
    }) as Record<string, unknown>;
    expect(out).toEqual({
      password: REDACTED,
      headers: { Authorization: REDACTED, accept: 'json' },
      credentials: REDACTED,
      cookie: REDACTED,
      passed: 3,
      error: { name: 'Error', message: 'connect to mongodb://u:***@h/ failed' },
    });
  });

  it('leaves a Secrets Manager ARN whole: it names a secret, it does not hold one', () => {
    const arn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:aws-msg/mongodb-AbCdEf';
    expect(redactString(`MONGODB_URI_SECRET_ARN (${arn}): AccessDeniedException`)).toBe(
      `MONGODB_URI_SECRET_ARN (${arn}): AccessDeniedException`,
    );
    expect(redactString(`{"secretArn":"${arn}","secret":"hunter22"}`)).toBe(
      `{"secretArn":"${arn}","secret":"***"}`,
    );
  });

  it('masks a registered secret wherever it appears, raw or percent-encoded', () => {
    registerSecret('p@ss w0rd!');
    expect(redactString('driver said: bad password p@ss w0rd! for user')).not.toContain('w0rd');
    expect(redactString('uri had p%40ss%20w0rd! inside')).not.toContain('w0rd');
  });
});

describe('logger', () => {
  it('writes one JSON object per event with the event name, level and fields, secrets masked', () => {
    // Prepare
    const stream = new CaptureStream();
    const logger = createLogger({ level: 'info', format: 'json', stream }).child({ command: 'process-sqs' });

    // Act
    logger.info('store_connected', { uri: 'mongodb://app:hunter22@db/', collection: 'messages' });
    logger.debug('hidden_at_info', {});

    // Assess
    const lines = stream.lines().map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 'info',
      event: 'store_connected',
      command: 'process-sqs',
      uri: 'mongodb://app:***@db/',
      collection: 'messages',
    });
    expect(typeof lines[0]?.['time']).toBe('string');
    expect(stream.text()).not.toContain('hunter22');
  });

  it('pretty format puts the event and key=value pairs on one line', () => {
    const stream = new CaptureStream();
    const logger = createLogger({ level: 'debug', format: 'pretty', stream });
    logger.warn('message_failed', { messageId: 'm-1', reason: 'timed out', error: new Error('boom') });
    const [line] = stream.lines();
    expect(line).toMatch(
      /^\S+Z warn {2}message_failed messageId=m-1 reason="timed out" error=\{"name":"Error","message":"boom"/,
    );
  });

  it('logs a configuration problem line intact', () => {
    const stream = new CaptureStream();
    const logger = createLogger({ level: 'info', format: 'json', stream });
    const problem = 'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: set both or neither';
    logger.error('lambda_config_invalid', { problem });
    expect(JSON.parse(stream.text())).toMatchObject({ problem });
  });

  it('respects the level', () => {
    const stream = new CaptureStream();
    const logger = createLogger({ level: 'warn', format: 'json', stream });
    logger.info('a');
    logger.warn('b');
    logger.error('c');
    expect(stream.lines().map((l) => (JSON.parse(l) as { event: string }).event)).toEqual(['b', 'c']);
    expect(logger.isLevelEnabled('info')).toBe(false);
  });
});
