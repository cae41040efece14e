/**
 * The Lambda driver: SQS triggers the function with a batch of records, and it answers with the
 * records that must come back (`batchItemFailures`; the event source mapping sets
 * `FunctionResponseTypes: [ReportBatchItemFailures]`). It is the second thin driver over the same
 * processor, sinks and acknowledgement contract as `process-sqs`:
 *
 *   records -> QueueMessage -> MessageProcessor (chunks, within the time budget) -> decideAck
 *
 *   stored                 -> success: the Lambda service deletes it
 *   rejected, with a DLQ   -> sent to SQS_DLQ_URL with the reason, then success; a failed send is a failure
 *   rejected, no DLQ       -> failure, hidden for SQS_POISON_BACKOFF; the redrive policy moves it
 *   failed (transient)     -> failure, hidden for the exponential backoff from ApproximateReceiveCount
 *   released               -> failure, visible again at once (FIFO successors, work not started in time)
 *
 * Visibility changes use the queue URL derived from the record's eventSourceARN and can be turned
 * off (LAMBDA_VISIBILITY_BACKOFF=false); then failures wait out the queue's visibility timeout.
 * Settings, clients and opened sinks live as long as the execution environment: they are built on
 * the first invocation and reused by every later one. Opening them is bounded by the invocation's
 * time less LAMBDA_TIMEOUT_MARGIN; if they are not ready by then, every record is reported failed.
 */
import type { GetSecretValueCommand, GetSecretValueCommandOutput } from '@aws-sdk/client-secrets-manager';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchItemFailure, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { Env } from '../config/config-loader.js';
import {
  loadLambdaSettings,
  SECRET_BACKED,
  withSecretValues,
  type LambdaSettings,
  type SecretBacked,
} from '../config/lambda-settings.js';
import type { Sink } from '../database/sink.js';
import { decideAck, type AckPolicy } from '../services/acknowledgement.js';
import {
  groupIdOf,
  MessageProcessor,
  receiveCountOf,
  type Outcome,
  type QueueMessage,
} from '../services/message-processor.js';
import type { QueuePort, RunCounts } from '../services/queue-runner.js';
import { createSinks, loadMessageValidator, type SinkClients } from '../services/sinks.js';
import { AppError, ConfigError, describeError } from '../utils/errors.js';
import type { Validator } from '../utils/file-reader.js';
import { createLogger, redactString, registerSecret, type Logger } from '../utils/logger.js';
import { RequestCounter, sdkConfig } from './clients.js';
import { createSqsClient, isFifoQueueUrl, SqsQueue } from './sqs-handler.js';

export type LambdaHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

/** A handler that can also release what it holds (tests, or an embedding that shuts down). */
export interface ManagedLambdaHandler extends LambdaHandler {
  /**
   * Closes the stores and the clients the handler built, and forgets them; a later invocation
   * starts afresh. Lambda itself never calls it: an environment's connections end with it.
   */
  close(): Promise<void>;
}

/** The acknowledgements the Lambda makes itself; the Lambda service deletes what succeeded. */
export type AckQueue = Pick<QueuePort, 'deadLetter' | 'changeVisibility' | 'flush'>;

/** The SDK and database clients of one execution environment. */
export interface LambdaClients extends SinkClients {
  sqs: SQSClient;
}

export interface LambdaHandlerDeps {
  /** Where the settings come from. Default: `process.env`. */
  env?: Env;
  /** Default: JSON lines on stderr at LOG_LEVEL; CloudWatch keeps each line as one event. */
  logger?: Logger;
  /** Builds the clients, once per execution environment. Default: from the settings. */
  createClients?: (
    settings: LambdaSettings,
    counters: RequestCounters,
  ) => LambdaClients | Promise<LambdaClients>;
  /** Builds the stores over those clients. Default: the configured ones (`createSinks`). */
  createSinks?: (
    settings: LambdaSettings,
    clients: LambdaClients,
    logger: Logger,
  ) => Sink[] | Promise<Sink[]>;
  /** Builds the acknowledgement edge of one source queue. Default: an `SqsQueue`. */
  createQueue?: (
    queueUrl: string,
    settings: LambdaSettings,
    clients: LambdaClients,
    logger: Logger,
  ) => AckQueue;
  /** Jitter for backoffs, as in `decideAck`. Default `Math.random`. */
  random?: () => number;
  /**
   * Builds the Secrets Manager client that reads MONGODB_URI_SECRET_ARN / MSSQL_URL_SECRET_ARN on
   * a cold start; it is destroyed once they are read. Default: a `SecretsManagerClient`.
   */
  createSecretsClient?: (settings: LambdaSettings) => SecretsClient | Promise<SecretsClient>;
}

