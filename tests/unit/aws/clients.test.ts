import { sdkConfig } from '../../../src/aws/clients.js';
import type { AwsSettings } from '../../../src/config/config-loader.js';

describe('the shared SDK client settings', () => {
  const credentials = { accessKeyId: 'AKIAABCDEFGHIJKLMNOP', secretAccessKey: 'x/y+z' };

  it('pass static credentials when no profile is named', () => {
    const aws: AwsSettings = { maxAttempts: 3, s3ForcePathStyle: false, region: 'eu-west-1', credentials };
    expect(sdkConfig(aws)).toEqual({ maxAttempts: 3, region: 'eu-west-1', credentials });
  });

  it('pass the profile and never static keys beside it, as the SDK chain prefers the profile', () => {
    const aws: AwsSettings = { maxAttempts: 3, s3ForcePathStyle: false, profile: 'prod', credentials };
    expect(sdkConfig(aws)).toEqual({ maxAttempts: 3, profile: 'prod' });
  });
});
