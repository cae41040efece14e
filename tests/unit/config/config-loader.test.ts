import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_MESSAGE_SCHEMA,
  databaseFromMongoUri,
  loadGlobalConfig,
  loadProcessSqsSettings,
  loadSendMessagesSettings,
  resolveAwsSettings,
  withFlags,
  type ConfigSources,
} from '../../../src/config/config-loader.js';
import { ConfigError } from '../../../src/utils/errors.js';
import { redactString } from '../../../src/utils/logger.js';

const QUEUE = 'https://sqs.eu-west-1.amazonaws.com/123456789012/orders';

function sources(partial: Partial<ConfigSources> = {}): ConfigSources {
  return { flags: {}, env: {}, dotenv: {}, dotenvPath: '.env', ...partial };
}

function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('precedence: flag > environment > .env > default', () => {
  const base = { env: { SQS_QUEUE_URL: QUEUE, MONGODB_URI: 'mongodb://localhost/' } };

  it('uses the default when nothing sets a value', () => {
    expect(loadProcessSqsSettings(sources(base)).waitTimeSeconds).toBe(20);
  });

  it('.env beats the default', () => {
    const s = loadProcessSqsSettings(sources({ ...base, dotenv: { SQS_WAIT_TIME_SECONDS: '5' } }));
    expect(s.waitTimeSeconds).toBe(5);
  });

  it('the environment beats .env', () => {
    const s = loadProcessSqsSettings(
      sources({ env: { ...base.env, SQS_WAIT_TIME_SECONDS: '7' }, dotenv: { SQS_WAIT_TIME_SECONDS: '5' } }),
    );
    expect(s.waitTimeSeconds).toBe(7);
  });

  it('a flag beats the environment', () => {
    const s = loadProcessSqsSettings(
      sources({ flags: { waitTimeSeconds: '1' }, env: { ...base.env, SQS_WAIT_TIME_SECONDS: '7' } }),
    );
    expect(s.waitTimeSeconds).toBe(1);
  });
});

describe('problems are one line each, naming the source, the value and what is expected', () => {
  it('names the flag', () => {
    const problems = problemsOf(() =>
      loadProcessSqsSettings(
        sources({ flags: { waitTimeSeconds: '30', queueUrl: QUEUE }, env: { MONGODB_URI: 'mongodb://h/' } }),
      ),
    );
    expect(problems).toEqual(['--wait-time-seconds: got "30", expected an integer from 0 to 20']);
  });

  it('names the variable, and says when it came from the .env file', () => {
    const problems = problemsOf(() =>
      loadProcessSqsSettings(
        sources({
          env: { SQS_QUEUE_URL: QUEUE, SQS_RECEIVERS: 'many' },
          dotenv: { MONGODB_URI: 'postgres://x' },
        }),
      ),
    );
    expect(problems).toHaveLength(2);
    expect(problems[0]).toBe('SQS_RECEIVERS: got "many", expected an integer from 1 to 64');
    expect(problems[1]).toMatch(
      /^MONGODB_URI \(in \.env\): got an invalid value, expected a connection string /,
    );
  });

  it('reports every problem of a run at once, including missing required settings', () => {
    const problems = problemsOf(() => loadProcessSqsSettings(sources({ flags: { batchSize: '11' } })));
    expect(problems).toEqual([
      '--queue-url (or SQS_QUEUE_URL) is required: URL of the SQS queue',
      '--batch-size: got "11", expected an integer from 1 to 10',
      'no store configured: set --mongo-uri (MONGODB_URI), --mssql-url (MSSQL_URL or MSSQL_HOST) and/or --archive-bucket (ARCHIVE_BUCKET)',
    ]);
    for (const line of problems) expect(line).not.toContain('\n');
  });

  it('never echoes a secret value', () => {
    const problems = problemsOf(() =>
      loadProcessSqsSettings(
        sources({ env: { SQS_QUEUE_URL: QUEUE, MONGODB_URI: 'hunter2-is-my-password' } }),
      ),
    );
    expect(problems.join('\n')).not.toContain('hunter2');
  });

  it('checks cross-field rules', () => {
    const problems = problemsOf(() =>
      loadProcessSqsSettings(
        sources({
          env: { SQS_QUEUE_URL: QUEUE, MONGODB_URI: 'mongodb://h/' },
          flags: {
            visibilityTimeoutMs: '30s',
            heartbeatIntervalMs: '45s',
            dlqUrl: QUEUE,
            retryBackoffMs: '5m',
            retryBackoffMaxMs: '1m',
          },
        }),
      ),
    );
    expect(problems).toEqual([
      '--heartbeat-interval: got 45000ms, expected at most half of --visibility-timeout (15000ms)',
      '--retry-backoff-max: got 60000ms, expected at least --retry-backoff (300000ms)',
      '--dlq-url: must differ from --queue-url',
    ]);
  });

  it('rejects a malformed archive rule with the reason', () => {
    const problems = problemsOf(() =>
      loadProcessSqsSettings(
        sources({
          env: { SQS_QUEUE_URL: QUEUE, ARCHIVE_BUCKET: 'b' },
          flags: { archiveWhen: 'amount>=lots' },
        }),
      ),
    );
    expect(problems).toEqual([
      '--archive-when: got "amount>=lots", expected a number after ">=" in clause 1 ("amount>=lots")',
    ]);
  });
});