/** What the handler uses of a `SecretsManagerClient`. */
export interface SecretsClient {
  send(command: GetSecretValueCommand): Promise<Pick<GetSecretValueCommandOutput, 'SecretString'>>;
  destroy(): void;
}

export interface RequestCounters {
  sqs: RequestCounter;
  s3: RequestCounter;
}

/** What one invocation did; logged as `lambda_batch_done`. */
export interface LambdaBatchCounts extends Pick<
  RunCounts,
  'received' | 'stored' | 'archived' | 'rejected' | 'deadLettered' | 'failed' | 'released'
> {
  /** Messages reported back to Lambda as failed, to be redelivered. */
  batchItemFailures: number;
}

const EMPTY_COUNTS: LambdaBatchCounts = {
  received: 0,
  stored: 0,
  archived: 0,
  rejected: 0,
  deadLettered: 0,
  failed: 0,
  released: 0,
  batchItemFailures: 0,
};

/**
 * `arn:aws:sqs:eu-west-1:123456789012:orders` -> `https://sqs.eu-west-1.amazonaws.com/123456789012/orders`,
 * or `<endpoint>/123456789012/orders` when an SQS endpoint is configured (an emulator).
 * Undefined when the ARN is not an SQS queue ARN.
 */
export function queueUrlFromArn(arn: string, endpoint?: string): string | undefined {
  const parts = arn.split(':');
  if (parts.length !== 6 || parts[0] !== 'arn' || parts[2] !== 'sqs') return undefined;
  const [, partition, , region, account, name] = parts as [string, string, string, string, string, string];
  if (region === '' || account === '' || name === '') return undefined;
  if (endpoint !== undefined) return `${endpoint.replace(/\/+$/, '')}/${account}/${name}`;
  const domain = partition === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com';
  return `https://sqs.${region}.${domain}/${account}/${name}`;
}

/** A Lambda SQS record in the driver-neutral shape the processor takes. */
export function recordToQueueMessage(record: SQSRecord, receivedAt: Date): QueueMessage {
  const attributes: Record<string, string> = {};
  for (const [name, value] of Object.entries(record.attributes ?? {})) {
    if (typeof value === 'string') attributes[name] = value;
  }
  const messageAttributes: QueueMessage['messageAttributes'] = {};
  for (const [name, value] of Object.entries(record.messageAttributes ?? {})) {
    // Lambda delivers binary values base64-encoded already, which is the processor's convention.
    messageAttributes[name] = {
      dataType: value.dataType,
      value: value.stringValue ?? value.binaryValue ?? '',
    };
  }
  return {
    messageId: record.messageId,
    receiptHandle: record.receiptHandle,
    body: record.body,
    attributes,
    messageAttributes,
    receivedAt,
  };
}

/** Drivers are imported only for the stores configured, which keeps the cold start short. */
async function defaultClients(settings: LambdaSettings, counters: RequestCounters): Promise<LambdaClients> {
  const clients: LambdaClients = { sqs: createSqsClient(settings.aws, counters.sqs) };
  if (settings.archive)
    clients.s3 = (await import('./s3-handler.js')).createS3Client(settings.aws, counters.s3);
  if (settings.mongo) {
    clients.mongo = (await import('../database/mongodb-connector.js')).createMongoClient(settings.mongo.uri);
  }
  if (settings.mssql) {
    clients.mssql = (await import('../database/sql-server-connector.js')).createMssqlPool(
      settings.mssql.connection,
    );
  }
  return clients;
}

