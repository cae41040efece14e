import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createBucket, testS3Client } from '../../helpers/aws.js';
import { describeWithPeers, requirePeer } from '../../helpers/peers.js';

describeWithPeers(['moto'], 'S3 round trip (moto)', () => {
  it('puts and gets an object byte for byte', async () => {
    // Prepare
    const client = testS3Client(requirePeer('moto'));
    const bucket = await createBucket(client);
    const body = Buffer.from(JSON.stringify({ id: 1, note: 'ünïcödé' }));

    // Act
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'a/b/c.json', Body: body }));
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'a/b/c.json' }));
    const bytes = Buffer.from(await got.Body!.transformToByteArray());

    // Assess
    expect(bytes.equals(body)).toBe(true);
    client.destroy();
  });
});