describe('process-sqs settings', () => {
  it('derives defaults: heartbeat a third of the visibility timeout, database from the URI, bundled schema', () => {
    const s = loadProcessSqsSettings(
      sources({
        env: {
          SQS_QUEUE_URL: QUEUE,
          MONGODB_URI: 'mongodb://u:p@h:27017/shop?tls=false',
          SQS_VISIBILITY_TIMEOUT: '90s',
        },
      }),
    );
    expect(s.visibilityTimeoutSeconds).toBe(90);
    expect(s.heartbeatIntervalMs).toBe(30_000);
    expect(s.mongo).toEqual({
      uri: 'mongodb://u:p@h:27017/shop?tls=false',
      database: 'shop',
      collection: 'messages',
    });
    expect(s.schemaFile).toBe(DEFAULT_MESSAGE_SCHEMA);
    expect(s.archive).toBeUndefined();
  });

  it('registers the password inside MONGODB_URI for redaction', () => {
    loadProcessSqsSettings(
      sources({ env: { SQS_QUEUE_URL: QUEUE, MONGODB_URI: 'mongodb://app:S3cr3t-Pa55@db:27017/' } }),
    );
    expect(redactString('auth failed for S3cr3t-Pa55 at db')).toBe('auth failed for *** at db');
  });

  it('accepts a replica-set MONGODB_URI, taking the database from its path and masking its password', () => {
    // Prepare
    const uri = 'mongodb://app:Rs-S3cr3t@h1:27017,h2:27017,h3:27017/orders?replicaSet=rs0&authSource=admin';

    // Act
    const s = loadProcessSqsSettings(sources({ env: { SQS_QUEUE_URL: QUEUE, MONGODB_URI: uri } }));

    // Assess
    expect(s.mongo).toEqual({ uri, database: 'orders', collection: 'messages' });
    expect(redactString('auth failed for Rs-S3cr3t')).toBe('auth failed for ***');
    expect(databaseFromMongoUri('mongodb+srv://u:p@cluster0.example.net/shop%2Deu?w=majority')).toBe(
      'shop-eu',
    );
    expect(databaseFromMongoUri('mongodb://h1,h2/')).toBeUndefined();
  });

  it.each([
    ['postgres://u:Pw-1234@h/db', 'it does not start with mongodb:// or mongodb+srv://'],
    ['mongodb://u:Pw@1234@h/db', 'the user name or password holds an unescaped character'],
    ['mongodb://u:Pw/1234@h/db', 'the user name or password holds an unescaped character'],
    ['mongodb://u:Pw-1234@h1:27017,:27017/db', 'expected a host list such as host1:27017,host2:27017'],
    ['mongodb://u:Pw-1234@h:99999/db', 'expected a host list'],
    ['mongodb+srv://u:Pw-1234@h1,h2/db', 'mongodb+srv:// takes exactly one host name'],
    ['mongodb+srv://u:Pw-1234@cluster0.example.net:27017/db', 'a mongodb+srv:// host takes no port'],
    ['mongodb://u:Pw-1234%zz@h/db', 'the password has a "%" not followed by two hex digits'],
  ])('refuses the MONGODB_URI %s, saying why, without echoing it or claiming no store is set', (uri, why) => {
    // Act
    const problems = problemsOf(() =>
      loadProcessSqsSettings(sources({ env: { SQS_QUEUE_URL: QUEUE, MONGODB_URI: uri } })),
    );

    // Assess
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      /^MONGODB_URI: got an invalid value, expected a connection string such as mongodb:\/\//,
    );
    expect(problems[0]).toContain(why);
    expect(problems[0]).not.toContain('1234');
  });

  it('enables the archive with a parsed rule', () => {
    const s = loadProcessSqsSettings(
      sources({
        env: {
          SQS_QUEUE_URL: QUEUE,
          ARCHIVE_BUCKET: 'bkt',
          ARCHIVE_PREFIX: '/records/',
          ARCHIVE_WHEN: 'type=order',
        },
      }),
    );
    expect(s.archive?.bucket).toBe('bkt');
    expect(s.archive?.prefix).toBe('records');
    expect(s.archive?.rule.clauses).toEqual([{ kind: 'compare', path: 'type', op: '=', values: ['order'] }]);
  });
});

