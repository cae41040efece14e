/** Which AWS failures a run rides out and which end it, with the SDK's own exception classes. */
import { KmsDisabled, KmsThrottled, OverLimit, QueueDoesNotExist } from '@aws-sdk/client-sqs';
import { isRetryableAwsError, wrapAwsError } from '../../../src/aws/aws-errors.js';

const meta = (httpStatusCode: number) => ({ $metadata: { httpStatusCode } });

describe('isRetryableAwsError', () => {
  it('KMS throttling on an SSE-KMS queue and the in-flight limit are retried although they are 4xx client faults', () => {
    expect(isRetryableAwsError(new KmsThrottled({ message: 'Rate exceeded', ...meta(400) }))).toBe(true);
    expect(isRetryableAwsError(new OverLimit({ message: 'too many in flight', ...meta(403) }))).toBe(true);
  });

  it('a missing queue or a disabled KMS key is not retried', () => {
    expect(isRetryableAwsError(new QueueDoesNotExist({ message: 'gone', ...meta(400) }))).toBe(false);
    expect(isRetryableAwsError(new KmsDisabled({ message: 'disabled', ...meta(400) }))).toBe(false);
  });

  it('server faults, 429 and network resets are retried', () => {
    expect(isRetryableAwsError(Object.assign(new Error('boom'), meta(503)))).toBe(true);
    expect(isRetryableAwsError(Object.assign(new Error('slow down'), meta(429)))).toBe(true);
    expect(isRetryableAwsError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBe(true);
  });
});

describe('wrapAwsError', () => {
  // The name the SDK's credential providers give their error (@smithy/core's CredentialsProviderError).
  const noCredentials = () =>
    Object.assign(new Error('Could not load credentials from any providers'), {
      name: 'CredentialsProviderError',
    });

  it('missing credentials are a configuration error that a long run may still retry (a metadata endpoint blip)', () => {
    const error = wrapAwsError(noCredentials(), { service: 'SQS', operation: 'ReceiveMessage' });
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.exitCode).toBe(2);
    expect(error.retryable).toBe(true);
    expect(error.message).toMatch(/^SQS ReceiveMessage: no AWS credentials found/);
  });

  it('a missing region is a configuration error that no retry fixes', () => {
    const error = wrapAwsError(new Error('Region is missing'), { service: 'S3', operation: 'PutObject' });
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.retryable).toBe(false);
  });

  it('names the service, operation, resource and HTTP status', () => {
    const error = wrapAwsError(new KmsThrottled({ message: 'Rate exceeded', ...meta(400) }), {
      service: 'SQS',
      operation: 'ReceiveMessage',
      resource: 'https://sqs.eu-west-1.amazonaws.com/1/q',
    });
    expect(error.message).toBe(
      'SQS ReceiveMessage on https://sqs.eu-west-1.amazonaws.com/1/q failed (HTTP 400): KmsThrottled: Rate exceeded',
    );
    expect(error.retryable).toBe(true);
  });
});
