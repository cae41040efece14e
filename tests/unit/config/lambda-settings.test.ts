import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DEFAULT_MESSAGE_SCHEMA } from '../../../src/config/config-loader.js';
import {
  defaultLambdaSchema,
  LAMBDA_OPTIONS,
  LAMBDA_SECRET_OPTIONS,
  loadLambdaSettings,
} from '../../../src/config/lambda-settings.js';
import { ConfigError } from '../../../src/utils/errors.js';
import { REPO_ROOT } from '../../helpers/cli.js';

const STORE = { MONGODB_URI: 'mongodb://db.example.com:27017/shop' };

describe('loadLambdaSettings', () => {
  it('uses the process-sqs defaults and the Lambda-only ones', () => {
    // Act
    const settings = loadLambdaSettings({ ...STORE });

    // Assess
    expect(settings).toMatchObject({
      mongo: { uri: STORE.MONGODB_URI, database: 'shop', collection: 'messages' },
      logLevel: 'info',
      logFormat: 'json',
      retryBackoffMs: 10_000,
      retryBackoffMaxMs: 15 * 60_000,
      poisonBackoffMs: 3_600_000,
      chunkSize: 100,
      timeoutMarginMs: 5000,
      visibilityBackoff: true,
      schemaFile: DEFAULT_MESSAGE_SCHEMA,
    });
    expect(settings.dlqUrl).toBeUndefined();
    expect(settings.queueUrl).toBeUndefined();
  });

  it('reads the same variables as process-sqs, and resolves a relative schema from LAMBDA_TASK_ROOT', () => {
    // Act
    const settings = loadLambdaSettings({
      ...STORE,
      LAMBDA_TASK_ROOT: '/var/task',
      MESSAGE_SCHEMA: 'schemas/order-event.schema.json',
      MESSAGE_ID_FIELD: 'eventId',
      SQS_DLQ_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/dlq',
      ARCHIVE_BUCKET: 'audit',
      ARCHIVE_WHEN: 'type=order.paid',
      STORE_BATCH_SIZE: '25',
      LAMBDA_TIMEOUT_MARGIN: '2s',
      LAMBDA_VISIBILITY_BACKOFF: 'no',
      AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:9324',
    });

    // Assess
    expect(settings).toMatchObject({
      schemaFile: '/var/task/schemas/order-event.schema.json',
      idField: 'eventId',
      dlqUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/dlq',
      archive: { bucket: 'audit', prefix: 'archive' },
      chunkSize: 25,
      timeoutMarginMs: 2000,
      visibilityBackoff: false,
      aws: { sqsEndpoint: 'http://127.0.0.1:9324' },
    });
  });

  it('reports every problem at once, naming the variable', () => {
    // Act
    let error: unknown;
    try {
      loadLambdaSettings({
        SQS_QUEUE_URL: 'https://q',
        SQS_DLQ_URL: 'https://q',
        LAMBDA_VISIBILITY_BACKOFF: 'maybe',
      });
    } catch (caught) {
      error = caught;
    }

    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      expect.stringMatching(/^LAMBDA_VISIBILITY_BACKOFF: got "maybe", expected true or false/),
      expect.stringMatching(/^no store configured/),
      'SQS_DLQ_URL: must differ from SQS_QUEUE_URL',
    ]);
  });
});

describe('defaultLambdaSchema', () => {
  it('prefers the schema beside the bundle, and falls back to the package one', () => {
    // Prepare
    const dir = mkdtempSync(join(tmpdir(), 'aws-msg-lambda-'));
    const bundle = pathToFileURL(join(dir, 'index.mjs')).href;
    const fallback = defaultLambdaSchema(bundle);
    mkdirSync(join(dir, 'schemas'));
    writeFileSync(join(dir, 'schemas', 'message.schema.json'), '{}');

    // Act
    const beside = defaultLambdaSchema(bundle);

    // Assess
    expect(fallback).toBe(DEFAULT_MESSAGE_SCHEMA);
    expect(beside).toBe(join(dir, 'schemas', 'message.schema.json'));
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('Lambda settings documentation', () => {
  // docs.test.ts covers the CLI commands' settings; the Lambda's own are checked here.
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const envExample = readFileSync(join(REPO_ROOT, '.env.example'), 'utf8');
  const variables = [
    ...new Set(
      [...Object.values(LAMBDA_OPTIONS), ...Object.values(LAMBDA_SECRET_OPTIONS)].flatMap((s) => s.env ?? []),
    ),
  ];

  it.each(variables)('README and .env.example name %s', (name) => {
    expect(readme).toContain(`\`${name}\``);
    expect(envExample).toContain(name);
  });
});