describe('AWS settings follow the SDK conventions', () => {
  it('service-specific endpoints win over AWS_ENDPOINT_URL, and path style follows an S3 override', () => {
    const problems: string[] = [];
    const aws = resolveAwsSettings(
      sources({
        env: {
          AWS_ENDPOINT_URL: 'http://localhost:4566',
          AWS_ENDPOINT_URL_SQS: 'http://localhost:9324',
          AWS_DEFAULT_REGION: 'eu-west-1',
        },
      }),
      problems,
    );
    expect(problems).toEqual([]);
    expect(aws).toEqual({
      region: 'eu-west-1',
      maxAttempts: 3,
      sqsEndpoint: 'http://localhost:9324',
      s3Endpoint: 'http://localhost:4566',
      s3ForcePathStyle: true,
    });
  });

  it('--endpoint-url beats the per-service variables, as a flag beats every variable', () => {
    const problems: string[] = [];
    const aws = resolveAwsSettings(
      sources({
        flags: { endpointUrl: 'http://flag:4566' },
        env: { AWS_ENDPOINT_URL_SQS: 'http://env-sqs:9324', AWS_ENDPOINT_URL_S3: 'http://env-s3:5000' },
      }),
      problems,
    );
    expect(problems).toEqual([]);
    expect(aws).toMatchObject({ sqsEndpoint: 'http://flag:4566', s3Endpoint: 'http://flag:4566' });
  });

  it('any variable in the environment beats every variable in .env: AWS_DEFAULT_REGION over .env AWS_REGION', () => {
    const problems: string[] = [];
    const aws = resolveAwsSettings(
      sources({ env: { AWS_DEFAULT_REGION: 'us-east-1' }, dotenv: { AWS_REGION: 'eu-west-1' } }),
      problems,
    );
    expect(aws.region).toBe('us-east-1');
    const fromFile = resolveAwsSettings(
      sources({ dotenv: { AWS_DEFAULT_REGION: 'us-east-1', AWS_REGION: 'eu-west-1' } }),
      problems,
    );
    expect(fromFile.region).toBe('eu-west-1');
  });

  it('a profile wins over static keys, as in the SDK chain: the keys are not passed', () => {
    const problems: string[] = [];
    const keys = {
      AWS_ACCESS_KEY_ID: 'AKIAABCDEFGHIJKLMNOP',
      AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    };
    const fromFlag = resolveAwsSettings(sources({ flags: { profile: 'prod' }, env: keys }), problems);
    const fromEnv = resolveAwsSettings(sources({ env: { ...keys, AWS_PROFILE: 'prod' } }), problems);
    expect(problems).toEqual([]);
    for (const aws of [fromFlag, fromEnv]) {
      expect(aws.profile).toBe('prod');
      expect(aws.credentials).toBeUndefined();
    }
  });

  it('leaves credentials to the SDK chain unless both static keys are given', () => {
    const none: string[] = [];
    expect(resolveAwsSettings(sources(), none).credentials).toBeUndefined();
    const half: string[] = [];
    resolveAwsSettings(sources({ dotenv: { AWS_ACCESS_KEY_ID: 'AKIAABCDEFGHIJKLMNOP' } }), half);
    expect(half).toEqual(['AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: set both or neither']);
    const both: string[] = [];
    const aws = resolveAwsSettings(
      sources({
        dotenv: {
          AWS_ACCESS_KEY_ID: 'AKIAABCDEFGHIJKLMNOP',
          AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
        },
      }),
      both,
    );
    expect(aws.credentials?.accessKeyId).toBe('AKIAABCDEFGHIJKLMNOP');
    expect(redactString('key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY leaked')).toBe('key *** leaked');
  });
});