async function defaultSecretsClient(settings: LambdaSettings): Promise<SecretsClient> {
  const { SecretsManagerClient } = await import('@aws-sdk/client-secrets-manager');
  return new SecretsManagerClient({
    ...sdkConfig(settings.aws),
    ...(settings.secretsEndpoint !== undefined ? { endpoint: settings.secretsEndpoint } : {}),
  });
}

/**
 * Reads the secrets the settings name and returns the settings with their stores resolved. Each
 * value is registered for redaction before anything can quote it. A failure names the variable and
 * the ARN (never a value) and is not a configuration problem: the next invocation tries again.
 */
async function readSecrets(
  settings: LambdaSettings,
  env: Env,
  createClient: NonNullable<LambdaHandlerDeps['createSecretsClient']>,
): Promise<LambdaSettings> {
  const arns = settings.secretArns;
  if (arns === undefined) return settings;
  const { GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
  const client = await createClient(settings);
  try {
    const entries = await Promise.all(
      (Object.entries(arns) as Array<[SecretBacked, string]>).map(async ([key, arn]) => {
        const name = SECRET_BACKED[key].arnEnv;
        let value: string | undefined;
        try {
          value = (await client.send(new GetSecretValueCommand({ SecretId: arn }))).SecretString;
        } catch (error) {
          throw new AppError(
            'DEPENDENCY_UNAVAILABLE',
            `${name}: could not read secret ${arn}: ${describeError(error)}`,
            { retryable: true, cause: error },
          );
        }
        if (value === undefined || value.trim() === '') {
          throw new AppError('DEPENDENCY_UNAVAILABLE', `${name}: secret ${arn} has no SecretString`, {
            retryable: true,
          });
        }
        registerSecret(value.trim());
        return [key, value.trim()] as const;
      }),
    );
    try {
      return withSecretValues(settings, env, Object.fromEntries(entries));
    } catch (error) {
      // A bad value is fixed in the secret, not in the function: not remembered, so retried.
      const problems = error instanceof ConfigError ? error.problems : [describeError(error)];
      throw new AppError('DEPENDENCY_UNAVAILABLE', problems.join('; '), { retryable: true });
    }
  } finally {
    client.destroy();
  }
}

function defaultQueue(
  queueUrl: string,
  settings: LambdaSettings,
  clients: LambdaClients,
  logger: Logger,
): AckQueue {
  return new SqsQueue({
    sqs: clients.sqs,
    queueUrl,
    ...(settings.dlqUrl !== undefined ? { dlqUrl: settings.dlqUrl } : {}),
    // Everything is queued at once and awaited right away: batches go out on the next tick.
    flushDelayMs: 0,
    logger,
  });
}

/** Configuration problems do not heal by themselves, so a failed start is remembered; outages are retried. */
function isConfigProblem(error: unknown): boolean {
  return error instanceof AppError && (error.code === 'CONFIG_INVALID' || error.code.startsWith('INPUT_'));
}

/** Released at once: another invocation can take it while this one runs out of time. */
const NOT_STARTED: Outcome = {
  status: 'released',
  reason: 'not started: the invocation was running out of time',
};
/** A transient failure: its writes may or may not have landed, and come back with a backoff. */
const GIVEN_UP: Outcome = {
  status: 'failed',
  reason: 'given up: the stores had not answered when the invocation was running out of time',
};

type Timed<T> = { done: true; value: T } | { done: false };

/** Waits for `promise` at most `ms`; the promise goes on, and its late result is dropped. */
async function within<T>(promise: Promise<T>, ms: number): Promise<Timed<T>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Timed<T>>((resolve) => {
    timer = setTimeout(() => resolve({ done: false }), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise.then((value): Timed<T> => ({ done: true, value })), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The settings and the logger: read synchronously, before anything is awaited. */
interface Base {
  settings: LambdaSettings;
  logger: Logger;
}

interface Environment extends Base {
  validator: Validator<unknown>;
  clients: LambdaClients;
  counters: RequestCounters;
}

interface QueueEdge {
  queue: AckQueue;
  /** False when the queue URL could not be derived: failures then wait out the visibility timeout. */
  canChangeVisibility: boolean;
}

/**
 * Builds a handler. Everything expensive (settings, schema, clients, opened sinks) is built on the
 * first invocation and kept for the life of the execution environment.
 */
export function createHandler(deps: LambdaHandlerDeps = {}): ManagedLambdaHandler {
  /** Settings come from the environment, which does not change: a bad one stays bad (and is reported each time). */
  let base: { ok: true; value: Base } | { ok: false; error: unknown } | undefined;
  let firstInvocation = true;
  let environment: Promise<Environment> | undefined;
  let processor: Promise<MessageProcessor> | undefined;
  const queues = new Map<string, QueueEdge>();
  let fallbackLogger: Logger | undefined;
  let lastCounts = { sqs: {} as Record<string, number>, s3: {} as Record<string, number> };
  const random = deps.random ?? Math.random;

  function loadBase(): Base {
    if (base === undefined) {
      try {
        const settings = loadLambdaSettings(deps.env ?? process.env);
        const logger = deps.logger ?? createLogger({ level: settings.logLevel, format: settings.logFormat });
        base = { ok: true, value: { settings, logger } };
      } catch (error) {
        base = { ok: false, error };
      }
    }
    if (!base.ok) throw base.error;
    return base.value;
  }

  async function buildEnvironment(): Promise<Environment> {
    const base = loadBase();
    const { logger } = base;
    const settings = await readSecrets(
      base.settings,
      deps.env ?? process.env,
      deps.createSecretsClient ?? defaultSecretsClient,
    );
    const validator = await loadMessageValidator(settings.schemaFile);
    const counters: RequestCounters = { sqs: new RequestCounter(), s3: new RequestCounter() };
    const clients = await (deps.createClients ?? defaultClients)(settings, counters);
    return { settings, logger, validator, clients, counters };
  }

  async function openProcessor(env: Environment): Promise<MessageProcessor> {
    const startedAt = Date.now();
    const sinks = await (deps.createSinks ?? createSinks)(env.settings, env.clients, env.logger);
    const built = new MessageProcessor({
      sinks,
      validator: env.validator,
      ...(env.settings.idField !== undefined ? { idField: env.settings.idField } : {}),
      ...(env.settings.archive
        ? { archive: { rule: env.settings.archive.rule, prefix: env.settings.archive.prefix } }
        : {}),
      logger: env.logger,
    });
    await built.open();
    env.logger.info('lambda_ready', {
      stores: sinks.map((sink) => sink.name),
      dlq: env.settings.dlqUrl !== undefined,
      openMs: Date.now() - startedAt,
    });
    return built;
  }

  async function prepare(): Promise<{ env: Environment; processor: MessageProcessor }> {
    environment ??= buildEnvironment().catch((error: unknown) => {
      if (!isConfigProblem(error)) environment = undefined;
      throw error;
    });
    const env = await environment;
    // A store that was unreachable is tried again by the next invocation, over the same clients.
    processor ??= openProcessor(env).catch((error: unknown) => {
      processor = undefined;
      throw error;
    });
    return { env, processor: await processor };
  }

  /**
   * prepare(), bounded by the invocation's time less the margin: a first connection can take
   * longer than the whole function timeout (MongoDB's server selection waits 30 s). Undefined when
   * it did not finish in time; it goes on in the background, for the next invocation.
   */
  async function prepareWithin(
    context: Context,
  ): Promise<{ env: Environment; processor: MessageProcessor } | undefined> {
    const { settings, logger } = loadBase();
    const remainingMs = context.getRemainingTimeInMillis();
    if (firstInvocation) {
      firstInvocation = false;
      if (settings.timeoutMarginMs >= remainingMs) {
        logger.warn('lambda_timeout_margin_too_large', {
          timeoutMarginMs: settings.timeoutMarginMs,
          remainingMs,
          hint: 'LAMBDA_TIMEOUT_MARGIN leaves no time to store anything: lower it or raise the function timeout',
        });
      }
    }
    const budgetMs = remainingMs - settings.timeoutMarginMs;
    const pending = prepare();
    const ready = await within(pending, budgetMs);
    if (ready.done) return ready.value;
    // Its failure, if it fails, is not this invocation's to throw any more; log it when it comes.
    void pending.catch(logStartFailure);
    logger.error('lambda_start_out_of_time', {
      budgetMs: Math.max(0, budgetMs),
      timeoutMarginMs: settings.timeoutMarginMs,
      reason:
        'the stores were not ready within the time left less LAMBDA_TIMEOUT_MARGIN; every record is reported as failed and comes back',
    });
    return undefined;
  }

  function logStartFailure(error: unknown): void {
    const logger = deps.logger ?? (fallbackLogger ??= createLogger({ format: 'json' }));
    if (error instanceof ConfigError) {
      for (const problem of error.problems) logger.error('lambda_config_invalid', { problem });
    } else if (isConfigProblem(error)) {
      logger.error('lambda_config_invalid', { problem: describeError(error) });
    } else {
      logger.error('lambda_start_failed', { error: describeError(error) });
    }
  }

  function queueFor(arn: string, env: Environment): QueueEdge {
    const known = queues.get(arn);
    if (known) return known;
    const derived = env.settings.queueUrl ?? queueUrlFromArn(arn, env.settings.aws.sqsEndpoint);
    const fifo = arn.endsWith('.fifo');
    const dlqUrl = env.settings.dlqUrl;
    if (dlqUrl !== undefined && isFifoQueueUrl(dlqUrl) !== fifo) {
      throw new ConfigError([
        `SQS_DLQ_URL: the ${fifo ? 'FIFO' : 'standard'} queue ${arn} needs a ${fifo ? 'FIFO' : 'standard'} DLQ`,
      ]);
    }
    if (derived === undefined) {
      env.logger.warn('lambda_queue_url_unknown', {
        eventSourceARN: arn,
        hint: 'set SQS_QUEUE_URL; until then failed messages wait out the visibility timeout',
      });
    }
    const factory = deps.createQueue ?? defaultQueue;
    const edge: QueueEdge = {
      queue: factory(derived ?? arn, env.settings, env.clients, env.logger),
      canChangeVisibility: derived !== undefined && env.settings.visibilityBackoff,
    };
    queues.set(arn, edge);
    return edge;
  }

  /**
   * Runs the processor over `messages` in chunks, in order, while the time budget lasts. A chunk
   * starts only while more than the margin remains, and is given up once the margin is reached:
   * its messages may or may not have been stored (every write is idempotent), so they come back.
   * FIFO: a group whose message did not succeed has its later messages released, across chunks.
   */
  async function processWithinBudget(
    env: Environment,
    engine: MessageProcessor,
    messages: readonly QueueMessage[],
    fifo: boolean,
    context: Context,
  ): Promise<Outcome[]> {
    const { chunkSize, timeoutMarginMs } = env.settings;
    const outcomes: Outcome[] = [];
    const stoppedGroups = new Map<string, string>();
    let outOfTime = false;
    for (let start = 0; start < messages.length; start += chunkSize) {
      const indexes = Array.from(
        { length: Math.min(chunkSize, messages.length - start) },
        (_, i) => start + i,
      );
      const live: number[] = [];
      for (const index of indexes) {
        const group = fifo ? (groupIdOf(messages[index] as QueueMessage) ?? '') : undefined;
        const blocker = group === undefined ? undefined : stoppedGroups.get(group);
        if (outOfTime) {
          outcomes[index] = NOT_STARTED;
        } else if (blocker !== undefined) {
          outcomes[index] = { status: 'released', reason: `an earlier message of group ${group} ${blocker}` };
        } else {
          live.push(index);
        }
      }
      if (live.length > 0) {
        const budgetMs = context.getRemainingTimeInMillis() - timeoutMarginMs;
        if (budgetMs <= 0) {
          outOfTime = true;
          for (const index of live) outcomes[index] = NOT_STARTED;
        } else {
          const batch = live.map((index) => messages[index] as QueueMessage);
          const work = engine
            .process(batch, { fifo })
            .catch((error: unknown): Outcome[] =>
              batch.map(() => ({ status: 'failed', reason: redactString(describeError(error)) })),
            );
          const result = await within(work, budgetMs);
          if (result.done) {
            live.forEach((index, i) => {
              outcomes[index] = result.value[i] ?? { status: 'failed', reason: 'no outcome' };
            });
          } else {
            outOfTime = true;
            env.logger.warn('lambda_out_of_time', { messages: live.length, budgetMs });
            for (const index of live) outcomes[index] = GIVEN_UP;
          }
        }
      }
      if (fifo) {
        for (const index of indexes) {
          const outcome = outcomes[index] as Outcome;
          const group = groupIdOf(messages[index] as QueueMessage) ?? '';
          if (outcome.status !== 'stored' && !stoppedGroups.has(group)) {
            stoppedGroups.set(
              group,
              outcome.status === 'released' ? 'was released' : `was ${outcome.status}`,
            );
          }
        }
      }
    }
    return outcomes;
  }

  /**
   * Carries out the acknowledgement contract for one source queue. Returns, per message, whether
   * it was handled (success) or must be reported as a batch item failure.
   */
  async function acknowledge(
    env: Environment,
    edge: QueueEdge,
    messages: readonly QueueMessage[],
    outcomes: readonly Outcome[],
    context: Context,
    counts: LambdaBatchCounts,
  ): Promise<boolean[]> {
    const { settings, logger } = env;
    const policy: AckPolicy = {
      hasDlq: settings.dlqUrl !== undefined,
      retryBackoffMs: settings.retryBackoffMs,
      retryBackoffMaxMs: settings.retryBackoffMaxMs,
      poisonBackoffMs: settings.poisonBackoffMs,
    };
    const hide = async (message: QueueMessage, seconds: number): Promise<void> => {
      if (!edge.canChangeVisibility) return;
      const changed = await edge.queue.changeVisibility(message, seconds);
      if (!changed.ok) {
        logger.warn('visibility_change_failed', {
          messageId: message.messageId,
          seconds,
          error: changed.error,
        });
      }
    };
    const handled: Array<boolean | undefined> = messages.map(() => undefined);
    const work = messages.map(async (message, i): Promise<void> => {
      const outcome = outcomes[i] as Outcome;
      const action = decideAck(outcome, receiveCountOf(message), policy, random);
      switch (action.kind) {
        case 'delete':
          handled[i] = true;
          return;
        case 'dead-letter': {
          // The reason may quote a driver's error, and the DLQ is read by more people than the logs.
          const sent = await edge.queue.deadLetter(message, redactString(action.reason));
          if (sent.ok) {
            counts.deadLettered++;
            logger.info('message_dead_lettered', { messageId: message.messageId, reason: action.reason });
            handled[i] = true;
            return;
          }
          // Not in the DLQ, so it must come back: report it, hidden like a poison message.
          logger.error('dead_letter_failed', { messageId: message.messageId, error: sent.error });
          handled[i] = false;
          return hide(message, Math.round(settings.poisonBackoffMs / 1000));
        }
        case 'retry-later':
          handled[i] = false;
          logger.debug('message_retry_later', {
            messageId: message.messageId,
            seconds: action.visibilityTimeoutSeconds,
            reason: action.reason,
          });
          return hide(message, action.visibilityTimeoutSeconds);
        case 'release':
          handled[i] = false;
          return hide(message, action.visibilityTimeoutSeconds);
      }
    });
    // Half the margin is for these requests, the other half for returning the response.
    const budgetMs = context.getRemainingTimeInMillis() - settings.timeoutMarginMs / 2;
    const finished = await within(
      Promise.all([...work, edge.queue.flush()]).catch((error: unknown) => {
        logger.error('ack_failed', { error: describeError(error) });
      }),
      budgetMs,
    );
    if (!finished.done) logger.warn('lambda_ack_out_of_time', { budgetMs });
    // A DLQ send that was not confirmed in time counts as not sent: the message comes back.
    return handled.map((ok) => ok === true);
  }

  async function close(): Promise<void> {
    const [env, engine] = await Promise.all([
      environment?.catch(() => undefined),
      processor?.catch(() => undefined),
    ]);
    base = undefined;
    firstInvocation = true;
    environment = undefined;
    processor = undefined;
    queues.clear();
    await engine?.close();
    if (!env) return;
    const { clients } = env;
    await Promise.allSettled([clients.mongo?.close(), clients.mssql?.close()]);
    clients.sqs.destroy();
    clients.s3?.destroy();
  }

  async function handler(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
    let prepared: { env: Environment; processor: MessageProcessor } | undefined;
    try {
      prepared = await prepareWithin(context);
    } catch (error) {
      // Thrown, not reported per record: the whole batch comes back, and Lambda's error metrics show it.
      logStartFailure(error);
      throw error;
    }
    if (prepared === undefined) {
      // Answered rather than timed out: a timed-out invocation also fails, but only once Lambda's
      // timeout has passed, and it says nothing about why.
      return {
        batchItemFailures: (event.Records ?? []).map((record) => ({ itemIdentifier: record.messageId })),
      };
    }
    const { env, processor: engine } = prepared;
    const startedAt = Date.now();
    const receivedAt = new Date(startedAt);
    const counts: LambdaBatchCounts = { ...EMPTY_COUNTS };
    const batchItemFailures: SQSBatchItemFailure[] = [];

    // One event comes from one event source mapping, so from one queue; grouping is only defensive.
    const bySource = new Map<string, SQSRecord[]>();
    for (const record of event.Records ?? []) {
      const list = bySource.get(record.eventSourceARN) ?? [];
      list.push(record);
      bySource.set(record.eventSourceARN, list);
    }
    for (const [arn, records] of bySource) {
      let edge: QueueEdge;
      try {
        edge = queueFor(arn, env);
      } catch (error) {
        logStartFailure(error);
        throw error;
      }
      const fifo = arn.endsWith('.fifo');
      const messages = records.map((record) => recordToQueueMessage(record, receivedAt));
      counts.received += messages.length;
      const outcomes = await processWithinBudget(env, engine, messages, fifo, context);
      for (const outcome of outcomes) {
        if (outcome.status === 'stored') {
          counts.stored++;
          if (outcome.archived) counts.archived++;
        } else counts[outcome.status]++;
      }
      const handled = await acknowledge(env, edge, messages, outcomes, context, counts);
      handled.forEach((ok, i) => {
        if (!ok) batchItemFailures.push({ itemIdentifier: (messages[i] as QueueMessage).messageId });
      });
    }
    counts.batchItemFailures = batchItemFailures.length;
    const sqsNow = env.counters.sqs.snapshot();
    const s3Now = env.counters.s3.snapshot();
    env.logger.info('lambda_batch_done', {
      requestId: context.awsRequestId,
      ...counts,
      durationMs: Date.now() - startedAt,
      remainingMs: context.getRemainingTimeInMillis(),
      sqsRequests: delta(sqsNow, lastCounts.sqs),
      s3Requests: delta(s3Now, lastCounts.s3),
    });
    lastCounts = { sqs: sqsNow, s3: s3Now };
    return { batchItemFailures };
  }

  return Object.assign(handler, { close });
}

function delta(now: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [operation, n] of Object.entries(now)) {
    const d = n - (before[operation] ?? 0);
    if (d > 0) out[operation] = d;
  }
  return out;
}

/**
 * The function's handler (`index.handler` in the bundle). Its state lives in module scope, so a
 * warm execution environment reuses settings, clients and open connections across invocations.
 */
export const handler: ManagedLambdaHandler = createHandler();