describe('global options and the .env file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'aws-msg-config-'));
  writeFileSync(join(dir, '.env'), 'LOG_LEVEL=debug\nSQS_QUEUE_URL=' + QUEUE + '\n');
  writeFileSync(join(dir, 'other.env'), 'LOG_LEVEL=warn\n');

  it('reads .env from the working directory, and global settings may come from it', () => {
    const { global, sources: s } = loadGlobalConfig({}, {}, dir);
    expect(global.logLevel).toBe('debug');
    expect(s.dotenv['SQS_QUEUE_URL']).toBe(QUEUE);
  });

  it('--env-file picks another file; the environment still wins over it', () => {
    expect(loadGlobalConfig({ envFile: 'other.env' }, {}, dir).global.logLevel).toBe('warn');
    expect(loadGlobalConfig({ envFile: 'other.env' }, { LOG_LEVEL: 'error' }, dir).global.logLevel).toBe(
      'error',
    );
  });

  it('an explicitly named file that does not exist is an error; the default one may be absent', () => {
    expect(problemsOf(() => loadGlobalConfig({ envFile: 'nope.env' }, {}, dir))).toEqual([
      '--env-file: got "nope.env", expected an existing dotenv file',
    ]);
    expect(loadGlobalConfig({}, {}, tmpdir()).global.logLevel).toBe('info');
  });

  it('names --log-level and the allowed values', () => {
    expect(problemsOf(() => loadGlobalConfig({ logLevel: 'nope' }, {}, dir))).toEqual([
      '--log-level: got "nope", expected one of error, warn, info, debug',
    ]);
  });
});

describe('send-messages settings', () => {
  it('resolves the file against the working directory and refuses two group id sources', () => {
    const s = loadSendMessagesSettings(
      sources({ env: { SQS_QUEUE_URL: QUEUE }, flags: { file: 'in.json' } }),
      '/data',
    );
    expect(s.file).toBe('/data/in.json');
    expect(
      problemsOf(() =>
        loadSendMessagesSettings(
          withFlags(sources({ env: { SQS_QUEUE_URL: QUEUE } }), {
            file: 'a.json',
            groupId: 'g',
            groupIdField: 'f',
          }),
        ),
      ),
    ).toEqual(['--group-id and --group-id-field: give one or the other']);
  });
});
